"""Preferences: one table says what each setting is, allows and defaults to.

`:set`, the session file, the configuration file and `--help` all read this
table, so a setting is described in one place. Values come in layers, each
overriding the one before: the defaults here, the configuration file, the
session's own `[preferences]`, then command-line flags. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple


class PreferenceError(ValueError):
    """A setting's name or value is not allowed; the message says what is."""


class Preference(NamedTuple):
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    # For settings whose allowed values are only known at run time (colour themes).
    known: Callable[[], list[str]] | None = None

    @property
    def kind(self) -> str:
        if isinstance(self.default, bool):
            return "bool"
        if isinstance(self.default, int):
            return "int"
        return "str"

    def allowed(self, *, toml: bool = False) -> str:
        """What may be given: as typed at `:set`, or as written in a TOML file."""
        if self.choices:
            return " or ".join(f'"{choice}"' if toml else choice for choice in self.choices)
        if self.kind == "bool":
            return "true or false" if toml else "on or off"
        if self.kind == "int":
            if self.minimum is not None and self.maximum is not None:
                return f"a whole number from {self.minimum} to {self.maximum}"
            return f"a whole number of at least {self.minimum}" if self.minimum is not None else "a whole number"
        if self.known is not None:
            return f'a name such as "{self.default}" (:set {self.name} lists them)' if toml else f"a name (:set {self.name} lists them)"
        return "any text"

    def parse(self, text: str) -> Any:
        """A value typed at `:set` (always text) into the setting's type."""
        word = text.strip()
        if self.kind == "bool":
            lowered = word.lower()
            if lowered in ("on", "true", "yes", "1"):
                return True
            if lowered in ("off", "false", "no", "0"):
                return False
        elif self.kind == "int":
            try:
                return self.validate(int(word), toml=False)
            except ValueError:
                pass
        else:
            return self.validate(word, toml=False)
        raise PreferenceError(f"{self.name} must be {self.allowed()}, not {word!r}")

    def validate(self, value: Any, *, toml: bool = True, thorough: bool = True) -> Any:
        """A value read from a file, already typed by TOML (so the message speaks TOML),
        or one `:set` has parsed (toml=False: the message speaks as `:set` does).

        `thorough=False` skips values only known at run time (the themes):
        listing them imports Pygments' styles, too slow for every `stui -c`;
        the REPL checks the theme when it applies it.
        """
        kind_ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
        }[self.kind]
        if kind_ok and self.choices and value not in self.choices:
            kind_ok = False
        if kind_ok and self.minimum is not None and value < self.minimum:
            kind_ok = False
        if kind_ok and self.maximum is not None and value > self.maximum:
            kind_ok = False
        if kind_ok and thorough and self.known is not None and value not in self.known():
            kind_ok = False
        if not kind_ok:
            from .toml_text import toml_value  # datetime and more: not on every start

            shown = toml_value(value) if toml else repr(value)
            raise PreferenceError(f"{self.name} must be {self.allowed(toml=toml)}, not {shown}")
        return value

    def show(self, value: Any) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)


def _pygments_styles() -> list[str]:
    from pygments.styles import get_all_styles

    return sorted(get_all_styles())


# The most seconds a setting may ask for: far more than anyone waits, and
# far less than sleeps and socket timeouts can hold (2**63 s overflows them).
A_DAY = 86_400

PREFERENCES: tuple[Preference, ...] = (
    Preference("edit_mode", "emacs", "key bindings at the prompt", choices=("emacs", "vi")),
    Preference("theme", "default", "colour theme for highlighting (a Pygments style name)", known=_pygments_styles),
    Preference("toolbar", True, "show the bottom toolbar"),
    Preference(
        "multiline", "auto",
        "Enter: auto runs input once it is complete; on always adds a line (Escape Enter runs); off always runs",
        choices=("auto", "on", "off"),
    ),
    Preference("complete_while_typing", False, "offer completions as you type, not only on Tab"),
    Preference("pager", "auto", "auto shows a result taller than the screen through $PAGER (else less, with LESS=-R unless set); off never", choices=("auto", "off")),
    Preference("history_limit", 10_000, "inputs kept in the session's history", minimum=0),
    Preference("autosave", 30, "seconds between automatic saves of the session (0: only on exit and :session save)", minimum=0,
               maximum=A_DAY),
    Preference(
        "restore_timeout", 10,
        "seconds each variable may take to be re-created when a session is opened (one that takes longer is stopped and skipped)",
        minimum=1, maximum=A_DAY,
    ),
    Preference("heartbeat", 5, "seconds between pings of an idle image, to notice a lost one (0: no pings)", minimum=0,
               maximum=A_DAY),
    Preference("heartbeat_timeout", 10, "seconds an image may take to answer a ping or an interrupt", minimum=1,
               maximum=A_DAY),
    Preference("reconnect_give_up", 120, "seconds to keep trying to reconnect before giving up", minimum=0,
               maximum=A_DAY),
)

BY_NAME: dict[str, Preference] = {p.name: p for p in PREFERENCES}


def lookup(name: str) -> Preference:
    try:
        return BY_NAME[name]
    except KeyError:
        raise PreferenceError(f"no setting named {name!r} (:set lists them)") from None


def validated(values: Mapping[str, Any], *, where: str) -> tuple[dict[str, Any], list[str]]:
    """Keep the good entries of a file's table; one message per bad one.

    A bad value must not stop stui from starting: it is reported, naming the
    file and the key, and the layer below supplies the setting.
    """
    good: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in values.items():
        if name not in BY_NAME:
            problems.append(f"{where}: no setting named {name!r}; ignored")
            continue
        try:
            good[name] = BY_NAME[name].validate(value, thorough=False)
        except PreferenceError as exc:
            problems.append(f"{where}: {exc}; using the default")
    return good, problems


class Settings:
    """The layered view: flags over session over configuration over defaults."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        session: Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = dict(config or {})
        self.session = dict(session or {})
        self.flags = dict(flags or {})

    def __getitem__(self, name: str) -> Any:
        for layer in (self.flags, self.session, self.config):
            if name in layer:
                return layer[name]
        return lookup(name).default

    def source(self, name: str) -> str:
        for label, layer in (("command line", self.flags), ("session", self.session), ("config file", self.config)):
            if name in layer:
                return label
        return "default"

    def values_of(self, name: str) -> list[str]:
        """The values :set NAME accepts, when they can be listed."""
        preference = lookup(name)
        if preference.choices:
            return list(preference.choices)
        if preference.kind == "bool":
            return ["on", "off"]
        return preference.known() if preference.known else []

    def rows(self, names: Iterable[str] | None = None) -> list[tuple[str, str, str, str]]:
        """(name, value, where it comes from, help) for `:set`."""
        chosen = [lookup(n) for n in names] if names is not None else PREFERENCES
        return [(p.name, p.show(self[p.name]), self.source(p.name), p.help) for p in chosen]
