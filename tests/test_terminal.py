"""Terminal conventions and configuration, with real stui processes on a pty."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pexpect
import pytest
from conftest import run_stui, spawn_stui
from test_repl import PROMPT, Screen

pytestmark = pytest.mark.usefixtures("server_image")

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")


def start(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    child = spawn_stui(*args, env_extra=env)
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    return child


def leave(child: pexpect.spawn) -> None:
    child.sendline(":quit")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_settings_come_from_flags_then_session_then_config_then_defaults(home):
    write_config(home, "[preferences]\nhistory_limit = 7\nautosave = 11\nedit_mode = \"emacs\"\n")
    child = start("--vi")
    child.sendline(":set history_limit 3")
    child.screen.expect("history_limit = 3")
    child.sendline(":set")
    child.screen.expect(r"edit_mode\s+.\s+vi\s+.\s+command line")
    child.screen.expect(r"history_limit\s+.\s+3\s+.\s+session")
    child.screen.expect(r"autosave\s+.\s+11\s+.\s+config file")
    child.screen.expect(r"heartbeat\s+.\s+5\s+.\s+default")
    leave(child)
    listed = run_stui("config").stdout
    assert re.search(r"autosave\s+11\s+config file", listed) and re.search(r"toolbar\s+on\s+default", listed)


def test_a_bad_configuration_value_is_one_line_and_the_default_is_used(home):
    path = write_config(home, "[preferences]\nedit_mode = \"sideways\"\nautosave = 5\n")
    result = run_stui("config")
    assert f'{path}, [preferences]: edit_mode must be "emacs" or "vi", not "sideways"; using the default' in result.stderr
    assert re.search(r"edit_mode\s+emacs\s+default", result.stdout) and re.search(r"autosave\s+5\s+config file", result.stdout)
    write_config(home, "[preferences\nbroken")
    result = run_stui("-c", "3 + 4")
    assert result.stdout == "7\n" and "not valid TOML" in result.stderr and result.stderr.count("\n") == 1


def test_config_example_is_a_documented_file_of_the_defaults(home):
    example = run_stui("config", "--example").stdout
    assert "[preferences]" in example and "# history_limit = 10000" in example
    assert run_stui("config", "--path").stdout.strip() == str(home / "config" / "config.toml")


def test_no_color_and_its_flag_leave_colour_out(home):
    coloured = start(env={"NO_COLOR": ""})
    coloured.sendline("nil foo")
    coloured.screen.expect("does not understand")
    leave(coloured)
    assert COLOUR.search(coloured.screen.raw), "without NO_COLOR the error is red"
    for options in ({"env": {"NO_COLOR": "1"}}, {"args": ("--no-color",), "env": {"NO_COLOR": ""}}):
        child = start(*options.get("args", ()), env=options["env"])
        child.sendline("nil foo")
        child.screen.expect("does not understand")
        leave(child)
        assert not COLOUR.search(child.screen.raw), options


TALL_VALUE = "(1 to: 100) inject: '' into: [:text :i | text, 'line ', i printString, (String with: Character nl)]"


def test_a_tall_value_goes_through_the_pager_and_output_never_does(home, tmp_path):
    paged = tmp_path / "paged.txt"
    pager = script(tmp_path / "pager", f"cat >> {paged}\n")
    child = start(env={"PAGER": str(pager)})
    child.sendline(TALL_VALUE)
    child.screen.expect(r"String")
    child.screen.expect_exact(PROMPT)
    child.sendline("(1 to: 100) do: [:i | Transcript showCr: 'row ', i printString]")
    child.screen.expect("row 100")  # streamed as it is written: never paged
    child.sendline("3 + 4")
    child.screen.expect(r"7\s+SmallInteger")
    leave(child)
    text = paged.read_text()
    assert "line 1\n" in text and "line 100\n" in text
    assert "row" not in text and "7" not in text.split("line 100")[-1].split()
    child = start("--session", "nopager", env={"PAGER": str(pager)})
    paged.unlink()
    child.sendline(":set pager off")
    child.screen.expect("pager = off")
    child.sendline(TALL_VALUE)
    child.screen.expect("line 100")
    leave(child)
    assert not paged.exists()


def test_ctrl_x_ctrl_e_edits_the_input_in_the_editor(home, tmp_path):
    editor = script(tmp_path / "editor", 'printf "6 * 7" > "$1"\n')
    child = start(env={"EDITOR": str(editor), "VISUAL": str(editor)})
    child.send("1 + ")
    child.sendcontrol("x")
    child.sendcontrol("e")
    child.screen.expect(r"42\s+SmallInteger")
    leave(child)


def test_debug_shows_the_wire_with_secrets_masked(home, shared_image):
    done = run_stui("--debug", "--connect", shared_image.address, "-c", "3 + 4", env={"STUI_TOKEN": shared_image.token})
    assert done.stdout == "7\n"
    assert '> {"op": "hello"' in done.stderr and '"op": "script"' in done.stderr and '"value": "7"' in done.stderr
    assert shared_image.token not in done.stderr and '"token": "********"' in done.stderr
    child = start("--debug")
    child.sendline(":secret pin")
    child.screen.expect("not shown")
    child.sendline("s3cret-pin-1234")
    child.screen.expect("holds a secret")
    child.sendline("Transcript showCr: pin. pin size")
    child.screen.expect(r"15\s+SmallInteger")
    leave(child)
    assert '"action": "secret", "name": "pin", "value": "********"' in child.screen.text
    assert "s3cret-pin-1234" not in child.screen.text


def test_errors_go_to_stderr(home):
    result = run_stui("-c", "nil foo")
    assert result.stdout == "" and "does not understand #foo" in result.stderr


def test_a_pager_that_cannot_run_still_shows_the_result(home):
    child = start(env={"PAGER": "no-such-pager-anywhere"})
    child.sendline(TALL_VALUE)
    child.screen.expect("could not be run; showing the result here")
    child.screen.expect("line 100")
    leave(child)
