"""One stui's running state: the live session, the image it is attached to,
and the evaluator between them; opening, switching, reconnecting, closing.

The REPL and scripted mode both drive a Workbench, and meta-commands reach
it through their context, so `:session switch` works the same everywhere.
Without a session (a plain pipe or -c) it is just a link to an image.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import StuiError, UsageError
from .evaluator import Evaluator
from .image_link import ImageLink
from .preferences import Settings, validated

if TYPE_CHECKING:  # imported when a session is used: scripts without one start faster
    from .link_keeper import LinkKeeper
    from .live_session import LiveSession, RestoreReport
    from .session_store import SessionStore

Notify = Callable[[str], None]


def _one_at_a_time(method: Callable) -> Callable:
    """Hold the workbench's lock: the link changes under one thread only."""

    @functools.wraps(method)
    def locked(self: Workbench, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class Workbench:
    def __init__(
        self,
        *,
        store: SessionStore | None = None,
        config: dict[str, Any] | None = None,
        flags: dict[str, Any] | None = None,
        vault_factory: Callable[[], Any] | None = None,
        record_history: bool = True,
        progress: Notify | None = None,
        notify: Notify | None = None,
    ) -> None:
        self._store = store
        self.config = dict(config or {})
        self.flags = dict(flags or {})
        self._vault_factory = vault_factory or _default_vault
        self.record_history = record_history
        self.progress = progress
        self.notify = notify or (lambda text: None)
        self.live: LiveSession | None = None
        self.link: ImageLink | None = None
        self.evaluator: Evaluator | None = None
        self.settings = Settings(self.config, {}, self.flags)
        self._vault: Any = None
        self._token: str | None = None  # for reconnecting to the same address
        self.last_restore: RestoreReport | None = None
        # From the last link that worked, for healing after it broke.
        self._last_ticket: tuple[str, str] | None = None
        self._last_image_id: str | None = None
        self._last_address: str | None = None
        self.image_restarted = False  # the last healing found a new image (or workspace)
        # For a server on this machine started by `stui serve`: its token file.
        self.default_token: str | None = None
        self.keeper: LinkKeeper | None = None  # the REPL's; scripts have none
        # The REPL's thread and the keeper's healer both change the link:
        # one at a time (reentrant: switch and connect attach).
        self.lock = threading.RLock()

    # -- sessions -------------------------------------------------------------------

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            from .session_store import SessionStore

            self._store = SessionStore()
        return self._store

    def vault(self) -> Any:
        if self._vault is None:
            self._vault = self._vault_factory()
        return self._vault

    def load_session(self, name: str) -> LiveSession:
        """Read a session (never failing on a damaged file) and open its secrets."""
        from .live_session import LiveSession
        from .session_store import SessionFile

        file = SessionFile(self.store, name)
        loaded = file.load()
        for note in loaded.notes:
            self.notify(note)
        preferences, problems = validated(loaded.session.preferences, where=f"session {name}, [preferences]")
        for problem in problems:
            self.notify(problem)
        settings = Settings(self.config, preferences, self.flags)
        live = LiveSession(file, loaded.session, settings, self.vault, record_history=self.record_history)
        for note in live.unlock():
            self.notify(note)
        return live

    def use_session(self, live: LiveSession | None) -> None:
        self.live = live
        self.settings = live.settings if live else Settings(self.config, {}, self.flags)

    # -- the image ------------------------------------------------------------------

    @_one_at_a_time
    def attach(
        self,
        *,
        address: str | None = None,
        token: str | None = None,
        embedded: bool = False,
    ) -> RestoreReport | None:
        """Open the image for the current session and restore its workspace.

        `address`/`token` come from the command line and rebind the session
        (the token is kept sealed); `embedded` rebinds it to an embedded
        image. Without them the session's own connection is used. A server
        on this machine started by `stui serve` supplies `self.default_token`.
        """
        from .session_model import ConnectionSpec

        live = self.live
        spec = None  # the session's new connection, kept only once it works
        if live is not None and embedded:
            spec = ConnectionSpec()
        elif live is not None and address is not None:
            remembered = live.session.connection
            if token:
                try:
                    spec = ConnectionSpec(address, live.seal_token(token))
                except StuiError as exc:  # e.g. no passphrase: connect anyway, without remembering it
                    self.notify(f"the token is not kept in session {live.name}: {exc}")
                    spec = ConnectionSpec(address, None)
            elif remembered.address == address and remembered.token:
                token = self._session_token(live)
            elif remembered.address != address:
                spec = ConnectionSpec(address, None)
        elif live is not None and not embedded and not live.session.connection.embedded:
            address = live.session.connection.address
            token = self._session_token(live) if live.session.connection.token else None
        token = token or (self.default_token if address is not None else None)
        link = ImageLink.open(address, token, progress=self.progress)
        self._token = token
        self._adopt(link)
        self.image_restarted = False
        if live is None:
            return None
        if spec is not None:
            live.session.connection = spec
            live.dirty = True
        live.note_image(link.connection.info, None if link.embedded else link.connection.address)
        return self.restore()

    def _session_token(self, live: LiveSession) -> str | None:
        try:
            return live.open_token()
        except StuiError as exc:
            raise UsageError(f"the token of session {live.name} is locked: {exc}") from None

    def _adopt(self, link: ImageLink) -> None:
        if self.link is not None:
            self.link.close()
        self.link = link
        info = link.connection.info
        self._last_ticket = link.resume_ticket()
        self._last_image_id = info.image_id if info is not None else None
        self._last_address = None if link.embedded else link.connection.address
        live = self.live
        self.evaluator = Evaluator(
            link.connection, scrub=live.masker if live else None, describe=live is not None
        )

    def restore(self, variables: list | None = None, *, quiet: bool = False) -> RestoreReport | None:
        """Re-create the session's variables in the image; failures are told unless `quiet`."""
        if self.live is None or self.evaluator is None:
            return None
        report = self.live.restore(self.evaluator, variables)
        self.last_restore = report
        if report.failed and not quiet:
            self.notify(report.summary() or "")
        return report

    @_one_at_a_time
    def reconnect(self) -> str:
        """`:session reconnect`: save, drop the connection and open it again (see heal)."""
        if self.link is None and self.live is None:
            raise StuiError("not connected")
        self.save()  # what the workspace holds now is what a new image gets back
        outcome = self.heal(deliberate=True)
        if self.keeper is not None:
            self.keeper.reconnected()
        return outcome

    @_one_at_a_time
    def connect(self, address: str | None, token: str | None = None) -> RestoreReport | None:
        """`:connect`: move this session to another image (None: a fresh embedded one).

        The workspace goes along: it is saved from the old image first and
        restored into the new one. If the new image cannot be reached,
        nothing changes.
        """
        from .image_link import parse_address

        if address is not None:
            parse_address(address)
        self.save()
        old_link, old_token = self.link, self._token
        self.link = None
        try:
            report = self.attach(address=address, token=token, embedded=address is None)
        except BaseException:
            self.link, self._token = old_link, old_token
            if old_link is not None:
                self._adopt_session_only()
            raise
        if old_link is not None:
            old_link.close()
        if self.keeper is not None:
            self.keeper.reconnected()
        return report

    @_one_at_a_time
    def heal(self, *, timeout: float = 5.0, deliberate: bool = False) -> str:
        """Replace a broken link; answer one line on what came back.

        The embedded image is killed if it still runs (it hung) and a new one
        launched. A server is asked for this stui's workspace back (a lease);
        when it no longer has it, or it is another image, the workspace is
        restored from the session. ImageUnreachable means try again later.
        """
        old = self.link
        live = self.live
        embedded = old.embedded if old is not None else (live is None or live.session.connection.embedded)
        address = None if embedded else (old.connection.address if old is not None else self._last_address)
        # What the last working link said: a failed attempt has dropped the link itself.
        resume = None if embedded else self._last_ticket
        known_image = self._last_image_id
        hung = old is not None and old.image_alive
        if old is not None:
            old.close(patience=0.5)  # a hung embedded image is killed, not waited for
            self.link = None
        link = ImageLink.open(address, self._token, resume=resume, timeout=timeout)
        self._adopt(link)
        info = link.connection.info
        self.image_restarted = not (info is not None and info.resumed)
        if info is not None and info.resumed:
            return f"reconnected to {address}: your workspace was still there"
        if live is not None:
            live.note_image(info, address)
        report = self.restore(quiet=True)
        if embedded and deliberate:
            what = "started a new embedded image"
        elif embedded:
            what = "the image hung: stopped it and started a new one" if hung else "the image died; started a new one"
        elif info is not None and info.image_id == known_image:
            what = f"reconnected to {address}, which had let your workspace go"
        else:
            what = f"reconnected to {address}, a restarted image"
        restored = report.summary() if report is not None else None
        return f"{what}; {restored}" if restored else what

    # -- saving and switching --------------------------------------------------------

    def save(self, *, refresh: bool = True) -> None:
        if self.live is None:
            return
        notes = self.live.save(self.evaluator if refresh else None)
        for note in notes:
            self.notify(note.text)

    def autosave(self) -> None:
        if self.live is not None and self.live.dirty and self.live.autosave_due():
            self.save()

    @_one_at_a_time
    def switch(self, name: str, *, create: bool = False) -> RestoreReport | None:
        """Save this session, then load NAME with its own image and workspace."""
        if self.live is not None and name == self.live.name:
            raise UsageError(f"already in session {name}")
        exists = self.store.exists(name)
        if create and exists:
            raise UsageError(f"a session named {name} already exists (:session switch {name} opens it)")
        if not create and not exists:
            raise UsageError(f"no session named {name} (:session new {name} creates one)")
        incoming = self.load_session(name)
        previous = self.live
        from .session_model import ConnectionSpec

        if create and previous is not None and not previous.session.connection.embedded:
            # A new session starts on the same image as the one it was made from.
            spec = previous.session.connection
            token = previous.open_token() if spec.token else None
            incoming.session.connection = ConnectionSpec(spec.address, incoming.seal_token(token) if token else None)
        self.save()
        old_link = self.link
        self.link = None
        self.use_session(incoming)
        try:
            report = self.attach()
        except BaseException:
            # Could not reach the new session's image: go back to where we were.
            self.use_session(previous)
            self.link = old_link
            raise
        if old_link is not None:
            old_link.close()
        if create:
            self.save(refresh=False)
        if self.keeper is not None:
            self.keeper.reconnected()  # a working link again, even after giving up on the old one
        return report

    def copy_to(self, name: str) -> None:
        """`:session save NAME`: the current state under another name (secrets re-sealed for it)."""
        from .session_store import SessionFile, now

        live = self._require_live()
        if self.store.exists(name):
            raise UsageError(f"a session named {name} already exists")
        self.save()
        copy = live.session.copy()
        copy.name = name
        copy.created = copy.updated = now()
        skipped = self._reseal(copy, live, name)
        file = SessionFile(self.store, name)
        file.save(copy, history_limit=self.settings["history_limit"])
        if skipped:
            self.notify(f"not copied (locked): {', '.join(skipped)}")

    def _reseal(self, copy: Any, live: LiveSession, name: str) -> list[str]:
        """Seal secrets again for another session name (the name is part of what is authenticated)."""
        from dataclasses import replace

        from .live_session import TOKEN_FIELD, secret_field
        from .session_model import ConnectionSpec

        skipped = []
        for variable in list(copy.variables.values()):
            if not variable.is_secret:
                continue
            plaintext = live.plaintexts.get(variable.name)
            if plaintext is None:
                skipped.append(variable.name)
                del copy.variables[variable.name]
                continue
            sealed = self.vault().encrypt(plaintext, session=name, field=secret_field(variable.name))
            copy.variables[variable.name] = replace(variable, sealed=sealed)
        if copy.connection.token is not None:
            try:
                token = live.open_token()
            except StuiError:
                skipped.append("the connection token")
                copy.connection = ConnectionSpec(copy.connection.address, None)
            else:
                sealed = self.vault().encrypt(token or "", session=name, field=TOKEN_FIELD)
                copy.connection = ConnectionSpec(copy.connection.address, sealed)
        return skipped

    @_one_at_a_time
    def rename(self, old: str, new: str) -> None:
        """Rename a session's file; secrets are sealed again under the new name."""
        from .session_store import SessionFile

        if self.store.exists(new):
            raise UsageError(f"a session named {new} already exists")
        if not self.store.exists(old) and (self.live is None or self.live.name != old):
            raise UsageError(f"no session named {old}")
        current = self.live is not None and self.live.name == old
        live = self.live if current else self.load_session(old)
        assert live is not None
        locked = sorted(live.locked)
        if live.session.connection.token is not None:
            try:
                live.open_token()
            except StuiError:
                locked.append("the connection token")
        if locked:
            raise UsageError(f"cannot rename {old}: {', '.join(locked)} cannot be opened, and renaming seals them again")
        if current:
            self.save()
        copy = live.session.copy()
        copy.name = new
        self._reseal(copy, live, new)
        SessionFile(self.store, new).save(copy, history_limit=live.settings["history_limit"])
        with self.store.locked(old):
            self.store.delete(old)
        if current:
            renamed = self.load_session(new)
            renamed.unrestored = set(live.unrestored)  # still nil in the image: keep their recipes
            self.use_session(renamed)
            if self.link is not None:
                self._adopt_session_only()

    def _adopt_session_only(self) -> None:
        """The link stays; the evaluator now reports to the renamed session."""
        assert self.link is not None
        live = self.live
        self.evaluator = Evaluator(self.link.connection, scrub=live.masker if live else None, describe=live is not None)

    def _require_live(self) -> LiveSession:
        if self.live is None:
            raise UsageError("no session in use (start stui with --session NAME)")
        return self.live

    @_one_at_a_time
    def close(self) -> None:
        """Save and let go of the image (stopping it when it is ours)."""
        try:
            if self.live is not None:
                try:
                    self.save()
                except StuiError as exc:
                    self.notify(f"could not save session {self.live.name}: {exc}")
        finally:
            if self.link is not None:
                self.link.close()
                self.link = None


def _default_vault() -> Any:
    from .vault import open_vault

    return open_vault()
