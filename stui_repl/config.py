"""The configuration file: every preference's default for this person.

`$XDG_CONFIG_HOME/stui/config.toml` (or `$STUI_HOME/config/config.toml`)
holds a `[preferences]` table with the keys of preferences.PREFERENCES. A
session's own preferences override it and command-line flags override both
(preferences.Settings). A bad file or value never stops stui: each problem is
one line naming the file and the key, and the default stands in; but a file
someone else could have written is refused, as everything stui trusts is
(trust.py).
`stui config --example` prints a file with every setting documented, made
from the same table, so the example cannot fall behind the program.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import paths, trust
from .settings import PREFERENCES, validated


def config_path() -> Path:
    return paths.config_dir() / "config.toml"


def load(path: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The preferences the file sets, and one message per problem in it."""
    path = path or config_path()
    try:
        data = trust.read(path, "the configuration file")
        if data is None:
            return {}, []
        if path.parent == paths.config_dir():
            trust.private_dir(path.parent, create=False)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); using the defaults"]
    import tomllib  # only when there is a file: 9 ms of every start otherwise

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"{path}: not valid TOML ({exc}); using the defaults"]
    problems = [f"{path}: unknown table or key {key!r}; ignored" for key in data if key != "preferences"]
    table = data.get("preferences", {})
    if not isinstance(table, dict):
        return {}, [*problems, f"{path}: [preferences] must be a table; using the defaults"]
    good, bad = validated(table, where=f"{path}, [preferences]")
    return good, problems + bad


def example() -> str:
    """A commented config.toml: every setting, what it does, what it allows, its default."""
    from .toml_text import toml_value  # not for loading: datetime and more, on every start

    lines = [
        "# stui's configuration: the defaults of every setting, for every session.",
        f"# stui reads it from {config_path()}.",
        "# A session's own settings (:set NAME VALUE) override these, and command-line",
        "# flags (--vi) override both. Uncomment a line to change it.",
        "",
        "[preferences]",
    ]
    for preference in PREFERENCES:
        lines.append("")
        lines.append(f"# {preference.help[:1].upper()}{preference.help[1:]}.")
        lines.append(f"# Allowed: {preference.allowed(toml=True)}.")
        lines.append(f"# {preference.name} = {toml_value(preference.default)}")
    return "\n".join(lines) + "\n"
