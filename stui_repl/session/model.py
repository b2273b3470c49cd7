"""The session model: what a session remembers, and how two copies merge.

A session is a person's accumulated work with one image: input history,
workspace variables (each with a way to re-create it), the code its
evaluations defined (classes, methods, globals, as source), the connection
and preferences. This module is pure — no files, no clock, no crypto — so that
the rules (collapsing history, ordering variables for replay, the three-way
merge two stui processes need) are tested without processes. Reading and
writing the TOML is session_format; locking and atomic writes are
session_store.

Times are ISO 8601 UTC strings with milliseconds ("2026-11-21T10:00:00.123Z"):
they sort as text, so merging histories needs no date parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# What is kept of a printString for display, and the longest storeString kept
# for re-creating a variable (longer ones are re-created from their source).
VALUE_CHARS = 200
STORE_CHARS = 4096


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def timestamp(moment: datetime) -> str:
    """The one spelling of a time used in sessions.

    A time a person wrote may lie beyond what UTC can hold (year 1 at +14:00):
    it becomes the earliest or latest time there is, rather than an error
    that would keep every session from being listed. The year always has
    four digits (strftime writes year 1 as "1"), so the text sorts and is
    valid TOML.
    """
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = _EARLIEST if moment.year < 2 else _LATEST
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def valid_session_name(name: str) -> bool:
    return bool(NAME_PATTERN.fullmatch(name)) and not name.endswith((".toml", ".bak", ".lock"))


def shorten(text: str, limit: int = VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Variable:
    """A workspace variable and how to bring it back in a fresh image.

    `store` (a storeString that rebuilds an equal object) is preferred;
    otherwise `source`, the statement that last assigned it, is replayed.
    A secret keeps only `sealed`, its encrypted value.
    """

    name: str
    order: int
    changed: str
    value_class: str = ""
    value: str = ""
    store: str | None = None
    source: str | None = None
    sealed: str | None = None

    @property
    def is_secret(self) -> bool:
        return self.sealed is not None

    @property
    def restorable(self) -> bool:
        return self.sealed is not None or self.store is not None or self.source is not None

    @property
    def kept_as(self) -> str:
        """How a new image gets it back, in a word for tables."""
        if self.is_secret:
            return "secret"
        if self.store is not None:
            return "storeString"
        return "source" if self.source is not None else "cannot be re-created"


CODE_KINDS = ("class", "method", "global", "removed")


@dataclass(frozen=True)
class CodeEntry:
    """One definition the session's code made, as the image reported it.

    `name` is its identity (`Animal`, `Animal>>name:`, `Animal class>>new`,
    a global's name): a redefinition replaces the entry, so the log stays
    one entry per definition. A `removed` entry stands for something the
    session removed that a fresh image has (it has no source); removing
    something the session defined just drops its entry.
    """

    name: str
    kind: str
    changed: str
    source: str | None = None
    category: str | None = None

    @property
    def class_name(self) -> str:
        """The class a method or class entry belongs to (`Animal` for `Animal class>>new`)."""
        owner = self.name.split(">>", 1)[0]
        return owner.removesuffix(" class")

    def describe(self) -> str:
        """Its kind in a word for tables: class, method, class method, global, removal."""
        if self.kind == "method" and " class>>" in self.name:
            return "class method"
        return "removal" if self.kind == "removed" else self.kind

    def wire(self) -> dict[str, str]:
        """The entry as the image's install request takes it."""
        entry = {"kind": self.kind, "name": self.name}
        if self.source is not None:
            entry["source"] = self.source
        if self.category is not None:
            entry["category"] = self.category
        return entry


@dataclass(frozen=True)
class ImageSeen:
    dialect: str
    version: str
    image_id: str


@dataclass(frozen=True)
class RecentConnection:
    address: str
    dialect: str
    version: str
    last_used: str


@dataclass(frozen=True)
class ConnectionSpec:
    """Where the session's image is: the embedded one, or HOST:PORT with a sealed token."""

    address: str | None = None
    token: str | None = None

    @property
    def embedded(self) -> bool:
        return self.address is None

    def describe(self) -> str:
        return "embedded image" if self.embedded else str(self.address)


@dataclass
class Session:
    name: str
    created: str
    updated: str
    stui_version: str = ""
    image: ImageSeen | None = None
    connection: ConnectionSpec = field(default_factory=ConnectionSpec)
    recent: list[RecentConnection] = field(default_factory=list)
    preferences: dict[str, object] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    # the definitions, in the order they are filed into a fresh image
    code: list[CodeEntry] = field(default_factory=list)
    # (time, input), oldest first
    history: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def new(cls, name: str, now: str, stui_version: str = "") -> Session:
        return cls(name=name, created=now, updated=now, stui_version=stui_version)

    def copy(self) -> Session:
        return replace(
            self,
            recent=list(self.recent),
            preferences=dict(self.preferences),
            variables=dict(self.variables),
            code=list(self.code),
            history=list(self.history),
        )

    # -- history --------------------------------------------------------------------

    def add_history(self, text: str, now: str, limit: int) -> bool:
        """Record one input; a repeat of the last one only moves its time."""
        if not text.strip():
            return False
        if self.history and self.history[-1][1] == text:
            self.history[-1] = (now, text)
        else:
            self.history.append((now, text))
        self.cap_history(limit)
        return True

    def cap_history(self, limit: int) -> None:
        if len(self.history) > limit:
            del self.history[: len(self.history) - limit]

    def history_inputs(self) -> list[str]:
        return [text for _, text in self.history]

    # -- variables ------------------------------------------------------------------

    def next_order(self) -> int:
        return max((v.order for v in self.variables.values()), default=0) + 1

    def record_variable(
        self,
        name: str,
        now: str,
        *,
        value_class: str = "",
        value: str = "",
        store: str | None = None,
        source: str | None = None,
        sealed: str | None = None,
    ) -> Variable:
        """Remember a variable as just assigned: it moves to the end of the replay order."""
        if store is not None and len(store) > STORE_CHARS:
            store = None
        variable = Variable(
            name=name,
            order=self.next_order(),
            changed=now,
            value_class=value_class,
            value=shorten(value),
            store=store,
            source=None if store is not None or sealed is not None else source,
            sealed=sealed,
        )
        self.variables[name] = variable
        return variable

    def forget_variable(self, name: str) -> bool:
        return self.variables.pop(name, None) is not None

    def replay_order(self) -> list[Variable]:
        """Oldest assignment first, so what a variable was built from exists by then."""
        return sorted(self.variables.values(), key=lambda v: (v.order, v.changed, v.name))

    def secrets(self) -> list[Variable]:
        return [v for v in self.variables.values() if v.is_secret]


    # -- code ---------------------------------------------------------------------

    def code_entry(self, name: str) -> CodeEntry | None:
        return next((entry for entry in self.code if entry.name == name), None)

    def record_change(self, change: dict[str, object], now: str) -> bool:
        """Take one change the image reported; answer whether the log changed.

        A redefinition replaces the entry where it stands (so what came
        after it still comes after it); a removal drops what the session
        defined, and is itself kept only for what the session did not define.
        """
        kind, name = str(change.get("kind", "")), str(change.get("name", ""))
        if kind not in CODE_KINDS or not name:
            return False
        if kind == "removed":
            doomed = {name}
            if change.get("of") == "class":
                doomed |= {entry.name for entry in self.code if entry.class_name == name and entry.name != name}
            defined = [entry for entry in self.code if entry.name in doomed and entry.kind != "removed"]
            self.code = [entry for entry in self.code if entry.name not in doomed]
            if not any(entry.name == name for entry in defined):
                self.code.append(CodeEntry(name=name, kind="removed", changed=now))
            return True
        source = change.get("source")
        category = change.get("category")
        entry = CodeEntry(
            name=name, kind=kind, changed=now,
            source=str(source) if source is not None else None,
            category=str(category) if category is not None else None,
        )
        for index, old in enumerate(self.code):
            if old.name == name:
                if (old.kind, old.source, old.category) == (entry.kind, entry.source, entry.category):
                    return False
                self.code[index] = entry
                return True
        self.code.append(entry)
        return True

    def forget_code(self, name: str) -> list[CodeEntry]:
        """Drop a definition (a class with its methods); answer what was dropped."""
        entry = self.code_entry(name)
        if entry is None:
            return []
        doomed = [e for e in self.code if e.name == name or (entry.kind == "class" and e.class_name == name)]
        self.code = [e for e in self.code if e not in doomed]
        return doomed


@dataclass(frozen=True)
class MergeNote:
    """Something the person should hear about after merging with another process's save."""

    text: str


def merge(base: Session | None, ours: Session, theirs: Session) -> tuple[Session, list[MergeNote]]:
    """Combine our session with the copy another process saved meanwhile.

    `base` is what we last read or wrote: a field only they changed takes
    their value; only we changed, ours; both, the later write wins for a
    variable (and the person is told) and ours for everything else. Histories
    are united and ordered by time, so no input is lost.
    """
    base = base or Session.new(ours.name, ours.created)
    merged = ours.copy()
    notes: list[MergeNote] = []

    for attribute in ("image", "connection", "recent", "stui_version"):
        if getattr(ours, attribute) == getattr(base, attribute) and getattr(theirs, attribute) != getattr(base, attribute):
            setattr(merged, attribute, getattr(theirs, attribute))
    merged.created = min(ours.created, theirs.created)
    merged.updated = max(ours.updated, theirs.updated)

    for key in set(base.preferences) | set(ours.preferences) | set(theirs.preferences):
        b, o, t = base.preferences.get(key), ours.preferences.get(key), theirs.preferences.get(key)
        value = t if (o == b and t != b) else o  # both changed: ours
        if value is None:
            merged.preferences.pop(key, None)
        else:
            merged.preferences[key] = value

    for name in set(base.variables) | set(ours.variables) | set(theirs.variables):
        b, o, t = base.variables.get(name), ours.variables.get(name), theirs.variables.get(name)
        if o == t or t == b:
            chosen = o
        elif o == b:
            chosen = t
        elif o is None or t is None:
            chosen = o or t  # changed on one side, removed on the other: keep the change
            notes.append(MergeNote(f"{name} was removed by one stui and changed by another; it is kept"))
        else:
            chosen = o if o.changed >= t.changed else t
            winner = "this one" if chosen is o else "the other one"
            notes.append(MergeNote(f"{name} was also changed by another stui on this session; keeping the later value (from {winner})"))
        if chosen is None:
            merged.variables.pop(name, None)
        else:
            merged.variables[name] = chosen

    merged.code = merge_code(base.code, ours.code, theirs.code, notes)
    merged.history = merge_histories(base.history, ours.history, theirs.history)
    return merged, notes


def merge_code(base: list[CodeEntry], ours: list[CodeEntry], theirs: list[CodeEntry], notes: list[MergeNote]) -> list[CodeEntry]:
    """Ours, with what only they changed taken, and what only they added after.

    Per definition as for variables: changed on one side takes that change,
    on both the later one (and the person hears of it); removed on one side
    and unchanged on the other, it goes.
    """
    by_base = {e.name: e for e in base}
    by_theirs = {e.name: e for e in theirs}
    merged: list[CodeEntry] = []
    for o in ours:
        b, t = by_base.get(o.name), by_theirs.get(o.name)
        if t is None:
            if b is not None and b == o:
                continue  # they dropped it and we did not touch it
            merged.append(o)
        elif o == t or t == b:
            merged.append(o)
        elif o == b:
            merged.append(t)
        else:
            merged.append(o if o.changed >= t.changed else t)
            notes.append(MergeNote(f"{o.name} was also redefined by another stui on this session; keeping the later source"))
    ours_names = {e.name for e in ours}
    for t in theirs:
        if t.name in ours_names:
            continue
        b = by_base.get(t.name)
        if b is None or b != t:
            merged.append(t)  # theirs alone, or we dropped it and they changed it: kept
    return merged


def merge_histories(
    base: list[tuple[str, str]], ours: list[tuple[str, str]], theirs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Ours plus what only they added, by time.

    An entry in the base that we no longer have (we moved its time when it
    was repeated, or the cap dropped it) is not brought back from theirs.
    """
    known = set(ours) | set(base)
    extra = [entry for entry in theirs if entry not in known]
    if not extra:
        return list(ours)
    united = sorted([*ours, *extra], key=lambda entry: entry[0])
    collapsed: list[tuple[str, str]] = []
    for entry in united:
        if collapsed and collapsed[-1][1] == entry[1]:
            collapsed[-1] = entry  # a repeat keeps the later time, as add_history does
        else:
            collapsed.append(entry)
    return collapsed
