"""Session files as a careless person or a hostile one might leave them:
structured TOML from hypothesis, with wrong types, extreme numbers, dates at
the ends of the calendar in any offset, huge strings and odd history lines.

Whatever a file holds, listing, showing and opening the session end without
an internal error: the file opens (and saves, and reads back), or it is
moved aside and said so in one line; a newer format is refused and left
alone. The loading code runs in-process, so that a few hundred files take
seconds; a handful of nasty files also go through real `stui` processes.
"""

from __future__ import annotations

import io
import re
import string
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from conftest import run_stui
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stui_repl.client import wire
from stui_repl.commands import REGISTRY, Context
from stui_repl.errors import UsageError
from stui_repl.render import PlainRenderer
from stui_repl.session import toml as session_format
from stui_repl.session.controller import SessionController
from stui_repl.session.store import SessionStore
from stui_repl.session.vault import open_vault
from stui_repl.settings import PREFERENCES

# -- what a file may hold ------------------------------------------------------------------

OFFSETS = [timezone(timedelta(minutes=m)) for m in (-14 * 60, -90, 0, 59, 14 * 60)]


def huge_strings() -> st.SearchStrategy[str]:
    """Long strings made cheaply: a short piece repeated (generating 100 KB at random is slow)."""
    return st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=4), st.integers(1, 60_000))


def times() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).flatmap(
            lambda moment: st.sampled_from([moment, *(moment.replace(tzinfo=offset) for offset in OFFSETS)])
        ),
        st.sampled_from([datetime(1, 1, 1, tzinfo=OFFSETS[-1]), datetime(9999, 12, 31, 23, 59, 59, tzinfo=OFFSETS[0]),
                         datetime(1, 1, 1), datetime(1970, 1, 1, tzinfo=UTC)]),
        st.dates(), st.times(),
        st.sampled_from(["2026-02-30T10:00:00.000Z", "0000-01-01T00:00:00Z", "2026-11-21T10:00:00.123Z", "yesterday"]),
    )


SCALARS = st.one_of(
    st.text(max_size=20), huge_strings(), st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from([0, -1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True), times(),
)
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def usually(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right type most of the time, anything now and then."""
    return st.one_of(good, good, good, ANYTHING)


def table(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={key: usually(value) for key, value in fields.items()})


TEXT = st.one_of(st.text(max_size=30), huge_strings())
IDENTIFIER = st.from_regex(r"[a-z][A-Za-z0-9_]{0,10}", fullmatch=True)
VARIABLE_NAMES = st.one_of(IDENTIFIER, IDENTIFIER, st.text(min_size=1, max_size=12))  # "a b", "1x", "" too
RECIPES = st.one_of(
    st.sampled_from(["3", "'text'", "#(1 2 3)", "nil", "[true] whileTrue", "1/0", "x := ", "'unclosed"]), TEXT,
)
HISTORY_LINES = st.one_of(
    st.text(alphabet=string.printable, max_size=40),
    st.builds(lambda when, text: f"{when} {text}", st.sampled_from(
        ["2026-11-21T10:00:00.000Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2026-13-45T99:99:99Z"]),
        st.text(max_size=30)),
    huge_strings(),
)

SESSIONS = st.fixed_dictionaries(
    {"format": st.one_of(st.just(1), st.just(1), st.just(1), st.sampled_from([0, 2, -1, "1", 1.0]), ANYTHING)},
    optional={
        "session": usually(table({"name": TEXT, "created": times(), "updated": times(), "stui_version": TEXT})),
        "image": usually(table({"dialect": TEXT, "version": TEXT, "id": TEXT})),
        "connection": usually(table({
            "address": TEXT, "token": TEXT,
            "recent": st.lists(usually(table({"address": TEXT, "dialect": TEXT, "version": TEXT, "last_used": times()})),
                               max_size=3),
        })),
        "preferences": usually(st.dictionaries(
            st.one_of(st.sampled_from([p.name for p in PREFERENCES]), st.text(max_size=10)), ANYTHING, max_size=4,
        )),
        "variables": usually(st.dictionaries(VARIABLE_NAMES, usually(table({
            "class": TEXT, "value": TEXT, "store": RECIPES, "source": RECIPES, "secret": TEXT,
            "order": st.integers(min_value=-(2**63), max_value=2**63 - 1), "changed": times(),
        })), max_size=5)),
        "history": usually(table({"entries": st.lists(HISTORY_LINES, max_size=8).map("\n".join)})),
    },
)


def file_text(document: dict[str, Any]) -> str | None:
    """The document as TOML, written by tomlkit (not by the code under test); None if tomlkit cannot."""
    try:
        return tomlkit.dumps(document)
    except Exception:  # noqa: BLE001 - a value tomlkit cannot write is not a file anyone has
        return None


# -- the image a restore talks to ------------------------------------------------------------


class AgreeableImage:
    """Takes every statement and secret that fits its line, as an image that runs them all would."""

    def request_room(self) -> int:
        return wire.DEFAULT_MAX_LINE - 64

    def fits(self, request: dict[str, Any]) -> bool:
        return len(wire.encode(request)) <= self.request_room()

    def bind_secret(self, name: str, plaintext: str) -> None:
        return None

    def record_changes(self) -> bool:
        return True

    def install_code(self, entries: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
        assert self.fits(wire.install_changes_request(entries))
        return [{"outcome": "installed"} for _ in entries]

    def replay(self, units: list[dict[str, Any]], **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        assert self.fits(wire.script_request(units, print_value=False, keep_going=True))
        return {"ok": True}, [{"ok": True, "statements": len(units)}]


# -- the property --------------------------------------------------------------------------------


def sessions_directory(root: Path, text: str | bytes) -> tuple[SessionStore, Path]:
    directory = root / "sessions"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "f.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    path.chmod(0o600)
    return SessionStore(directory), path


def moved_aside(notes: list[str]) -> list[str]:
    return [note for note in notes if re.search(r"is unreadable \(.*\); moved it to f\.toml\.corrupt-", note)]


def check_file(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)

        # stui session list
        store, path = sessions_directory(root, text)
        (row,) = store.summaries()
        assert row.name == "f"

        # stui session show f (which, like opening, moves an unreadable file aside)
        out, err = io.StringIO(), io.StringIO()
        controller = SessionController(store=store, notify=err.write, vault_factory=open_vault)
        try:
            REGISTRY.dispatch(Context(PlainRenderer(out, err), controller), ":session show f")
        except UsageError as exc:
            assert "newer stui" in str(exc) and row.state == "newer format"
        else:
            assert "f.toml" in out.getvalue()

        # opening it: it opens and saves, or it is moved aside with one line
        store, path = sessions_directory(root / "again", text)
        notes: list[str] = []
        controller = SessionController(store=store, notify=notes.append, vault_factory=open_vault)
        try:
            active = controller.load_session("f")
        except UsageError as exc:
            assert "newer stui" in str(exc)
            assert path.read_bytes() == (text if isinstance(text, bytes) else text.encode())  # left untouched
            return
        if path.exists():
            assert not moved_aside(notes), notes
        else:
            assert len(moved_aside(notes)) == 1, notes
        active.restore(AgreeableImage())  # type: ignore[arg-type]
        before = active.session.copy()
        active.save()
        reread = session_format.parse(path.read_text(encoding="utf-8"))
        assert set(reread.variables) == set(before.variables)
        assert len(reread.history) == len(before.history)


# No example database: nothing is written into the work tree, and each run
# explores afresh (CI runs once; a failure prints the example to reproduce).
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(SESSIONS, st.sampled_from(["whole", "whole", "whole", "cut", "garbage"]), st.integers(min_value=0))
def test_any_session_file_lists_shows_and_opens_or_is_moved_aside(document, damage, where):
    text = file_text(document)
    if text is None:
        return
    if damage == "cut":  # a file cut short, as by a full disk with another program's writer
        text = text[: where % (len(text) + 1)]
    elif damage == "garbage":
        text = text.encode("utf-8") + bytes([0xFF, 0x00, where % 256])
    check_file(text)


# -- a few nasty files through real stui processes -----------------------------------------------------

NASTY = {
    "ancient": "format = 1\n[session]\ncreated = 0001-01-01T00:00:00+14:00\nupdated = 9999-12-31T23:59:59-14:00\n",
    "wrongtypes": "format = 1\nsession = 3\n[variables]\nx = [1, 2]\n",
    "prefs": (
        "# mine\nformat = 1\n[preferences]\nautosave = nan\nhistory_limit = -1\ntheme = 1979-05-27\n"
        "heartbeat = 9223372036854775807\nrestore_timeout = 1e400\nnosuch = { a = [1, 2.5] }\n"
    ),
    "names": (
        "format = 1\n[variables.\"a b\"]\nstore = '1'\n[variables.\"1x\"]\nsource = 'x'\n"
        "[variables.ok]\nstore = '7'\norder = -9223372036854775808\nchanged = 0001-01-01T00:00:00+14:00\n"
    ),
    "huge": "format = 1\n[image]\nversion = '" + "v" * 300_000 + "'\n[history]\nentries = '''\n" + "x" * 300_000 + "\n'''\n",
    "deep": "format = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n",
    "times": (
        "format = 1\n[session]\ncreated = 1979-05-27\n"  # a date where a time belongs: unreadable, moved aside
    ),
}


@pytest.mark.usefixtures("server_image")
def test_nasty_files_list_show_and_open_without_an_internal_error(home):
    directory = home / "state" / "sessions"
    for private in (directory.parent, directory):
        private.mkdir(mode=0o700)
    for name, text in NASTY.items():
        (directory / f"{name}.toml").write_text(text)
        (directory / f"{name}.toml").chmod(0o600)

    listed = run_stui("session", "list")
    assert listed.returncode == 0 and "internal error" not in listed.stderr, listed.stderr
    assert re.findall(r"(?m)^(\w+) ", listed.stdout)[1:] == sorted(NASTY)
    for name in NASTY:
        shown = run_stui("session", "show", name)
        assert shown.returncode == 0, shown.stderr
        assert "internal error" not in shown.stderr and "Traceback" not in shown.stderr

    for name, text in NASTY.items():  # opened (what show moved aside is an empty session now)
        (directory / f"{name}.toml").write_text(text)
        opened = run_stui("--session", name, "-c", "3 + 4")
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout.strip() == "7"
        assert "internal error" not in opened.stderr and "Traceback" not in opened.stderr
        assert len(re.findall(r"moved it to", opened.stderr)) <= 1, opened.stderr

