"""Find a GNU Smalltalk 3.2.5 ``gst``: the one stui runs.

Lookup order (:func:`find_gst`): ``STUI_GST``, then ``gst`` on ``PATH``, then
the install provision.py made in ``paths.cache_dir() / "gst-3.2.5"`` (see
install.py); :func:`ensure_gst` has one made when there is none. Every start
of stui looks, so this module imports little and provision.py only when it
must install.

A gst named by STUI_GST or found on PATH is yours to vouch for; the
provisioned one is trusted only as trust.py allows (install.py).
:func:`find_gst` takes ``cache=`` so tests need not touch the real cache.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .install import (
    HOW_TO_GET_GST,
    GstInstall,
    Progress,
    ProvisionError,
    _is_3x,
    install_dir,
    load_install,
    probe_version,
)


def _which(name: str, path: str) -> str | None:
    """shutil.which for a plain name on a POSIX PATH: shutil imports the
    compression modules, milliseconds of every start."""
    for folder in path.split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _from_stui_gst(value: str, environ: Mapping[str, str]) -> GstInstall:
    path = Path(value).expanduser() if "/" in value else None
    if path is None:
        found = _which(value, environ.get("PATH", os.defpath))
        path = Path(found) if found else None
    if path is None or not path.is_file() or not os.access(path, os.X_OK):
        raise ProvisionError(f"STUI_GST={value}: not an executable file")
    try:
        version = probe_version(path, environ)
    except ProvisionError as e:
        raise ProvisionError(f"STUI_GST={value}: {e}") from None
    if not _is_3x(version):
        raise ProvisionError(f"STUI_GST={value} is GNU Smalltalk {version}; stui needs 3.x (3.2.5)")
    return GstInstall(path, {}, ("-g",), None, version, "STUI_GST")


def _from_path(environ: Mapping[str, str]) -> GstInstall | None:
    found = _which("gst", environ.get("PATH", os.defpath))
    if not found:
        return None
    try:
        version = probe_version(found, environ)
    except ProvisionError:
        return None  # a broken or foreign gst: fall back to the cache
    if not _is_3x(version):
        return None
    return GstInstall(Path(found), {}, ("-g",), None, version, "PATH")


def find_gst(*, environ: Mapping[str, str] = os.environ, cache: Path | None = None) -> GstInstall | None:
    """An existing gst: ``STUI_GST``, then PATH, then the cache.  Never downloads.

    A bad ``STUI_GST`` is an error rather than a fall-through: the user asked
    for that gst explicitly.
    """
    value = environ.get("STUI_GST")
    if value:
        return _from_stui_gst(value, environ)
    return _from_path(environ) or load_install(cache if cache is not None else install_dir())


def ensure_gst(*, allow_provision: bool = True, progress: Progress | None = None) -> GstInstall:
    """A usable gst, provisioning one into the cache if none is found."""
    found = find_gst()
    if found:
        return found
    if not allow_provision:
        raise ProvisionError(
            "GNU Smalltalk 3.2.5 not found; `stui setup` downloads it.\n" + HOW_TO_GET_GST
        )
    from .provision import provision  # rarely: it is most of this package's code

    return provision(progress=progress)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stui_repl.image.gst``: make sure gst is available, say which."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m stui_repl.image.gst",
        description="Find GNU Smalltalk 3.2.5, or download it into stui's cache.",
    )
    parser.add_argument("--no-download", action="store_true", help="only look; fail if gst is not found")
    args = parser.parse_args(argv)
    try:
        inst = ensure_gst(
            allow_provision=not args.no_download,
            progress=lambda msg: print(f"stui: {msg}", file=sys.stderr, flush=True),
        )
    except ProvisionError as e:
        print(f"stui: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stui: interrupted", file=sys.stderr)
        return 130
    print(f"gst: {inst.gst}")
    print(f"version: {inst.version}")
    print(f"source: {inst.source}")
    if inst.image:
        print(f"image: {inst.image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
