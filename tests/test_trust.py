"""StrictModes: stui runs or trusts no file that someone else could have written.

Real stui processes on real files. Files of another user are made as root
(chown to uid 12345); the tests that need one are skipped otherwise. What a
refusal must do: one line naming the path and the fix, exit status 4, and
nothing of the refused file used (a session's recipe that would leave a
mark leaves none).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _REAL_CACHE, ROOT, run_stui

from stui_repl import paths, trust
from stui_repl.errors import EXIT_UNTRUSTED, Untrusted
from stui_repl.image import gst
from stui_repl.locks import exclusive

OTHER = 12345
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="a file of another user can only be made as root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def refused(done: subprocess.CompletedProcess, path: Path, why: str) -> None:
    """One line on stderr naming `path` and why, exit status 4, nothing on stdout."""
    assert done.returncode == EXIT_UNTRUSTED, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("stui: refusing ") and f" {path}: " in lines[0] and why in lines[0], lines[0]
    assert done.stdout == ""


def private(path: Path) -> Path:
    """A directory made as stui makes them (0700, parents too), so that no
    test but the one about tightening hears about loose ones."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
    return path


def fake_stat(uid: int, mode_bits: int, kind: int = stat.S_IFREG) -> os.stat_result:
    return os.stat_result((kind | mode_bits, 0, 0, 1, uid, 0, 0, 0, 0, 0))


# -- the rule itself (pure) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uid", "bits", "secret", "why"),
    [
        (1000, 0o600, False, None),
        (1000, 0o644, False, None),
        (1000, 0o755, False, None),
        (0, 0o644, False, None),  # root's: root can change anything anyway
        (1000, 0o664, False, "writable by group (mode 0664)"),
        (1000, 0o646, False, "writable by others (mode 0646)"),
        (1000, 0o666, False, "writable by group and others (mode 0666)"),
        (OTHER, 0o600, False, f"owned by uid {OTHER}, not by you (uid 1000)"),
        (1000, 0o600, True, None),
        (1000, 0o640, True, "readable by group (mode 0640)"),
        (1000, 0o644, True, "readable by group and others (mode 0644)"),
        (1000, 0o620, True, "writable by group (mode 0620)"),
    ],
)
def test_what_may_be_trusted(uid: int, bits: int, secret: bool, why: str | None) -> None:
    assert trust.problem(fake_stat(uid, bits), secret=secret, uid=1000) == why


def test_as_root_the_owner_still_decides() -> None:
    """access() would allow root everything: the rule never asks it."""
    assert trust.problem(fake_stat(OTHER, 0o600), uid=0) == f"owned by uid {OTHER}, not by you (uid 0)"


# -- making, checking and tightening directories ----------------------------------------------


def test_stui_makes_its_directories_private_parents_too(home: Path) -> None:
    assert trust.private_dir(paths.sessions_dir())
    assert mode(home / "state") == 0o700 and mode(paths.sessions_dir()) == 0o700
    assert not trust.private_dir(paths.config_dir(), create=False)
    assert not paths.config_dir().exists()


def test_the_provisioned_gst_is_one_of_stuis_own_directories() -> None:
    assert gst.install_dir() in paths.own_directories()


def test_directories_an_older_stui_left_open_are_tightened_all_at_once(home: Path) -> None:
    for directory in (home / "state", home / "state" / "sessions", home / "config"):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o755)
    (home / "state" / "sessions").chmod(0o777)
    first = run_stui("session", "list")
    assert first.returncode == 0, first.stderr
    told = [line for line in first.stderr.splitlines() if "private" in line]
    assert len(told) == 1, first.stderr
    for directory, was in ((home / "state", "0755"), (home / "state" / "sessions", "0777"), (home / "config", "0755")):
        assert mode(directory) == 0o700
        assert f"{directory} (was {was})" in told[0]
    again = run_stui("session", "list")
    assert again.returncode == 0 and "private" not in again.stderr


@as_root
def test_a_directory_of_another_user_is_refused_not_tightened(home: Path) -> None:
    sessions = private(home / "state" / "sessions")
    sessions.chmod(0o777)
    os.chown(sessions, OTHER, OTHER)
    refused(run_stui("--session", "work", "-c", "1"), sessions, f"owned by uid {OTHER}")
    assert mode(sessions) == 0o777


def test_a_file_where_stui_keeps_a_directory_is_refused(home: Path) -> None:
    private(home / "state")
    (home / "state" / "sessions").write_text("not a directory")
    done = run_stui("--session", "work", "-c", "1")
    assert done.returncode == EXIT_UNTRUSTED and "not one; move it away" in done.stderr


# -- session files ---------------------------------------------------------------------------------


def planted_session(home: Path, name: str, marker: Path) -> Path:
    """A session whose opening would leave `marker` behind: its recipe runs a shell command."""
    sessions = private(home / "state" / "sessions")
    path = sessions / f"{name}.toml"
    path.write_text(
        "format = 1\n\n[variables.x]\n"
        f"store = \"(Smalltalk system: 'touch {marker}') printString\"\n"
    )
    return path


@as_root
def test_a_session_file_of_another_user_is_refused_and_its_recipes_never_run(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = planted_session(home, "planted", marker)
    path.chmod(0o600)
    os.chown(path, OTHER, OTHER)
    done = run_stui("--session", "planted", "-c", "x")
    refused(done, path, f"owned by uid {OTHER}, not by you (uid 0)")
    assert "remove it, or make it yours (chown)" in done.stderr
    assert not marker.exists()
    # Its backup is no way round: the session file itself is refused, not moved aside.
    assert path.exists() and not list(path.parent.glob("*.corrupt-*"))


def test_a_session_file_others_may_write_is_refused(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = planted_session(home, "open", marker)
    path.chmod(0o666)
    done = run_stui("--session", "open", "-c", "x")
    refused(done, path, "writable by group and others (mode 0666)")
    assert f"run: chmod go-w {path}" in done.stderr
    assert not marker.exists()
    path.chmod(0o644)  # readable is fine: a session file holds no plain secret
    assert run_stui("--session", "open", "-c", "x").returncode == 0
    assert marker.exists()  # the proof that the recipe would have run


def test_a_session_backup_others_may_write_is_refused(home: Path, tmp_path: Path) -> None:
    path = planted_session(home, "b", tmp_path / "ran")
    path.rename(path.with_name("b.toml.bak"))
    path.with_name("b.toml.bak").chmod(0o606)
    refused(run_stui("--session", "b", "-c", "1"), path.with_name("b.toml.bak"), "writable by others")


@as_root
def test_session_list_shows_a_refused_session_and_delete_removes_it(home: Path, tmp_path: Path) -> None:
    assert run_stui("--session", "mine", "-c", "y := 2").returncode == 0
    path = planted_session(home, "planted", tmp_path / "ran")
    os.chown(path, OTHER, OTHER)
    done = run_stui("session", "list")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert f"refused: owned by uid {OTHER}" in rows["planted"]
    assert "saved" in rows["mine"]
    # Removing it, the fix the refusal names, needs no trust in what it holds.
    assert run_stui("session", "delete", "planted", "--yes").returncode == 0
    assert not path.exists()


# -- the lock file ---------------------------------------------------------------------------------


def test_a_lock_file_that_is_a_symlink_is_refused_not_followed(home: Path, tmp_path: Path) -> None:
    sessions = private(home / "state" / "sessions")
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (sessions / ".work.lock").symlink_to(target)
    done = run_stui("--session", "work", "-c", "1")
    refused(done, sessions / ".work.lock", "it is a symbolic link, which stui does not follow")
    assert target.read_text() == "untouched"


@as_root
def test_a_lock_file_of_another_user_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / ".x.lock"
    lock.touch(mode=0o600)
    os.chown(lock, OTHER, OTHER)
    with pytest.raises(Untrusted, match=f"refusing the lock file {lock}: owned by uid {OTHER}"), exclusive(lock):
        pass


# -- the configuration file, the key, the token file ------------------------------------------------


def test_a_configuration_file_others_may_write_is_refused(home: Path) -> None:
    (home / "config").mkdir(mode=0o700)
    config = home / "config" / "config.toml"
    config.write_text("[preferences]\npager = 'off'\n")
    config.chmod(0o646)
    refused(run_stui("-c", "1"), config, "writable by others (mode 0646)")
    config.chmod(0o644)
    done = run_stui("-c", "1")
    assert done.returncode == 0 and done.stderr == ""


def test_a_key_file_others_may_read_is_refused_before_any_secret_is_opened(home: Path) -> None:
    from stui_repl.session.vault import open_vault, secret_field

    sealed = open_vault().encrypt("hunter2", session="s", field=secret_field("pw"))
    key = home / "config" / "key"
    key.chmod(0o644)
    sessions = private(home / "state" / "sessions")
    (sessions / "s.toml").write_text(f'format = 1\n\n[variables.pw]\nsecret = "{sealed}"\n')
    refused(run_stui("--session", "s", "-c", "1"), key, "readable by group and others (mode 0644)")


def test_a_token_file_others_may_read_is_refused(home: Path, shared_image, tmp_path: Path) -> None:
    """Whoever reads the token runs code as you: a token file is 0600, like an ssh key."""
    token_file = tmp_path / "token"
    token_file.write_text(shared_image.token + "\n")
    token_file.chmod(0o644)
    done = run_stui("--connect", shared_image.address, "--token-file", str(token_file), "-c", "3 + 4")
    refused(done, token_file, "readable by group and others (mode 0644)")
    assert f"run: chmod 600 {token_file}" in done.stderr
    token_file.chmod(0o600)
    done = run_stui("--connect", shared_image.address, "--token-file", str(token_file), "-c", "3 + 4")
    assert done.returncode == 0 and done.stdout.strip() == "7", done.stderr


def test_stui_serve_refuses_a_token_file_others_may_read(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("0123456789abcdef0123456789abcdef\n")
    token_file.chmod(0o640)
    refused(run_stui("serve", "--token-file", str(token_file)), token_file, "readable by group (mode 0640)")


def test_the_token_file_stui_serve_makes_is_private(home: Path) -> None:
    serving = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "serve"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert serving.stdout is not None and serving.stdout.readline().strip()
    finally:
        serving.terminate()
        serving.wait(60)
    assert mode(home / "config") == 0o700 and mode(home / "config" / "token") == 0o600


# -- the server image and the provisioned gst ------------------------------------------------------


def test_a_server_image_others_may_write_is_refused(own_cache: Path, server_image: Path) -> None:
    copy = own_cache / "images" / server_image.name
    copy.chmod(0o664)
    refused(run_stui("-c", "3 + 4"), copy, "writable by group (mode 0664)")
    copy.chmod(0o600)
    assert run_stui("-c", "3 + 4").stdout.strip() == "7"


@as_root
def test_a_server_image_of_another_user_is_refused(own_cache: Path, server_image: Path) -> None:
    copy = own_cache / "images" / server_image.name
    os.chown(copy, OTHER, OTHER)
    refused(run_stui("-c", "3 + 4"), copy, f"owned by uid {OTHER}")


@as_root
def test_a_provisioned_gst_of_another_user_is_refused(home: Path) -> None:
    (home / "cache").unlink()
    installed = private(home / "cache" / "gst-3.2.5")
    os.chown(installed, OTHER, OTHER)
    done = run_stui("setup", env={"PATH": "/usr/bin:/bin", "STUI_GST": ""})
    refused(done, installed, f"owned by uid {OTHER}")


def fake_install(directory: Path) -> Path:
    """A provisioned gst's layout, with a gst and an image that are only files."""
    (directory / "root" / "usr" / "bin").mkdir(parents=True)
    (directory / "image").mkdir()
    (directory / "root" / "usr" / "bin" / "gst").write_text("#!/bin/sh\n")
    (directory / "image" / "gst.im").write_text("")
    (directory / "manifest.json").write_text(
        '{"format": 1, "version": "3.2.5", "gst": "root/usr/bin/gst", "image_dir": "image",'
        ' "kernel_dir": "root/usr/share/gnu-smalltalk/kernel", "library_dirs": []}'
    )
    return directory


@pytest.mark.parametrize("part", ["root/usr/bin/gst", "image/gst.im", "manifest.json"])
def test_a_provisioned_gst_others_may_change_is_refused(tmp_path: Path, part: str) -> None:
    installed = fake_install(tmp_path / "gst-3.2.5")
    installed.chmod(0o700)
    assert gst.load_install(installed) is not None
    (installed / part).chmod(0o666)
    with pytest.raises(Untrusted, match=f"{installed / part}: writable by group and others"):
        gst.load_install(installed)


def test_an_open_provisioned_gst_of_yours_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0700 protects the whole tree: nobody else can reach its files."""
    told: list[str] = []
    monkeypatch.setattr(trust, "tell", told.append)
    installed = fake_install(tmp_path / "gst-3.2.5")
    installed.chmod(0o755)
    assert gst.load_install(installed) is not None
    assert mode(installed) == 0o700
    assert len(told) == 1 and f"{installed} (was 0755)" in told[0]


def test_the_real_provisioned_gst_passes() -> None:
    """The tree the test suite itself runs."""
    installed = (_REAL_CACHE / "gst-3.2.5").resolve()
    if not installed.is_dir():
        pytest.skip("gst is not provisioned in the cache")
    assert mode(installed) == 0o700
    assert gst.load_install(installed) is not None


def test_the_note_of_defects_told_is_private_too(home: Path) -> None:
    from stui_repl.client import wire
    from stui_repl.modes.repl import first_meeting

    info = wire.ServerInfo.from_reply({"dialect": "gst", "version": "GNU Smalltalk 3.2.5", "imageId": "i", "workspace": "w"})
    assert first_meeting(info) and not first_meeting(info)
    assert mode(home / "state") == 0o700 and mode(home / "state" / "noted-defects") == 0o600
