"""Where stui keeps its files.

Every file stui reads or writes is found through this module, so that
``STUI_HOME`` can relocate all of them at once (tests rely on that) and the
XDG base directories are honoured otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return Path(value) / "stui"
    return Path.home() / fallback / "stui"


def _home_override() -> Path | None:
    value = os.environ.get("STUI_HOME")
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    """Provisioned GNU Smalltalk and built server images (safe to delete)."""
    home = _home_override()
    return home / "cache" if home else _xdg("XDG_CACHE_HOME", ".cache")


def state_dir() -> Path:
    """Sessions and history."""
    home = _home_override()
    return home / "state" if home else _xdg("XDG_STATE_HOME", ".local/state")


def config_dir() -> Path:
    """Configuration and keys."""
    home = _home_override()
    return home / "config" if home else _xdg("XDG_CONFIG_HOME", ".config")


def sessions_dir() -> Path:
    """Session files, their backups and locks."""
    return state_dir() / "sessions"


def images_dir() -> Path:
    """Built server images."""
    return cache_dir() / "images"


def logs_dir() -> Path:
    """What images wrote on stderr."""
    return cache_dir() / "logs"


def own_directories() -> list[Path]:
    """Every directory stui makes for itself, parents first: all private
    (0700), which trust.py enforces. The provisioned gst is gst-VERSION in
    the cache (image.gst.install_dir; a test keeps the two in step)."""
    cache, state = cache_dir(), state_dir()
    return [cache, images_dir(), logs_dir(), cache / "gst-3.2.5", state, sessions_dir(), config_dir()]
