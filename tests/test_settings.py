"""Preferences: the settings table, parsing what is typed, validating files, layering."""

from __future__ import annotations

import pytest

from stui_repl.settings import BY_NAME, PREFERENCES, Preference, PreferenceError, Settings, lookup, validated


def test_every_default_is_allowed_by_its_own_setting():
    for preference in PREFERENCES:
        assert preference.validate(preference.default) == preference.default


def test_every_setting_has_a_unique_name_and_help():
    assert len(BY_NAME) == len(PREFERENCES)
    assert all(p.help for p in PREFERENCES)


@pytest.mark.parametrize(
    "text, value",
    [("on", True), ("ON", True), (" true ", True), ("yes", True), ("1", True),
     ("off", False), ("False", False), ("no", False), ("0", False)],
)
def test_parse_of_a_bool(text, value):
    assert lookup("toolbar").parse(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "2", "onn", "y"])
def test_parse_of_a_bad_bool_names_the_setting_and_what_is_allowed(text):
    with pytest.raises(PreferenceError) as raised:
        lookup("toolbar").parse(text)
    assert str(raised.value) == f"toolbar must be on or off, not {text.strip()!r}"


@pytest.mark.parametrize("text, value", [("0", 0), (" 42 ", 42), ("10000", 10_000), ("+7", 7)])
def test_parse_of_an_int(text, value):
    assert lookup("autosave").parse(text) == value


@pytest.mark.parametrize("text", ["", "ten", "1.5", "0x10", "-1"])
def test_parse_of_a_bad_int_names_the_setting_and_the_minimum(text):
    with pytest.raises(PreferenceError) as raised:
        lookup("history_limit").parse(text)
    assert str(raised.value) == f"history_limit must be a whole number of at least 0, not {text.strip()!r}"


def test_an_int_without_a_minimum_says_a_whole_number():
    preference = Preference("count", 3, "a count")
    assert preference.parse("-5") == -5
    with pytest.raises(PreferenceError, match=r"^count must be a whole number, not 'x'$"):
        preference.parse("x")


def test_seconds_are_bounded_so_no_sleep_or_timeout_overflows():
    """2**63 seconds once reached socket timeouts and sleeps: OverflowError."""
    for name in ("autosave", "restore_timeout", "heartbeat", "heartbeat_timeout", "reconnect_give_up"):
        preference = lookup(name)
        assert preference.validate(86_400) == 86_400
        with pytest.raises(PreferenceError, match=rf"^{name} must be a whole number from \d to 86400, not 9223372036854775807$"):
            preference.validate(2**63 - 1)


def test_a_minimum_is_inclusive():
    preference = Preference("count", 3, "a count", minimum=2)
    assert preference.validate(2) == 2
    with pytest.raises(PreferenceError, match="at least 2, not 1"):
        preference.validate(1)


@pytest.mark.parametrize("text, value", [("vi", "vi"), (" emacs ", "emacs")])
def test_parse_of_a_choice(text, value):
    assert lookup("edit_mode").parse(text) == value


@pytest.mark.parametrize("text", ["VI", "vim", ""])
def test_parse_of_a_bad_choice_lists_the_choices(text):
    with pytest.raises(PreferenceError) as raised:
        lookup("edit_mode").parse(text)
    assert str(raised.value) == f"edit_mode must be emacs or vi, not {text.strip()!r}"


def test_parse_of_a_choice_of_three_lists_them_all():
    with pytest.raises(PreferenceError, match="^multiline must be auto or on or off, not 'sometimes'$"):
        lookup("multiline").parse("sometimes")


def test_parse_of_free_text_keeps_it_stripped():
    assert Preference("greeting", "hi", "what to say").parse("  hello there ") == "hello there"


def test_a_setting_with_known_values_accepts_only_those():
    preference = Preference("colour", "red", "a colour", known=lambda: ["blue", "red"])
    assert preference.parse("blue") == "blue"
    with pytest.raises(PreferenceError, match=r"^colour must be a name \(:set colour lists them\), not 'green'$"):
        preference.parse("green")
    assert Settings().values_of("theme")[:1] and "monokai" in Settings().values_of("theme")
    assert Settings().values_of("toolbar") == ["on", "off"] and Settings().values_of("history_limit") == []


def test_the_theme_must_be_a_pygments_style():
    assert lookup("theme").parse("monokai") == "monokai"
    with pytest.raises(PreferenceError, match="^theme must be a name"):
        lookup("theme").parse("no-such-style")


@pytest.mark.parametrize(
    "name, value",
    [("toolbar", 1), ("toolbar", "on"), ("autosave", True), ("autosave", "30"), ("autosave", 1.5),
     ("autosave", -1), ("edit_mode", 3), ("edit_mode", "Vi"), ("theme", 5)],
)
def test_validate_refuses_a_file_value_of_the_wrong_type_or_range(name, value):
    with pytest.raises(PreferenceError) as raised:
        lookup(name).validate(value)
    assert str(raised.value).startswith(f"{name} must be ")
    toml = {True: "true", False: "false"}.get(value) if isinstance(value, bool) else None
    shown = toml or (f'"{value}"' if isinstance(value, str) else repr(value))
    assert str(raised.value).endswith(f"not {shown}")


def test_show_spells_booleans_as_on_and_off():
    assert (lookup("toolbar").show(True), lookup("toolbar").show(False)) == ("on", "off")
    assert lookup("autosave").show(30) == "30"


def test_lookup_of_an_unknown_setting():
    with pytest.raises(PreferenceError, match=r"^no setting named 'colour' \(:set lists them\)$"):
        lookup("colour")


def test_validated_keeps_good_entries_and_reports_each_bad_one():
    good, problems = validated(
        {"toolbar": False, "autosave": -3, "edit_mode": "vi", "colour": "red", "multiline": True},
        where="session demo, [preferences]",
    )
    assert good == {"toolbar": False, "edit_mode": "vi"}
    assert problems == [
        "session demo, [preferences]: autosave must be a whole number from 0 to 86400, not -3; using the default",
        "session demo, [preferences]: no setting named 'colour'; ignored",
        "session demo, [preferences]: multiline must be \"auto\" or \"on\" or \"off\", not true; using the default",
    ]


def test_validated_of_nothing_is_nothing():
    assert validated({}, where="config") == ({}, [])


def test_settings_fall_back_to_the_defaults():
    settings = Settings()
    assert settings["autosave"] == 30
    assert settings.source("autosave") == "default"


def test_settings_layers_flags_over_session_over_config_over_default():
    settings = Settings(
        config={"autosave": 1, "edit_mode": "vi", "toolbar": False},
        session={"autosave": 2, "edit_mode": "emacs"},
        flags={"autosave": 3},
    )
    assert [settings[n] for n in ("autosave", "edit_mode", "toolbar", "multiline")] == [3, "emacs", False, "auto"]
    assert [settings.source(n) for n in ("autosave", "edit_mode", "toolbar", "multiline")] == [
        "command line", "session", "config file", "default",
    ]


def test_a_false_or_zero_value_in_a_layer_still_overrides():
    settings = Settings(config={"toolbar": True, "autosave": 10}, session={"toolbar": False}, flags={"autosave": 0})
    assert (settings["toolbar"], settings["autosave"]) == (False, 0)
    assert (settings.source("toolbar"), settings.source("autosave")) == ("session", "command line")


def test_settings_copy_their_layers():
    session = {"autosave": 2}
    settings = Settings(session=session)
    session["autosave"] = 99
    assert settings["autosave"] == 2


def test_settings_of_an_unknown_name_is_an_error():
    with pytest.raises(PreferenceError):
        Settings()["colour"]


def test_rows_show_value_source_and_help():
    settings = Settings(session={"toolbar": False})
    assert settings.rows(["toolbar"]) == [("toolbar", "off", "session", lookup("toolbar").help)]
    assert [row[0] for row in settings.rows()] == [p.name for p in PREFERENCES]
