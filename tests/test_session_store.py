"""Session files on disk: atomic writes, backups, corrupt files, locking, merging saves."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stui_repl.errors import StuiError, UsageError
from stui_repl.session import toml as session_format
from stui_repl.session.model import ImageSeen, Session, timestamp
from stui_repl.session.store import SessionBusy, SessionFile, SessionStore, sessions_dir

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "sessions"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(session_format, "_edited", session_format._EditedHeads())
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> SessionStore:
    return SessionStore()


def at(second: int) -> str:
    return timestamp(datetime(2026, 11, 21, 10, 0, tzinfo=UTC) + timedelta(seconds=second))


def make_session(name: str = "demo", *inputs: str) -> Session:
    session = Session.new(name, "2026-11-21T10:00:00.000Z", "0.1.0")
    for index, text in enumerate(inputs):
        session.add_history(text, at(index), limit=10_000)
    return session


def save_text(store: SessionStore, name: str, *inputs: str) -> str:
    text = session_format.render(make_session(name, *inputs))
    store.write_text(name, text)
    return text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def corrupt_files(store: SessionStore, name: str = "demo") -> list[Path]:
    return sorted(store.directory.glob(f"{name}.toml.corrupt-*"))


# -- writing -------------------------------------------------------------------------


def test_the_store_lives_in_the_state_directory(home):
    assert SessionStore().directory == sessions_dir() == home.resolve() / "state" / "sessions"


def test_write_text_creates_a_private_file_in_a_private_directory(store):
    save_text(store, "demo", "a")
    assert mode(store.directory) == 0o700
    assert mode(store.path("demo")) == 0o600


def test_write_text_keeps_the_previous_version_as_a_private_backup(store):
    first = save_text(store, "demo", "a")
    second = save_text(store, "demo", "a", "b")
    assert store.path("demo").read_text() == second
    assert store.backup_path("demo").read_text() == first
    assert mode(store.backup_path("demo")) == 0o600


def test_the_first_write_makes_no_backup(store):
    save_text(store, "demo", "a")
    assert not store.backup_path("demo").exists()


def test_write_text_leaves_no_temporary_files(store):
    for count in range(3):
        save_text(store, "demo", *["x"] * count)
    assert sorted(p.name for p in store.directory.iterdir()) == ["demo.toml", "demo.toml.bak"]


def test_write_text_removes_stale_temporary_files_of_that_session_only(store):
    store.directory.mkdir(parents=True)
    stale = store.directory / ".demo.toml.tmp-999999"
    other = store.directory / ".other.toml.tmp-999999"
    stale.write_text("half a file")
    other.write_text("another session's")
    save_text(store, "demo", "a")
    assert not stale.exists()
    assert other.exists()


def test_write_text_removes_a_stale_staged_backup(store):
    save_text(store, "demo", "a")
    stale = store.directory / ".demo.toml.bak-999999"
    os.link(store.path("demo"), stale)
    save_text(store, "demo", "a", "b")
    assert not stale.exists()


def test_write_text_writes_everything_even_when_os_write_is_short(store, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:100]))
    text = save_text(store, "demo", *[f"input {i}" for i in range(50)])
    monkeypatch.undo()
    assert store.path("demo").read_text() == text


@pytest.mark.parametrize("failing", ["fsync", "link"])
def test_a_write_that_fails_leaves_the_file_as_it_was_and_nothing_half_written(store, monkeypatch, failing):
    before = save_text(store, "demo", "a")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, full)
    with pytest.raises(OSError):
        save_text(store, "demo", "a", "b")
    monkeypatch.undo()
    assert sorted(p.name for p in store.directory.iterdir()) == ["demo.toml"]
    assert store.path("demo").read_text() == before


def test_a_save_that_cannot_write_says_so_once(store, monkeypatch):
    file = SessionFile(store, "demo")
    file.load()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(StuiError) as raised:
        file.save(make_session("demo", "a"), history_limit=10)
    assert str(raised.value) == "cannot save session demo: No space left on device"


def test_delete_removes_file_backup_and_lock(store):
    save_text(store, "demo", "a")
    save_text(store, "demo", "b")
    with store.locked("demo"):
        pass
    store.delete("demo")
    assert list(store.directory.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x.toml", ""])
def test_an_invalid_name_is_a_usage_error(store, name):
    with pytest.raises(UsageError, match="is not a session name"):
        store.path(name)


# -- names and summaries -------------------------------------------------------------


def test_names_of_a_missing_directory_is_empty(store):
    assert store.names() == []


def test_names_ignore_backups_corrupt_files_locks_and_temporaries(store):
    save_text(store, "b", "x")
    save_text(store, "b", "y")
    save_text(store, "a", "x")
    for junk in ["a.toml.corrupt-20261121T100000", ".a.lock", ".a.toml.tmp-1", ".a.toml.bak-1", ".hidden.toml", "notes.txt"]:
        (store.directory / junk).write_text("junk")
    assert store.names() == ["a", "b"]


def test_summaries_of_good_corrupt_and_newer_files(store):
    session = make_session("good", "a", "b")
    session.image = ImageSeen("gst", "3.2.5", "id")
    session.record_variable("x", "2026-11-21T10:00:05.000Z", store="1")
    session.updated = "2026-11-21T10:30:00.000Z"
    store.write_text("good", session_format.render(session))
    store.directory.joinpath("bad.toml").write_bytes(b"\xff\xfe not text")
    store.directory.joinpath("broken.toml").write_text("format = \n")
    store.directory.joinpath("later.toml").write_text("format = 99\n")
    rows = {row.name: row for row in store.summaries()}
    assert (rows["good"].image, rows["good"].variables, rows["good"].history) == ("3.2.5 (embedded image)", 1, 2)
    assert (rows["good"].last_used, rows["good"].state) == ("2026-11-21 10:30:00", "saved")
    assert rows["bad"].state.startswith("unreadable") and rows["broken"].state.startswith("unreadable")
    assert rows["later"].state == "newer format"
    assert corrupt_files(store, "bad") == corrupt_files(store, "broken") == []  # listing moves nothing


# -- loading -------------------------------------------------------------------------


def test_load_of_a_missing_session_is_a_new_empty_one(store):
    loaded = store.load("fresh")
    assert (loaded.session.name, loaded.session.history, loaded.session.variables) == ("fresh", [], {})
    assert (loaded.text, loaded.notes) == (None, [])
    assert store.names() == []


def test_load_answers_the_session_and_its_text(store):
    text = save_text(store, "demo", "a", "b")
    loaded = store.load("demo")
    assert loaded.session.history_inputs() == ["a", "b"]
    assert (loaded.text, loaded.notes) == (text, [])


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_format_loads_from_the_store_without_notes(store, fixture):
    store.directory.mkdir(parents=True)
    store.path("shipped").write_bytes(fixture.read_bytes())
    loaded = store.load("shipped")
    assert loaded.notes == []
    assert loaded.text == fixture.read_text(encoding="utf-8")
    assert loaded.session.name == "shipped"


def test_load_names_the_session_after_its_file(store):
    store.write_text("demo", session_format.render(make_session("something-else", "a")))
    assert store.load("demo").session.name == "demo"


def truncated(text: str) -> str:
    half = text[: len(text) // 2]
    assert "entries = '''" in half  # cut inside the history string, so it cannot parse
    return half


CORRUPTIONS = {
    "bad toml": lambda good: b"format = 1\n[session\nname = 'x'\n",
    "binary junk": lambda good: bytes(range(256)) * 4,
    "not utf-8": lambda good: good.encode("utf-8").replace(b"format", b"\xff\xfeformat"),
    "truncated": lambda good: truncated(good).encode("utf-8"),
    "wrong types": lambda good: b"format = 1\n[variables.x]\norder = 'first'\n",
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupt_file_is_moved_aside_and_the_backup_used(store, kind):
    backup = save_text(store, "demo", "from the backup")
    good = save_text(store, "demo", *[f"input {i}" for i in range(40)])
    junk = CORRUPTIONS[kind](good)
    store.path("demo").write_bytes(junk)
    loaded = store.load("demo")
    assert loaded.session.history_inputs() == ["from the backup"]
    assert loaded.text is None
    assert len(loaded.notes) == 2
    assert "the session file of session demo is unreadable" in loaded.notes[0]
    assert "using its backup" in loaded.notes[1]
    [moved] = corrupt_files(store)
    assert moved.read_bytes() == junk
    assert moved.name in loaded.notes[0]
    assert mode(moved) == 0o600
    assert not store.path("demo").exists()
    assert store.backup_path("demo").read_text() == backup


def test_a_corrupt_file_without_a_backup_gives_an_empty_session_with_notes(store):
    store.directory.mkdir(parents=True)
    store.path("demo").write_text("format = ")
    loaded = store.load("demo")
    assert loaded.session.history == [] and loaded.text is None
    assert [n.split(" ")[0] for n in loaded.notes] == ["the", "session"]
    assert loaded.notes[-1] == "session demo: starting empty"
    assert len(corrupt_files(store)) == 1


def test_corrupt_files_are_never_overwritten(store):
    store.directory.mkdir(parents=True)
    store.path("demo").write_bytes(b"first junk \x00")
    store.load("demo")
    store.path("demo").write_bytes(b"second junk \xff")
    store.load("demo")
    moved = corrupt_files(store)
    assert len(moved) == 2
    assert sorted(p.read_bytes() for p in moved) == [b"first junk \x00", b"second junk \xff"]


def test_both_file_and_backup_corrupt_gives_an_empty_session_and_notes(store):
    store.directory.mkdir(parents=True)
    store.path("demo").write_bytes(b"\xff junk")
    store.backup_path("demo").write_bytes(b"format = 1\n[session]\nname = 3\n")
    loaded = store.load("demo")
    assert loaded.session.history == [] and loaded.text is None
    assert len(loaded.notes) == 3
    assert "not UTF-8 text" in loaded.notes[0]
    assert "its backup of session demo is unreadable (session.name: expected text" in loaded.notes[1]
    assert loaded.notes[2] == "session demo: starting empty"
    assert sorted(p.read_bytes() for p in corrupt_files(store)) == [b"format = 1\n[session]\nname = 3\n", b"\xff junk"]
    assert sorted(store.directory.glob("demo.toml*")) == corrupt_files(store)


def test_a_missing_file_with_a_backup_uses_the_backup(store):
    save_text(store, "demo", "old")
    save_text(store, "demo", "new")
    store.path("demo").unlink()
    loaded = store.load("demo")
    assert loaded.session.history_inputs() == ["old"]
    assert loaded.text is None
    assert len(loaded.notes) == 1 and "using its backup" in loaded.notes[0]


def test_a_newer_format_is_refused_and_left_byte_for_byte(store):
    save_text(store, "demo", "a")
    newer = b"# from the future\nformat = 99\n[session]\nname = 'demo'\n[shiny]\nx = 1\n"
    store.path("demo").write_bytes(newer)
    before = store.path("demo").stat()
    with pytest.raises(UsageError, match="newer stui"):
        store.load("demo")
    assert store.path("demo").read_bytes() == newer
    assert store.path("demo").stat().st_mtime_ns == before.st_mtime_ns
    assert corrupt_files(store) == []


def test_saving_over_a_newer_format_is_refused(store):
    file = SessionFile(store, "demo")
    loaded = file.load()
    store.directory.joinpath("demo.toml").write_text("format = 99\n")
    with pytest.raises(UsageError, match="newer stui"):
        file.save(loaded.session, history_limit=100)
    assert store.path("demo").read_text() == "format = 99\n"


# -- locking -------------------------------------------------------------------------


def test_a_second_locker_in_the_same_process_is_refused(store):
    with store.locked("demo"):
        started = time.monotonic()
        with pytest.raises(SessionBusy, match="session demo is busy"), store.locked("demo", timeout=0.1):
            pass
        assert time.monotonic() - started < 5


def test_the_lock_is_released_on_leaving(store):
    with store.locked("demo"):
        pass
    with store.locked("demo", timeout=0):
        pass


def test_locks_of_different_sessions_are_independent(store):
    with store.locked("one"), store.locked("two", timeout=0):
        pass


HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stui_repl.session.store import SessionStore
    with SessionStore(Path(sys.argv[1])).locked("demo"):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


def test_a_lock_held_by_another_process_excludes_us_until_it_lets_go(store):
    store.directory.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.directory)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(SessionBusy), store.locked("demo", timeout=0.2):
            pass
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        with store.locked("demo", timeout=30):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_of_a_killed_process_is_free(store):
    store.directory.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.directory)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline() == "locked\n"
    holder.kill()
    holder.wait()
    with store.locked("demo", timeout=30):
        pass


# -- SessionFile: read-merge-write ---------------------------------------------------


def test_save_then_load_gives_the_session_back(store):
    file = SessionFile(store, "demo")
    session = file.load().session
    session.add_history("a", at(1), limit=100)
    session.record_variable("x", at(1), store="1")
    file.save(session, history_limit=100)
    loaded = SessionFile(store, "demo").load()
    assert loaded.session.history_inputs() == ["a"]
    assert loaded.session.variables["x"].store == "1"
    assert loaded.notes == []


def test_save_caps_the_history(store):
    file = SessionFile(store, "demo")
    session = file.load().session
    for second in range(10):
        session.add_history(f"input {second}", at(second), limit=100)
    merged, _ = file.save(session, history_limit=3)
    assert merged.history_inputs() == ["input 7", "input 8", "input 9"]
    assert store.load("demo").session.history_inputs() == ["input 7", "input 8", "input 9"]


def test_two_processes_saving_one_session_lose_nothing(store):
    first, second = SessionFile(store, "demo"), SessionFile(store, "demo")
    ours, theirs = first.load().session, second.load().session
    ours.add_history("ours", at(1), limit=100)
    ours.record_variable("x", at(1), store="1")
    first.save(ours, history_limit=100)
    theirs.add_history("theirs", at(2), limit=100)
    theirs.record_variable("y", at(2), store="2")
    merged, notes = second.save(theirs, history_limit=100)
    assert notes == []
    on_disk = store.load("demo").session
    assert on_disk.history_inputs() == ["ours", "theirs"]
    assert set(on_disk.variables) == {"x", "y"}
    assert merged.history == on_disk.history


def test_a_later_save_of_the_first_process_keeps_the_others_work(store):
    first, second = SessionFile(store, "demo"), SessionFile(store, "demo")
    ours, theirs = first.load().session, second.load().session
    ours.add_history("ours", at(1), limit=100)
    ours, _ = first.save(ours, history_limit=100)
    theirs.add_history("theirs", at(2), limit=100)
    second.save(theirs, history_limit=100)
    ours.add_history("ours again", at(3), limit=100)
    first.save(ours, history_limit=100)
    assert store.load("demo").session.history_inputs() == ["ours", "theirs", "ours again"]


def test_a_forgotten_variable_stays_forgotten_after_the_other_process_saves(store):
    first = SessionFile(store, "demo")
    session = first.load().session
    session.record_variable("x", at(1), store="1")
    session.record_variable("y", at(1), store="2")
    first.save(session, history_limit=100)
    second = SessionFile(store, "demo")
    theirs = second.load().session
    session.forget_variable("x")
    first.save(session, history_limit=100)
    theirs.add_history("unrelated", at(5), limit=100)
    second.save(theirs, history_limit=100)
    assert set(store.load("demo").session.variables) == {"y"}


def test_both_processes_changing_one_variable_is_reported(store):
    setup = SessionFile(store, "demo")
    session = setup.load().session
    session.record_variable("x", at(1), store="1")
    setup.save(session, history_limit=100)
    first, second = SessionFile(store, "demo"), SessionFile(store, "demo")
    ours, theirs = first.load().session, second.load().session
    ours.record_variable("x", at(5), store="'ours'")
    first.save(ours, history_limit=100)
    theirs.record_variable("x", at(9), store="'theirs'")
    _, notes = second.save(theirs, history_limit=100)
    assert len(notes) == 1 and "x was also changed" in notes[0].text
    assert store.load("demo").session.variables["x"].store == "'theirs'"


def test_a_save_keeps_comments_a_person_added_meanwhile(store):
    file = SessionFile(store, "demo")
    session = file.load().session
    session.preferences["toolbar"] = True
    file.save(session, history_limit=100)
    text = store.path("demo").read_text()
    store.path("demo").write_text(text.replace("toolbar = true", "toolbar = true  # mine"))
    session.add_history("more", at(3), limit=100)
    file.save(session, history_limit=100)
    assert "toolbar = true  # mine" in store.path("demo").read_text()


def test_a_save_over_a_file_corrupted_meanwhile_moves_it_aside(store):
    file = SessionFile(store, "demo")
    session = file.load().session
    session.add_history("a", at(1), limit=100)
    file.save(session, history_limit=100)
    store.path("demo").write_bytes(b"\xff\xfe junk")
    session.add_history("b", at(2), limit=100)
    file.save(session, history_limit=100)
    assert store.load("demo").session.history_inputs() == ["a", "b"]
    assert [p.read_bytes() for p in corrupt_files(store)] == [b"\xff\xfe junk"]


# -- crash safety --------------------------------------------------------------------


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stui_repl.session.store import SessionFile, SessionStore
    file = SessionFile(SessionStore(Path(sys.argv[1])), "demo")
    session = file.load().session
    print("ready", flush=True)
    count = len(session.history)
    while True:
        count += 1
        session.add_history(f"input {count} " + "x" * (count % 97), f"2026-11-21T10:00:00.{count % 1000:03d}Z", 100_000)
        session.record_variable(f"v{count % 50}", "2026-11-21T10:00:00.000Z", store=str(count))
        session, _ = file.save(session, history_limit=100_000)
    """
)


def test_a_writer_killed_at_any_moment_leaves_a_loadable_file(store):
    directory = store.directory
    seed_session = make_session("demo", *[f"seed {i} " + "y" * 200 for i in range(2000)])
    store.write_text("demo", session_format.render(seed_session))
    rng = random.Random(1121)
    deadline = time.monotonic() + 8
    kills = 0
    while kills < 30 and time.monotonic() < deadline:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(directory)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0, 0.05))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            writer.stdout.close()
        kills += 1
        loaded = SessionStore(directory).load("demo")
        assert loaded.notes == [], loaded.notes
        assert loaded.text is not None
        assert len(loaded.session.history) >= 2000
    assert kills >= 5
    assert corrupt_files(store) == []


def test_a_save_that_cannot_write_is_one_clear_error_and_the_file_stays(tmp_path, monkeypatch):
    store = SessionStore(tmp_path / "sessions")
    file = SessionFile(store, "full")
    session = file.load().session
    file.save(session, history_limit=10)
    before = store.path("full").read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    session.add_history("x := 1", "2026-11-21T10:00:00.000Z", 10)
    with pytest.raises(StuiError, match="^cannot save session full: No space left on device$"):
        file.save(session, history_limit=10)
    assert store.path("full").read_bytes() == before
