"""The session file's TOML: reading, migrating and writing it, without I/O.

The layout is described for people in docs/session-format.md. Two costs
shaped it (measured in benchmarks/):

* Reading. 10,000 history entries as TOML arrays or tables take tomllib
  70-180 ms and tomlkit seconds, so the history is one multi-line literal
  string with an entry per line, which tomllib reads in one `find` and we
  split ourselves (about 15 ms in all).
* Writing. tomlkit keeps a person's comments but needs ~125 ms to parse and
  ~50 ms to build a session with 200 variables, against a budget of 20 ms per
  save. So stui writes its own canonical text, and uses tomlkit only when the
  file holds something its own writer would drop: comments, or strings a
  person wrote over several lines. The tomlkit document is then kept for the
  next save, which only has to dump it.

The code a session defined is a `[[code]]` table per definition, its
source a multi-line literal string, so that a person reads and edits it as
Smalltalk. It is written by stui's own writer between the rest and the
history, never through tomlkit (a multi-line string in the head would
send every save there): comments inside it are not kept.

Older formats are migrated on read by the steps in MIGRATIONS; a newer
format is refused and the file left alone.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from itertools import chain, repeat
from typing import Any

from ..toml_text import TomlTime, toml_key, toml_value
from .model import CODE_KINDS, CodeEntry, ConnectionSpec, ImageSeen, RecentConnection, Session, Variable, timestamp

FORMAT = 2

HEADER = (
    "# A stui session: see `man stui` (SESSION FILES) or docs/session-format.md.\n"
    "# You may edit it while no stui uses it; comments you add are kept.\n"
)
HISTORY_HEADER = (
    "[history]\n"
    "# One input per line: when (UTC), a space, the input. Within an input \\n is a\n"
    "# line break, \\\\ a backslash, \\' a quote; the rest is as typed.\n"
)
CODE_HEADER = (
    "# The code this session defined, one [[code]] per class, method or global, in the\n"
    "# order stui files it into a fresh image (before the variables). Edit a source\n"
    "# (a method as `pattern [ body ]`) or delete a table while no stui uses this file.\n"
)
_OWN_COMMENTS = (
    frozenset(HEADER.splitlines()) | frozenset(HISTORY_HEADER.splitlines()[1:]) | frozenset(CODE_HEADER.splitlines())
)


class SessionFormatError(ValueError):
    """The text is not a session file stui can read: says where and why."""


class NewerFormat(SessionFormatError):
    """Written by a newer stui; must not be touched."""


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """Format 2 adds [[code]]: a format-1 session defined none."""
    data.setdefault("code", [])
    return data


# Each step takes the raw tables of format N and answers those of format N+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_format_1}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    version = data.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SessionFormatError(f"format: expected a version number, found {version!r}")
    if version > FORMAT:
        raise NewerFormat(f"it has format {version}, newer than this stui understands (up to {FORMAT})")
    while version < FORMAT:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SessionFormatError(f"no migration from format {version}")
        data = step(data)
        version += 1
        data["format"] = version
    return data


# -- reading ----------------------------------------------------------------------------


class _Reader:
    """Typed access to the raw tables, with errors that name the key."""

    def __init__(self, data: dict[str, Any], path: str = "") -> None:
        self.data = data
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type, default: Any = None) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = {str: "text", int: "a whole number", dict: "a table", list: "an array"}[kind]
            found = {str: "text", dict: "a table", list: "an array", bool: "a boolean", int: "a number", float: "a number"}.get(
                type(value), "a time"
            )
            raise SessionFormatError(f"{self._where(key)}: expected {expected}, found {found}")
        return value

    def time(self, key: str, default: str) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, datetime):
            return timestamp(value if value.tzinfo else value.replace(tzinfo=UTC))
        if isinstance(value, str):
            normal = normal_time(value)
            if normal is not None:
                return normal
        raise SessionFormatError(f"{self._where(key)}: expected a time like 2026-11-21T10:00:00.000Z, found {value!r}")

    def table(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict, {}), self._where(key))


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
_HISTORY_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z) (.*)")


def normal_time(text: str) -> str | None:
    """A UTC time a person wrote (milliseconds optional), in the session spelling; None if it is no real time."""
    if not _TIME.fullmatch(text):
        return None
    try:
        moment = datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z" if "." in text else "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return timestamp(moment)
_UNESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)")
_SIMPLE_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    if "\\x" not in text and "\\u" not in text:
        # Only the escapes str.replace can undo, once escaped backslashes
        # are split off (a callback per escape took 5 ms of a full history).
        return "\\".join(
            part.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t").replace("\\'", "'")
            for part in text.split("\\\\")
        )

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) > 1:
            return chr(int(code[1:], 16))
        return _SIMPLE_UNESCAPES.get(code, "\\" + code)

    return _UNESCAPE.sub(one, text)


# The history as stui writes it: each line a time in the session spelling,
# a space and an input.
_CANONICAL_HISTORY = re.compile(r"(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [^\n]*+\n)*+")


def parse_history(entries: str, fallback_time: str) -> list[tuple[str, str]]:
    """Lines of `time input`; a line a person added without a time takes the one before."""
    if _CANONICAL_HISTORY.fullmatch(entries):
        return _parse_canonical_history(entries)
    history: list[tuple[str, str]] = []
    when = fallback_time
    for line in entries.split("\n"):
        if not line:
            continue
        if line[23:25] == "Z " and line[10:11] == "T" and line[4:5] == line[7:8] == "-" and line[19:20] == ".":
            when, text = line[:24], line[25:]
        else:
            match = _HISTORY_LINE.match(line)
            normal = normal_time(match.group(1)) if match else None
            if match and normal is not None:
                when, text = normal, match.group(2)
            else:
                text = line
        history.append((when, _unescape(text)))
    return history


def _parse_canonical_history(entries: str) -> list[tuple[str, str]]:
    """As render_history writes: the inputs are unescaped in one pass over
    them all, joined, not one per entry (a full history: 4 ms, not 23)."""
    lines = entries.split("\n")
    lines.pop()  # after the last line break
    texts = [line[25:] for line in lines]
    joined = _SEPARATOR.join(texts)
    if "\\" in joined:
        unescaped = _unescape(joined).split(_SEPARATOR)
        # An input holding the separator, raw or escaped, is unescaped on its own.
        texts = unescaped if len(unescaped) == len(texts) else [_unescape(text) for text in texts]
    return [(line[:24], text) for line, text in zip(lines, texts, strict=True)]


def parse(text: str) -> Session:
    """A session from the file's text; SessionFormatError says what is wrong.

    The [[code]] tables stui wrote itself are read by split_canonical_code
    (tomllib takes ~35 ms for 1,000 of them, a regex ~5 ms); a file whose code
    a person has reformatted is read by tomllib whole.
    """
    canonical = split_canonical_code(text)
    try:
        data = tomllib.loads(text if canonical is None else canonical[0])
    except tomllib.TOMLDecodeError as exc:
        raise SessionFormatError(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise SessionFormatError("not valid TOML: nested too deeply") from None
    data = migrate(data)
    if canonical is None:
        return from_data(data)
    if "code" in data:  # [[code]] elsewhere too: not the text stui wrote
        return from_data(migrate(tomllib.loads(text)))
    session = from_data(data)
    session.code = canonical[1]
    return session


_CANONICAL_ENTRY = re.compile(
    r'\[\[code\]\]\nkind = "(class|method|global|removed)"\nname = "([^"\\\x00-\x1f\x7f]+)"\n'
    r'(?:category = "([^"\\\x00-\x1f\x7f]*)"\n)?'
    r"changed = (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\n"
    r"(?:source = '''\n(.*?)\n'''\n)?\n",
    re.DOTALL,
)


def split_canonical_code(text: str) -> tuple[str, list[CodeEntry]] | None:
    """The text without its [[code]] tables, and the entries they hold, when
    they are exactly as render_code writes them; None otherwise (tomllib then
    reads them, and says what is wrong with them)."""
    start = text.find(CODE_HEADER)
    if start < 0 or "[[code]]" in text[:start]:
        return None
    entries: list[CodeEntry] = []
    at = start + len(CODE_HEADER)
    match = _CANONICAL_ENTRY.match(text, at)
    while match is not None:
        kind, name, category, changed, source = match.groups()
        if source is None and kind != "removed":
            return None
        if source is not None and (_RARE_CHARACTERS.search(source) or "\r" in source):
            return None  # tomllib refuses control characters in a literal string: so must this
        entries.append(CodeEntry(name=name, kind=kind, changed=changed, source=source, category=category))
        at = match.end()
        match = _CANONICAL_ENTRY.match(text, at)
    rest = text[at:]
    if not (rest.startswith("[history]") or not rest) or "\n[[code]]" in rest:
        return None
    return text[:start] + rest, entries


def from_data(data: dict[str, Any]) -> Session:
    root = _Reader(data)
    meta = root.table("session")
    name = meta.get("name", str, "")
    created = meta.time("created", "1970-01-01T00:00:00.000Z")
    session = Session(name=name, created=created, updated=meta.time("updated", created))
    session.stui_version = meta.get("stui_version", str, "")

    image = root.table("image")
    if image.data:
        session.image = ImageSeen(image.get("dialect", str, ""), image.get("version", str, ""), image.get("id", str, ""))

    connection = root.table("connection")
    session.connection = ConnectionSpec(connection.get("address", str), connection.get("token", str))
    for index, entry in enumerate(connection.get("recent", list, [])):
        if not isinstance(entry, dict):
            raise SessionFormatError(f"connection.recent[{index}]: expected a table")
        recent = _Reader(entry, f"connection.recent[{index}]")
        session.recent.append(
            RecentConnection(
                recent.get("address", str, ""), recent.get("dialect", str, ""),
                recent.get("version", str, ""), recent.time("last_used", created),
            )
        )

    # Any value is kept: a bad one is reported (preferences.validated) and its
    # default used, not a reason to call the whole file corrupt.
    session.preferences.update(root.get("preferences", dict, {}))

    for order, (var_name, table) in enumerate(root.get("variables", dict, {}).items(), 1):
        if not isinstance(table, dict):
            raise SessionFormatError(f"variables.{var_name}: expected a table")
        var = _Reader(table, f"variables.{var_name}")
        session.variables[var_name] = Variable(
            name=var_name,
            order=var.get("order", int, order),
            changed=var.time("changed", session.updated),
            value_class=var.get("class", str, ""),
            value=var.get("value", str, ""),
            store=var.get("store", str),
            source=var.get("source", str),
            sealed=var.get("secret", str),
        )

    session.code = parse_code(root.get("code", list, []), session.updated)

    history = root.table("history")
    session.history = parse_history(history.get("entries", str, ""), session.created)
    return session


def parse_code(tables: list[Any], fallback_time: str) -> list[CodeEntry]:
    """The [[code]] tables. A source ends with the line break before its closing quotes, which is not part of it."""
    entries: list[CodeEntry] = []
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise SessionFormatError(f"code[{index}]: expected a table")
        entry = _Reader(table, f"code[{index}]")
        kind = entry.get("kind", str, "method")
        if kind not in CODE_KINDS:
            raise SessionFormatError(f"code[{index}].kind: expected one of {', '.join(CODE_KINDS)}, found {kind!r}")
        name = entry.get("name", str, "")
        if not name:
            raise SessionFormatError(f"code[{index}].name: missing")
        source = entry.get("source", str)
        if source is None and kind != "removed":
            raise SessionFormatError(f"code[{index}].source: missing")
        changed = table.get("changed")
        if isinstance(changed, datetime) and changed.tzinfo is UTC and changed.year >= 1000:  # as stui writes it: 1,000 of these
            when = f"{changed:%Y-%m-%dT%H:%M:%S}.{changed.microsecond // 1000:03d}Z"
        else:
            when = entry.time("changed", fallback_time)
        entries.append(CodeEntry(
            name=name, kind=kind, changed=when,
            source=source.removesuffix("\n") if source is not None else None,
            category=entry.get("category", str),
        ))
    return entries


# -- writing ----------------------------------------------------------------------------


def to_data(session: Session) -> dict[str, Any]:
    """The tables of the file, in the order they are written (history apart)."""
    data: dict[str, Any] = {"format": FORMAT}
    data["session"] = {
        "name": session.name,
        "created": TomlTime(session.created),
        "updated": TomlTime(session.updated),
        "stui_version": session.stui_version,
    }
    if session.image is not None:
        data["image"] = {"dialect": session.image.dialect, "version": session.image.version, "id": session.image.image_id}
    connection: dict[str, Any] = {}
    if session.connection.address is not None:
        connection["address"] = session.connection.address
    if session.connection.token is not None:
        connection["token"] = session.connection.token
    if session.recent:
        connection["recent"] = [
            {"address": r.address, "dialect": r.dialect, "version": r.version, "last_used": TomlTime(r.last_used)}
            for r in session.recent
        ]
    data["connection"] = connection
    data["preferences"] = {key: value for key, value in sorted(session.preferences.items()) if _writable(value)}
    variables: dict[str, Any] = {}
    for variable in session.replay_order():
        table: dict[str, Any] = {"class": variable.value_class, "value": variable.value}
        if variable.sealed is not None:
            table["secret"] = variable.sealed
        if variable.store is not None:
            table["store"] = variable.store
        if variable.source is not None:
            table["source"] = variable.source
        table["order"] = variable.order
        table["changed"] = TomlTime(variable.changed)
        variables[variable.name] = table
    data["variables"] = variables
    return data


def _writable(value: Any) -> bool:
    """Whether a preference's value can be written back: a bad one a person
    wrote is kept (and reported when the session opens), but no value may
    stop the rest of the session being saved."""
    try:
        toml_value(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return False
    return True


def _emit_table(lines: list[str], path: str, table: dict[str, Any]) -> None:
    scalars = [(key, value) for key, value in table.items() if not isinstance(value, dict)]
    if scalars or len(scalars) == len(table):  # [variables] alone says nothing: its tables do
        lines.append(f"[{path}]")
        lines.extend(f"{toml_key(key)} = {toml_value(value)}" for key, value in scalars)
        lines.append("")
    for key, value in table.items():
        if isinstance(value, dict):
            _emit_table(lines, f"{path}.{toml_key(key)}", value)


def render_head(data: dict[str, Any]) -> str:
    """stui's own canonical text for everything but the history."""
    lines = [f"format = {data['format']}", ""]
    for key, value in data.items():
        if isinstance(value, dict):
            _emit_table(lines, toml_key(key), value)
    return HEADER + "\n".join(lines) + "\n"


_RARE_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_NOT_LITERAL = re.compile(r"'''|\r|[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def _source_value(text: str) -> str:
    """A source as a multi-line string, a line break after the opening quotes and before the closing ones.

    A literal string (no escapes, so it reads as Smalltalk) unless the source
    holds what one cannot: three quotes in a row, or a control character other
    than tab and line break. Then a basic string with escapes.
    """
    if not _NOT_LITERAL.search(text):
        return "'''\n" + text + "\n'''"
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r")
    escaped = _RARE_CHARACTERS.sub(_escape_control, escaped)
    return '"""\n' + escaped + '\n"""'


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":  # an undecodable byte: TOML cannot hold it
        return "\ufffd"
    return f"\\u{ord(char):04x}"


def render_code(code: list[CodeEntry]) -> str:
    """The [[code]] tables, by stui's own writer (see the module's docstring)."""
    if not code:
        return ""
    return CODE_HEADER + "".join(map(_render_entry, code))


@functools.lru_cache(maxsize=16384)
def _render_entry(entry: CodeEntry) -> str:
    """One [[code]] table. Entries are immutable and most are the same from one
    save to the next: a session of 1,000 methods renders in a millisecond."""
    parts = [f"[[code]]\nkind = {toml_value(entry.kind)}\nname = {toml_value(entry.name)}\n"]
    if entry.category is not None:
        parts.append(f"category = {toml_value(entry.category)}\n")
    parts.append(f"changed = {entry.changed}\n")
    if entry.source is not None:
        parts.append(f"source = {_source_value(entry.source)}\n")
    parts.append("\n")
    return "".join(parts)


_QUOTE_RUN = re.compile(r"'{3,}")


def _escape_rare(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":  # an undecodable byte: TOML cannot hold it
        return "\ufffd"
    return f"\\x{ord(char):02x}"


def _escape_quotes(match: re.Match[str]) -> str:
    return "''" + "\\'" * (len(match.group()) - 2)


def escape_history_input(text: str) -> str:
    """One line of the literal string. A third quote in a row would end it, so from the third on they are escaped.

    str.replace for the common cases and a regex only when needed: saving a
    full history must stay within a few milliseconds.
    """
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if _RARE_CHARACTERS.search(text):
        text = _RARE_CHARACTERS.sub(_escape_rare, text)
    if "'''" in text:
        text = _QUOTE_RUN.sub(_escape_quotes, text)
    return text


# Joins the inputs for one pass of escaping. A C1 control nobody types, and in
# Latin-1, so an ASCII history stays a one-byte-per-character string (scans
# of a wider string are slower); an input holding it is escaped on its own.
_SEPARATOR = "\x9e"


def render_history(history: list[tuple[str, str]], comments: tuple[str, str] = ("", "")) -> str:
    # One regex pass over all the inputs joined, not one per entry: saving a
    # full history then costs a few milliseconds instead of ~20.
    texts = [text for _, text in history]
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != max(len(texts) - 1, 0):  # an input holds the separator itself
        escaped = [escape_history_input(text) for text in texts]
    else:
        escaped = escape_history_input(joined).split(_SEPARATOR) if texts else []
    whens = [when for when, _ in history]
    body = "".join(chain.from_iterable(zip(whens, repeat(" "), escaped, repeat("\n"), strict=False)))
    before, after = comments
    return HISTORY_HEADER + before + "entries = '''\n" + body + "'''\n" + after


def history_comments(tail: str) -> tuple[str, str]:
    """A person's comment lines in the [history] table: those before `entries` and after its string."""
    opening = tail.find("'''")
    closing = tail.find("'''", opening + 3) if opening >= 0 else -1
    if closing < 0:
        return "", ""
    head_lines = tail[:opening].splitlines()[1:]  # not the [history] line itself
    before = "".join(f"{line}\n" for line in head_lines if line.lstrip().startswith("#") and line not in _OWN_COMMENTS)
    after = "".join(f"{line}\n" for line in tail[closing + 3:].splitlines() if line.lstrip().startswith("#"))
    return before, after


# -- writing a file a person has edited -------------------------------------------------

_CODE_START = re.compile(r"^(?:" + re.escape(CODE_HEADER.splitlines()[0]) + r"|\[\[code\]\])", re.MULTILINE)
_HISTORY_START = re.compile(r"^\[history\][ \t]*(#.*)?$", re.MULTILINE)
# A value opening a multi-line string: stui's writer never starts one (it escapes quotes).
_MULTILINE_VALUE = re.compile(r"""^[ \t]*[A-Za-z0-9_."' -]+=[ \t]*('''|\"\"\")""", re.MULTILINE)
_COMMENT_OUTSIDE_STRINGS = re.compile(r"""^(?:[^"'#\n]|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')*#""", re.MULTILINE)


def split_head(text: str) -> tuple[str, str] | None:
    """The text before `[history]` and from it, when history is the last table.

    str.find leads each regex to where it can match: scanning a long session
    line by line from the start takes milliseconds.
    """
    match = _search_from_hint(_HISTORY_START, text, "[history]")
    if match is None:
        return None
    tail = text[match.start():]
    opening = tail.find("'''")
    closing = tail.find("'''", opening + 3) if opening >= 0 else -1
    after_entries = tail[closing + 3:] if closing >= 0 else tail[match.end() - match.start():]
    if re.search(r"^\s*\[", after_entries, re.MULTILINE):
        return None  # a table after [history]: no simple split
    head = text[: match.start()]
    code = _search_from_hint(_CODE_START, head, "[[code]]", CODE_HEADER.splitlines()[0])
    return (head[: code.start()] if code else head), tail


def _search_from_hint(pattern: re.Pattern[str], text: str, *hints: str) -> re.Match[str] | None:
    """pattern.search(text), starting at the line of the first of `hints` (the pattern cannot match before it)."""
    found = [at for at in (text.find(hint) for hint in hints) if at >= 0]
    if not found:
        return None
    return pattern.search(text, text.rfind("\n", 0, min(found)) + 1)


def needs_tomlkit(head: str) -> bool:
    """True when the head holds what the canonical writer would lose."""
    if _MULTILINE_VALUE.search(head):
        return True
    for match in _COMMENT_OUTSIDE_STRINGS.finditer(head):
        line_start = head.rfind("\n", 0, match.end()) + 1
        line_end = head.find("\n", match.end())
        line = head[line_start: line_end if line_end >= 0 else len(head)]
        if line not in _OWN_COMMENTS:
            return True
    return False


def _to_tomlkit(value: Any) -> Any:
    if isinstance(value, TomlTime):
        return value.as_datetime()
    if isinstance(value, dict):
        return {k: _to_tomlkit(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_tomlkit(v) for v in value]
    return value


def _same(old: Any, new: Any) -> bool:
    unwrapped = old.unwrap() if hasattr(old, "unwrap") else old
    if isinstance(unwrapped, datetime) and isinstance(new, datetime):
        return timestamp(unwrapped) == timestamp(new)
    if isinstance(unwrapped, (date, time)) and not isinstance(new, type(unwrapped)):
        return False
    return type(unwrapped) is type(new) and unwrapped == new


def _sync(container: Any, new: dict[str, Any]) -> None:
    """Make a tomlkit container hold `new`, touching only what changed (so comments stay)."""
    import tomlkit

    for key in [k for k in container if k not in new]:
        del container[key]
    for key, value in new.items():
        if isinstance(value, dict) and key != "recent":
            existing = container.get(key)
            if existing is None or not isinstance(existing, dict):
                table = tomlkit.table()
                container[key] = table
                existing = container[key]
            _sync(existing, value)
        elif key not in container or not _same(container[key], value):
            container[key] = value


class _EditedHeads:
    """The tomlkit document of the last edited head we wrote, to skip re-parsing it."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.document: Any = None

    def parse(self, head: str) -> Any:
        import tomlkit

        if head == self.text and self.document is not None:
            return self.document
        return tomlkit.parse(head)

    def remember(self, head: str | None, document: Any) -> None:
        self.text, self.document = head, document


_edited = _EditedHeads()


def render(session: Session, previous: str | None = None) -> str:
    """The file's text; keeps a person's comments in `previous` when there are any."""
    data = to_data(session)
    parts = split_head(previous) if previous else None
    history = render_history(session.history, history_comments(parts[1]) if parts else ("", ""))
    head = parts[0] if parts else previous
    code = render_code(session.code)
    if not head or not needs_tomlkit(head):
        return render_head(data) + code + history
    from tomlkit.exceptions import TOMLKitError

    try:
        document = _edited.parse(head)
        document.pop("history", None)
        document.pop("code", None)
        _sync(document, _to_tomlkit(data))
        new_head = document.as_string()
    except (TOMLKitError, ValueError, TypeError, OverflowError):  # tomlkit cannot keep the edits: save all the same
        _edited.remember(None, None)
        return render_head(data) + code + history
    _edited.remember(new_head, document)
    if not new_head.endswith("\n\n"):
        new_head += "\n" if new_head.endswith("\n") else "\n\n"
    return new_head + code + history
