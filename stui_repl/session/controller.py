"""The session controller: one stui's open session, the image it is attached
to, and the evaluator between them; opening, switching, connecting, healing,
saving, closing.

The REPL and scripted mode both drive a controller, and meta-commands reach
it through their context, so `:session switch` works the same everywhere.
Without a session (a plain pipe or -c) it is just an attachment to an image.
How an attachment is opened is handed in (`open_attachment`), so the
branches of attaching and healing are tested without starting images.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..client.evaluator import Evaluator
from ..errors import StuiError, Untrusted, UsageError
from ..image.attachment import Attachment, parse_address
from ..settings import Settings, validated

if TYPE_CHECKING:  # imported when a session is used: scripts without one start faster
    from ..client.scanner import Unit
    from ..client.wire import EvalResult, Event
    from ..image.supervisor import Supervisor
    from .active import ActiveSession, RestoreReport
    from .store import SessionStore

Notify = Callable[[str], None]


def _one_at_a_time(method: Callable) -> Callable:
    """Hold the controller's lock: the attachment changes under one thread only."""

    @functools.wraps(method)
    def locked(self: SessionController, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class SessionController:
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
        open_attachment: Callable[..., Attachment] = Attachment.open,
    ) -> None:
        self._store = store
        self.config = dict(config or {})
        self.flags = dict(flags or {})
        self._vault_factory = vault_factory or _default_vault
        self.record_history = record_history
        self.progress = progress
        self.notify = notify or (lambda text: None)
        self._open_attachment = open_attachment
        self.active: ActiveSession | None = None
        self.attachment: Attachment | None = None
        self.evaluator: Evaluator | None = None
        self.settings = Settings(self.config, {}, self.flags)
        self._vault: Any = None
        self._token: str | None = None  # for reconnecting to the same address
        self.last_restore: RestoreReport | None = None
        # From the last attachment that worked, for healing after it broke.
        self._last_ticket: tuple[str, str] | None = None
        self._last_image_id: str | None = None
        self._last_address: str | None = None
        self.image_restarted = False  # the last healing found a new image (or workspace)
        # For a server on this machine started by `stui serve`: its token
        # file, read only when an address needs a token (scripts start quicker).
        self.fallback_token: Callable[[], str | None] = lambda: None
        self.supervisor: Supervisor | None = None  # the REPL's; scripts have none
        # What the mode does with what the image streams (output, errors):
        # every evaluator the controller makes hands its events there.
        self._on_event: Callable[[Event], None] | None = None
        # The REPL's thread and the supervisor's healer both change the
        # attachment: one at a time (reentrant: switch and connect attach).
        self.lock = threading.RLock()

    # -- sessions -------------------------------------------------------------------

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            from .store import SessionStore

            self._store = SessionStore()
        return self._store

    def vault(self) -> Any:
        if self._vault is None:
            self._vault = self._vault_factory()
        return self._vault

    def load_session(self, name: str) -> ActiveSession:
        """Read a session (never failing on a damaged file) and open its secrets."""
        from .active import ActiveSession
        from .store import SessionFile

        file = SessionFile(self.store, name)
        loaded = file.load()
        for note in loaded.notes:
            self.notify(note)
        preferences, problems = validated(loaded.session.preferences, where=f"session {name}, [preferences]")
        for problem in problems:
            self.notify(problem)
        settings = Settings(self.config, preferences, self.flags)
        active = ActiveSession(file, loaded.session, settings, self.vault, record_history=self.record_history)
        for note in active.unlock():
            self.notify(note)
        return active

    def use_session(self, active: ActiveSession | None) -> None:
        self.active = active
        self.settings = active.settings if active else Settings(self.config, {}, self.flags)

    def record(self, unit: Unit, result: EvalResult) -> None:
        """An evaluation's outcome, for the session to keep what it assigned and defined."""
        if self.active is not None:
            self._withheld(self.active.record(unit, result))

    def take_code(self) -> None:
        """Have the session keep what the code defined (after an input at the prompt, before :changes)."""
        if self.active is None or self.evaluator is None:
            return
        try:
            withheld = self.active.take_code(self.evaluator)
        except (StuiError, OSError):
            return  # the image is gone: what it defined since the last take went with it
        self._withheld(withheld)

    def _withheld(self, names: list[str]) -> None:
        for name in names:
            assert self.active is not None
            self.notify(f"{name} is not kept in session {self.active.name}: its source holds a secret")

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
        on this machine started by `stui serve` supplies `self.fallback_token()`.
        """
        active = self.active
        spec = None  # the session's new connection, kept only once it works
        if active is not None:
            from .model import ConnectionSpec  # not for a script without a session: it starts sooner
        if active is not None and embedded:
            spec = ConnectionSpec()
        elif active is not None and address is not None:
            remembered = active.session.connection
            if token:
                try:
                    spec = ConnectionSpec(address, active.seal_token(token))
                except Untrusted:
                    raise
                except StuiError as exc:  # e.g. no passphrase: connect anyway, without remembering it
                    self.notify(f"the token is not kept in session {active.name}: {exc}")
                    spec = ConnectionSpec(address, None)
            elif remembered.address == address and remembered.token:
                token = self._session_token(active)
            elif remembered.address != address:
                spec = ConnectionSpec(address, None)
        elif active is not None and not embedded and not active.session.connection.embedded:
            address = active.session.connection.address
            token = self._session_token(active) if active.session.connection.token else None
        if address is not None and not token:
            token = self.fallback_token()
        attachment = self._open_attachment(address, token, progress=self.progress)
        self._token = token
        self._adopt(attachment)
        self.image_restarted = False
        if active is None:
            return None
        if spec is not None:
            active.session.connection = spec
            active.dirty = True
        active.note_image(attachment.connection.info, None if attachment.embedded else attachment.connection.address)
        return self.restore()

    def _session_token(self, active: ActiveSession) -> str | None:
        try:
            return active.open_token()
        except Untrusted:
            raise
        except StuiError as exc:
            raise UsageError(f"the token of session {active.name} is locked: {exc}") from None

    def _adopt(self, attachment: Attachment) -> None:
        if self.attachment is not None:
            self.attachment.close()
        self.attachment = attachment
        info = attachment.connection.info
        self._last_ticket = attachment.resume_ticket()
        self._last_image_id = info.image_id if info is not None else None
        self._last_address = None if attachment.embedded else attachment.connection.address
        attachment.mask_log(self._mask)
        self._new_evaluator()

    def _mask(self, text: str) -> str:
        """The open session's secrets masked, whichever session is open when the image writes."""
        active = self.active
        return active.masker(text) if active is not None else text

    def _new_evaluator(self) -> None:
        """An evaluator on the attachment that reports to the current session."""
        assert self.attachment is not None
        active = self.active
        self.evaluator = Evaluator(
            self.attachment.connection, scrub=active.masker if active else None, describe=active is not None
        )
        self.evaluator.on_event = self._on_event

    def show_events(self, handler: Callable[[Event], None]) -> None:
        """Where what the image streams goes, for this evaluator and every later one."""
        self._on_event = handler
        if self.evaluator is not None:
            self.evaluator.on_event = handler

    def restore(self, variables: list | None = None, *, quiet: bool = False) -> RestoreReport | None:
        """Re-create the session's variables in the image; failures are told unless `quiet`."""
        if self.active is None or self.evaluator is None:
            return None
        report = self.active.restore(self.evaluator, variables)
        self.last_restore = report
        if report.problems and not quiet:
            self.notify(report.summary() or "")
        return report

    def supervise(self, *, notify: Notify, changed: Callable[[], None]) -> Supervisor:
        """The REPL's supervisor for this controller's attachment (started by the REPL)."""
        from ..image.supervisor import Supervisor

        self.supervisor = Supervisor(
            attachment=lambda: self.attachment,
            heal=self.heal,
            settings=lambda: self.settings,
            notify=notify,
            changed=changed,
            image_restarted=lambda: self.image_restarted,
        )
        return self.supervisor

    def state(self) -> str:
        """connected, reconnecting, image restarted, unreachable, not connected: for people."""
        if self.supervisor is not None:
            return self.supervisor.describe()
        return "connected" if self.attachment else "not connected"

    def _settled(self) -> None:
        """A working attachment again, made in the foreground."""
        if self.supervisor is not None:
            self.supervisor.reconnected()

    @_one_at_a_time
    def reconnect(self) -> str:
        """`:session reconnect`: save, drop the connection and open it again (see heal)."""
        if self.attachment is None and self.active is None:
            raise StuiError("not connected")
        self.save()  # what the workspace holds now is what a new image gets back
        outcome = self.heal(deliberate=True)
        self._settled()
        return outcome

    @_one_at_a_time
    def connect(self, address: str | None, token: str | None = None) -> RestoreReport | None:
        """`:connect`: move this session to another image (None: a fresh embedded one).

        The workspace goes along: it is saved from the old image first and
        restored into the new one. If the new image cannot be reached,
        nothing changes.
        """
        if address is not None:
            parse_address(address)
        self.save()
        old, old_token = self.attachment, self._token
        self.attachment = None
        try:
            report = self.attach(address=address, token=token, embedded=address is None)
        except BaseException:
            self.attachment, self._token = old, old_token
            if old is not None:
                self._new_evaluator()
            raise
        if old is not None:
            old.close()
        self._settled()
        return report

    @_one_at_a_time
    def heal(self, *, timeout: float = 5.0, deliberate: bool = False) -> str:
        """Replace a broken attachment; answer one line on what came back.

        The embedded image is killed if it still runs (it hung) and a new one
        launched. A server is asked for this stui's workspace back (a lease);
        when it no longer has it, or it is another image, the workspace is
        restored from the session. ImageUnreachable means try again later.
        """
        old = self.attachment
        active = self.active
        # A failed attempt has dropped the attachment: the last one that worked says where to go.
        embedded = old.embedded if old is not None else self._last_address is None
        address = None if embedded else (old.connection.address if old is not None else self._last_address)
        resume = None if embedded else self._last_ticket
        known_image = self._last_image_id
        hung = old is not None and old.image_alive
        if old is not None:
            old.close(patience=0.5)  # a hung embedded image is killed, not waited for
            self.attachment = None
        attachment = self._open_attachment(address, self._token, resume=resume, timeout=timeout)
        self._adopt(attachment)
        info = attachment.connection.info
        self.image_restarted = not (info is not None and info.resumed)
        if info is not None and info.resumed:
            return f"reconnected to {address}: your workspace was still there"
        if active is not None:
            active.note_image(info, address)
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
        if self.active is None:
            return
        notes = self.active.save(self.evaluator if refresh else None)
        for note in notes:
            self.notify(note.text)

    def autosave(self) -> None:
        """Save when it is time; a failure (a full disk) is told, and tried again after the interval."""
        if self.active is not None and self.active.dirty and self.active.autosave_due():
            try:
                self.save()
            except StuiError as exc:
                self.active.last_save = time.monotonic()
                self.notify(f"{exc}; trying again in {self.settings['autosave']} s")

    @_one_at_a_time
    def switch(self, name: str, *, create: bool = False) -> RestoreReport | None:
        """Save this session, then load NAME with its own image and workspace."""
        from .model import ConnectionSpec

        if self.active is not None and name == self.active.name:
            raise UsageError(f"already in session {name}")
        exists = self.store.exists(name)
        if create and exists:
            raise UsageError(f"a session named {name} already exists (:session switch {name} opens it)")
        if not create and not exists:
            raise UsageError(f"no session named {name} (:session new {name} creates one)")
        incoming = self.load_session(name)
        previous = self.active
        if create and previous is not None and not previous.session.connection.embedded:
            # A new session starts on the same image as the one it was made from.
            spec = previous.session.connection
            token = previous.open_token() if spec.token else None
            incoming.session.connection = ConnectionSpec(spec.address, incoming.seal_token(token) if token else None)
        self.save()
        old = self.attachment
        self.attachment = None
        self.use_session(incoming)
        try:
            report = self.attach()
        except BaseException:
            # Could not reach the new session's image: go back to where we were.
            self.use_session(previous)
            self.attachment = old
            raise
        if old is not None:
            old.close()
        if create:
            self.save(refresh=False)
        self._settled()  # a working attachment again, even after giving up on the old one
        return report

    def copy_to(self, name: str) -> None:
        """`:session save NAME`: the current state under another name (secrets sealed again for it)."""
        from .store import SessionFile, now
        from .vault import drop_fields, reseal_session

        active = self._require_active()
        if self.store.exists(name):
            raise UsageError(f"a session named {name} already exists")
        self.save()
        copy = active.session.copy()
        unopenable = reseal_session(copy, self.vault(), to_name=name)
        skipped = drop_fields(copy, unopenable)
        copy.name = name
        copy.created = copy.updated = now()
        SessionFile(self.store, name).save(copy, history_limit=self.settings["history_limit"])
        if skipped:
            self.notify(f"not copied (locked): {', '.join(skipped)}")

    @_one_at_a_time
    def rename(self, old: str, new: str) -> None:
        """Rename a session's file; secrets are sealed again under the new name."""
        from .store import SessionFile
        from .vault import drop_fields, reseal_session

        if self.store.exists(new):
            raise UsageError(f"a session named {new} already exists")
        if not self.store.exists(old) and (self.active is None or self.active.name != old):
            raise UsageError(f"no session named {old}")
        current = self.active is not None and self.active.name == old
        if current:
            self.save()
        active = self.active if current else self.load_session(old)
        assert active is not None
        copy = active.session.copy()
        unopenable = reseal_session(copy, self.vault(), to_name=new)
        if unopenable:
            locked = drop_fields(copy, unopenable)
            raise UsageError(f"cannot rename {old}: {', '.join(locked)} cannot be opened, and renaming seals them again")
        copy.name = new
        SessionFile(self.store, new).save(copy, history_limit=active.settings["history_limit"])
        with self.store.locked(old):
            self.store.delete(old)
        if current:
            renamed = self.load_session(new)
            renamed.unrestored = set(active.unrestored)  # still nil in the image: keep their recipes
            self.use_session(renamed)
            if self.attachment is not None:
                self._new_evaluator()

    def _require_active(self) -> ActiveSession:
        if self.active is None:
            raise UsageError("no session in use (start stui with --session NAME)")
        return self.active

    @_one_at_a_time
    def close(self, *, quick: bool = False) -> None:
        """Save and let go of the image (stopping it when it is ours).
        `quick` saves what stui knows without asking the image, which may be
        busy: for stopping on a signal. A save that fails raises its
        StuiError once the image is let go, so that stui exits non-zero."""
        try:
            if self.active is not None:
                self.save(refresh=not quick)
        finally:
            if self.attachment is not None:
                self.attachment.close()
                self.attachment = None


def _default_vault() -> Any:
    from .vault import open_vault

    return open_vault()
