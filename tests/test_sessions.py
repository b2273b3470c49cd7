"""Sessions end to end: real stui processes on real gst images.

Each test gets a home of its own (sessions, keys), sharing only the cache of
provisioned gst and server images.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pexpect
import pytest
from conftest import run_stui, spawn_stui
from test_repl import PROMPT, Screen, type_line

from stui_repl.session import toml as session_format

pytestmark = pytest.mark.usefixtures("server_image")


def session_file(home: Path, name: str = "default") -> Path:
    return home / "state" / "sessions" / f"{name}.toml"


def start(*args: str) -> pexpect.spawn:
    child = spawn_stui(*args)
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    return child


def said_at_start(child: pexpect.spawn, pattern: str) -> None:
    """What stui printed before its first prompt (start() has read past it)."""
    assert re.search(pattern, child.screen.text), child.screen.text


def set_secret(child: pexpect.spawn, name: str, value: str) -> None:
    child.sendline(f":secret {name}")
    child.screen.expect("not shown")
    child.sendline(value)
    child.screen.expect("holds a secret")
    child.screen.expect_exact(PROMPT)


def quit_repl(child: pexpect.spawn) -> int:
    child.sendline(":quit")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    return child.exitstatus


def every_file_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "cache" not in p.relative_to(root).parts[:1]]


def test_variables_and_history_come_back_in_a_new_image(home):
    child = start()
    type_line(child, "x := 3 + 4", r"7\s+SmallInteger")
    type_line(child, "host := 'db.example:5432'", "db.example")
    type_line(child, "thing := Object new", "an Object")
    assert quit_repl(child) == 0

    data = tomllib.loads(session_file(home).read_text())
    assert data["variables"]["x"]["store"] == "7"
    assert data["variables"]["thing"]["source"] == "thing := Object new"
    assert "host := 'db.example:5432'" in data["history"]["entries"]

    child = start()
    said_at_start(child, "restored 3 variables")
    type_line(child, "x + 1", r"8\s+SmallInteger")
    type_line(child, "host size", "15")
    type_line(child, "thing class", "Object")
    child.send("\x1b[A")  # Up: the last input comes back
    child.screen.expect_exact("thing class")
    child.sendline("")
    child.screen.expect("Object")
    assert quit_repl(child) == 0


def test_ctrl_r_searches_the_saved_history(home):
    child = start()
    type_line(child, "alpha := 11", "11")
    type_line(child, "beta := 22", "22")
    assert quit_repl(child) == 0
    child = start()
    child.sendcontrol("r")
    child.send("alpha")
    child.screen.expect_exact("alpha := 11")
    child.sendline("")  # accept the search, then run it
    child.sendline("")
    child.screen.expect(r"11\s+SmallInteger")
    assert quit_repl(child) == 0


def test_switching_between_sessions_keeps_each_workspace(home):
    child = start()
    type_line(child, "x := 1", "1")
    type_line(child, ":session new work", "new session work")
    type_line(child, "x := 2", "2")
    type_line(child, "y := 5", "5")
    type_line(child, ":session switch default", "session default")
    type_line(child, "x", r"1\s+SmallInteger")
    type_line(child, "y", r"nil\s+UndefinedObject")  # as under gst: an undeclared variable is nil
    type_line(child, ":session switch work", "session work")
    type_line(child, "x + y", r"7\s+SmallInteger")
    type_line(child, ":session list", "work")
    assert quit_repl(child) == 0
    assert set(tomllib.loads(session_file(home, "work").read_text())["variables"]) == {"x", "y"}
    assert set(tomllib.loads(session_file(home).read_text())["variables"]) == {"x"}


def test_a_secret_works_in_code_and_is_never_in_plain_text(home):
    child = start()
    set_secret(child, "dbPass", "hunter2-very-secret")
    type_line(child, "dbPass size", r"19\s+SmallInteger")
    type_line(child, "dbPass = 'hunter2-very-secret'", "true")
    type_line(child, "dbPass printNl", r"\*{8}")
    type_line(child, "Transcript showCr: 'pw=', dbPass", r"pw=\*{8}")
    type_line(child, "header := 'Bearer ', dbPass", r"'Bearer \*{8}'")
    type_line(child, ":vars", "secret")
    assert quit_repl(child) == 0

    child = start()
    said_at_start(child, "restored 2 variables")
    type_line(child, "dbPass reverse = 'terces-yrev-2retnuh'", "true")
    type_line(child, "header size", "26")
    assert quit_repl(child) == 0

    # The value was typed on the terminal only where it was not echoed.
    assert "hunter2" not in child.screen.text
    for path in every_file_under(home):
        assert b"hunter2" not in path.read_bytes(), path
    data = tomllib.loads(session_file(home).read_text())
    assert data["variables"]["dbPass"]["secret"].startswith("stui-aead1:")
    assert (home / "config" / "key").stat().st_mode & 0o777 == 0o600


def test_a_wrong_key_locks_secrets_but_loses_nothing(home):
    child = start()
    set_secret(child, "token", "s3cr3t-value")
    type_line(child, "n := 42", "42")
    assert quit_repl(child) == 0
    sealed = tomllib.loads(session_file(home).read_text())["variables"]["token"]["secret"]

    key = home / "config" / "key"
    key.rename(home / "config" / "key.saved")
    child = start()
    said_at_start(child, "secret token is locked")
    type_line(child, "n", "42")
    type_line(child, "m := 1", "1")
    assert quit_repl(child) == 0
    after = tomllib.loads(session_file(home).read_text())
    assert after["variables"]["token"]["secret"] == sealed  # not overwritten
    assert "m" in after["variables"]

    (home / "config" / "key.saved").replace(key)
    child = start()
    type_line(child, "token size", "12")
    assert quit_repl(child) == 0


def test_a_corrupt_session_file_is_moved_aside_and_stui_still_starts(home):
    path = session_file(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00\xffnot toml at all [[[")
    child = start()
    said_at_start(child, r"unreadable .*moved it to default\.toml\.corrupt-")
    type_line(child, "1 + 1", "2")
    assert quit_repl(child) == 0
    corrupt = list(path.parent.glob("default.toml.corrupt-*"))
    assert len(corrupt) == 1 and corrupt[0].read_bytes() == b"\x00\xffnot toml at all [[["
    assert tomllib.loads(path.read_text())["format"] == session_format.FORMAT


def test_a_newer_format_is_refused_and_left_untouched(home):
    path = session_file(home)
    path.parent.mkdir(parents=True)
    path.write_text("format = 99\n[future]\nthing = 1\n")
    result = run_stui("--session", "default", "-c", "1")
    assert result.returncode == 2
    assert "newer stui" in result.stderr and "Traceback" not in result.stderr
    assert path.read_text() == "format = 99\n[future]\nthing = 1\n"


def test_two_processes_on_one_session_keep_both_histories(home):
    first, second = start(), start()
    for i in range(3):
        type_line(first, f"a{i} := {i}", str(i))
        type_line(second, f"b{i} := {i + 10}", str(i + 10))
    assert quit_repl(first) == 0
    assert quit_repl(second) == 0
    entries = tomllib.loads(session_file(home).read_text())["history"]["entries"]
    for i in range(3):
        assert f"a{i} := {i}" in entries and f"b{i} := {i + 10}" in entries
    variables = tomllib.loads(session_file(home).read_text())["variables"]
    assert {f"a{i}" for i in range(3)} | {f"b{i}" for i in range(3)} <= set(variables)


def test_unset_and_restore(home):
    child = start()
    type_line(child, "keep := 1", "1")
    type_line(child, "oops := 2", "2")
    type_line(child, ":session save", "saved session default")
    type_line(child, ":unset oops", "removed oops")
    type_line(child, "oops", r"nil\s+UndefinedObject")
    type_line(child, ":session restore", "restored 2 variables")
    type_line(child, "oops + keep", r"3\s+SmallInteger")
    assert quit_repl(child) == 0


def forget_the_code(home: Path, name: str = "default") -> None:
    """Take the session's code out of its file, as if the class came from elsewhere."""
    path = session_file(home, name)
    session = session_format.parse(path.read_text())
    session.code = []
    path.write_text(session_format.render(session))


def test_a_variable_that_cannot_be_restored_is_reported_and_kept(home):
    child = start()
    type_line(child, "Object subclass: Animal [ ]", "defined Animal")
    type_line(child, "pet := Animal new", "an Animal")
    type_line(child, "n := 5", "5")
    assert quit_repl(child) == 0
    forget_the_code(home)
    child = start()
    said_at_start(child, r"restored 1 of 2 variables; could not restore pet")
    type_line(child, "n", "5")
    assert quit_repl(child) == 0
    assert "pet" in tomllib.loads(session_file(home).read_text())["variables"]


def test_scripts_use_a_session_only_when_asked(home):
    assert run_stui("-c", "x := 5").returncode == 0
    assert not session_file(home).exists()

    result = run_stui("--session", "batch", "-c", "x := 5. y := x * 2")
    assert result.returncode == 0, result.stderr
    result = run_stui("--session", "batch", input="x + y\n")
    assert result.stdout.strip() == "15"
    data = tomllib.loads(session_file(home, "batch").read_text())
    assert set(data["variables"]) == {"x", "y"}
    assert data["history"]["entries"].strip() == ""  # piped input is not history


def test_set_keeps_a_preference_in_the_session(home):
    child = start()
    type_line(child, ":set history_limit 2", "history_limit = 2")
    type_line(child, ":set edit_mode sideways", "edit_mode must be emacs or vi")
    for i in range(4):
        type_line(child, f"{i} + {i}", str(2 * i))
    assert quit_repl(child) == 0
    data = tomllib.loads(session_file(home).read_text())
    assert data["preferences"] == {"history_limit": 2}
    assert len(data["history"]["entries"].strip().splitlines()) == 2


def test_session_commands_from_the_shell(home, tmp_path):
    assert run_stui("--session", "one", "-c", "v := 1").returncode == 0
    assert run_stui("session", "list", "--names").stdout.split() == ["one"]
    assert re.search(r"(?m)^v\s+SmallInteger\s+1\s+storeString", run_stui("session", "show", "one").stdout)

    assert run_stui("session", "rename", "one", "two").returncode == 0
    assert run_stui("session", "list", "--names").stdout.split() == ["two"]
    exported = run_stui("session", "export", "two").stdout
    (tmp_path / "copy.toml").write_text(exported)
    result = run_stui("session", "import", str(tmp_path / "copy.toml"), "--as", "three")
    assert result.returncode == 0, result.stderr
    assert run_stui("session", "import", str(tmp_path / "copy.toml"), "--as", "three").returncode == 2
    assert run_stui("--session", "three", input="v\n").stdout.strip() == "1"

    assert run_stui("session", "delete", "two").returncode == 2  # no terminal: needs --yes
    assert run_stui("session", "delete", "two", "--yes").returncode == 0
    assert run_stui("session", "list", "--names").stdout.split() == ["three"]
    listing = run_stui("session", "list").stdout
    assert "three" in listing and "variables" in listing


def test_key_rotation_keeps_secrets_usable(home):
    child = start("--session", "vault")
    set_secret(child, "pin", "1234-5678")
    assert quit_repl(child) == 0
    before = (home / "config" / "key").read_bytes()
    sealed_before = tomllib.loads(session_file(home, "vault").read_text())["variables"]["pin"]["secret"]

    result = run_stui("key", "rotate")
    assert result.returncode == 0, result.stderr
    assert "1 secret sealed again" in result.stdout
    assert (home / "config" / "key").read_bytes() != before
    sealed_after = tomllib.loads(session_file(home, "vault").read_text())["variables"]["pin"]["secret"]
    assert sealed_after != sealed_before and sealed_after.split(":")[1] != sealed_before.split(":")[1]
    assert run_stui("--session", "vault", input="pin size\n").stdout.strip() == "9"


def test_a_passphrase_protects_secrets_instead_of_a_key_file(home, monkeypatch):
    monkeypatch.setenv("STUI_PASSPHRASE", "correct horse")
    child = spawn_stui("--session", "pp")
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    set_secret(child, "api", "abc123")
    assert quit_repl(child) == 0
    assert not (home / "config" / "key").exists()
    assert run_stui("--session", "pp", input="api size\n").stdout.strip() == "6"
    result = run_stui("--session", "pp", input="api size\n", env={"STUI_PASSPHRASE": "wrong"})
    assert "locked" in result.stderr and "Traceback" not in result.stderr
    assert "abc123" not in result.stderr + result.stdout


def test_session_files_are_private(home):
    assert run_stui("--session", "p", "-c", "z := 1").returncode == 0
    directory = session_file(home, "p").parent
    assert directory.stat().st_mode & 0o777 == 0o700
    assert run_stui("--session", "p", "-c", "z := 2").returncode == 0
    for path in (session_file(home, "p"), directory / "p.toml.bak"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert not [p for p in os.listdir(directory) if ".tmp-" in p]


def test_tab_completes_session_subcommands_and_names(home):
    assert run_stui("--session", "workbench", "-c", "1").returncode == 0
    child = start()
    child.send(":session sw\t")
    child.screen.expect_exact(":session switch")
    child.send(" wo\t")
    child.screen.expect_exact("workbench")
    child.sendline("")
    child.screen.expect("session workbench")
    child.screen.expect_exact(PROMPT)
    assert quit_repl(child) == 0


def test_reconnect_brings_the_workspace_into_a_new_image(home):
    child = start()
    type_line(child, "coll := OrderedCollection new", "OrderedCollection")
    type_line(child, "coll add: 3; add: 4", "4")  # changed without an assignment
    type_line(child, ":session reconnect", "started a new embedded image; restored 1 variable")
    type_line(child, "coll size", r"2\s+SmallInteger")
    assert quit_repl(child) == 0


def test_a_variable_that_failed_to_restore_keeps_its_recipe_across_saves(home):
    child = start()
    type_line(child, "Object subclass: Gadget [ ]", "defined Gadget")
    type_line(child, "g := Gadget new", "a Gadget")
    assert quit_repl(child) == 0
    forget_the_code(home)
    for _ in range(2):  # each run restores nothing for g, saves, and must keep its source
        child = start()
        said_at_start(child, "could not restore g")
        assert quit_repl(child) == 0
        assert tomllib.loads(session_file(home).read_text())["variables"]["g"]["source"] == "g := Gadget new"


def test_a_script_keeps_variables_in_the_order_it_assigned_them(home):
    assert run_stui("--session", "order", "-c", "zz := Object new. aa := Array with: zz").returncode == 0
    result = run_stui("--session", "order", input="aa first == zz\n")
    assert result.stdout.strip() == "true", result.stderr


def test_a_failed_connect_is_not_remembered(home):
    result = run_stui("--session", "remote", "--connect", "127.0.0.1:1", "-c", "1", env={"STUI_TOKEN": "x"})
    assert result.returncode == 3
    assert run_stui("--session", "remote", "-c", "3 + 4").stdout.strip() == "7"  # still the embedded image


def test_session_show_describes_and_export_prints_the_file(home):
    assert run_stui("--session", "s", "-c", "answer := 42").returncode == 0
    shown = run_stui("session", "show", "s").stdout
    assert "answer" in shown and "storeString" in shown and "format =" not in shown
    assert run_stui("session", "export", "s").stdout.startswith("# A stui session")
    assert run_stui("session", "list", "--names", env={"STUI_HOME": str(home / "empty")}).stdout == ""


def test_a_session_remembers_its_remote_image_with_the_token_encrypted(home, shared_image, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(shared_image.token + "\n")
    token_file.chmod(0o600)  # a token file others may read is refused
    first = run_stui("--session", "remote", "--connect", shared_image.address, "--token-file", str(token_file),
                     "-c", "where := 'remote'")
    assert first.returncode == 0, first.stderr
    data = tomllib.loads(session_file(home, "remote").read_text())
    assert data["connection"]["address"] == shared_image.address
    assert data["connection"]["token"].startswith("stui-aead1:")
    assert data["connection"]["recent"][0]["address"] == shared_image.address
    # No --connect, no token: the session knows both.
    again = run_stui("--session", "remote", input="where , ' again'\n")
    assert again.stdout.strip() == "'remote again'", again.stderr
    for path in every_file_under(home):
        assert shared_image.token.encode() not in path.read_bytes(), path


def child_processes(pid: int) -> list[str]:
    """The command names of a process's children (Linux /proc)."""
    names = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                names.append((entry / "comm").read_text().strip())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return names


def test_a_prompt_on_a_remote_session_lets_the_early_embedded_image_go(home, shared_image, tmp_path):
    """The REPL starts the embedded image while prompt_toolkit loads; a
    session that remembers another image lets it go before the prompt."""
    token_file = tmp_path / "token"
    token_file.write_text(shared_image.token + "\n")
    token_file.chmod(0o600)
    first = run_stui("--session", "remote", "--connect", shared_image.address, "--token-file", str(token_file), "-c", "1")
    assert first.returncode == 0, first.stderr
    child = start("--session", "remote")
    try:
        assert "gst" not in child_processes(child.pid)
        type_line(child, "3 + 4", "7")
        assert quit_repl(child) == 0
    finally:
        child.close(force=True)
    embedded = start()  # the default session: the early image is the one used
    try:
        assert child_processes(embedded.pid).count("gst") == 1
        assert quit_repl(embedded) == 0
    finally:
        embedded.close(force=True)


def test_delete_asks_first_and_rename_of_the_current_session(home):
    assert run_stui("--session", "old", "-c", "1").returncode == 0
    child = start("--session", "keep")
    set_secret(child, "pin", "2468")
    child.sendline(":session delete keep")
    child.screen.expect("cannot delete the session in use")
    child.sendline(":session delete old")
    child.screen.expect(r"delete session old and its backup\? \[y/N\]")
    child.sendline("n")
    child.screen.expect("not deleted")
    child.sendline(":session delete old")
    child.screen.expect(r"\[y/N\]")
    child.sendline("y")
    child.screen.expect("deleted session old")
    type_line(child, ":session rename keep kept", "renamed session keep to kept")
    type_line(child, "pin size", "4")
    assert quit_repl(child) == 0
    assert run_stui("session", "list", "--names").stdout.split() == ["kept"]
    assert run_stui("--session", "kept", input="pin size\n").stdout.strip() == "4"


def test_connect_moves_a_session_and_its_variables_to_another_image(home, shared_image):
    child = start()
    type_line(child, "carried := 'along'", r"'along'\s+String")
    child.sendline(f":connect {shared_image.address}")
    child.screen.expect("token for")  # no STUI_TOKEN, no token file: stui asks
    child.sendline(shared_image.token)
    child.screen.expect(rf"now on {re.escape(shared_image.address)}; restored 1 variable")
    child.screen.expect_exact(PROMPT)
    type_line(child, "carried , '!'", r"'along!'\s+String")
    child.send(":connect 127")
    child.send("\t")
    child.screen.expect_exact(shared_image.address)
    child.sendcontrol("u")
    type_line(child, ":connect embedded", "now on embedded; restored 1 variable")
    type_line(child, ":connect", re.escape(shared_image.address))
    assert quit_repl(child) == 0
    assert shared_image.token not in child.screen.text  # asked for without echo
    for path in every_file_under(home):
        assert shared_image.token.encode() not in path.read_bytes(), path
