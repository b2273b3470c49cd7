"""The session model: history, variables and the three-way merge (pure, no files)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stui_repl.session.model import (
    STORE_CHARS,
    VALUE_CHARS,
    ConnectionSpec,
    ImageSeen,
    RecentConnection,
    Session,
    merge,
    merge_histories,
    shorten,
    timestamp,
    valid_session_name,
)


def t(second: int) -> str:
    """A session time `second` seconds after a fixed moment."""
    return timestamp(datetime(2026, 11, 21, 10, 0, tzinfo=UTC) + timedelta(seconds=second))


def session_with(*inputs: str) -> Session:
    session = Session.new("demo", t(0))
    for index, text in enumerate(inputs, 1):
        session.add_history(text, t(index), limit=100)
    return session


# -- small helpers -------------------------------------------------------------------


def test_timestamp_is_utc_with_milliseconds():
    moment = datetime(2026, 11, 21, 11, 0, 0, 123987, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(moment) == "2026-11-21T10:00:00.123Z"


def test_timestamps_sort_as_text_in_time_order():
    times = [t(s) for s in (0, 1, 59, 60, 3599, 3600, 86400)]
    assert sorted(times) == times


@pytest.mark.parametrize("name", ["demo", "a", "my-session_2.old", "9lives", "x" * 64])
def test_valid_session_names(name):
    assert valid_session_name(name)


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a b", "a/b", "x" * 65, "a.toml", "a.bak", "a.lock", "é"])
def test_invalid_session_names(name):
    assert not valid_session_name(name)


def test_shorten_keeps_short_text_and_marks_cut_text():
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "ab…"
    assert len(shorten("x" * 1000)) == VALUE_CHARS


# -- history -------------------------------------------------------------------------


def test_add_history_appends_in_order():
    session = session_with("a", "b", "c")
    assert session.history == [(t(1), "a"), (t(2), "b"), (t(3), "c")]


def test_add_history_collapses_a_repeat_of_the_last_input_moving_its_time():
    session = session_with("a", "b")
    assert session.add_history("b", t(9), limit=100)
    assert session.history == [(t(1), "a"), (t(9), "b")]


def test_add_history_keeps_a_repeat_that_is_not_the_last_input():
    session = session_with("a", "b")
    session.add_history("a", t(9), limit=100)
    assert session.history_inputs() == ["a", "b", "a"]


@pytest.mark.parametrize("blank", ["", " ", "\n", " \t\r\n "])
def test_add_history_ignores_blank_input(blank):
    session = session_with("a")
    assert not session.add_history(blank, t(9), limit=100)
    assert session.history == [(t(1), "a")]


def test_add_history_keeps_input_exactly_as_typed():
    session = session_with("  x := 3.  \n")
    assert session.history_inputs() == ["  x := 3.  \n"]


def test_add_history_caps_at_the_limit_dropping_the_oldest():
    session = Session.new("demo", t(0))
    for index in range(10):
        session.add_history(f"input {index}", t(index), limit=3)
    assert session.history == [(t(7), "input 7"), (t(8), "input 8"), (t(9), "input 9")]


def test_add_history_with_limit_zero_keeps_nothing():
    session = session_with()
    session.add_history("a", t(1), limit=0)
    assert session.history == []


def test_cap_history_under_the_limit_changes_nothing():
    session = session_with("a", "b")
    session.cap_history(5)
    assert session.history_inputs() == ["a", "b"]


# -- variables -----------------------------------------------------------------------


def test_record_variable_gives_increasing_order():
    session = session_with()
    first = session.record_variable("a", t(1), store="1")
    second = session.record_variable("b", t(2), store="2")
    assert (first.order, second.order) == (1, 2)


def test_record_variable_again_moves_it_to_the_end_of_the_order():
    session = session_with()
    session.record_variable("a", t(1), store="1")
    session.record_variable("b", t(2), store="2")
    again = session.record_variable("a", t(3), store="3")
    assert again.order == 3
    assert again.changed == t(3)
    assert [v.name for v in session.replay_order()] == ["b", "a"]


def test_record_variable_keeps_a_store_of_exactly_the_limit():
    session = session_with()
    variable = session.record_variable("a", t(1), store="x" * STORE_CHARS, source="a := 1")
    assert variable.store == "x" * STORE_CHARS
    assert variable.source is None


def test_record_variable_drops_a_store_longer_than_the_limit_and_keeps_the_source():
    session = session_with()
    variable = session.record_variable("a", t(1), store="x" * (STORE_CHARS + 1), source="a := Array new: 5000")
    assert variable.store is None
    assert variable.source == "a := Array new: 5000"
    assert variable.restorable


def test_record_variable_keeps_source_only_without_store():
    session = session_with()
    with_store = session.record_variable("a", t(1), store="3", source="a := 3")
    without = session.record_variable("b", t(2), source="b := Object new")
    assert (with_store.store, with_store.source) == ("3", None)
    assert (without.store, without.source) == (None, "b := Object new")


def test_record_variable_of_a_secret_keeps_only_the_sealed_value():
    session = session_with()
    variable = session.record_variable("pw", t(1), value="********", source="pw := 'hunter2'", sealed="stui-aead1:00:x")
    assert variable.source is None
    assert variable.is_secret
    assert session.secrets() == [variable]


def test_record_variable_shortens_the_value():
    session = session_with()
    variable = session.record_variable("a", t(1), value="y" * 10_000)
    assert len(variable.value) == VALUE_CHARS
    assert variable.value.endswith("…")


def test_a_variable_without_store_source_or_secret_is_not_restorable():
    session = session_with()
    assert not session.record_variable("a", t(1), value="a Socket").restorable


def test_forget_variable_answers_whether_it_was_known():
    session = session_with()
    session.record_variable("a", t(1), store="1")
    assert session.forget_variable("a")
    assert not session.forget_variable("a")
    assert session.variables == {}


def test_replay_order_is_by_order_then_time_then_name():
    session = session_with()
    session.record_variable("z", t(1), store="1")
    session.record_variable("y", t(2), store="2")
    session.variables["c"] = replace(session.variables["z"], name="c", order=2, changed=t(0))
    session.variables["b"] = replace(session.variables["z"], name="b", order=2, changed=t(0))
    assert [v.name for v in session.replay_order()] == ["z", "b", "c", "y"]


def test_copy_does_not_share_mutable_state():
    session = session_with("a")
    session.record_variable("v", t(1), store="1")
    session.preferences["toolbar"] = False
    copy = session.copy()
    copy.add_history("b", t(2), limit=100)
    copy.forget_variable("v")
    copy.preferences["toolbar"] = True
    copy.recent.append(RecentConnection("h:1", "gst", "3.2.5", t(2)))
    assert session.history_inputs() == ["a"]
    assert "v" in session.variables
    assert session.preferences == {"toolbar": False}
    assert session.recent == []


def test_connection_spec_describes_itself():
    assert ConnectionSpec().embedded
    assert ConnectionSpec().describe() == "embedded image"
    assert ConnectionSpec("host:4711", "sealed").describe() == "host:4711"


# -- merge ---------------------------------------------------------------------------


@pytest.fixture
def base() -> Session:
    session = session_with("a", "b")
    session.record_variable("x", t(3), value="1", store="1")
    session.record_variable("y", t(4), value="2", store="2")
    session.preferences.update({"toolbar": True, "edit_mode": "emacs"})
    return session


def test_merge_of_unchanged_copies_is_the_same_session(base):
    merged, notes = merge(base, base.copy(), base.copy())
    assert merged == base
    assert notes == []


def test_merge_does_not_modify_its_inputs(base):
    ours, theirs = base.copy(), base.copy()
    ours.record_variable("x", t(10), store="10")
    theirs.add_history("c", t(11), limit=100)
    before = (base.copy(), ours.copy(), theirs.copy())
    merge(base, ours, theirs)
    assert (base, ours, theirs) == before


def test_merge_takes_a_variable_only_they_changed(base):
    ours, theirs = base.copy(), base.copy()
    changed = theirs.record_variable("x", t(10), value="10", store="10")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == changed
    assert notes == []


def test_merge_keeps_a_variable_only_we_changed(base):
    ours, theirs = base.copy(), base.copy()
    changed = ours.record_variable("x", t(10), value="10", store="10")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == changed
    assert notes == []


def test_merge_takes_a_variable_only_they_added(base):
    ours, theirs = base.copy(), base.copy()
    added = theirs.record_variable("z", t(10), store="'new'")
    merged, _ = merge(base, ours, theirs)
    assert merged.variables["z"] == added


def test_merge_keeps_the_same_change_made_on_both_sides_without_a_note(base):
    ours, theirs = base.copy(), base.copy()
    ours.record_variable("x", t(10), store="10")
    theirs.record_variable("x", t(10), store="10")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"].store == "10"
    assert notes == []


def test_merge_both_changed_a_variable_their_later_change_wins_with_a_note(base):
    ours, theirs = base.copy(), base.copy()
    ours.record_variable("x", t(10), store="'ours'")
    later = theirs.record_variable("x", t(11), store="'theirs'")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == later
    assert len(notes) == 1
    assert notes[0].text.startswith("x was also changed by another stui")
    assert "from the other one" in notes[0].text


def test_merge_both_changed_a_variable_our_later_change_wins_with_a_note(base):
    ours, theirs = base.copy(), base.copy()
    later = ours.record_variable("x", t(11), store="'ours'")
    theirs.record_variable("x", t(10), store="'theirs'")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == later
    assert len(notes) == 1
    assert "from this one" in notes[0].text


def test_merge_both_changed_a_variable_at_the_same_time_keeps_ours(base):
    ours, theirs = base.copy(), base.copy()
    mine = ours.record_variable("x", t(10), store="'ours'")
    theirs.record_variable("x", t(10), store="'theirs'")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == mine
    assert len(notes) == 1


def test_merge_removed_by_us_and_changed_by_them_keeps_their_change_with_a_note(base):
    ours, theirs = base.copy(), base.copy()
    ours.forget_variable("x")
    changed = theirs.record_variable("x", t(10), store="10")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == changed
    assert [n.text for n in notes] == ["x was removed by one stui and changed by another; it is kept"]


def test_merge_changed_by_us_and_removed_by_them_keeps_our_change_with_a_note(base):
    ours, theirs = base.copy(), base.copy()
    changed = ours.record_variable("x", t(10), store="10")
    theirs.forget_variable("x")
    merged, notes = merge(base, ours, theirs)
    assert merged.variables["x"] == changed
    assert len(notes) == 1


def test_merge_removed_by_them_only_is_removed(base):
    ours, theirs = base.copy(), base.copy()
    theirs.forget_variable("y")
    merged, notes = merge(base, ours, theirs)
    assert set(merged.variables) == {"x"}
    assert notes == []


def test_merge_removed_by_us_only_stays_removed(base):
    ours, theirs = base.copy(), base.copy()
    ours.forget_variable("y")
    merged, notes = merge(base, ours, theirs)
    assert set(merged.variables) == {"x"}
    assert notes == []


def test_merge_removed_on_both_sides_is_removed_without_a_note(base):
    ours, theirs = base.copy(), base.copy()
    ours.forget_variable("y")
    theirs.forget_variable("y")
    merged, notes = merge(base, ours, theirs)
    assert "y" not in merged.variables
    assert notes == []


def test_merge_unites_histories_in_time_order(base):
    ours, theirs = base.copy(), base.copy()
    ours.add_history("ours 1", t(10), limit=100)
    theirs.add_history("theirs 1", t(11), limit=100)
    ours.add_history("ours 2", t(12), limit=100)
    merged, _ = merge(base, ours, theirs)
    assert merged.history_inputs() == ["a", "b", "ours 1", "theirs 1", "ours 2"]


def test_merge_keeps_an_entry_present_on_both_sides_once(base):
    ours, theirs = base.copy(), base.copy()
    ours.add_history("same", t(10), limit=100)
    theirs.add_history("same", t(10), limit=100)
    merged, _ = merge(base, ours, theirs)
    assert merged.history == [(t(1), "a"), (t(2), "b"), (t(10), "same")]


def test_merge_collapses_the_same_input_typed_on_each_side_into_the_later_one(base):
    ours, theirs = base.copy(), base.copy()
    ours.add_history("x", t(10), limit=100)
    theirs.add_history("x", t(11), limit=100)
    merged, _ = merge(base, ours, theirs)
    assert merged.history[-2:] == [(t(2), "b"), (t(11), "x")]


def test_merge_does_not_resurrect_an_entry_whose_time_we_moved(base):
    ours, theirs = base.copy(), base.copy()
    ours.add_history("b", t(10), limit=100)  # a repeat: only moves the time of "b"
    theirs.preferences["toolbar"] = False  # they saved something else
    merged, _ = merge(base, ours, theirs)
    assert merged.history == [(t(1), "a"), (t(10), "b")]


def test_merge_histories_without_extra_entries_answers_ours():
    ours = [(t(1), "a"), (t(2), "b")]
    assert merge_histories([], ours, [(t(1), "a")]) == ours
    assert merge_histories([], ours, []) == ours


def test_merge_histories_keeps_ties_in_time_with_ours_first():
    merged = merge_histories([], [(t(1), "ours")], [(t(1), "theirs")])
    assert merged == [(t(1), "ours"), (t(1), "theirs")]


def test_merge_takes_a_preference_only_they_changed(base):
    ours, theirs = base.copy(), base.copy()
    theirs.preferences["toolbar"] = False
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences == {"toolbar": False, "edit_mode": "emacs"}


def test_merge_keeps_a_preference_only_we_changed(base):
    ours, theirs = base.copy(), base.copy()
    ours.preferences["edit_mode"] = "vi"
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences["edit_mode"] == "vi"


def test_merge_preference_changed_on_both_sides_keeps_ours(base):
    ours, theirs = base.copy(), base.copy()
    ours.preferences["edit_mode"] = "vi"
    theirs.preferences["edit_mode"] = "other"
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences["edit_mode"] == "vi"


def test_merge_preference_removed_by_them_is_removed(base):
    ours, theirs = base.copy(), base.copy()
    del theirs.preferences["toolbar"]
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences == {"edit_mode": "emacs"}


def test_merge_preference_removed_by_us_stays_removed(base):
    ours, theirs = base.copy(), base.copy()
    del ours.preferences["toolbar"]
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences == {"edit_mode": "emacs"}


def test_merge_preferences_added_on_each_side_are_all_kept(base):
    ours, theirs = base.copy(), base.copy()
    ours.preferences["autosave"] = 5
    theirs.preferences["multiline"] = "on"
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences == {"toolbar": True, "edit_mode": "emacs", "autosave": 5, "multiline": "on"}


def test_merge_false_and_zero_preferences_are_values_not_absence(base):
    ours, theirs = base.copy(), base.copy()
    theirs.preferences["autosave"] = 0
    theirs.preferences["toolbar"] = False
    merged, _ = merge(base, ours, theirs)
    assert merged.preferences["autosave"] == 0
    assert merged.preferences["toolbar"] is False


def test_merge_takes_image_and_connection_only_they_changed(base):
    ours, theirs = base.copy(), base.copy()
    theirs.image = ImageSeen("gst", "3.2.5", "abc")
    theirs.connection = ConnectionSpec("host:1", "sealed")
    theirs.recent = [RecentConnection("host:1", "gst", "3.2.5", t(5))]
    merged, _ = merge(base, ours, theirs)
    assert (merged.image, merged.connection, merged.recent) == (theirs.image, theirs.connection, theirs.recent)


def test_merge_keeps_our_connection_when_both_changed_it(base):
    ours, theirs = base.copy(), base.copy()
    ours.connection = ConnectionSpec("ours:1", None)
    theirs.connection = ConnectionSpec("theirs:1", None)
    merged, _ = merge(base, ours, theirs)
    assert merged.connection == ConnectionSpec("ours:1", None)


def test_merge_keeps_the_earliest_created_and_latest_updated(base):
    ours, theirs = base.copy(), base.copy()
    ours.created, ours.updated = t(5), t(20)
    theirs.created, theirs.updated = t(1), t(30)
    merged, _ = merge(base, ours, theirs)
    assert (merged.created, merged.updated) == (t(1), t(30))


def test_merge_with_no_base_treats_everything_of_theirs_as_added():
    ours = session_with("ours")
    ours.record_variable("a", t(5), store="1")
    theirs = Session.new("demo", t(0))
    theirs.add_history("theirs", t(3), limit=100)
    theirs.record_variable("b", t(4), store="2")
    theirs.preferences["toolbar"] = False
    theirs.image = ImageSeen("gst", "3.2.5", "abc")
    merged, notes = merge(None, ours, theirs)
    assert set(merged.variables) == {"a", "b"}
    assert merged.history_inputs() == ["ours", "theirs"]
    assert merged.preferences == {"toolbar": False}
    assert merged.image == theirs.image
    assert notes == []


def test_merge_with_no_base_and_the_same_variable_on_both_sides_notes_it():
    ours, theirs = session_with(), session_with()
    ours.record_variable("a", t(5), store="1")
    later = theirs.record_variable("a", t(6), store="2")
    merged, notes = merge(None, ours, theirs)
    assert merged.variables["a"] == later
    assert len(notes) == 1


# -- code -------------------------------------------------------------------------------


def _method(name: str, source: str) -> dict[str, str]:
    return {"kind": "method", "name": name, "source": source, "category": "c"}


def test_a_redefinition_replaces_the_entry_where_it_stands():
    session = Session.new("s", t(0))
    session.record_change({"kind": "class", "name": "A", "source": "Object subclass: #A"}, t(0))
    for n in range(1000):
        session.record_change(_method("A>>x", f"x [ ^{n} ]"), t(0))
    session.record_change({"kind": "class", "name": "B", "source": "A subclass: #B"}, t(0))
    session.record_change({"kind": "class", "name": "A", "source": "Object subclass: #A instanceVariableNames: 'v'"}, t(0))
    assert [e.name for e in session.code] == ["A", "A>>x", "B"]
    assert session.code_entry("A>>x").source == "x [ ^999 ]"
    assert not session.record_change(_method("A>>x", "x [ ^999 ]"), t(0)), "the same source changes nothing"


def test_removing_what_the_session_defined_drops_it_and_a_class_takes_its_methods():
    session = Session.new("s", t(0))
    session.record_change({"kind": "class", "name": "A", "source": "Object subclass: #A"}, t(0))
    session.record_change(_method("A>>x", "x [ ]"), t(0))
    session.record_change(_method("A class>>y", "y [ ]"), t(0))
    session.record_change(_method("Object>>z", "z [ ]"), t(0))
    session.record_change({"kind": "removed", "of": "method", "name": "Object>>z"}, t(0))
    assert [e.name for e in session.code] == ["A", "A>>x", "A class>>y"]
    session.record_change({"kind": "removed", "of": "class", "name": "A"}, t(0))
    assert session.code == []


def test_removing_what_the_image_had_is_kept_as_a_removal():
    session = Session.new("s", t(0))
    session.record_change({"kind": "removed", "of": "method", "name": "Object>>halt"}, t(0))
    assert [(e.kind, e.name, e.source) for e in session.code] == [("removed", "Object>>halt", None)]
    session.record_change(_method("Object>>halt", "halt [ ]"), t(0))
    assert [(e.kind, e.name) for e in session.code] == [("method", "Object>>halt")]


def test_forgetting_a_class_forgets_its_methods():
    session = Session.new("s", t(0))
    session.record_change({"kind": "class", "name": "A", "source": "Object subclass: #A"}, t(0))
    session.record_change(_method("A>>x", "x [ ]"), t(0))
    session.record_change(_method("AB>>x", "x [ ]"), t(0))
    assert [e.name for e in session.forget_code("A")] == ["A", "A>>x"]
    assert [e.name for e in session.code] == ["AB>>x"]
    assert session.forget_code("Nope") == []


def test_merging_code_keeps_both_sides_additions_and_the_later_redefinition():
    base = Session.new("s", t(0))
    base.record_change(_method("A>>x", "x [ ^0 ]"), t(0))
    base.record_change(_method("A>>gone", "gone [ ]"), t(0))
    ours, theirs = base.copy(), base.copy()
    ours.record_change(_method("A>>ours", "ours [ ]"), t(1))
    ours.forget_code("A>>gone")
    theirs.record_change(_method("A>>x", "x [ ^2 ]"), t(2))
    theirs.record_change(_method("A>>theirs", "theirs [ ]"), t(2))
    merged, notes = merge(base, ours, theirs)
    assert [(e.name, e.source) for e in merged.code] == [
        ("A>>x", "x [ ^2 ]"), ("A>>ours", "ours [ ]"), ("A>>theirs", "theirs [ ]")]
    assert notes == []
    ours.record_change(_method("A>>x", "x [ ^1 ]"), t(1))
    merged, notes = merge(base, ours, theirs)
    assert merged.code_entry("A>>x").source == "x [ ^2 ]" and len(notes) == 1
