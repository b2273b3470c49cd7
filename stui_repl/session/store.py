"""Session files on disk: where they live, locking, atomic writes, backups,
and what happens to a file that cannot be read.

Layout: `<state dir>/sessions/NAME.toml`, its previous version
`NAME.toml.bak`, a lock file `.NAME.lock`, and any unreadable file moved
aside as `NAME.toml.corrupt-TIME`. The directory is 0700 and every file 0600.
A session file is code, so one that is not yours, or that others may write,
is refused, as is a directory others may write (trust.py): in a listing it
shows as refused.

A write goes to a temporary file in the same directory, is fsynced, the
current file is hard-linked to the backup, the temporary file is renamed
over the current one and the directory is fsynced: at every instant there is a
complete file under the name, so a kill -9 at any moment leaves a loadable
session. Saving is read-merge-write under an flock on the lock file, so two
stui processes on one session lose nothing (session_model.merge decides).
"""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__, paths, trust
from ..errors import StuiError, Untrusted, UsageError
from ..locks import LockBusy, exclusive
from . import toml as session_format
from .model import MergeNote, Session, merge, timestamp, valid_session_name

LOCK_TIMEOUT = 10.0


SessionBusy = LockBusy  # another stui holds the session's lock for too long


def now() -> str:
    return timestamp(datetime.now(UTC))


def sessions_dir() -> Path:
    return paths.sessions_dir()


def check_name(name: str) -> str:
    if not valid_session_name(name):
        raise UsageError(
            f"{name!r} is not a session name: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)"
        )
    return name


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Loaded:
    """A session as read, with what the person should be told about reading it."""

    session: Session
    text: str | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    name: str
    image: str
    variables: int
    history: int
    last_used: str
    state: str


class SessionStore:
    """The sessions directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or sessions_dir()

    def path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.toml"

    def backup_path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.toml.bak"

    def names(self) -> list[str]:
        if not trust.private_dir(self.directory, create=False):
            return []
        return sorted(p.name[: -len(".toml")] for p in self.directory.glob("*.toml") if valid_session_name(p.name[:-5]))

    def summaries(self) -> list[Summary]:
        """One line per session for `:session list` and `stui session list` (reads each file)."""
        rows = []
        for name in self.names():
            path = self.path(name)
            try:
                data = trust.read(path, "the session file")
                if data is None:  # deleted a moment ago
                    continue
                session = session_format.parse(data.decode("utf-8"))
            except Untrusted as exc:
                rows.append(Summary(name, "?", 0, 0, "?", f"refused: {exc.reason}"))
                continue
            except session_format.NewerFormat:
                rows.append(Summary(name, "?", 0, 0, "?", "newer format"))
                continue
            except (session_format.SessionFormatError, UnicodeDecodeError, OSError):
                rows.append(Summary(name, "?", 0, 0, "?", "unreadable (opening it moves it aside)"))
                continue
            image = session.image.version if session.image else "?"
            where = session.connection.describe()
            rows.append(Summary(name, f"{image} ({where})", len(session.variables), len(session.history), session.updated[:19].replace("T", " "), "saved"))
        return rows

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def _ensure_directory(self) -> None:
        trust.private_dir(self.directory)

    def locked(self, name: str, timeout: float = LOCK_TIMEOUT) -> AbstractContextManager[None]:
        """Exclusive use of one session's file for a read-merge-write."""
        self._ensure_directory()
        return exclusive(
            self.directory / f".{check_name(name)}.lock", timeout=timeout,
            busy=f"session {name} is busy: another stui has held its lock for {timeout:.0f} s",
        )

    # -- reading --------------------------------------------------------------------

    def read_text(self, name: str) -> str | None:
        data = trust.read(self.path(name), "the session file")
        return None if data is None else data.decode("utf-8")  # UnicodeDecodeError: handled by load as corrupt

    def load(self, name: str) -> Loaded:
        """Read a session, falling back to its backup, then to a new one: stui always starts.

        A file written by a newer stui raises UsageError and is left as it is.
        """
        check_name(name)
        notes: list[str] = []
        trust.private_dir(self.directory, create=False)
        for path, label in ((self.path(name), "the session file"), (self.backup_path(name), "its backup")):
            try:
                data = trust.read(path, "the session file" if label == "the session file" else "the session backup")
                if data is None:
                    continue
                text = data.decode("utf-8")
                session = session_format.parse(text)
            except session_format.NewerFormat as exc:
                raise UsageError(f"session {name} ({path}) was written by a newer stui: {exc}; it is left untouched") from None
            except (session_format.SessionFormatError, UnicodeDecodeError) as exc:
                moved = self.move_aside(path)
                reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
                notes.append(f"{label} of session {name} is unreadable ({_first_line(reason)}); moved it to {moved.name}")
                continue
            except OSError as exc:
                raise StuiError(f"cannot read {path}: {exc.strerror}") from None
            session.name = name
            if label != "the session file":
                notes.append(f"session {name}: using its backup from {session.updated}")
                # The main file is gone: the next save must not merge with
                # nothing as if it were the other process's work.
                return Loaded(session, None, notes)
            return Loaded(session, text, notes)
        if notes:
            notes.append(f"session {name}: starting empty")
        return Loaded(Session.new(name, now(), __version__), None, notes)

    def move_aside(self, path: Path) -> Path:
        """Keep an unreadable file under a new name; never overwrite an earlier one."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for attempt in range(1000):
            target = path.with_name(f"{path.name.removesuffix('.bak').removesuffix('.toml')}.toml.corrupt-{stamp}" + (f"-{attempt}" if attempt else ""))
            try:
                os.link(path, target)
            except FileExistsError:
                continue
            os.unlink(path)
            return target
        raise StuiError(f"cannot move the unreadable {path} aside")

    # -- writing --------------------------------------------------------------------

    def write_text(self, name: str, text: str) -> None:
        """Atomically replace the file, keeping the previous version as the backup."""
        self._ensure_directory()
        path = self.path(name)
        for pattern in (f".{name}.toml.tmp-*", f".{name}.toml.bak-*"):  # from a writer killed mid-write
            for stale in self.directory.glob(pattern):
                stale.unlink(missing_ok=True)
        temporary = self.directory / f".{name}.toml.tmp-{os.getpid()}"
        staged_backup = self.directory / f".{name}.toml.bak-{os.getpid()}"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:  # a buffered write retries short writes, and raises when it cannot
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            if path.exists():
                staged_backup.unlink(missing_ok=True)
                os.link(path, staged_backup)
                os.replace(staged_backup, self.backup_path(name))
            os.replace(temporary, path)
        except BaseException:
            # A full disk: what was half written would only take more room.
            for leftover in (temporary, staged_backup):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)

    def delete(self, name: str) -> None:
        for path in (self.path(name), self.backup_path(name), self.directory / f".{name}.lock"):
            path.unlink(missing_ok=True)


try:  # hashlib's own BLAKE2, without the OpenSSL hashlib loads first (3 ms of every start)
    from _blake2 import blake2b
except ImportError:
    from hashlib import blake2b


def _digest(text: str | None) -> bytes | None:
    return None if text is None else blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


class SessionFile:
    """One session's file as this process knows it, so saves can merge.

    `base` is the session as last read or written by us: what changed on
    disk since then is another process's work and is merged, not overwritten.
    """

    def __init__(self, store: SessionStore, name: str) -> None:
        self.store = store
        self.name = check_name(name)
        self.base: Session | None = None
        self.digest: bytes | None = None  # of the text last read or written, not the text: it can be large

    def load(self) -> Loaded:
        with self.store.locked(self.name):
            loaded = self.store.load(self.name)
        self.base = loaded.session.copy() if loaded.text is not None else None
        self.digest = _digest(loaded.text)
        return loaded

    def save(self, session: Session, *, history_limit: int) -> tuple[Session, list[MergeNote]]:
        """Write `session`, merged with whatever another process saved meanwhile."""
        notes: list[MergeNote] = []
        with self.store.locked(self.name):
            try:
                on_disk = self.store.read_text(self.name)
            except UnicodeDecodeError:
                self.store.move_aside(self.store.path(self.name))
                on_disk = None
            merged = session
            if on_disk is not None and _digest(on_disk) != self.digest:
                try:
                    theirs = session_format.parse(on_disk)
                except session_format.NewerFormat as exc:
                    raise UsageError(f"session {self.name} was rewritten by a newer stui ({exc}); not saving over it") from None
                except session_format.SessionFormatError:
                    self.store.move_aside(self.store.path(self.name))
                    on_disk = None
                else:
                    merged, notes = merge(self.base, session, theirs)
            merged.name = self.name
            merged.updated = now()
            merged.stui_version = __version__
            merged.cap_history(history_limit)
            text = session_format.render(merged, on_disk)
            try:
                self.store.write_text(self.name, text)
            except OSError as exc:  # a full disk, a read-only directory: the file on disk is untouched
                raise StuiError(f"cannot save session {self.name}: {exc.strerror or exc}") from None
        self.base = merged.copy()
        self.digest = _digest(text)
        return merged, notes
