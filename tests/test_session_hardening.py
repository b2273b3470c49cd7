"""Sessions under abuse, with real stui processes and real images: bad
values and dates in hand-edited files, restores too large for one line or
that never end, an image killed under a script, a full disk.

Each failure here once lost work or stopped stui (issue 11, "Work lost").
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pexpect
import pytest
from conftest import ROOT, run_stui, spawn_stui
from test_faults import gst_child_of
from test_repl import ANSI, PROMPT, Screen, type_line
from test_sessions import quit_repl, said_at_start, session_file

pytestmark = pytest.mark.usefixtures("server_image")


def write_session(home: Path, name: str, text: str) -> Path:
    path = session_file(home, name)
    for directory in (path.parent.parent, path.parent):  # private, as stui makes them
        directory.mkdir(exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return path


def saved_variables(home: Path, name: str) -> dict:
    return tomllib.loads(session_file(home, name).read_text()).get("variables", {})


def no_internal_error(result: subprocess.CompletedProcess) -> None:
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


# -- a date beyond UTC's range (item 11) -------------------------------------------------


def test_a_date_out_of_range_in_one_file_lists_and_shows_every_session(home):
    write_session(home, "ancient", "format = 1\n[session]\ncreated = 0001-01-01T00:00:00+14:00\n")
    write_session(home, "future", "format = 1\n[variables.x]\nstore = '1'\nchanged = 9999-12-31T23:59:59-14:00\n")
    assert run_stui("--session", "plain", "-c", "y := 2").returncode == 0

    listed = run_stui("session", "list")
    no_internal_error(listed)
    assert listed.returncode == 0
    assert re.findall(r"(?m)^(ancient|future|plain)\b", listed.stdout) == ["ancient", "future", "plain"]
    for name in ("ancient", "future", "plain"):
        shown = run_stui("session", "show", name)
        no_internal_error(shown)
        assert shown.returncode == 0 and f"{name}.toml" in shown.stdout
    assert "0001-01-01T00:00:00.000Z" in run_stui("session", "show", "ancient").stdout

    opened = run_stui("--session", "future", "-c", "x + 1")
    no_internal_error(opened)
    assert opened.stdout.strip() == "2"
    assert saved_variables(home, "future")["x"]["changed"].year == 9999


# -- a bad preference (item 5) -------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.5", "nan", "inf", "2024-01-01", "0001-01-01T00:00:00+14:00"])
def test_a_bad_preference_is_reported_and_every_save_still_happens(home, value):
    # A comment of the person's own: the file is rewritten keeping it (tomlkit), the harder path.
    write_session(home, "prefs", f"# my settings\nformat = 1\n[preferences]\nautosave = {value}\n")
    result = run_stui("--session", "prefs", "-c", "x := 3")
    no_internal_error(result)
    assert result.returncode == 0
    assert re.search(r"autosave must be a whole number .*; using the default", result.stderr)
    assert "x" in saved_variables(home, "prefs")
    result = run_stui("--session", "prefs", "-c", "y := x + 1")
    assert result.returncode == 0 and result.stdout.strip() == "4"
    text = session_file(home, "prefs").read_text()
    assert "# my settings" in text and "autosave = " in text  # kept as the person wrote it, to be fixed by them
    assert {"x", "y"} <= set(saved_variables(home, "prefs"))


def test_session_save_at_the_prompt_survives_a_bad_preference(home):
    write_session(home, "default", "# mine\nformat = 1\n[preferences]\nautosave = 0001-01-01T00:00:00+14:00\n")
    child = spawn_stui()
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    said_at_start(child, "autosave must be a whole number")
    type_line(child, "x := 6 * 7", "42")
    type_line(child, ":session save", "saved session default")
    type_line(child, "x + 1", "43")
    assert quit_repl(child) == 0
    assert "x" in saved_variables(home, "default")


# -- a restore too large for one line (item 6) -------------------------------------------------


def test_a_restore_larger_than_the_line_limit_opens_in_pieces_and_skips_what_cannot_fit(home):
    piece = 3 << 19  # 1.5 MiB: three of them are more than the image takes in one line
    lines = ["format = 1"]
    for i, letter in enumerate("abc"):
        lines.append(f"[variables.v{i}]\nsource = \"v{i} := '{letter * piece}' size\"")
    lines.append(f"[variables.huge]\nstore = \"'{'z' * (5 << 20)}'\"")  # alone more than a line
    lines.append("[variables.after]\nstore = \"42\"")
    write_session(home, "big", "\n".join(lines) + "\n")

    result = run_stui("--session", "big", "-c", "v0 + v1 + v2 + after", timeout=180)
    no_internal_error(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(3 * piece + 42)
    notices = [line for line in result.stderr.splitlines() if "could not restore" in line]
    assert len(notices) == 1, result.stderr
    assert re.search(r"restored 4 of 5 variables; could not restore huge: too large to send to the image \(5\.0 MiB", notices[0])
    assert "huge" in saved_variables(home, "big")  # kept, for an image that takes it


# -- a restore that never ends (item 10) ---------------------------------------------------------


def test_a_recipe_that_never_ends_is_stopped_reported_and_kept(home):
    write_session(home, "hangs", """format = 1
[preferences]
restore_timeout = 1
[variables.a]
store = '1'
[variables.spin]
source = "spin := [true] whileTrue"
[variables.b]
store = '2'
[variables.chatty]
source = "chatty := [true] whileTrue: [Transcript show: 'x']"
[variables.c]
store = '3'
""")
    started = time.monotonic()
    result = run_stui("--session", "hangs", "-c", "a + b + c", timeout=60)
    took = time.monotonic() - started
    no_internal_error(result)
    assert result.returncode == 0 and result.stdout.strip() == "6"
    assert took < 20, f"opening took {took:.1f} s"
    notices = [line for line in result.stderr.splitlines() if line.startswith("stui: ")]
    assert len(notices) == 1, result.stderr
    assert re.search(r"restored 3 of 5 variables; could not restore spin: took longer than 1 s.*; chatty: took longer", notices[0])
    kept = saved_variables(home, "hangs")
    assert kept["spin"]["source"] == "spin := [true] whileTrue" and "chatty" in kept


# -- an image that dies under a script (item 8) ------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True], ids=["values", "quiet"])
@pytest.mark.parametrize("how", ["image killed", "stui terminated"])
def test_what_a_script_assigned_before_it_was_cut_short_is_saved(home, how, quiet):
    """Each statement's result says it completed. Quiet, the server would
    run up to 200 statements as one and say so only when the run ends; a
    session asks it to keep assignments apart."""
    count = 170
    script = "".join(f"v{i} := {i}.\n" for i in range(1, count + 1))
    if quiet:
        script += "v170 printNl.\n"  # shows that the assignments are done
    script += "(Delay forSeconds: 60) wait.\n"
    stui = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "--session", "cut", *(["-q"] if quiet else [])],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stui.stdin.write(script)  # read whole before the image starts
    stui.stdin.close()
    gst = gst_child_of(stui.pid)
    for i in ([count] if quiet else range(1, count + 1)):
        assert stui.stdout.readline() == f"{i}\n"
    if how == "image killed":
        os.kill(gst, signal.SIGKILL)
    else:
        os.kill(stui.pid, signal.SIGTERM)
    err = stui.stderr.read()
    stui.wait(timeout=30)
    assert stui.returncode == (3 if how == "image killed" else 128 + signal.SIGTERM), err
    assert "Traceback" not in err
    variables = saved_variables(home, "cut")
    assert set(variables) == {f"v{i}" for i in range(1, count + 1)}
    result = run_stui("--session", "cut", "-c", f"v1 + v{count}")
    assert result.returncode == 0 and result.stdout.strip() == str(1 + count), result.stderr


# -- a full disk (item 9) --------------------------------------------------------------------------


def in_full_state_directory(home: Path, commands: str) -> subprocess.CompletedProcess:
    """Run shell commands with stui's state directory on a small tmpfs of
    their own (a private mount namespace: nothing to unmount afterwards).
    FILL fills it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a small file system")
    state = home / "state"
    state.mkdir(exist_ok=True)
    script = (
        f"mount -t tmpfs -o size=256k,mode=0700 tmpfs '{state}' || exit 99\n"
        f"FILL='dd if=/dev/zero of={state}/filler bs=4k status=none 2>/dev/null; true'\n"
        f"{commands}\n"
    )
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    return result


def test_a_full_disk_fails_the_save_with_one_line_and_leaves_no_temporary_file(home):
    stui = f"'{sys.executable}' -m stui_repl"
    sessions = home / "state" / "sessions"
    result = in_full_state_directory(home, "\n".join([
        f"{stui} --session f -c 'x := 1' >/dev/null || exit 98",
        "eval \"$FILL\"",
        f"{stui} --session f -c 'y := 2' 2>stderr.txt; echo \"status $?\"",
        "cat stderr.txt >&2; rm -f stderr.txt",
        f"ls -A '{sessions}'",
        f"cat '{sessions}/f.toml'",
    ]))
    assert result.returncode == 0, result.stderr
    status = re.search(r"status (\d+)", result.stdout)
    assert status and status.group(1) != "0", result.stdout
    assert result.stderr == "stui: cannot save session f: No space left on device\n"
    listing = result.stdout.split("\n", 1)[1]
    assert ".tmp-" not in listing and ".bak-" not in listing, listing
    assert "[variables.x]" in listing  # the file on disk is the last good save


def test_at_the_prompt_a_full_disk_is_one_line_and_the_repl_goes_on(home):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a small file system")
    state = home / "state"
    state.mkdir(exist_ok=True)
    stui = f"'{sys.executable}' -m stui_repl"
    script = (
        f"mount -t tmpfs -o size=256k,mode=0700 tmpfs '{state}' || exit 99\n"
        f"{stui} --session f -c 'x := 1' >/dev/null || exit 98\n"
        f"dd if=/dev/zero of='{state}/filler' bs=4k status=none 2>/dev/null\n"
        f"exec {stui} --session f\n"
    )
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "NO_COLOR": "1", "COLUMNS": "120"}
    child = pexpect.spawn("unshare", ["--mount", "sh", "-c", script], cwd=str(ROOT), env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    type_line(child, ":set autosave 1", "autosave = 1")
    time.sleep(1.2)
    type_line(child, "y := 2", r"cannot save session f: No space left on device; trying again in 1 s")
    type_line(child, ":session save", "cannot save session f: No space left on device")
    type_line(child, "x + y", "3")  # still here, workspace intact
    child.sendline(":quit")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 1
    assert ANSI.sub("", child.before).count("cannot save session f") == 1
