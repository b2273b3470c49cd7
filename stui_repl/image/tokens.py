"""The server token: where `stui serve` keeps it, and how `--token-file` or
`STUI_TOKEN` supply one for `--connect`.

Whoever has the token runs code as you, so a token file must be yours and
readable by you alone (mode 0600), like an ssh key: stui refuses any other
(trust.py), and makes its own 0600 in its private configuration directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import paths, trust
from ..errors import UsageError


def default_token_file() -> Path:
    return paths.config_dir() / "token"


def given_token(token_file: str | None) -> str | None:
    """The token named on the command line or in the environment, if any."""
    if token_file:
        return read_token_file(Path(token_file))
    if os.environ.get("STUI_TOKEN"):
        return os.environ["STUI_TOKEN"].strip()
    return None


def fallback_token() -> str | None:
    """The token `stui serve` wrote, for a server on this machine."""
    path = default_token_file()
    if not path.exists():
        return None
    trust.private_dir(path.parent, create=False)
    return read_token_file(path)


def read_token_file(path: Path) -> str:
    try:
        data = trust.read(path, "the token file", secret=True)
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if data is None:
        raise UsageError(f"cannot read the token file {path}: No such file or directory")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"the token file {path} is not text: a token is one line of text") from None
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


def token_for_serving(path: Path) -> str:
    """The token in `path`, or a new one written there (0600) when there is none."""
    import secrets

    if path == default_token_file():
        trust.private_dir(path.parent)
    if path.exists():
        return read_token_file(path)
    token = secrets.token_hex(16)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
