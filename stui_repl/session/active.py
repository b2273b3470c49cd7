"""The open session in memory: it records evaluations, keeps secrets, restores and saves.

This is where the session model meets the image. After each evaluation the
server describes the variables the code assigned; they are recorded with a
way to re-create them (their storeString, else the statement's source).
The image also reports what the code defined (classes, methods, globals),
kept as source. Restoring files the code in first, then the secrets, then
the variables in the order they were assigned, so that what a variable was
built from (its class too) exists by then.

Secrets: a secret's plaintext lives only in this process's memory (and in
the image). On disk it is sealed by the vault. Everything stui records or
shows passes `mask`, which replaces any secret's plaintext, so a value
derived from a secret (`'Bearer ', token`) cannot leak into the history,
the file or the terminal either.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..client import scanner, wire
from ..client.evaluator import Evaluator, runs
from ..client.wire import EvalResult, RemoteError, ServerInfo
from ..errors import ReplyTimeout, StuiError, Untrusted
from ..settings import Settings
from .model import STORE_CHARS, CodeEntry, ImageSeen, MergeNote, RecentConnection, Session, Variable, shorten
from .store import SessionFile, now
from .vault import TOKEN_FIELD, secret_field

MASK = "********"
# The statements sent one by one after a run overran its time: the server
# compiles at most 200 as one run (StuiScript maxMerged).
CAREFUL_RUN = 200


@dataclass(frozen=True)
class Recipe:
    """The statement that re-creates a variable, and the names it must declare."""

    name: str
    code: str
    declare: list[str]


def _fitting(pending: list[Recipe], room: int, most: int) -> list[dict[str, Any]]:
    """The script units of the first recipes, as many as one request line holds.

    Each statement starts on a line after the one before ends: the server
    finds which statement of a run failed by its line.
    """
    units: list[dict[str, Any]] = []
    size = len(wire.encode(wire.script_request([], print_value=False, keep_going=True)))
    line = 1
    for recipe in pending[:most]:
        unit = wire.script_unit(recipe.code, line=line, declare=recipe.declare)
        size += len(wire.encode(unit))  # its newline stands for the comma between units
        if size > room:
            break
        units.append(unit)
        line += recipe.code.count("\n") + 1
    return units


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    # The code: definitions filed in (or already there, the same), failed, or differing from the image's.
    filed_in: list[str] = field(default_factory=list)
    code_failed: list[tuple[str, str]] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    code_refused: str | None = None  # why no code was filed in at all

    @property
    def problems(self) -> bool:
        """Whether the person must hear of it even when nothing else is said."""
        return bool(self.failed or self.code_failed or self.differing or self.code_refused)

    def summary(self) -> str | None:
        """One line for the person, or None when there is nothing to say."""
        parts = [part for part in (self._code_summary(), self._variables_summary()) if part]
        return "; ".join(parts) if parts else None

    def _code_summary(self) -> str | None:
        if self.code_refused:
            return self.code_refused
        parts = []
        total = len(self.filed_in) + len(self.code_failed) + len(self.differing)
        if not total:
            return None
        done = f"{len(self.filed_in)} of {total}" if len(self.filed_in) != total else str(total)
        parts.append(f"filed in {done} definition{'s' if total != 1 else ''}")
        if self.code_failed:
            parts.append("could not file in " + _listed(self.code_failed))
        if self.differing:
            names = ", ".join(self.differing[:5]) + (f" and {len(self.differing) - 5} more" if len(self.differing) > 5 else "")
            parts.append(f"the image has other source for {names} (:changes apply files the session's in, :changes skip keeps the image's)")
        return "; ".join(parts)

    def _variables_summary(self) -> str | None:
        if not self.restored and not self.failed:
            return None
        total = len(self.restored) + len(self.failed)
        if not self.failed:
            return f"restored {total} variable{'s' if total != 1 else ''}"
        return f"restored {len(self.restored)} of {total} variables; could not restore {_listed(self.failed)}"


def _listed(failures: list[tuple[str, str]]) -> str:
    reasons = "; ".join(f"{name}: {why}" for name, why in failures[:5])
    return reasons + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")


class Masker:
    """Replaces secret plaintexts in any text stui shows or keeps."""

    def __init__(self) -> None:
        self._plaintexts: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    @staticmethod
    def _spellings(plaintext: str) -> set[str]:
        """The secret as typed, and as a Smalltalk literal shows it (quotes doubled)."""
        return {plaintext, plaintext.replace("'", "''")}

    def add(self, plaintext: str) -> None:
        if plaintext and not self._spellings(plaintext) <= self._plaintexts:
            self._plaintexts |= self._spellings(plaintext)
            self._compile()

    def discard(self, plaintext: str) -> None:
        if plaintext in self._plaintexts:
            self._plaintexts -= self._spellings(plaintext)
            self._compile()

    def _compile(self) -> None:
        ordered = sorted(self._plaintexts, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def reveals(self, text: str | None) -> bool:
        return bool(text and self._pattern is not None and self._pattern.search(text))


class ActiveSession:
    def __init__(
        self,
        file: SessionFile,
        session: Session,
        settings: Settings,
        vault_factory: Callable[[], Any],
        *,
        record_history: bool = True,
    ) -> None:
        self.file = file
        self.session = session
        self.settings = settings
        self._vault_factory = vault_factory
        self._vault: Any = None
        self.record_history = record_history
        self.masker = Masker()
        self.plaintexts: dict[str, str] = {}  # secret name -> plaintext, memory only
        self.locked: dict[str, str] = {}  # secret name -> why it cannot be opened
        # Variables a restore could not re-create: the image holds nil for them,
        # which must not replace their saved recipe until the code assigns them.
        self.unrestored: set[str] = set()
        # Variables scripts assigned, with the statement that last did, in that
        # order: script replies do not describe them, the next refresh does.
        self._pending: dict[str, str] = {}
        # Definitions the image has with other source than the session's,
        # waiting for :changes apply or :changes skip.
        self.differing: list[str] = []
        self.last_save = time.monotonic()
        self.dirty = False

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def vault(self) -> Any:
        if self._vault is None:
            self._vault = self._vault_factory()
        return self._vault

    # -- secrets --------------------------------------------------------------------

    def unlock(self) -> list[str]:
        """Open every sealed secret that can be; answer one note per locked one."""
        notes = []
        for variable in self.session.secrets():
            if variable.name in self.plaintexts:
                continue
            try:
                plaintext = self.vault.decrypt(variable.sealed, session=self.name, field=secret_field(variable.name))
            except Untrusted:
                raise  # a key file someone else could have written: refuse, do not limp on
            except StuiError as exc:
                self.locked[variable.name] = str(exc)
                notes.append(f"secret {variable.name} is locked: {exc}")
                continue
            self.plaintexts[variable.name] = plaintext
            self.masker.add(plaintext)
            self.locked.pop(variable.name, None)
        return notes

    def set_secret(self, evaluator: Evaluator, name: str, plaintext: str) -> None:
        if not scanner.is_identifier(name):
            raise StuiError(f"{name!r} is not a variable name")
        sealed = self.vault.encrypt(plaintext, session=self.name, field=secret_field(name))
        self._bind_secret(evaluator, name, plaintext)
        old = self.plaintexts.get(name)
        if old is not None and old != plaintext and old not in (p for n, p in self.plaintexts.items() if n != name):
            self.masker.discard(old)
        self.plaintexts[name] = plaintext
        self.locked.pop(name, None)
        self.masker.add(plaintext)
        self.session.record_variable(name, now(), value_class="String", value=MASK, sealed=sealed)
        self.dirty = True

    @staticmethod
    def _bind_secret(evaluator: Evaluator, name: str, plaintext: str) -> None:
        if not evaluator.fits(wire.secret_request(name, plaintext)):  # the server would close the connection
            raise StuiError(f"the secret {name} is too large to send to the image ({_mib(evaluator.request_room())} at most)")
        refused = evaluator.bind_secret(name, plaintext)
        if refused is not None:
            raise StuiError(f"the image refused the secret {name}: {refused.one_line()}")

    def seal_token(self, token: str) -> str:
        return self.vault.encrypt(token, session=self.name, field=TOKEN_FIELD)

    def open_token(self) -> str | None:
        sealed = self.session.connection.token
        if sealed is None:
            return None
        return self.vault.decrypt(sealed, session=self.name, field=TOKEN_FIELD)

    # -- history --------------------------------------------------------------------

    def record_input(self, text: str) -> None:
        """Keep an input in the history, unless it would keep a secret."""
        if not self.record_history:
            return
        stripped = text.strip()
        if stripped.startswith(":secret") or self.masker.reveals(text):
            return
        if self.session.add_history(text, now(), self.settings["history_limit"]):
            self.dirty = True

    # -- variables ------------------------------------------------------------------

    def record(self, unit: scanner.Unit, result: EvalResult) -> list[str]:
        """What one evaluation assigned and defined: the one place both modes
        report to. Answers the names of definitions withheld for a secret.

        The REPL's replies describe the variables (eval with `bindings`), so
        they are recorded at once, even after a failure (what was assigned
        before it stays assigned). Script replies do not: their names wait,
        with the statement that last assigned them, for the next refresh.
        A script's results carry what its code defined (the server sends it
        when the request says `record`), kept at once like the variables: a
        script whose image dies keeps the code that ran before.
        """
        changes = result.extra.get("changes")
        withheld = self.note_changes(c for c in changes if isinstance(c, dict)) if isinstance(changes, list) else []
        descriptions = result.extra.get("bindings")
        if isinstance(descriptions, list):
            self.note_bindings(descriptions, unit.code)
            return withheld
        if not result.ok or unit.kind != "statement":
            return withheld
        for name in unit.names:
            self._pending.pop(name, None)  # to the end: the order of last assignment
            self._pending[name] = unit.code
            self.dirty = True
        return withheld

    def note_bindings(self, descriptions: Iterable[dict[str, Any]], source: str | None) -> None:
        """Record what an evaluation assigned, as the server described it."""
        for description in descriptions:
            name = str(description.get("name", ""))
            if not name:
                continue
            known = self.session.variables.get(name)
            self.unrestored.discard(name)
            if description.get("secret") and known is not None and known.is_secret:
                continue  # the same secret, still held: its sealed value stands
            if known is not None and known.is_secret:
                self._forget_plaintext(name)
            store = description.get("store")
            if not isinstance(store, str) or self.masker.reveals(store):
                store = None
            kept_source = None if self.masker.reveals(source) else source
            self.session.record_variable(
                name, now(),
                value_class=str(description.get("class", "")),
                value=self.masker(str(description.get("value", ""))),
                store=store,
                source=kept_source,
            )
            self.dirty = True

    def refresh(self, evaluator: Evaluator) -> None:
        """Describe what scripts assigned, and catch changes made without
        assignment (`coll add: 3`), before saving."""
        described = evaluator.bindings()
        pending, self._pending = self._pending, {}
        by_name = {str(d.get("name", "")): d for d in described}
        for name, source in pending.items():  # in assignment order, so replay meets dependencies
            if name in by_name:
                self.note_bindings([by_name[name]], source)
        for description in described:
            name = str(description.get("name", ""))
            if name in self.unrestored:
                continue
            known = self.session.variables.get(name)
            if known is None:
                if not description.get("secret"):
                    self.note_bindings([description], None)
                continue
            if known.is_secret or description.get("secret"):
                continue
            store = description.get("store")
            if isinstance(store, str) and store != known.store and not self.masker.reveals(store):
                value = self.masker(str(description.get("value", "")))
                self.session.variables[name] = _updated(known, store, value)
                self.dirty = True

    def _keep_pending(self) -> None:
        """What scripts assigned that no refresh described (the image died, or
        stui is stopping on a signal): kept by the statement that assigned it,
        since that is all there is to re-create it from."""
        pending, self._pending = self._pending, {}
        for name, source in pending.items():
            self.note_bindings([{"name": name}], source)

    def unset(self, evaluator: Evaluator, name: str) -> bool:
        in_image = evaluator.remove_variable(name)
        in_file = self.session.forget_variable(name)
        self._forget_plaintext(name)
        self.locked.pop(name, None)
        self.dirty = self.dirty or in_file
        return in_image or in_file

    def _forget_plaintext(self, name: str) -> None:
        plaintext = self.plaintexts.pop(name, None)
        if plaintext is not None and plaintext not in self.plaintexts.values():
            self.masker.discard(plaintext)

    # -- code -----------------------------------------------------------------------

    def take_code(self, evaluator: Evaluator) -> list[str]:
        """Record what the code defined since the last time, as the image reports it.

        Answers the names of definitions not kept because their source holds
        a secret's text (a global set to one): the file never holds a secret.
        """
        return self.note_changes(evaluator.take_changes())

    def note_changes(self, changes: Iterable[dict[str, Any]]) -> list[str]:
        """Record definitions as the image described them (taken, or carried
        by a script's results); answer the names withheld for a secret."""
        withheld = []
        stamp = now()
        for change in changes:
            if self.masker.reveals(str(change.get("source") or "")):
                withheld.append(str(change.get("name", "")))
                continue
            if self.session.record_change(change, stamp):
                self.dirty = True
                self.differing = [name for name in self.differing if name != change.get("name")]
        return withheld

    def file_in_code(self, evaluator: Evaluator, report: RestoreReport, names: list[str] | None = None, *, force: bool = False) -> None:
        """File the session's definitions (or those named) into the image, noting each outcome in `report`."""
        refused = self.code_refusal()
        if refused:
            report.code_refused = refused
            return
        entries = [e for e in self.session.code if names is None or e.name in names]
        for batch in _batches(evaluator, entries):
            outcomes = evaluator.install_code([e.wire() for e in batch], force=force)
            for entry, outcome in zip(batch, outcomes, strict=True):
                kind = outcome.get("outcome")
                if kind in ("installed", "same"):
                    report.filed_in.append(entry.name)
                elif kind == "differs":
                    report.differing.append(entry.name)
                else:
                    message = str(outcome.get("message") or "").strip() or "failed"
                    report.code_failed.append((entry.name, self.masker(message.splitlines()[0])))
        # What was tried is settled, one way or the other; what still differs waits for the person.
        self.differing = [n for n in self.differing if names is not None and n not in names]
        self.differing += [n for n in report.differing if n not in self.differing]

    def code_refusal(self) -> str | None:
        """Why the file's code must not run: a file others could have written."""
        if not self.session.code:
            return None
        path = self.file.store.path(self.file.name)
        try:
            mode = path.stat().st_mode
        except OSError:
            return None  # never saved: nothing on disk could have been changed
        if mode & 0o077:
            return (f"the code in {path} was not filed in: the file is open to other users "
                    f"(mode {mode & 0o777:o}); chmod 600 it and :session restore")
        return None

    def restore(self, evaluator: Evaluator, variables: list[Variable] | None = None, *, code: bool = True) -> RestoreReport:
        """Bring the session back in the image: its code, then secrets, then the rest in assignment order."""
        report = RestoreReport()
        if evaluator.record_changes() and code:
            self.file_in_code(evaluator, report)
        report = self._restore(evaluator, variables, report)
        self.unrestored.difference_update(report.restored)
        self.unrestored.update(name for name, _ in report.failed)
        return report

    def _restore(self, evaluator: Evaluator, variables: list[Variable] | None, report: RestoreReport) -> RestoreReport:
        chosen = self.session.replay_order() if variables is None else variables
        for variable in (v for v in chosen if v.is_secret):
            plaintext = self.plaintexts.get(variable.name)
            if plaintext is None:
                report.failed.append((variable.name, "locked secret (" + self.locked.get(variable.name, "no key") + ")"))
                continue
            try:
                self._bind_secret(evaluator, variable.name, plaintext)
            except StuiError as exc:
                report.failed.append((variable.name, str(exc)))
            else:
                report.restored.append(variable.name)
        recipes: list[Recipe] = []
        for variable in (v for v in chosen if not v.is_secret):
            if not scanner.is_identifier(variable.name):  # a hand-edited file: it would spoil the run it is in
                report.failed.append((variable.name, "not a variable name"))
            elif variable.store is not None:
                recipes.append(Recipe(variable.name, f"{variable.name} := {variable.store}", [variable.name]))
            elif variable.source is not None:
                declare = sorted(set(scanner.assigned_names(variable.source)) | {variable.name})
                recipes.append(Recipe(variable.name, variable.source, declare))
            else:
                report.failed.append((variable.name, "nothing to re-create it from"))
        self._replay(evaluator, recipes, report)
        return report

    def _replay(self, evaluator: Evaluator, pending: list[Recipe], report: RestoreReport) -> None:
        """Run the re-creating statements, stopping at a failure and going on after it.

        Without keepGoing the server compiles a run of statements as one, so
        200 variables cost one compile rather than 200; a failure is rare, and
        only what follows it is sent again. The statements go in requests
        that fit the image's line limit; one too large for any is skipped.

        Each statement has `restore_timeout` seconds. A run compiled as one
        tells neither which statement was running when it was stopped nor
        how long each took, so a run that overruns is stopped and its
        statements sent again one by one (keepGoing), each with its own
        limit: the one that overruns then is reported and skipped.
        """
        limit = float(self.settings["restore_timeout"])
        patience = float(self.settings["heartbeat_timeout"])
        room = evaluator.request_room()
        one_by_one = False
        while pending:
            units = _fitting(pending, room, CAREFUL_RUN if one_by_one else len(pending))
            if not units:
                size = len(wire.encode(wire.script_unit(pending[0].code, declare=pending[0].declare)))
                report.failed.append((pending[0].name, f"too large to send to the image ({_mib(size)}; it takes {_mib(room)} at most)"))
                pending = pending[1:]
                continue
            piece, pending = pending[: len(units)], pending[len(units):]
            try:
                reply, results = evaluator.replay(units, keep_going=one_by_one, limit=limit, patience=patience)
            except ReplyTimeout:
                stuck = f"the image did not stop within {patience:g} s of being interrupted"
                report.failed.extend((recipe.name, stuck) for recipe in [*piece, *pending])
                return
            if not reply.get("ok"):
                why = self.masker(RemoteError.from_wire(reply.get("error")).one_line(with_location=False))
                report.failed.extend((recipe.name, why) for recipe in piece)
                continue
            done = 0
            for result in results:
                if done >= len(piece):
                    break
                if result.get("ok"):
                    covered = 1 if one_by_one else wire.statements_of(result)
                    report.restored.extend(recipe.name for recipe in piece[done: done + covered])
                    done += covered
                    continue
                if result.get("timedOut") and not one_by_one:
                    break  # somewhere in this run: sent again one by one below
                if result.get("timedOut"):
                    why = f"took longer than {limit:g} s (restore_timeout); stopped"
                else:
                    why = self.masker(RemoteError.from_wire(result.get("error")).one_line(with_location=False))
                report.failed.append((piece[done].name, why))
                done += 1
                if not one_by_one:
                    break  # the server skipped the rest of the request: sent again below
            stopped = any(result.get("timedOut") for result in results) and not one_by_one
            if done == 0 and not stopped:  # nothing answered: do not loop for ever
                report.failed.extend((recipe.name, "the image did not answer") for recipe in piece)
                continue
            pending = piece[done:] + pending
            one_by_one = stopped

    # -- the image ------------------------------------------------------------------

    def note_image(self, info: ServerInfo | None, address: str | None) -> None:
        if info is None:
            return
        self.session.image = ImageSeen(info.dialect, info.version, info.image_id)
        if address is not None:
            recent = [r for r in self.session.recent if r.address != address]
            self.session.recent = [RecentConnection(address, info.dialect, info.version, now()), *recent][:10]
        self.dirty = True

    # -- saving ---------------------------------------------------------------------

    def save(self, evaluator: Evaluator | None = None) -> list[MergeNote]:
        if evaluator is not None:
            try:
                self.take_code(evaluator)
                self.refresh(evaluator)
            except (StuiError, OSError):
                pass  # an unreachable image must not stop the file being saved
        self._keep_pending()
        merged, notes = self.file.save(self.session, history_limit=self.settings["history_limit"])
        self.session = merged
        self.last_save = time.monotonic()
        self.dirty = False
        return notes

    def autosave_due(self) -> bool:
        interval = self.settings["autosave"]
        return bool(interval) and time.monotonic() - self.last_save >= interval


def _batches(evaluator: Evaluator, entries: list[CodeEntry]) -> list[list[CodeEntry]]:
    """Install requests that fit the image's line: the classes first, so a class's methods find it."""
    ordered = [e for e in entries if e.kind == "class"] + [e for e in entries if e.kind != "class"]
    room = evaluator.request_room()
    if len(wire.encode(wire.install_changes_request([e.wire() for e in ordered]))) <= room:
        return [ordered] if ordered else []  # the usual case: one request, measured once
    overhead = len(wire.encode(wire.install_changes_request([])))
    return [batch for batch in runs(ordered, room - overhead, _install_cost) if batch is not None]


def _install_cost(entry: CodeEntry) -> int:
    return len(wire.encode(entry.wire())) + 1  # and its comma


def _updated(variable: Variable, store: str, value: str) -> Variable:
    """A variable changed in place: its new storeString, or, when that is too long to keep, its source."""
    if len(store) > STORE_CHARS:
        return replace(variable, store=None, value=shorten(value), changed=now())
    return replace(variable, store=store, value=shorten(value), source=None, changed=now())
