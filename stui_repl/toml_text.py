"""Writing TOML values: the one writer for session files, the configuration
example, and the messages that quote a value someone wrote in a file.

Reading is tomllib's (and tomlkit's, when a file's comments must be kept);
writing scalars by hand keeps saving a session quick (see session.toml).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f\ud800-\udfff]')


def _escape_basic(match: re.Match[str]) -> str:
    char = match.group()
    if char in _BASIC_ESCAPES:
        return _BASIC_ESCAPES[char]
    if "\ud800" <= char <= "\udfff":  # an undecodable byte: TOML cannot hold it
        return "\ufffd"
    return f"\\u{ord(char):04x}"


def toml_string(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_basic, text) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, TomlTime):
        return value.text
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"  {toml_value(item)},\n" for item in value) + "]"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


class TomlTime:
    """A time written as a TOML datetime (not a string), in the session spelling."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TomlTime) and other.text == self.text

    def as_datetime(self) -> datetime:
        return datetime.strptime(self.text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
