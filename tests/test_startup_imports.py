"""Scripts start quickly: scripted stui imports only what scripts use.

A real `stui` process runs under `python -X importtime`, which names every
module the interpreter imported; the heavy ones the prompt, the session file
and the vault need must not be among them when no session is used. Each
one costs a `stui -c` several milliseconds of every start (benchmarks/README.md,
section 3); this test fails when one creeps back, long before a benchmark
would be read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the issue names: the prompt, its colours, the vault and the TOML writer.
HEAVY = ("prompt_toolkit", "rich", "pygments", "cryptography", "tomlkit")
# What a script without a session was spared by importing lazily: reading the
# configuration (only when there is a file), the meta-commands (only for a
# `:` line), the session model, a thread pool's futures, OpenSSL's hashes,
# the IDNA codec (the image's address is ASCII).
SPARED = (
    "tomllib", "concurrent.futures", "logging", "hashlib", "datetime", "encodings.idna",
    "stui_repl.commands.builtin", "stui_repl.commands.session",
    "stui_repl.session.model", "stui_repl.session.store", "stui_repl.session.vault",
    "stui_repl.modes.repl", "stui_repl.toml_text",
)
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)


def imported_by(args: list[str], tmp_path: Path, stdin: bytes = b"") -> set[str]:
    """The modules `stui ARGS` imports, as -X importtime reports them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "stui_repl", *args],
        input=stdin, capture_output=True, cwd=tmp_path, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout == b"1\n", done.stdout
    return set(IMPORTED.findall(done.stderr.decode(errors="replace")))


def within(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules that are one of `names` or inside one of them."""
    return sorted(m for m in modules if any(m == name or m.startswith(name + ".") for name in names))


@pytest.mark.parametrize("how", ["-c", "-f", "stdin"])
def test_a_script_without_a_session_imports_nothing_heavy(how: str, tmp_path: Path) -> None:
    script = tmp_path / "one.st"
    script.write_text("1 printNl.\n")
    if how == "-c":
        modules = imported_by(["-c", "1"], tmp_path)
    elif how == "-f":
        modules = imported_by(["-f", str(script)], tmp_path)
    else:
        modules = imported_by([], tmp_path, stdin=b"1\n")
    assert "stui_repl.image.launcher" in modules, "the report is not what this test reads"
    assert not within(modules, HEAVY)
    assert not within(modules, SPARED)


def test_a_script_with_a_session_imports_neither_the_prompt_nor_openssl(tmp_path: Path) -> None:
    """A session without secrets needs no cipher: the vault imports hashlib,
    hmac and secrets (OpenSSL) only to make or use a key."""
    imported_by(["--session", "s", "-c", "x := 1"], tmp_path)  # the session now exists, with x in it
    modules = imported_by(["--session", "s", "-c", "x"], tmp_path)
    assert "stui_repl.session.vault" in modules, "the report is not what this test reads"
    assert not within(modules, (*HEAVY, "hashlib", "hmac", "secrets", "stui_repl.modes.repl"))
