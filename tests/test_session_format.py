"""The session file's TOML: reading, writing, migrating, keeping a person's comments."""

from __future__ import annotations

import random
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomlkit

from stui_repl.session import toml as F
from stui_repl.session.model import (
    ConnectionSpec,
    ImageSeen,
    RecentConnection,
    Session,
    timestamp,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"


@pytest.fixture(autouse=True)
def _fresh_tomlkit_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """render() keeps the last edited document in a module global: no test sees another's."""
    monkeypatch.setattr(F, "_edited", F._EditedHeads())


def t(second: int) -> str:
    return timestamp(datetime(2026, 11, 21, 10, 0, tzinfo=UTC) + timedelta(seconds=second, milliseconds=second))


def minimal(extra: str = "") -> str:
    return 'format = 1\n\n[session]\nname = "demo"\ncreated = 2026-11-21T10:00:00.000Z\n' + extra


QUOTE_RUNS = ["'''", "''''", "'''''' x", "x '''", "a'''b", "'a' '' '''", "'", "''", "x''", "''x"]


def rich_session() -> Session:
    session = Session.new("rich", t(0), "0.1.0")
    session.updated = t(50)
    session.image = ImageSeen("gst", 'GNU Smalltalk "3.2.5" # ready', "id-1")
    session.connection = ConnectionSpec("host.example:4711", "stui-aead1:0123abcd:AAEC")
    session.recent = [
        RecentConnection("host.example:4711", "gst", "3.2.5", t(40)),
        RecentConnection("[::1]:4712", "pharo", "Pharo 12 # beta", t(30)),
    ]
    session.preferences = {"toolbar": False, "autosave": 0, "edit_mode": "vi", "odd key.x": "a # b"}
    session.record_variable("total", t(1), value_class="SmallInteger", value="42", store="42")
    session.record_variable(
        "text", t(2), value_class="String", value="'it''s # not a comment'",
        store="'tab\there, CR\rthere, DEL\x7f, NUL\x00, ESC\x1b, back\\slash, é 漢字 😀'",
    )
    session.record_variable(
        "quotes", t(3), value_class="Object", value="an Object",
        source="quotes := '''' , '\"\"\"' , ''''''  \"a comment with ''' and \"\"\" \"",
    )
    session.record_variable("pw", t(4), value_class="String", value="********", sealed="stui-aead1:0123abcd:SGVsbG8")
    session.record_variable("Ω", t(5), value_class="Character", value="$Ω", store="$Ω")
    history = [
        "total := 6 * 7",
        "x := 1.\ny := 2.\r\nx + y",
        "'C:\\temp\\new' size  \"\\n is not a line break here\"",
        "\ttab at start and end\t",
        "control \x01\x02\x08\x0b\x0c\x0e\x1f and DEL \x7f",
        "unicode é 漢字 😀 \u2028 \x85 \u200b",
        "#(1 2 3) # not a comment",
        '"""triple double"""',
        "\\x41 and \\u0041 are not escapes",
        "ends with backslash \\",
        "2026-11-21T10:00:00.000Z looks like a time",
        *QUOTE_RUNS,
    ]
    session.history = [(t(10 + index), text) for index, text in enumerate(history)]
    return session


# -- round trips ---------------------------------------------------------------------


def test_a_rich_session_survives_render_and_parse():
    session = rich_session()
    assert F.parse(F.render(session)) == session


def test_stuis_own_output_is_valid_toml_with_a_final_newline():
    text = F.render(rich_session())
    tomllib.loads(text)
    assert text.endswith("'''\n")


@pytest.mark.parametrize("text", QUOTE_RUNS)
def test_runs_of_quotes_in_history_never_close_the_literal_string(text):
    rendered = F.render_history([(t(1), text)])
    body = rendered.split("entries = '''\n", 1)[1]
    assert "'''" not in body[: -len("'''\n")]
    assert F.parse(minimal(rendered)).history == [(t(1), text)]


def test_a_lone_surrogate_is_replaced_not_a_crash():
    session = Session.new("demo", t(0))
    session.history = [(t(1), "bad \udcff byte")]
    session.record_variable("v", t(2), value="\ud800", store="'\udfff'")
    text = F.render(session)
    text.encode("utf-8")
    back = F.parse(text)
    assert back.history == [(t(1), "bad \ufffd byte")]
    assert (back.variables["v"].value, back.variables["v"].store) == ("\ufffd", "'\ufffd'")


def test_an_empty_session_round_trips():
    session = Session.new("empty", t(0))
    assert F.parse(F.render(session)) == session


ALPHABET = [
    "'", "'", "'", '"', "\\", "\\", "\n", "\r", "\t", "#", " ", "a", "x", "u", "n", "r", "0", "4", "f",
    "\x00", "\x01", "\x1b", "\x7f", "\x0b", "\x0c", "é", "€", "😀", "\u2028", "\x85", "[", "]", "=", "{",
]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 24)))


def test_history_escaping_round_trips_random_text():
    rng = random.Random(20261121)
    for _ in range(400):
        history = [(t(i), random_text(rng)) for i in range(rng.randrange(1, 6))]
        rendered = F.render_history(history)
        assert F.parse(minimal(rendered)).history == history, rendered


def test_history_escaping_round_trips_random_text_with_surrogates():
    rng = random.Random(7)
    alphabet = [*ALPHABET, "\ud800", "\udcff"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 16)))
        expected = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
        assert F.parse(minimal(F.render_history([(t(1), text)]))).history == [(t(1), expected)]


def test_the_separator_the_history_is_read_with_may_be_in_an_input_raw_or_escaped():
    history = [(t(1), "a\x9eb"), (t(2), "c\\d\n")]  # raw, and beside escapes that need unescaping
    assert F.parse(minimal(F.render_history(history))).history == history
    by_hand = minimal(f"[history]\nentries = '''\n{t(1)} a\\x9eb\n{t(2)} c\\nd\n'''\n")
    assert F.parse(by_hand).history == [(t(1), "a\x9eb"), (t(2), "c\nd")]


def test_unescaping_without_a_regex_agrees_with_the_escape_grammar():
    """_unescape's str.replace path (no \\x or \\u in the text) against the grammar, on random escaped text."""
    simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'"}

    def by_grammar(text: str) -> str:
        return re.sub(r"\\(.)", lambda m: simple.get(m.group(1), m.group()), text)

    rng = random.Random(5)
    for _ in range(3000):
        text = "".join(rng.choice("\\\\\\nrt'qa\n ") for _ in range(rng.randrange(0, 12)))
        assert F._unescape(text) == by_grammar(text), repr(text)


def test_string_values_round_trip_random_text():
    rng = random.Random(99)
    for _ in range(200):
        session = Session.new(random_text(rng), t(0))
        session.preferences["note"] = random_text(rng)
        session.record_variable("v", t(1), value=random_text(rng), source=random_text(rng))
        session.connection = ConnectionSpec(random_text(rng), random_text(rng))
        assert F.parse(F.render(session)) == session


# -- reading what a person wrote -----------------------------------------------------


def test_a_hand_added_history_line_without_a_time_takes_the_previous_time():
    text = minimal(f"[history]\nentries = '''\n{t(5)} first\nadded by hand\n{t(9)} last\n'''\n")
    assert F.parse(text).history == [(t(5), "first"), (t(5), "added by hand"), (t(9), "last")]


def test_a_first_history_line_without_a_time_takes_the_creation_time():
    text = minimal("[history]\nentries = '''\nno time here\n'''\n")
    assert F.parse(text).history == [("2026-11-21T10:00:00.000Z", "no time here")]


def test_blank_history_lines_are_skipped():
    text = minimal(f"[history]\nentries = '''\n\n{t(1)} a\n\n\n{t(2)} b\n'''\n")
    assert F.parse(text).history_inputs() == ["a", "b"]


def test_an_unknown_escape_in_history_is_kept_as_written():
    text = minimal(f"[history]\nentries = '''\n{t(1)} a\\qb \\x4 \\u12\n'''\n")
    assert F.parse(text).history_inputs() == ["a\\qb \\x4 \\u12"]


def test_a_crlf_file_reads_like_an_lf_file():
    session = rich_session()
    text = F.render(session)
    assert F.parse(text.replace("\n", "\r\n")) == session


def test_missing_tables_and_keys_take_defaults():
    session = F.parse("format = 1\n")
    assert session == Session(name="", created="1970-01-01T00:00:00.000Z", updated="1970-01-01T00:00:00.000Z")


def test_missing_updated_is_created_and_missing_changed_is_updated():
    session = F.parse(minimal("[variables.a]\nstore = '1'\n"))
    assert session.updated == session.created
    assert session.variables["a"].changed == session.updated


def test_variables_without_order_take_their_place_in_the_file():
    session = F.parse(minimal("[variables.b]\nstore = '2'\n[variables.a]\nstore = '1'\norder = 7\n[variables.c]\n"))
    assert {v.name: v.order for v in session.variables.values()} == {"b": 1, "a": 7, "c": 3}


def test_times_may_be_toml_datetimes_in_any_offset_or_local():
    text = 'format = 1\n[session]\ncreated = 2026-11-21T11:00:00.5+01:00\nupdated = 2026-11-21T10:00:01\n'
    session = F.parse(text)
    assert (session.created, session.updated) == ("2026-11-21T10:00:00.500Z", "2026-11-21T10:00:01.000Z")


def test_times_may_be_strings_in_the_session_spelling():
    session = F.parse('format = 1\n[session]\ncreated = "2026-11-21T10:00:00.123Z"\n')
    assert session.created == "2026-11-21T10:00:00.123Z"


def test_a_time_string_that_is_no_real_date_never_leads_to_an_unreadable_file():
    text = 'format = 1\n[session]\ncreated = "2026-02-30T10:00:00.000Z"\n'
    try:
        session = F.parse(text)
    except F.SessionFormatError:
        return
    F.parse(F.render(session))


@pytest.mark.parametrize(
    "written, read",
    [
        ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00.000Z"),  # before the first UTC instant there is
        ("9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999Z"),  # after the last
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("0999-06-01T12:00:00Z", "0999-06-01T12:00:00.000Z"),  # four digits, as TOML wants them
        ("0001-01-01T00:00:00", "0001-01-01T00:00:00.000Z"),
    ],
)
def test_a_time_at_the_ends_of_the_calendar_is_read_and_written_back(written, read):
    """Such a time once stopped `stui session list` for every session
    (OverflowError), or was written as `1-01-01...`, which is no TOML."""
    text = f"# a comment: the edited path too\nformat = 1\n[session]\ncreated = {written}\n[preferences]\nwhen = {written}\n"
    session = F.parse(text)
    assert session.created == read
    for previous in (None, text):
        again = F.parse(F.render(session, previous))
        assert again.created == read
        assert "when" in again.preferences


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        ('[variables.x]\norder = "a"\n', "variables.x.order: expected a whole number"),
        ("[variables.x]\norder = true\n", "variables.x.order: expected a whole number"),
        ("[variables.x]\nstore = 3\n", "variables.x.store: expected text"),
        ("[variables.x]\nchanged = \"yesterday\"\n", "variables.x.changed: expected a time"),
        ("[variables.x]\nchanged = 2026-11-21\n", "variables.x.changed: expected a time"),
        ("[variables.x]\nchanged = \"2026-02-30T10:00:00Z\"\n", "variables.x.changed: expected a time"),
        ("[variables]\nx = 3\n", "variables.x: expected a table"),
        ("[history]\nentries = 3\n", "history.entries: expected text"),
        ("[history]\nentries = ['a']\n", "history.entries: expected text"),
        ("[connection]\naddress = 5\n", "connection.address: expected text"),
        ("[connection]\nrecent = [1]\n", "connection.recent[0]: expected a table"),
        ("[connection]\nrecent = [{ address = 'a' }, { address = 2 }]\n", "connection.recent[1].address: expected text"),
        ("[connection]\nrecent = [{ last_used = 'soon' }]\n", "connection.recent[0].last_used: expected a time"),
        ("[image]\nid = 1\n", "image.id: expected text"),
    ],
)
def test_a_wrong_type_is_a_format_error_naming_the_key(extra, message):
    with pytest.raises(F.SessionFormatError) as raised:
        F.parse(minimal(extra))
    assert message in str(raised.value)
    assert not isinstance(raised.value, F.NewerFormat)


def test_a_table_that_is_not_a_table_names_the_key():
    with pytest.raises(F.SessionFormatError, match="^history: expected a table"):
        F.parse("format = 1\nhistory = 'a'\n")


def test_a_bad_session_time_names_the_key():
    with pytest.raises(F.SessionFormatError, match=r"^session\.created: expected a time"):
        F.parse('format = 1\n[session]\ncreated = "tomorrow"\n')


@pytest.mark.parametrize("text", ["format = ", "format = 1\n[session\n", "format = 1\nformat = 1\n", "\x00"])
def test_bad_toml_is_a_format_error(text):
    with pytest.raises(F.SessionFormatError, match="^not valid TOML"):
        F.parse(text)


def test_a_newer_format_is_refused_as_newer():
    with pytest.raises(F.NewerFormat, match="format 99"):
        F.parse(minimal().replace("format = 1", "format = 99"))


@pytest.mark.parametrize("version", ["", "format = 0\n", "format = -1\n", 'format = "1"\n', "format = true\n", "format = 1.0\n"])
def test_a_missing_or_bad_format_is_a_format_error_not_newer(version):
    with pytest.raises(F.SessionFormatError, match="^format: expected a version number") as raised:
        F.parse(version + '[session]\nname = "x"\n')
    assert not isinstance(raised.value, F.NewerFormat)


# -- migrations ----------------------------------------------------------------------


def test_a_migration_step_runs_and_sets_the_version(monkeypatch):
    def rename_title(data):
        data["session"]["name"] = data["session"].pop("title")
        return data

    monkeypatch.setattr(F, "FORMAT", 2)
    monkeypatch.setitem(F.MIGRATIONS, 1, rename_title)
    data = F.migrate({"format": 1, "session": {"title": "old"}})
    assert data == {"format": 2, "session": {"name": "old"}}
    assert F.parse('format = 1\n[session]\ntitle = "old"\n').name == "old"


def test_migration_steps_run_in_order(monkeypatch):
    monkeypatch.setattr(F, "FORMAT", 3)
    monkeypatch.setitem(F.MIGRATIONS, 1, lambda d: {**d, "steps": [*d.get("steps", []), 1]})
    monkeypatch.setitem(F.MIGRATIONS, 2, lambda d: {**d, "steps": [*d.get("steps", []), 2]})
    assert F.migrate({"format": 1}) == {"format": 3, "steps": [1, 2]}
    assert F.migrate({"format": 2}) == {"format": 3, "steps": [2]}


def test_a_missing_migration_step_is_a_format_error(monkeypatch):
    monkeypatch.setattr(F, "FORMAT", F.FORMAT + 1)
    with pytest.raises(F.SessionFormatError, match=f"no migration from format {F.FORMAT - 1}"):
        F.migrate({"format": F.FORMAT - 1})


def test_the_current_format_needs_no_migration():
    data = {"format": F.FORMAT, "session": {}}
    assert F.migrate(data) == {"format": F.FORMAT, "session": {}}


# -- the fixture of every format that shipped ----------------------------------------


def test_there_is_a_fixture_for_the_current_format():
    assert (FIXTURES / f"format-{F.FORMAT}.toml").is_file()


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_format_still_loads(path):
    session = F.parse(path.read_text(encoding="utf-8"))
    assert session.name
    assert session.history
    assert F.parse(F.render(session)) == session


def test_the_format_1_fixture_reads_every_field():
    session = F.parse((FIXTURES / "format-1.toml").read_text(encoding="utf-8"))
    assert (session.name, session.created, session.updated, session.stui_version) == (
        "inventory", "2026-11-21T09:58:12.345Z", "2026-11-21T10:04:40.001Z", "0.1.0",
    )
    assert session.image == ImageSeen("gst", "GNU Smalltalk 3.2.5", "5e1f0c2a9b7d4e38a6c0f1d2e3b4a596")
    assert session.connection.address == "build-box.example.org:4711"
    assert session.connection.token.startswith("stui-aead1:0123abcd:")
    assert [r.address for r in session.recent] == ["build-box.example.org:4711", "localhost:4712"]
    assert session.recent[1].last_used == "2026-11-20T17:30:00.000Z"
    assert session.preferences == {"autosave": 60, "edit_mode": "vi", "history_limit": 5000, "multiline": "auto", "toolbar": False}
    assert [v.name for v in session.replay_order()] == ["total", "names", "apiKey"]
    total, names, key = (session.variables[n] for n in ("total", "names", "apiKey"))
    assert (total.value_class, total.value, total.store, total.source) == ("SmallInteger", "42", "42", None)
    assert (names.store, names.source) == (None, "names := OrderedCollection new add: 'ann'; add: 'bob'; yourself")
    assert key.is_secret and key.sealed.startswith("stui-aead1:0123abcd:") and key.store is None
    assert session.history_inputs() == [
        "total := 6 * 7",
        "names := OrderedCollection new\n    add: 'ann';\n    add: 'bob';\n    yourself",
        "'''' size",
        "'C:\\temp\\stui' size",
        "total printString: 16",
    ]


def test_the_current_formats_fixture_is_rewritten_unchanged_when_nothing_changed():
    text = (FIXTURES / f"format-{F.FORMAT}.toml").read_text(encoding="utf-8")
    assert F.render(F.parse(text), text) == text


# -- keeping a person's comments -----------------------------------------------------


def edited_text() -> tuple[Session, str]:
    session = Session.new("demo", t(0))
    session.preferences.update({"toolbar": True, "edit_mode": "vi"})
    session.record_variable("x", t(1), value_class="SmallInteger", value="3", store="3")
    session.record_variable("y", t(2), value_class="OrderedCollection", value="an OC", source="y := OrderedCollection new")
    session.add_history("x := 3", t(1), limit=100)
    text = F.render(session)
    text = text.replace("[session]\n", "# my notes about this session\n[session]  # the meta table\n")
    text = text.replace('edit_mode = "vi"', 'edit_mode = "vi"  # I like vi')
    text = text.replace("[preferences]\n", "[preferences]\n# chosen with care\n")
    text = text.replace("[variables.x]\n", "[variables.x]\n# x is important\n")
    text = text.replace('store = "3"', 'store = "3" # keep it')
    assert F.parse(text) == session
    return session, text


PERSON_COMMENTS = [
    "# my notes about this session\n",
    "[session]  # the meta table\n",
    "# chosen with care\n",
    "  # I like vi\n",
    "[variables.x]\n# x is important\n",
    " # keep it\n",
]


def test_comments_survive_a_render_after_changes():
    session, text = edited_text()
    session.preferences["edit_mode"] = "emacs"
    session.preferences["autosave"] = 5
    session.record_variable("z", t(3), value="4", store="4")
    session.forget_variable("y")
    session.add_history("z := 4", t(3), limit=100)
    rendered = F.render(session, text)
    for comment in PERSON_COMMENTS:
        assert comment in rendered
    assert 'edit_mode = "emacs"  # I like vi' in rendered
    assert "[variables.y]" not in rendered
    assert F.parse(rendered) == session


def test_a_second_render_of_an_edited_file_is_the_same_text():
    session, text = edited_text()
    session.preferences["toolbar"] = False
    first = F.render(session, text)
    assert F.render(session, first) == first


def test_a_second_render_reuses_the_edited_document(monkeypatch):
    session, text = edited_text()
    first = F.render(session, text)
    calls = []
    original = tomlkit.parse
    monkeypatch.setattr(tomlkit, "parse", lambda source: calls.append(1) or original(source))
    session.preferences["toolbar"] = False
    second = F.render(session, first)
    assert calls == []
    assert "# I like vi" in second
    assert F.parse(second) == session


def test_render_of_an_edited_file_does_not_depend_on_the_cached_document(monkeypatch):
    session, text = edited_text()
    first = F.render(session, text)
    session.record_variable("w", t(9), store="9")
    session.preferences["toolbar"] = False
    cached = F.render(session, first)
    monkeypatch.setattr(F, "_edited", F._EditedHeads())
    assert F.render(session, first) == cached


def test_an_edited_file_keeps_comments_through_many_random_changes():
    rng = random.Random(3)
    session, text = edited_text()
    words = ["a", "'''", '"""', "#", "\\", "\n", "é", "\x7f"]
    for step in range(1, 120):
        choice = rng.randrange(7)
        if choice == 0:
            session.preferences[rng.choice(["toolbar", "edit_mode", "autosave", "a.b"])] = rng.choice([True, 3, "x # y"])
        elif choice == 1 and session.preferences:
            del session.preferences[rng.choice(sorted(session.preferences))]
        elif choice == 2:
            session.record_variable(rng.choice(["x", "y", "w w"]), t(step), value=rng.choice(words), store=rng.choice([None, "'''"]))
        elif choice == 3 and len(session.variables) > 1:
            session.forget_variable(rng.choice(sorted(session.variables)))
        elif choice == 4:
            session.image = rng.choice([None, ImageSeen("gst", "3.2.5", "i")])
        elif choice == 5:
            session.connection = rng.choice([ConnectionSpec(), ConnectionSpec("h:1", "tok")])
            session.recent = [RecentConnection(f"h:{k}", "gst", "v", t(step)) for k in range(rng.randrange(3))]
        else:
            session.add_history("".join(rng.choice(words) for _ in range(3)), t(step), limit=50)
        text = F.render(session, text)
        assert F.parse(text) == session, text
        assert "# my notes about this session" in text and "# the meta table" in text


def test_a_multi_line_string_a_person_wrote_is_kept_while_unchanged():
    session, text = edited_text()
    text = text.replace('source = "y := OrderedCollection new"', 'source = """\ny := OrderedCollection new"""')
    session = F.parse(text)
    session.preferences["toolbar"] = False
    rendered = F.render(session, text)
    assert 'source = """\ny := OrderedCollection new"""' in rendered
    assert F.parse(rendered) == session


def test_a_table_placed_after_history_by_hand_still_round_trips():
    session = Session.new("demo", t(0))
    session.preferences["toolbar"] = True
    session.add_history("x := 3", t(1), limit=100)
    canonical = F.render(session)
    moved = canonical.replace("[preferences]\ntoolbar = true\n", "") + "\n[preferences]\ntoolbar = true  # mine\n"
    assert F.split_head(moved) is None
    assert F.parse(moved) == session
    session.add_history("y", t(2), limit=100)
    session.preferences["autosave"] = 3
    rendered = F.render(session, moved)
    assert F.parse(rendered) == session
    assert "# mine" in rendered
    assert rendered.count("[history]") == 1


def test_a_comment_a_person_adds_in_the_history_table_is_kept():
    session = Session.new("demo", t(0))
    session.add_history("x := 3", t(1), limit=100)
    edited = F.render(session).replace("[history]\n", "[history]\n# inputs of the demo\n")
    assert F.parse(edited) == session
    session.add_history("y", t(2), limit=100)
    assert "# inputs of the demo" in F.render(session, edited)


def test_an_unedited_previous_file_gives_the_canonical_text():
    session = rich_session()
    previous = F.render(session)
    session.add_history("more", t(99), limit=100)
    assert F.render(session, previous) == F.render(session)


# -- needs_tomlkit -------------------------------------------------------------------


def head_of(text: str) -> str:
    parts = F.split_head(text)
    assert parts is not None
    return parts[0]


def test_stuis_own_output_needs_no_tomlkit_even_with_hashes_and_quotes():
    session = rich_session()
    session.preferences.update({"a": "#", "b": "'''", "c": '"""', "d": "x = '''", "e": "\"\"\" # '''"})
    session.name = "a#b"
    head = head_of(F.render(session))
    assert "#" in head.split(f"format = {F.FORMAT}", 1)[1]
    assert not F.needs_tomlkit(head)


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h.replace("[preferences]\n", "# a comment line\n[preferences]\n"),
        lambda h: h.replace("[preferences]\n", "[preferences]\n   # an indented comment\n"),
        lambda h: h.replace("toolbar = false", "toolbar = false # inline"),
        lambda h: h.replace("toolbar = false", 'toolbar = false\nnote = "a" # after a string'),
        lambda h: h.replace("toolbar = false", "toolbar = false\nnote = 'it' # after a literal"),
        lambda h: h.replace("[preferences]", "[preferences] # on a header"),
        lambda h: h.replace("toolbar = false", "toolbar = false\nnote = '''\nmany\nlines'''"),
        lambda h: h.replace("toolbar = false", 'toolbar = false\nnote = """\nmany\nlines"""'),
        lambda h: h.replace("toolbar = false", 'toolbar = false\nnote = """one line"""'),
    ],
)
def test_needs_tomlkit_for_comments_and_multi_line_strings(edit):
    head = head_of(F.render(rich_session()))
    edited = edit(head)
    assert edited != head
    assert F.needs_tomlkit(edited)


def test_needs_tomlkit_ignores_stuis_own_header_comments():
    assert not F.needs_tomlkit(F.HEADER + "format = 1\n")


def test_split_head_finds_history_when_it_is_last():
    text = F.render(rich_session())
    head, tail = F.split_head(text)
    assert head + tail == text
    assert tail.startswith("[history]\n")


def test_split_head_gives_up_when_a_table_follows_history():
    text = F.render(rich_session()) + "\n[extra]\nkey = 1\n"
    assert F.split_head(text) is None


def test_a_preference_of_the_wrong_type_is_kept_for_validation_not_called_corrupt():
    session = F.parse("format = 1\n[preferences]\nheartbeat = 2.5\ntoolbar = [1]\n")
    assert session.preferences == {"heartbeat": 2.5, "toolbar": [1]}


@pytest.mark.parametrize(
    "value",
    ["1.5", "nan", "-inf", "2024-01-01", "10:00:00", "2024-01-01T00:00:00+14:00", "0001-01-01T00:00:00+14:00",
     "[1, [2.5, 'x']]", "{ a = 1979-05-27 }", "99999999999999999999"],
)
@pytest.mark.parametrize("edited", [False, True])
def test_a_preference_with_any_value_a_file_can_hold_never_stops_a_save(value, edited):
    text = ("# mine\n" if edited else "") + f"format = 1\n[preferences]\nautosave = {value}\n"
    session = F.parse(text)
    session.record_variable("x", t(1), store="3")
    again = F.parse(F.render(session, text))
    assert "x" in again.variables
    assert "autosave" in again.preferences  # kept, to be reported again, not silently dropped


def test_a_preference_that_cannot_be_written_is_left_out_and_the_rest_saved():
    session = F.parse(minimal())
    session.preferences["odd"] = object()  # nothing a file holds, but nothing may stop a save either
    session.preferences["autosave"] = 5
    assert F.parse(F.render(session)).preferences == {"autosave": 5}


def test_when_tomlkit_cannot_keep_the_edits_the_session_is_saved_without_them(monkeypatch):
    text = "# mine\n" + minimal()
    session = F.parse(text)
    session.record_variable("x", t(1), store="3")

    def fails(container, new):
        raise OverflowError("tomlkit's own limit")

    monkeypatch.setattr(F, "_sync", fails)
    assert "x" in F.parse(F.render(session, text)).variables


def test_toml_nested_too_deeply_for_the_parser_is_a_format_error():
    with pytest.raises(F.SessionFormatError, match="nested too deeply"):
        F.parse("format = 1\nx = " + "[" * 100_000 + "]" * 100_000 + "\n")


# -- code -------------------------------------------------------------------------------


def coded_session() -> Session:
    session = Session.new("demo", "2026-11-21T10:00:00.000Z")
    changes = [
        {"kind": "class", "name": "Animal",
         "source": "Object subclass: #Animal\n\tinstanceVariableNames: 'name'\n\tclassVariableNames: ''\n\tpoolDictionaries: ''\n\tcategory: ''"},
        {"kind": "method", "name": "Animal>>name", "category": "accessing", "source": "name [\n    ^name\n]"},
        {"kind": "method", "name": "Animal class>>quote", "source": "quote [ ^'''' , 'it''''s' ]"},
        {"kind": "method", "name": "Animal>>odd", "source": "odd [ ^'a\rb\\c\"\"\"\x01' ]"},
        {"kind": "global", "name": "Config", "source": "Smalltalk at: #Config put: 42"},
        {"kind": "removed", "of": "method", "name": "Object>>halt"},
    ]
    for change in changes:
        session.record_change(change, "2026-11-21T10:00:01.000Z")
    session.add_history("x := 3", "2026-11-21T10:00:04.000Z", 100)
    return session


def test_code_round_trips_readably():
    session = coded_session()
    text = F.render(session)
    assert F.parse(text).code == session.code
    assert F.CODE_HEADER in text
    assert "source = '''\nname [\n    ^name\n]\n'''" in text, "a method reads as Smalltalk"
    assert text.index("[[code]]") < text.index("[history]")


def test_a_person_edits_code_and_comments_elsewhere_survive():
    session = coded_session()
    text = F.render(session).replace("[preferences]", "# mine\n[preferences]").replace("^name\n]", "^name , 'x'\n]")
    edited = F.parse(text)
    assert edited.code_entry("Animal>>name").source == "name [\n    ^name , 'x'\n]"
    again = F.render(edited, text)
    assert "# mine" in again
    assert F.parse(again).code == edited.code


@pytest.mark.parametrize(("table", "message"), [
    ('[[code]]\nkind = "macro"\nname = "x"\nsource = "x"\n', "code[0].kind"),
    ('[[code]]\nkind = "method"\nsource = "x"\n', "code[0].name"),
    ('[[code]]\nkind = "method"\nname = "A>>x"\n', "code[0].source"),
    ('[[code]]\nkind = "method"\nname = "A>>x"\nsource = 3\n', "code[0].source"),
])
def test_bad_code_tables_are_format_errors(table, message):
    with pytest.raises(F.SessionFormatError, match=re.escape(message)):
        F.parse(f"format = {F.FORMAT}\n" + table)


def test_format_1_migrates_to_a_session_without_code():
    session = F.parse((FIXTURES / "format-1.toml").read_text(encoding="utf-8"))
    assert session.code == []
    assert f"format = {F.FORMAT}" in F.render(session)


def test_the_code_stui_wrote_reads_as_tomllib_reads_it():
    session = coded_session()
    odd = [e.name for e in session.code if e.source and ("\'\'\'" in e.source or "\r" in e.source)]
    assert odd and F.split_canonical_code(F.render(session)) is None, "a basic string: tomllib reads it"
    for name in odd:
        session.forget_code(name)
    text = F.render(session)
    fast = F.split_canonical_code(text)
    assert fast is not None, "stui's own [[code]] takes the quick path"
    assert fast[1] == session.code
    assert F.parse(text) == F.from_data(F.migrate(tomllib.loads(text)))


@pytest.mark.parametrize("edit", [
    lambda t: t.replace('kind = "method"\nname = "Animal>>name"', 'name = "Animal>>name"\nkind = "method"'),
    lambda t: t.replace("[[code]]\nkind = \"global\"", "# a note\n[[code]]\nkind = \"global\""),
    lambda t: t.replace('name = "Animal>>name"', "name = 'Animal>>name'"),
    lambda t: t.replace("[history]", "[[code]]\nkind = \"global\"\nname = \"Late\"\nsource = \"x\"\n\n[history]"),
])
def test_code_a_person_reformatted_is_read_by_tomllib(edit):
    text = edit(F.render(coded_session()))
    assert F.split_canonical_code(text) is None or F.parse(text) == F.from_data(F.migrate(tomllib.loads(text)))
    assert F.parse(text) == F.from_data(F.migrate(tomllib.loads(text)))
