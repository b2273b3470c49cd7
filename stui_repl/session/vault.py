"""Sealing secrets for session files, with a key that is kept somewhere else.

Session files are plain TOML that people back up, copy and diff; a `:secret`
variable or a connection token must not be readable in them. The session
layer hands each such value to a Vault and stores what comes back.

Sealed string
    ``stui-aead1:<key-id>:<base64url(nonce || ciphertext || tag), unpadded>``

    One line of ASCII, safe in any TOML string. ``stui-aead1`` names the
    scheme: AES-256-GCM, a fresh random 96-bit nonce per value, 128-bit tag.
    A later scheme gets a new name, so an older stui can say "upgrade" rather
    than "damaged". The key id is the first 8 hex digits of
    HMAC-SHA256(key, "stui key id"): it says which key sealed a value, so "you
    have another key" can be told apart from "this was tampered with", and
    being a PRF output it reveals nothing about the key. The base64 must be
    canonical, so no two strings open to the same value.

Associated data
    The AEAD also authenticates the header ``stui-aead1:<key-id>``, the
    session name and the field's path in the file (``variables.dbPass.secret``,
    ``connection.token``), each length-prefixed so no two (session, field)
    pairs encode alike. A value copied to another field or session therefore
    fails to open. Renaming a session or a variable means resealing its
    values: ``Vault.reseal(..., to_session=..., to_field=...)``.

Key sources (KeySource), as chosen by ``open_vault(source)``
    ``keyring``     the OS keyring through the optional ``keyring`` package,
                    service "stui", entry "key" (entry "key.new" while a
                    rotation is staged); only a backend with priority > 0 that
                    is not keyring's fail/null backend counts as usable.
    ``file``        ``config_dir()/key``: 32 random bytes in base64, mode 0600,
                    in a 0700 directory; ``key.new`` while a rotation is staged.
                    A key file that is not yours, or that others may read or
                    write, is refused with errors.Untrusted (trust.py).
    ``passphrase``  scrypt (n=2**14, r=8, p=1: about 35 ms on a 2.8 GHz 2-core
                    VM, 16 MiB) of ``STUI_PASSPHRASE`` or of what the caller's
                    prompt callback answers, with the salt in
                    ``config_dir()/passphrase.salt`` (not secret, but refused
                    like the key if others may write it). While a
                    rotation is staged the new passphrase comes from
                    ``STUI_NEW_PASSPHRASE`` or the prompt, its salt from
                    ``passphrase.salt.new``.
    ``auto``        passphrase if STUI_PASSPHRASE is set or a passphrase salt
                    exists; else the key file if it exists; else the keyring if
                    usable and STUI_HOME is unset; else a (new) key file. A key
                    that already exists wins, so that installing keyring or
                    forgetting STUI_PASSPHRASE never makes a second key that
                    cannot open the values sealed so far; STUI_HOME promises a
                    self-contained stui tree (test suites rely on it), so it
                    keeps stui away from the real keyring.

Laziness
    Most sessions hold no secret, and importing `cryptography` costs tens of
    milliseconds, so opening a vault reads, creates and imports nothing; the
    source is chosen and the key loaded on first use, and a key (or salt) is
    created only by the first ``encrypt``. ``decrypt`` never creates anything.

Rotation (for ``stui key rotate``)
    1. ``vault.start_rotation()`` stages a new key beside the current one and
       answers its id. A key staged by an earlier, interrupted rotation is
       reused, never replaced.
    2. For every sealed value of every session file: ``vault.reseal(...)``,
       then write the file. A value already sealed with the new key comes back
       unchanged, so a second run only does what the first did not. Stop at
       the first error.
    3. Only when every value was resealed: ``vault.finish_rotation()`` makes
       the staged key current and deletes the old one. With a passphrase, the
       new passphrase is the one to use from then on.
    While a key is staged (between steps 1 and 3, or after a crash) every
    Vault opens values sealed with either key and seals with the staged one,
    so nothing is lost, and running the rotation again finishes the job.

Nothing here logs, and no message, exception or repr holds a plaintext, a key,
a passphrase or the text of a sealed value (a "malformed" one may well be a
plaintext someone pasted into the file).
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from .. import paths, trust
from ..errors import StuiError
from .model import ConnectionSpec, Session

__all__ = [
    "SCHEME",
    "SOURCES",
    "TOKEN_FIELD",
    "AutoKeySource",
    "FileKeySource",
    "KeySource",
    "KeyringKeySource",
    "LockedSecret",
    "PassphraseKeySource",
    "Vault",
    "drop_fields",
    "is_sealed",
    "key_id",
    "open_vault",
    "reseal_session",
    "sealed_key_id",
    "secret_field",
    "usable_keyring",
]

SCHEME = "stui-aead1"
SOURCES = ("auto", "keyring", "file", "passphrase")
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SALT_BYTES = 16
KEY_ID_CHARS = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
KEYRING_SERVICE = "stui"
PASSPHRASE_ENV = "STUI_PASSPHRASE"
NEW_PASSPHRASE_ENV = "STUI_NEW_PASSPHRASE"
# What the prompt callback is asked, so the caller can e.g. ask twice for a new one.
PROMPT_PASSPHRASE = "stui passphrase: "
PROMPT_FIRST_PASSPHRASE = "choose a stui passphrase: "
PROMPT_NEW_PASSPHRASE = "new stui passphrase: "

Slot = Literal["current", "staged"]
Prompt = Callable[[str], str]
Reason = Literal["no-key", "wrong-key", "tampered", "malformed"]

_SEALED = re.compile(r"(stui-aead\d{1,3}):([0-9a-f]{8}):([A-Za-z0-9_-]+)")  # 8 = KEY_ID_CHARS
_SCHEME_ONLY = re.compile(r"stui-aead\d{1,3}")


class LockedSecret(StuiError):
    """A sealed value cannot be opened; `reason` says why, for callers that react differently."""

    def __init__(self, message: str, reason: Reason = "no-key") -> None:
        super().__init__(message)
        self.reason: Reason = reason


# -- the sealed string ------------------------------------------------------------------------


def _random_bytes(count: int) -> bytes:
    """secrets.token_bytes, imported only when a key, a salt or a nonce is
    made: secrets imports hmac, and hmac OpenSSL (3 ms of a start)."""
    import secrets

    return secrets.token_bytes(count)


def key_id(key: bytes) -> str:
    """A short name for a key that says nothing about it (HMAC is a PRF)."""
    import hashlib  # only with a key: it loads OpenSSL, 3 ms of every start with a session
    import hmac

    return hmac.new(key, b"stui key id", hashlib.sha256).hexdigest()[:KEY_ID_CHARS]


def is_sealed(text: str) -> bool:
    """Whether `text` looks like a sealed value (no crypto: shape only)."""
    return sealed_key_id(text) is not None


def sealed_key_id(text: str) -> str | None:
    """The id of the key that sealed `text`, or None if it is not a well-formed sealed value."""
    if not isinstance(text, str):
        return None
    try:
        return _parse(text)[0]
    except ValueError:
        return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parse(sealed: str) -> tuple[str, bytes]:
    """The key id and nonce||ciphertext; the ValueError says what is wrong, never what the text holds."""
    text = sealed.strip()
    match = _SEALED.fullmatch(text)
    if match is None:
        scheme = text.split(":", 1)[0]
        if _SCHEME_ONLY.fullmatch(scheme) and scheme != SCHEME:
            raise ValueError(f"it was sealed with {scheme}, which this stui does not know; upgrade stui")
        raise ValueError(f"it is not a sealed value ({SCHEME}:<key-id>:<data>); set the value again")
    scheme, kid, body = match.groups()
    if scheme != SCHEME:
        raise ValueError(f"it was sealed with {scheme}, which this stui does not know; upgrade stui")
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        blob = b""
    if _b64url(blob) != body or len(blob) < NONCE_BYTES + TAG_BYTES:
        raise ValueError("its data is truncated or not canonical base64url; set the value again")
    return kid, blob


def _associated_data(kid: str, session: str, field: str) -> bytes:
    """What the tag binds besides the ciphertext: header, session and field, length-prefixed."""
    out = bytearray()
    for part in (f"{SCHEME}:{kid}", session, field):
        data = part.encode("utf-8", "surrogatepass")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def _aesgcm(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _shown(text: str) -> str:
    """A name as it can appear in a one-line message."""
    return text if text.isprintable() else repr(text)


# -- files ------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """Make a new or renamed name durable before anything is sealed with the key it holds."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_new(path: Path, text: str) -> bool:
    """Write a file that must not exist yet, mode 0600, all or nothing; False if it exists.

    The text goes to a temporary name first and is then hard-linked into place:
    the link fails if `path` exists, so nothing is ever overwritten and no
    other process sees a half-written key.
    """
    trust.private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{_random_bytes(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), 0o600)
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: O_EXCL on the name itself
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(text + "\n")
                file.flush()
                os.fsync(file.fileno())
        _fsync_dir(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _read_b64(path: Path, size: int, what: str, *, secret: bool = False) -> bytes | None:
    """The bytes a one-line base64 file holds, None if there is no such file.
    A file or directory others could have changed is refused (Untrusted)."""
    try:
        if not trust.private_dir(path.parent, create=False):
            return None
        raw = trust.read(path, f"the {what}", secret=secret)
        if raw is None:
            return None
    except OSError as exc:
        raise LockedSecret(f"cannot read the {what} {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        value = base64.b64decode(raw.strip(), validate=True)
    except ValueError:
        value = b""
    if len(value) != size:
        raise LockedSecret(f"the {what} {path} is damaged (it must hold {size} bytes in base64); restore it")
    return value


# -- key sources ------------------------------------------------------------------------------


class KeySource(ABC):
    """Where a Vault's keys live: the current key, and a staged one while a rotation is under way."""

    name: str = "?"
    # The end of the message for a value sealed with a key this source does not have.
    wrong_key_advice = "restore the key it was sealed with, or set the value again"

    @abstractmethod
    def exists(self, slot: Slot) -> bool:
        """Whether there is key material for `slot`; cheap: no prompt, no KDF, creates nothing."""

    @abstractmethod
    def load(self, slot: Slot) -> bytes | None:
        """The key in `slot`, or None if there is none or nothing to unlock it with; creates nothing."""

    @abstractmethod
    def obtain(self, slot: Slot) -> bytes:
        """The key in `slot`, created if there is none (never overwriting); LockedSecret if impossible."""

    @abstractmethod
    def commit(self) -> None:
        """Make the staged key current and delete the old one."""

    @abstractmethod
    def missing(self) -> str:
        """Why there is no key, for a message."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class FileKeySource(KeySource):
    """The key in a file of its own, for machines without a usable keyring."""

    name = "file"
    wrong_key_advice = "restore the key file it was sealed with, or set the value again"

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__()
        self.directory = directory if directory is not None else paths.config_dir()

    def path(self, slot: Slot) -> Path:
        return self.directory / ("key" if slot == "current" else "key.new")

    def exists(self, slot: Slot) -> bool:
        return self.path(slot).exists()

    def load(self, slot: Slot) -> bytes | None:
        return _read_b64(self.path(slot), KEY_BYTES, "key file", secret=True)

    def obtain(self, slot: Slot) -> bytes:
        key = self.load(slot)
        if key is not None:
            return key
        fresh = _random_bytes(KEY_BYTES)
        path = self.path(slot)
        try:
            if _write_new(path, base64.b64encode(fresh).decode("ascii")):
                return fresh
        except OSError as exc:
            raise LockedSecret(f"cannot create the key file {path}: {exc.strerror or type(exc).__name__}") from None
        key = self.load(slot)  # another stui created it a moment ago
        if key is None:
            raise LockedSecret(f"the key file {path} vanished while it was being created; try again")
        return key

    def commit(self) -> None:
        try:
            os.replace(self.path("staged"), self.path("current"))
        except FileNotFoundError:
            raise StuiError("no key rotation is under way") from None
        _fsync_dir(self.directory)

    def missing(self) -> str:
        return f"there is no key file {self.path('current')}"

    def __repr__(self) -> str:
        return f"<FileKeySource {self.directory}>"


def usable_keyring() -> Any | None:
    """The active keyring backend, or None if keyring is missing or offers only its fail/null backend."""
    try:
        import keyring

        backend = keyring.get_keyring()
        usable = backend.priority > 0
    except Exception:  # noqa: BLE001 -- not installed, or a backend that breaks while being probed
        return None
    if not usable or type(backend).__module__ in ("keyring.backends.fail", "keyring.backends.null"):
        return None
    return backend


class KeyringKeySource(KeySource):
    """The key in the OS keyring, where the desktop guards it; the backend is found on first use."""

    name = "keyring"
    wrong_key_advice = "restore the keyring entry it was sealed with, or set the value again"

    def __init__(self, backend: Any | None = None) -> None:
        super().__init__()
        self._backend = backend

    @property
    def backend(self) -> Any:
        if self._backend is None:
            self._backend = usable_keyring()
            if self._backend is None:
                raise LockedSecret(
                    "no usable keyring here (the keyring package is missing or has no backend); "
                    "choose the file or passphrase key source"
                )
        return self._backend

    def _label(self) -> str:
        backend = self.backend
        return str(getattr(backend, "name", None) or type(backend).__name__)

    def _call(self, doing: str, method: str, *args: str) -> Any:
        try:
            return getattr(self.backend, method)(KEYRING_SERVICE, *args)
        except LockedSecret:
            raise
        except Exception as exc:  # noqa: BLE001 -- backends raise anything; their text may echo the key
            raise LockedSecret(
                f"the keyring ({self._label()}) failed to {doing} the stui key: {type(exc).__name__}; "
                "unlock it, or choose the file or passphrase key source"
            ) from None

    @staticmethod
    def _entry(slot: Slot) -> str:
        return "key" if slot == "current" else "key.new"

    def exists(self, slot: Slot) -> bool:
        return self._call("read", "get_password", self._entry(slot)) is not None

    def load(self, slot: Slot) -> bytes | None:
        text = self._call("read", "get_password", self._entry(slot))
        if text is None:
            return None
        try:
            key = base64.b64decode(str(text).strip(), validate=True)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise LockedSecret(f"the keyring entry {KEYRING_SERVICE}/{self._entry(slot)} is damaged; restore it")
        return key

    def obtain(self, slot: Slot) -> bytes:
        key = self.load(slot)
        if key is not None:
            return key
        self._call("store", "set_password", self._entry(slot), base64.b64encode(_random_bytes(KEY_BYTES)).decode())
        # Read it back: a backend that drops it silently must fail now, not after values were sealed.
        key = self.load(slot)
        if key is None:
            raise LockedSecret(f"the keyring ({self._label()}) did not keep the stui key; choose another key source")
        return key

    def commit(self) -> None:
        staged = self._call("read", "get_password", self._entry("staged"))
        if staged is None:
            raise StuiError("no key rotation is under way")
        self._call("store", "set_password", self._entry("current"), staged)
        self._call("delete", "delete_password", self._entry("staged"))

    def missing(self) -> str:
        return f"the keyring ({self._label()}) has no {KEYRING_SERVICE}/key entry"


class PassphraseKeySource(KeySource):
    """A key derived from a passphrase, for machines where no key may be stored at all."""

    name = "passphrase"
    wrong_key_advice = f"check the passphrase ({PASSPHRASE_ENV}), or set the value again"

    def __init__(self, prompt: Prompt | None = None, directory: Path | None = None) -> None:
        super().__init__()
        self._prompt = prompt
        self.directory = directory if directory is not None else paths.config_dir()

    def salt_path(self, slot: Slot) -> Path:
        return self.directory / ("passphrase.salt" if slot == "current" else "passphrase.salt.new")

    @staticmethod
    def _env(slot: Slot) -> str:
        return PASSPHRASE_ENV if slot == "current" else NEW_PASSPHRASE_ENV

    def _passphrase(self, slot: Slot, first: bool) -> str | None:
        value = os.environ.get(self._env(slot))
        if not value and self._prompt is not None:
            question = PROMPT_NEW_PASSPHRASE if slot == "staged" else PROMPT_FIRST_PASSPHRASE if first else PROMPT_PASSPHRASE
            value = self._prompt(question)
        return value or None

    @staticmethod
    def _derive(passphrase: str, salt: bytes) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        # NFC: the same passphrase typed on two systems may arrive composed or decomposed.
        secret = unicodedata.normalize("NFC", passphrase).encode("utf-8", "surrogatepass")
        return Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(secret)

    def exists(self, slot: Slot) -> bool:
        return self.salt_path(slot).exists()

    def load(self, slot: Slot) -> bytes | None:
        salt = _read_b64(self.salt_path(slot), SALT_BYTES, "passphrase salt file")
        if salt is None:
            return None
        passphrase = self._passphrase(slot, first=False)
        return None if passphrase is None else self._derive(passphrase, salt)

    def obtain(self, slot: Slot) -> bytes:
        path = self.salt_path(slot)
        salt = _read_b64(path, SALT_BYTES, "passphrase salt file")
        # Ask before creating the salt, so that a missing passphrase leaves nothing behind.
        passphrase = self._passphrase(slot, first=salt is None)
        if passphrase is None:
            raise LockedSecret(f"no passphrase: set {self._env(slot)}")
        if salt is None:
            fresh = _random_bytes(SALT_BYTES)
            try:
                created = _write_new(path, base64.b64encode(fresh).decode("ascii"))
            except OSError as exc:
                raise LockedSecret(f"cannot create {path}: {exc.strerror or type(exc).__name__}") from None
            salt = fresh if created else _read_b64(path, SALT_BYTES, "passphrase salt file")
            if salt is None:
                raise LockedSecret(f"the salt file {path} vanished while it was being created; try again")
        return self._derive(passphrase, salt)

    def commit(self) -> None:
        try:
            os.replace(self.salt_path("staged"), self.salt_path("current"))
        except FileNotFoundError:
            raise StuiError("no key rotation is under way") from None
        _fsync_dir(self.directory)

    def missing(self) -> str:
        if not self.exists("current"):
            return f"there is no passphrase salt file {self.salt_path('current')}"
        return f"no passphrase: set {PASSPHRASE_ENV}"

    def __repr__(self) -> str:
        return f"<PassphraseKeySource {self.directory}>"


class AutoKeySource(KeySource):
    """Picks the source on first use (see the module docstring), so that opening a vault costs nothing."""

    def __init__(self, prompt: Prompt | None = None) -> None:
        super().__init__()
        self._prompt = prompt
        self._chosen: KeySource | None = None

    @property
    def chosen(self) -> KeySource:
        if self._chosen is None:
            directory = paths.config_dir()
            if os.environ.get(PASSPHRASE_ENV) or (directory / "passphrase.salt").exists():
                self._chosen = PassphraseKeySource(self._prompt, directory)
            elif (directory / "key").exists():
                self._chosen = FileKeySource(directory)
            elif "STUI_HOME" not in os.environ and (backend := usable_keyring()) is not None:
                self._chosen = KeyringKeySource(backend)
            else:
                self._chosen = FileKeySource(directory)
        return self._chosen

    @property  # type: ignore[override]
    def name(self) -> str:
        return "auto" if self._chosen is None else self._chosen.name

    @property  # type: ignore[override]
    def wrong_key_advice(self) -> str:
        return self.chosen.wrong_key_advice

    def exists(self, slot: Slot) -> bool:
        return self.chosen.exists(slot)

    def load(self, slot: Slot) -> bytes | None:
        return self.chosen.load(slot)

    def obtain(self, slot: Slot) -> bytes:
        return self.chosen.obtain(slot)

    def commit(self) -> None:
        self.chosen.commit()

    def missing(self) -> str:
        return self.chosen.missing()

    def __repr__(self) -> str:
        return f"<AutoKeySource {self._chosen!r}>"


# -- the vault --------------------------------------------------------------------------------


class Vault:
    """Seals and opens secret values; keys stay in memory, loaded on first need."""

    def __init__(self, source: KeySource) -> None:
        self._source = source
        self._keys: dict[Slot, bytes | None] = {}  # slot -> key once looked up (None: there is none)
        self._staged: bool | None = None  # whether a rotation is staged, once asked

    def __repr__(self) -> str:
        ids = [key_id(key) for key in self._keys.values() if key]
        return f"<Vault source={self._source.name} key_ids={ids}>"

    @property
    def source(self) -> KeySource:
        return self._source

    def _key(self, slot: Slot) -> bytes | None:
        if slot not in self._keys:
            self._keys[slot] = self._source.load(slot)
        return self._keys[slot]

    def _rotating(self) -> bool:
        if self._staged is None:
            self._staged = self._source.exists("staged")
        return self._staged

    def _sealing_key(self) -> bytes:
        """The staged key while a rotation is under way, else the current one, created if need be."""
        slot: Slot = "staged" if self._rotating() else "current"
        key = self._key(slot)
        if key is None:
            key = self._keys[slot] = self._source.obtain(slot)
        return key

    def _opening_key(self, kid: str) -> tuple[bytes | None, list[str]]:
        """The key with id `kid` if this stui has it, and the ids of the keys it has."""
        have: list[str] = []
        slots: tuple[Slot, ...] = ("current", "staged") if self._rotating() else ("current",)
        for slot in slots:
            key = self._key(slot)
            if key is not None:
                if key_id(key) == kid:
                    return key, have
                have.append(key_id(key))
        return None, have

    def key_ids(self) -> list[str]:
        """The ids of the keys this stui has (current, then staged); loads them, creates nothing."""
        slots: tuple[Slot, ...] = ("current", "staged") if self._rotating() else ("current",)
        return [key_id(key) for slot in slots if (key := self._key(slot)) is not None]

    def encrypt(self, plaintext: str, *, session: str, field: str) -> str:
        """Seal `plaintext` for one field of one session; creates the key on first use."""
        if not isinstance(plaintext, str):
            raise TypeError(f"only text can be sealed, not {type(plaintext).__name__}")
        key = self._sealing_key()
        kid = key_id(key)
        nonce = _random_bytes(NONCE_BYTES)
        data = plaintext.encode("utf-8", "surrogatepass")
        sealed = _aesgcm(key).encrypt(nonce, data, _associated_data(kid, session, field))
        return f"{SCHEME}:{kid}:{_b64url(nonce + sealed)}"

    def decrypt(self, sealed: str, *, session: str, field: str) -> str:
        """Open a value sealed for this field of this session; LockedSecret says why it cannot be."""
        if not isinstance(sealed, str):
            raise TypeError(f"a sealed value is text, not {type(sealed).__name__}")
        where = f"cannot decrypt {_shown(field)} of session {session!r}"
        try:
            kid, blob = _parse(sealed)
        except ValueError as exc:
            raise LockedSecret(f"{where}: {exc}", "malformed") from None
        key, have = self._opening_key(kid)
        if key is None and not have:
            raise LockedSecret(
                f"{where}: no stui key is available ({self._source.missing()}); restore the key, or set the value again",
                "no-key",
            )
        if key is None:
            raise LockedSecret(
                f"{where}: it was sealed with key {kid} but this stui has key {' and '.join(have)}; "
                f"{self._source.wrong_key_advice}",
                "wrong-key",
            )
        from cryptography.exceptions import InvalidTag

        try:
            data = _aesgcm(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated_data(kid, session, field))
        except InvalidTag:
            raise LockedSecret(
                f"{where}: it does not authenticate with key {kid}, so it was altered or copied "
                "from another field or session; set the value again",
                "tampered",
            ) from None
        return data.decode("utf-8", "surrogatepass")

    def can_decrypt(self, sealed: str) -> bool:
        """Whether this stui has the key `sealed` names (no AEAD: it may still fail to authenticate)."""
        kid = sealed_key_id(sealed)
        if kid is None:
            return False
        try:
            return self._opening_key(kid)[0] is not None
        except LockedSecret:
            return False

    # -- rotation (steps in the module docstring) --

    @property
    def rotation_pending(self) -> bool:
        """Whether a new key is staged: a rotation is under way or was interrupted."""
        return self._rotating()

    def start_rotation(self) -> str:
        """Stage a new key (or reuse the one an interrupted rotation staged) and answer its id."""
        if self._key("current") is None:
            if self._source.exists("current"):
                raise LockedSecret(f"cannot rotate the key: {self._source.missing()}")
            raise StuiError("there is no stui key to rotate yet")
        staged = self._keys["staged"] = self._source.obtain("staged")
        self._staged = True
        return key_id(staged)

    def reseal(
        self, sealed: str, *, session: str, field: str, to_session: str | None = None, to_field: str | None = None
    ) -> str:
        """Open a value and seal it again with the sealing key, for a new place if given.

        A value that is already sealed with that key and stays where it is comes
        back unchanged (after it was checked), so rerunning a rotation rewrites
        only what is left.
        """
        plaintext = self.decrypt(sealed, session=session, field=field)
        to_session = session if to_session is None else to_session
        to_field = field if to_field is None else to_field
        if (to_session, to_field) == (session, field) and sealed_key_id(sealed) == key_id(self._sealing_key()):
            return sealed
        return self.encrypt(plaintext, session=to_session, field=to_field)

    def finish_rotation(self) -> None:
        """Make the staged key current and delete the old one; only after every value was resealed."""
        if not self._source.exists("staged"):
            raise StuiError("no key rotation is under way")
        staged = self._keys.get("staged")
        self._source.commit()
        # Keep the new key: a passphrase source could not derive it again from the old STUI_PASSPHRASE.
        self._keys = {"current": staged} if staged is not None else {}
        self._staged = False


def open_vault(source: str = "auto", *, prompt: Prompt | None = None) -> Vault:
    """A vault over the named key source; reads, creates and imports nothing until it is used.

    `prompt` asks the user for a passphrase (the question is one of the
    PROMPT_* texts) when STUI_PASSPHRASE / STUI_NEW_PASSPHRASE is not set.
    """
    sources: dict[str, Callable[[], KeySource]] = {
        "auto": lambda: AutoKeySource(prompt),
        "keyring": KeyringKeySource,
        "file": FileKeySource,
        "passphrase": lambda: PassphraseKeySource(prompt),
    }
    if source not in sources:
        raise StuiError(f"unknown key source {source!r}: use one of {', '.join(SOURCES)}")
    return Vault(sources[source]())


# -- the sealed values of a session -------------------------------------------------------

TOKEN_FIELD = "connection.token"


def secret_field(name: str) -> str:
    """Where a secret variable's sealed value lives in the file: part of what is authenticated."""
    return f"variables.{name}.secret"


def reseal_session(session: Session, vault: Vault, *, to_name: str | None = None) -> list[str]:
    """Seal every secret and the connection token of `session` again, in place.

    The one path for a key rotation (same name, the vault's sealing key) and
    for a copy or a rename (`to_name`: the session name is authenticated too).
    Answers the fields no key here opens; they are left as they were, for the
    caller to keep (rotation), drop (copy) or refuse (rename).
    """
    from dataclasses import replace

    target = session.name if to_name is None else to_name
    unopenable: list[str] = []

    def resealed(sealed: str, field: str) -> str:
        try:
            return vault.reseal(sealed, session=session.name, field=field, to_session=target)
        except LockedSecret:
            unopenable.append(field)
            return sealed

    for variable in session.secrets():
        assert variable.sealed is not None
        session.variables[variable.name] = replace(variable, sealed=resealed(variable.sealed, secret_field(variable.name)))
    if session.connection.token is not None:
        session.connection = ConnectionSpec(session.connection.address, resealed(session.connection.token, TOKEN_FIELD))
    return unopenable


def drop_fields(session: Session, fields: list[str]) -> list[str]:
    """Remove the sealed values at `fields` (from reseal_session); answer what a person calls them."""
    labels = []
    for field in fields:
        if field == TOKEN_FIELD:
            session.connection = ConnectionSpec(session.connection.address, None)
            labels.append("the connection token")
        else:
            name = field.removeprefix("variables.").removesuffix(".secret")
            session.variables.pop(name, None)
            labels.append(name)
    return labels
