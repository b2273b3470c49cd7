"""A gst install: how to run it (GstInstall), and the one stui provisions
into its cache (load_install). gst.py finds an install on every start,
provision.py makes one; both build on this module, which imports little.

Layout of a provisioned install::

    gst-3.2.5/root/...        the unpacked packages (usr/bin/gst, usr/lib/...)
    gst-3.2.5/image/         writable: gst.im, *.star, packages.xml
    gst-3.2.5/manifest.json  written last; an install without it is ignored

It is code stui runs, so it is trusted only as trust.py allows: the
directory private to you (0700, so that nobody else can reach the files
below it, whatever their modes), and the manifest, gst and its image yours
and not writable by others.

:meth:`GstInstall.command` takes ``image=`` to run another image (e.g. a
saved server image) with the same kernel directory.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .. import paths, trust
from . import children

GST_VERSION = "3.2.5"
INSTALL_NAME = f"gst-{GST_VERSION}"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

HOW_TO_GET_GST = (
    "Install it yourself (`brew install gnu-smalltalk`, `apt install gnu-smalltalk`"
    " or `dnf install gnu-smalltalk`) or set STUI_GST to a gst binary."
)

Progress = Callable[[str], None]


class ProvisionError(Exception):
    """A failure to find or install gst; ``str()`` is the user-facing text."""


# --------------------------------------------------------------------------
# The result


class GstInstall(NamedTuple):
    """How to run one gst: the executable, its environment and fixed options."""

    gst: Path
    env: dict[str, str]
    base_args: tuple[str, ...]
    image_dir: Path | None
    version: str
    source: str  # "STUI_GST", "PATH" or "provisioned"

    @property
    def image(self) -> Path | None:
        """The base image stui should start from (None: gst's own default)."""
        return self.image_dir / "gst.im" if self.image_dir else None

    def command(self, *args: str, image: Path | str | None = None) -> list[str]:
        """The full argv; ``image`` replaces the base image (kernel dir kept)."""
        base = list(self.base_args)
        if image is not None:
            if "-I" in base:
                base[base.index("-I") + 1] = str(image)
            else:
                base += ["-I", str(image)]
        return [str(self.gst), *base, *args]

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: os.environ) plus :attr:`env`; library paths go first."""
        result = dict(os.environ if base is None else base)
        for key, value in self.env.items():
            old = result.get(key)
            if key == "LD_LIBRARY_PATH" and old:
                value = f"{value}:{old}"
            result[key] = value
        return result



def parse_gst_version(text: str) -> str | None:
    """The version in ``gst --version`` output ("GNU Smalltalk version 3.2.5")."""
    m = re.search(r"GNU Smalltalk(?: version)?\s+v?(\d+\.\d+(?:\.\d+)?[\w.+~-]*)", text)
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# I/O edges


def install_dir() -> Path:
    """Where the provisioned gst lives."""
    return paths.cache_dir() / INSTALL_NAME


def _run(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; failure to start or finish is a ProvisionError."""
    try:
        return children.run(
            list(argv),
            check=False,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"{what} timed out after {timeout:.0f} s") from None
    except OSError as e:
        raise ProvisionError(f"{what}: cannot run {argv[0]}: {e.strerror}") from None


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def probe_version(gst: Path | str, env: Mapping[str, str] | None = None) -> str:
    """``gst --version``, parsed; ProvisionError (without the variable name) if not."""
    proc = _run([str(gst), "--version"], what=f"{gst} --version", env=env, timeout=30)
    version = parse_gst_version(proc.stdout + proc.stderr)
    if proc.returncode != 0 or version is None:
        detail = _first_line(proc.stderr) or _first_line(proc.stdout) or f"exit {proc.returncode}"
        raise ProvisionError(f"{gst} is not a runnable GNU Smalltalk ({detail})")
    return version


def _is_3x(version: str) -> bool:
    return version.split(".")[0] == "3"


def _install_from_manifest(directory: Path, manifest: Mapping[str, object]) -> GstInstall:
    """A GstInstall for ``directory``; paths in the manifest are relative to it."""
    libs = manifest["library_dirs"]
    assert isinstance(libs, list)
    image_dir = directory / str(manifest["image_dir"])
    return GstInstall(
        gst=directory / str(manifest["gst"]),
        env={"LD_LIBRARY_PATH": ":".join(str(directory / d) for d in libs)},
        base_args=(
            "-g",
            "-I",
            str(image_dir / "gst.im"),
            "--kernel-directory",
            str(directory / str(manifest["kernel_dir"])),
        ),
        image_dir=image_dir,
        version=str(manifest["version"]),
        source="provisioned",
    )


def load_install(directory: Path) -> GstInstall | None:
    """The provisioned install in ``directory`` if it is complete, else None;
    errors.Untrusted if someone else could have changed it."""
    try:
        if not trust.private_dir(directory, create=False):
            return None
        data = trust.read(directory / MANIFEST, "the manifest of the provisioned gst")
        if data is None:
            return None
        manifest = json.loads(data)
        if manifest.get("format") != MANIFEST_FORMAT:
            return None
        inst = _install_from_manifest(directory, manifest)
        assert inst.image is not None
        for path, what in ((inst.gst, "the provisioned gst"), (inst.image, "the provisioned gst's image")):
            found = trust.stat_of(path, what)
            if found is None or not stat.S_ISREG(found.st_mode):
                return None
    except (OSError, ValueError, KeyError, AssertionError, AttributeError):
        return None
    return inst
