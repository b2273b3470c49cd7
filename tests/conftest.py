"""Fixtures: real gst images and real stui processes.

Every test runs with STUI_HOME pointing into a temporary directory of its
own, so no test reads or writes the user's files or another test's sessions. The cache (provisioned gst and the
built server image) is shared with the user's own cache, so a machine that ran
`stui setup` does not download gst again for the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stui_repl import paths

ROOT = Path(__file__).resolve().parents[1]
_REAL_CACHE = paths.cache_dir()


def _private_real_cache() -> None:
    """The shared cache as stui keeps it, 0700 (an older stui made it 0755):
    else the first test's stui would say it tightened it, on a stderr that
    test may read."""
    for directory in (_REAL_CACHE, _REAL_CACHE / "images", _REAL_CACHE / "logs"):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = directory.stat()
        if found.st_uid == os.geteuid() and found.st_mode & 0o077:
            directory.chmod(0o700)


@pytest.fixture(scope="session")
def stui_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("stui-home")
    _private_real_cache()
    (home / "cache").symlink_to(_REAL_CACHE)
    return home


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test's own STUI_HOME: sessions and keys start empty; the cache is shared."""
    root = tmp_path_factory.mktemp("home")
    (root / "cache").symlink_to(_REAL_CACHE)
    return root


@pytest.fixture(autouse=True)
def _isolated_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _private_real_cache()
    monkeypatch.setenv("STUI_HOME", str(home))
    for variable in ("STUI_TOKEN", "STUI_PASSPHRASE", "STUI_NEW_PASSPHRASE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def gst_install(stui_home: Path):
    os.environ["STUI_HOME"] = str(stui_home)
    from stui_repl.image.gst import ensure_gst

    return ensure_gst()


@pytest.fixture(scope="session")
def server_image(gst_install) -> Path:
    from stui_repl.image.launcher import server_image

    return server_image(gst_install)


@pytest.fixture
def image(gst_install, server_image) -> Iterator:
    """A fresh gst image running the server, stopped after the test."""
    from stui_repl.image.launcher import launch

    running = launch(gst_install)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared_image(gst_install, server_image, stui_home: Path) -> Iterator:
    """One image for a whole module of tests that do not disturb each other."""
    os.environ["STUI_HOME"] = str(stui_home)
    from stui_repl.image.launcher import launch

    running = launch(gst_install)
    yield running
    running.stop()


def spawn_stui(*args: str, env_extra: dict[str, str] | None = None, **options):
    """The real stui on a pty, as a person at a terminal would start it."""
    import pexpect

    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "NO_COLOR": "1", "COLUMNS": "120", **(env_extra or {})}
    return pexpect.spawn(
        sys.executable, ["-m", "stui_repl", *args], cwd=str(ROOT), env=env,
        encoding="utf-8", timeout=30, dimensions=(40, 120), **options,
    )


def run_stui(*args: str, input: str | None = None, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real stui as a subprocess with pipes."""
    return subprocess.run(
        [sys.executable, "-m", "stui_repl", *args],
        input=input, capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, env={**os.environ, **(env or {})}, check=False,
    )


@pytest.fixture
def own_cache(home: Path, server_image: Path) -> Path:
    """A cache of this test's own that holds the real provisioned gst and a
    copy of the built server image, to spoil without spoiling anyone else's."""
    (home / "cache").unlink()
    cache = home / "cache"
    cache.mkdir(mode=0o700)
    (cache / "gst-3.2.5").symlink_to((_REAL_CACHE / "gst-3.2.5").resolve())
    (cache / "images").mkdir(mode=0o700)
    shutil.copy2(server_image, cache / "images" / server_image.name)
    return cache
