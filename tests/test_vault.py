"""The vault: sealing secrets for session files, and where its keys come from.

Pure unit tests: each test gets its own STUI_HOME under tmp_path and a
`keyring` module that is either absent or a small in-memory fake, so no test
touches the user's key, salt or keyring.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

from stui_repl.errors import StuiError, Untrusted
from stui_repl.session import vault as vault_module
from stui_repl.session.vault import (
    KeyringKeySource,
    LockedSecret,
    Vault,
    is_sealed,
    key_id,
    open_vault,
    sealed_key_id,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-Sup3r-s3cret"
SESSION = "default"
FIELD = "variables.dbPass.secret"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A STUI_HOME of this test's own, no passphrase in the environment, no real keyring."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STUI_HOME", str(home))
    monkeypatch.delenv("STUI_PASSPHRASE", raising=False)
    monkeypatch.delenv("STUI_NEW_PASSPHRASE", raising=False)
    monkeypatch.setitem(sys.modules, "keyring", None)  # `import keyring` fails, installed or not
    return home


@pytest.fixture
def xdg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No STUI_HOME (so "auto" may consider the keyring), with every XDG directory under tmp_path."""
    monkeypatch.delenv("STUI_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    for name in ("CONFIG", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    return tmp_path / "config" / "stui"


def config(home: Path) -> Path:
    return home / "config"


def seal(vault: Vault, text: str = SECRET, session: str = SESSION, field: str = FIELD) -> str:
    return vault.encrypt(text, session=session, field=field)


def unseal(vault: Vault, sealed: str, session: str = SESSION, field: str = FIELD) -> str:
    return vault.decrypt(sealed, session=session, field=field)


def locked(vault: Vault, sealed: str, session: str = SESSION, field: str = FIELD) -> LockedSecret:
    with pytest.raises(LockedSecret) as caught:
        unseal(vault, sealed, session, field)
    return caught.value


def body_of(sealed: str) -> bytes:
    body = sealed.split(":")[2]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def with_body(sealed: str, blob: bytes) -> str:
    scheme, kid, _ = sealed.split(":")
    return f"{scheme}:{kid}:{base64.urlsafe_b64encode(blob).rstrip(b'=').decode()}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


class FakeKeyring:
    """Just the part of a keyring backend the vault uses."""

    name = "fake keyring"

    def __init__(self, priority: float = 1) -> None:
        self.priority = priority
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.entries.get((service, user))

    def set_password(self, service: str, user: str, password: str) -> None:
        self.entries[(service, user)] = password

    def delete_password(self, service: str, user: str) -> None:
        del self.entries[(service, user)]


def install_keyring(monkeypatch: pytest.MonkeyPatch, backend: object) -> None:
    module = types.ModuleType("keyring")
    module.get_keyring = lambda: backend  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", module)


# -- sealing and opening ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [SECRET, "", "pässwörd ✓ 🐍 日本語", "two\nlines\tand \"quotes\"", "x" * 10_000])
def test_round_trip(text: str) -> None:
    sealed = seal(open_vault(), text)
    assert sealed.isascii() and "\n" not in sealed
    assert is_sealed(sealed)
    assert unseal(open_vault(), sealed) == text  # a second vault reads the key back from disk


def test_sealed_string_format() -> None:
    vault = open_vault()
    sealed = seal(vault)
    scheme, kid, body = sealed.split(":")
    assert scheme == "stui-aead1"
    assert kid == sealed_key_id(sealed) == vault.key_ids()[0]
    assert len(kid) == 8 and int(kid, 16) >= 0
    assert "=" not in body
    assert len(body_of(sealed)) == 12 + len(SECRET.encode()) + 16  # nonce, ciphertext, tag


def test_same_plaintext_seals_differently_every_time() -> None:
    vault = open_vault()
    sealed = [seal(vault) for _ in range(20)]
    assert len(set(sealed)) == 20
    assert len({body_of(s)[:12] for s in sealed}) == 20  # a fresh nonce each time


@pytest.mark.parametrize("where", [0, 11, 12, -17, -1], ids=["nonce", "nonce-end", "ciphertext", "tag", "tag-end"])
def test_a_flipped_byte_fails_to_authenticate(where: int) -> None:
    vault = open_vault()
    sealed = seal(vault)
    blob = bytearray(body_of(sealed))
    blob[where] ^= 0x01
    error = locked(vault, with_body(sealed, bytes(blob)))
    assert error.reason == "tampered"
    assert "altered" in str(error) and FIELD in str(error) and "'default'" in str(error)


def test_a_value_moved_to_another_field_or_session_fails() -> None:
    vault = open_vault()
    sealed = seal(vault)
    assert locked(vault, sealed, field="connection.token").reason == "tampered"
    assert locked(vault, sealed, session="work").reason == "tampered"
    assert "copied from another field or session" in str(locked(vault, sealed, session="work"))
    assert unseal(vault, sealed) == SECRET


def test_session_and_field_are_not_confused_at_their_boundary() -> None:
    vault = open_vault()
    sealed = vault.encrypt(SECRET, session="ab", field="c")
    assert locked(vault, sealed, session="a", field="bc").reason == "tampered"


def test_a_value_sealed_with_another_key_names_both_key_ids(home: Path, tmp_path: Path, monkeypatch) -> None:
    other_home = tmp_path / "other"
    monkeypatch.setenv("STUI_HOME", str(other_home))
    foreign = seal(open_vault())
    monkeypatch.setenv("STUI_HOME", str(home))
    vault = open_vault()
    seal(vault)  # this home's own, different key
    error = locked(vault, foreign)
    assert error.reason == "wrong-key"
    assert sealed_key_id(foreign) in str(error) and vault.key_ids()[0] in str(error)
    assert "restore the key file" in str(error)
    assert not vault.can_decrypt(foreign)


def test_a_changed_key_id_is_a_wrong_key_not_tampering() -> None:
    vault = open_vault()
    sealed = seal(vault)
    _, kid, body = sealed.split(":")
    other = "0" * 8 if kid != "0" * 8 else "1" * 8
    assert locked(vault, f"stui-aead1:{other}:{body}").reason == "wrong-key"


@pytest.mark.parametrize(
    "text",
    [
        "",
        SECRET,
        "stui-aead1",
        "stui-aead1:0123abcd",
        "stui-aead1:XYZ:AAAA",
        "stui-aead1:0123abcd:not base64!",
        "stui-aead1:0123abcd:AAAAAAAA",  # too short for nonce and tag
        "stui-aead1:0123abcd:" + "A" * 37,  # 37 characters cannot be base64
    ],
)
def test_malformed_text_is_reported_and_creates_nothing(text: str, home: Path) -> None:
    error = locked(open_vault(), text)
    assert error.reason == "malformed"
    assert "not a sealed value" in str(error) or "base64url" in str(error)
    assert not config(home).exists()
    assert not is_sealed(text)


def test_non_canonical_base64_is_malformed() -> None:
    vault = open_vault()
    sealed = seal(vault, "abcd")  # 12 + 4 + 16 = 32 bytes: the last character carries 4 unused bits
    last = sealed[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    error = locked(vault, sealed[:-1] + twin)
    assert error.reason == "malformed"


def test_a_later_scheme_asks_for_a_newer_stui() -> None:
    error = locked(open_vault(), "stui-aead2:0123abcd:" + "A" * 40)
    assert error.reason == "malformed"
    assert "stui-aead2" in str(error) and "upgrade stui" in str(error)


# -- the key file -----------------------------------------------------------------------------


def test_no_key_at_all_fails_and_creates_nothing(home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUI_HOME", str(tmp_path / "elsewhere"))
    sealed = seal(open_vault())
    monkeypatch.setenv("STUI_HOME", str(home))
    vault = open_vault()
    error = locked(vault, sealed)
    assert error.reason == "no-key"
    assert "no key file" in str(error) and "restore the key" in str(error)
    assert not vault.can_decrypt(sealed)
    assert files_under(home) == []


def test_the_key_file_is_made_on_the_first_encrypt_only(home: Path) -> None:
    key = config(home) / "key"
    vault = open_vault()
    repr(vault)
    assert not config(home).exists()
    sealed = seal(vault)
    assert mode(config(home)) == 0o700
    assert mode(key) == 0o600
    content = key.read_bytes()
    assert len(base64.b64decode(content.strip(), validate=True)) == 32
    assert content.endswith(b"\n") and content.count(b"\n") == 1
    seal(vault)
    seal(open_vault())
    assert key.read_bytes() == content
    assert files_under(config(home)) == ["key"]  # no temporary file left behind
    assert sealed_key_id(sealed) == key_id(base64.b64decode(content))


def test_an_existing_key_file_is_used_and_never_overwritten(home: Path) -> None:
    mine = os.urandom(32)
    config(home).mkdir(mode=0o700)
    key = config(home) / "key"
    key.write_text(base64.b64encode(mine).decode() + "\n")
    key.chmod(0o600)
    sealed = seal(open_vault())
    assert sealed_key_id(sealed) == key_id(mine)
    assert base64.b64decode(key.read_text()) == mine


@pytest.mark.parametrize(("mode_bits", "why"), [(0o640, "readable by group (mode 0640)"), (0o604, "readable by others"), (0o620, "writable by group")])
def test_a_key_file_others_can_read_or_write_is_refused(home: Path, mode_bits: int, why: str) -> None:
    """The key opens every secret: like an ssh key, it must be yours alone."""
    sealed = seal(open_vault())
    key = config(home) / "key"
    key.chmod(mode_bits)
    with pytest.raises(Untrusted) as caught:
        unseal(open_vault(), sealed)
    message = str(caught.value)
    assert message.startswith(f"refusing the key file {key}: {why}") and f"run: chmod 600 {key}" in message
    assert "\n" not in message and caught.value.exit_code == 4
    key.chmod(0o600)
    assert unseal(open_vault(), sealed) == SECRET


def test_a_key_file_of_another_user_is_refused(home: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a file of another user needs root")
    sealed = seal(open_vault())
    key = config(home) / "key"
    os.chown(key, 12345, 12345)
    with pytest.raises(Untrusted, match=r"owned by uid 12345, not by you \(uid 0\)"):
        unseal(open_vault(), sealed)


def test_a_salt_file_others_can_write_is_refused_but_may_be_read(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The salt is no secret, but whoever can change it changes the key."""
    monkeypatch.setenv("STUI_PASSPHRASE", "correct horse")
    sealed = seal(open_vault())
    salt = config(home) / "passphrase.salt"
    salt.chmod(0o644)
    assert unseal(open_vault(), sealed) == SECRET
    salt.chmod(0o666)
    with pytest.raises(Untrusted, match="writable by group and others"):
        unseal(open_vault(), sealed)


def test_a_damaged_key_file_is_reported_without_its_content(home: Path) -> None:
    config(home).mkdir()
    (config(home) / "key").write_text(SECRET + "\n")
    (config(home) / "key").chmod(0o600)
    with pytest.raises(LockedSecret, match="damaged") as caught:
        seal(open_vault())
    assert SECRET not in str(caught.value)
    assert (config(home) / "key").read_text() == SECRET + "\n"


# -- the passphrase ---------------------------------------------------------------------------


def test_passphrase_from_the_environment(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUI_PASSPHRASE", "correct horse battery staple")
    vault = open_vault()  # auto: the passphrase, because it is set
    sealed = seal(vault)
    assert vault.source.name == "passphrase"
    salt = config(home) / "passphrase.salt"
    assert mode(salt) == 0o600
    assert files_under(config(home)) == ["passphrase.salt"]  # no key file
    first = salt.read_bytes()
    again = open_vault()
    assert unseal(again, sealed) == SECRET
    seal(again)
    assert salt.read_bytes() == first  # created once, then reused


def test_a_wrong_passphrase_fails_with_the_key_ids(monkeypatch) -> None:
    monkeypatch.setenv("STUI_PASSPHRASE", "right-phrase-123")
    sealed = seal(open_vault())
    monkeypatch.setenv("STUI_PASSPHRASE", "bad-phrase-456")
    error = locked(open_vault(), sealed)
    assert error.reason == "wrong-key"
    assert "check the passphrase" in str(error)
    assert "phrase-" not in str(error)


def test_passphrase_from_the_prompt_callback(home: Path) -> None:
    asked: list[str] = []

    def prompt(question: str) -> str:
        asked.append(question)
        return "typed päss"

    vault = open_vault("passphrase", prompt=prompt)
    assert asked == []  # opening asks nothing
    sealed = seal(vault)
    seal(vault)
    assert asked == [vault_module.PROMPT_FIRST_PASSPHRASE]  # asked once, then the key is kept
    again = open_vault(prompt=prompt)  # auto: a salt exists, so the passphrase
    assert unseal(again, sealed) == SECRET
    assert asked[-1] == vault_module.PROMPT_PASSPHRASE
    assert "typed" not in repr(vault) + repr(vault.source)


def test_a_forgotten_passphrase_does_not_silently_make_a_key_file(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUI_PASSPHRASE", "right")
    sealed = seal(open_vault())
    monkeypatch.delenv("STUI_PASSPHRASE")
    vault = open_vault()
    error = locked(vault, sealed)
    assert error.reason == "no-key" and "STUI_PASSPHRASE" in str(error)
    with pytest.raises(LockedSecret, match="set STUI_PASSPHRASE"):
        seal(vault)
    assert files_under(config(home)) == ["passphrase.salt"]


def test_no_passphrase_creates_no_salt(home: Path) -> None:
    vault = open_vault("passphrase", prompt=lambda question: "")
    with pytest.raises(LockedSecret, match="set STUI_PASSPHRASE"):
        seal(vault)
    assert not config(home).exists()


# -- the keyring ------------------------------------------------------------------------------


def test_keyring_holds_the_key_when_chosen(home: Path, monkeypatch) -> None:
    backend = FakeKeyring()
    install_keyring(monkeypatch, backend)
    sealed = seal(open_vault("keyring"))
    assert list(backend.entries) == [("stui", "key")]
    assert len(base64.b64decode(backend.entries["stui", "key"])) == 32
    assert not config(home).exists()
    assert unseal(open_vault("keyring"), sealed) == SECRET


def test_a_keyring_backend_can_be_given_directly(home: Path) -> None:
    backend = FakeKeyring()
    vault = Vault(KeyringKeySource(backend))
    sealed = seal(vault)
    assert unseal(Vault(KeyringKeySource(backend)), sealed) == SECRET
    assert backend.entries["stui", "key"] not in repr(vault)


def test_auto_uses_a_usable_keyring(xdg_home: Path, monkeypatch) -> None:
    backend = FakeKeyring()
    install_keyring(monkeypatch, backend)
    vault = open_vault()
    sealed = seal(vault)
    assert vault.source.name == "keyring"
    assert ("stui", "key") in backend.entries
    assert not xdg_home.exists()
    assert unseal(open_vault(), sealed) == SECRET


def test_auto_keeps_away_from_the_keyring_under_stui_home(home: Path, monkeypatch) -> None:
    backend = FakeKeyring()
    install_keyring(monkeypatch, backend)
    vault = open_vault()
    seal(vault)
    assert vault.source.name == "file"
    assert backend.entries == {}


def test_auto_prefers_an_existing_key_file_to_the_keyring(xdg_home: Path, monkeypatch) -> None:
    sealed = seal(open_vault("file"))
    install_keyring(monkeypatch, FakeKeyring())
    assert unseal(open_vault(), sealed) == SECRET


class _FailBackend(FakeKeyring):
    pass


_FailBackend.__module__ = "keyring.backends.fail"


def _raise() -> object:
    raise RuntimeError("no D-Bus")


@pytest.mark.parametrize(
    "install",
    [
        lambda mp: mp.setitem(sys.modules, "keyring", None),
        lambda mp: install_keyring(mp, FakeKeyring(priority=0)),
        lambda mp: install_keyring(mp, FakeKeyring(priority=-1)),
        lambda mp: install_keyring(mp, _FailBackend(priority=1)),
        lambda mp: mp.setitem(sys.modules, "keyring", types.SimpleNamespace(get_keyring=_raise)),
    ],
    ids=["not-installed", "priority-0", "null-priority", "fail-backend", "probe-raises"],
)
def test_auto_falls_back_to_the_key_file_without_a_usable_keyring(install, xdg_home: Path, monkeypatch) -> None:
    install(monkeypatch)
    vault = open_vault()
    seal(vault)
    assert vault.source.name == "file"
    assert (xdg_home / "key").exists()


def test_choosing_an_unusable_keyring_says_so(monkeypatch) -> None:
    install_keyring(monkeypatch, FakeKeyring(priority=0))
    with pytest.raises(LockedSecret, match="no usable keyring"):
        seal(open_vault("keyring"))


def test_a_failing_keyring_shows_the_error_type_only(monkeypatch) -> None:
    class Broken(FakeKeyring):
        def set_password(self, service: str, user: str, password: str) -> None:
            raise OSError(f"refused to store {password}")

    install_keyring(monkeypatch, Broken())
    with pytest.raises(LockedSecret) as caught:
        seal(open_vault("keyring"))
    assert "OSError" in str(caught.value) and "refused" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_keyring_that_drops_the_key_fails_before_sealing(monkeypatch) -> None:
    class Forgetful(FakeKeyring):
        def set_password(self, service: str, user: str, password: str) -> None:
            pass

    install_keyring(monkeypatch, Forgetful())
    with pytest.raises(LockedSecret, match="did not keep"):
        seal(open_vault("keyring"))


# -- choosing a source, laziness --------------------------------------------------------------


def test_an_unknown_source_is_a_one_line_error() -> None:
    with pytest.raises(StuiError) as caught:
        open_vault("vault")
    message = str(caught.value)
    assert "\n" not in message and "'vault'" in message and "passphrase" in message
    assert not isinstance(caught.value, LockedSecret)


def test_importing_and_opening_the_vault_imports_no_crypto_and_creates_nothing(home: Path) -> None:
    script = (
        "import sys\n"
        "from stui_repl.session import vault\n"
        "for source in vault.SOURCES:\n"
        "    v = vault.open_vault(source)\n"
        "    repr(v)\n"
        "assert not vault.is_sealed('hunter2')\n"
        "heavy = [m for m in ('cryptography', 'keyring') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "STUI_HOME": str(home)}
    env.pop("STUI_PASSPHRASE", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert files_under(home) == []


# -- rotation ---------------------------------------------------------------------------------


def test_rotation_with_the_key_file(home: Path) -> None:
    vault = open_vault()
    fields = [f"variables.v{i}.secret" for i in range(3)]
    sealed = {field: seal(vault, f"value {field}", field=field) for field in fields}
    old_id = vault.key_ids()[0]

    new_id = vault.start_rotation()
    assert new_id != old_id and vault.rotation_pending
    assert mode(config(home) / "key.new") == 0o600
    resealed = {field: vault.reseal(text, session=SESSION, field=field) for field, text in sealed.items()}
    assert {sealed_key_id(text) for text in resealed.values()} == {new_id}
    vault.finish_rotation()
    assert not vault.rotation_pending
    assert files_under(config(home)) == ["key"]

    after = open_vault()
    assert after.key_ids() == [new_id]
    for field, text in resealed.items():
        assert unseal(after, text, field=field) == f"value {field}"
    assert sealed_key_id(seal(after)) == new_id
    error = locked(after, sealed[fields[0]], field=fields[0])
    assert error.reason == "wrong-key" and old_id in str(error)


def test_an_interrupted_rotation_loses_nothing_and_a_second_one_finishes(home: Path) -> None:
    vault = open_vault()
    a = seal(vault, "alpha", field="variables.a.secret")
    b = seal(vault, "beta", field="variables.b.secret")
    new_id = vault.start_rotation()
    a2 = vault.reseal(a, session=SESSION, field="variables.a.secret")
    del vault  # the process dies before resealing b and before finishing

    restarted = open_vault()
    assert restarted.rotation_pending
    assert unseal(restarted, a2, field="variables.a.secret") == "alpha"
    assert unseal(restarted, b, field="variables.b.secret") == "beta"
    assert restarted.can_decrypt(a2) and restarted.can_decrypt(b)
    assert sealed_key_id(seal(restarted)) == new_id  # new values use the new key already

    assert restarted.start_rotation() == new_id  # the staged key is reused, not replaced
    assert restarted.reseal(a2, session=SESSION, field="variables.a.secret") == a2  # already done
    b2 = restarted.reseal(b, session=SESSION, field="variables.b.secret")
    restarted.finish_rotation()
    final = open_vault()
    assert final.key_ids() == [new_id]
    assert unseal(final, a2, field="variables.a.secret") == "alpha"
    assert unseal(final, b2, field="variables.b.secret") == "beta"


def test_rotation_with_the_keyring(monkeypatch) -> None:
    backend = FakeKeyring()
    install_keyring(monkeypatch, backend)
    vault = open_vault("keyring")
    sealed = seal(vault)
    new_id = vault.start_rotation()
    assert set(backend.entries) == {("stui", "key"), ("stui", "key.new")}
    staged = backend.entries["stui", "key.new"]
    resealed = vault.reseal(sealed, session=SESSION, field=FIELD)
    vault.finish_rotation()
    assert backend.entries == {("stui", "key"): staged}
    assert unseal(open_vault("keyring"), resealed) == SECRET
    assert sealed_key_id(resealed) == new_id


def test_a_keyring_commit_interrupted_after_the_copy_is_finished_by_a_second_rotation(monkeypatch) -> None:
    backend = FakeKeyring()
    install_keyring(monkeypatch, backend)
    vault = open_vault("keyring")
    original = seal(vault)
    vault.start_rotation()
    sealed = vault.reseal(original, session=SESSION, field=FIELD)
    backend.entries["stui", "key"] = backend.entries["stui", "key.new"]  # crash between copy and delete
    again = open_vault("keyring")
    assert again.rotation_pending and len(set(again.key_ids())) == 1
    again.start_rotation()
    assert again.reseal(sealed, session=SESSION, field=FIELD) == sealed
    again.finish_rotation()
    assert list(backend.entries) == [("stui", "key")]


def test_rotation_with_a_passphrase(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUI_PASSPHRASE", "old words")
    vault = open_vault()
    sealed = seal(vault)
    old_salt = (config(home) / "passphrase.salt").read_bytes()
    with pytest.raises(LockedSecret, match="STUI_NEW_PASSPHRASE"):
        vault.start_rotation()
    assert not (config(home) / "passphrase.salt.new").exists()

    monkeypatch.setenv("STUI_NEW_PASSPHRASE", "new words")
    new_id = vault.start_rotation()
    assert mode(config(home) / "passphrase.salt.new") == 0o600
    resealed = vault.reseal(sealed, session=SESSION, field=FIELD)
    vault.finish_rotation()
    assert files_under(config(home)) == ["passphrase.salt"]
    assert (config(home) / "passphrase.salt").read_bytes() != old_salt
    assert sealed_key_id(seal(vault)) == new_id  # this vault keeps the new key

    monkeypatch.delenv("STUI_NEW_PASSPHRASE")
    monkeypatch.setenv("STUI_PASSPHRASE", "new words")
    assert unseal(open_vault(), resealed) == SECRET
    monkeypatch.setenv("STUI_PASSPHRASE", "old words")
    assert locked(open_vault(), resealed).reason == "wrong-key"


def test_rotation_needs_a_key_and_finishing_needs_a_rotation(home: Path) -> None:
    vault = open_vault()
    with pytest.raises(StuiError, match="no stui key to rotate"):
        vault.start_rotation()
    with pytest.raises(StuiError, match="no key rotation is under way"):
        vault.finish_rotation()
    assert not config(home).exists()


def test_reseal_moves_a_value_to_another_place() -> None:
    vault = open_vault()
    sealed = seal(vault)
    moved = vault.reseal(sealed, session=SESSION, field=FIELD, to_session="renamed", to_field="variables.db.secret")
    assert unseal(vault, moved, session="renamed", field="variables.db.secret") == SECRET
    assert locked(vault, moved).reason == "tampered"
    assert vault.reseal(sealed, session=SESSION, field=FIELD) == sealed


# -- nothing secret leaks ---------------------------------------------------------------------


def test_no_message_or_repr_holds_the_plaintext_or_the_key(home: Path, tmp_path: Path, monkeypatch) -> None:
    vault = open_vault()
    sealed = seal(vault)
    key = (config(home) / "key").read_text().strip()
    blob = bytearray(body_of(sealed))
    blob[20] ^= 0xFF
    monkeypatch.setenv("STUI_HOME", str(tmp_path / "other"))
    foreign = seal(open_vault())
    monkeypatch.setenv("STUI_HOME", str(home))
    errors = [
        locked(vault, with_body(sealed, bytes(blob))),
        locked(vault, sealed, field="connection.token"),
        locked(vault, sealed, session="other"),
        locked(vault, foreign),
        locked(vault, SECRET),  # a plaintext pasted where a sealed value belongs
        locked(vault, f"stui-aead1:{SECRET}:{SECRET}"),
        locked(open_vault("file"), sealed.replace(sealed_key_id(sealed) or "", "abcdef12")),
    ]
    assert {e.reason for e in errors} == {"tampered", "wrong-key", "malformed"}
    texts = [str(e) for e in errors] + [repr(vault), repr(vault.source)]
    key_hex = base64.b64decode(key).hex()
    for text in texts:
        assert "\n" not in text
        assert SECRET not in text and key not in text and key_hex not in text and key_hex[:16] not in text
