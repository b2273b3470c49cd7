"""Install GNU Smalltalk 3.2.5 privately into stui's cache, when gst.py
finds none.

Recent Debian releases no longer ship GNU Smalltalk, so rather than asking
for root we fetch the packages of an older release (Debian 11 "bullseye"; on
Ubuntu, "focal") with a *private* apt configuration — its own sources list,
package lists and download cache, all under a scratch directory — and unpack
them with ``dpkg-deb -x``.  Nothing is installed system-wide and the system's
apt state is never touched.

The mirror is taken from the machine's own apt sources (so proxies, local
mirrors and snapshots keep working); the downloads are verified by apt
against the distribution's archive keyring. The install's layout, and how
it is trusted, are gst.py's.

:func:`require_tools` and :func:`choose_archive` take their lookups as
arguments so the error paths are testable without a machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import trust
from ..locks import exclusive
from .install import (
    GST_VERSION,
    HOW_TO_GET_GST,
    INSTALL_NAME,
    MANIFEST,
    MANIFEST_FORMAT,
    GstInstall,
    Progress,
    ProvisionError,
    _first_line,
    _install_from_manifest,
    _run,
    install_dir,
    load_install,
    probe_version,
)

CHECK_SCRIPT = "(3 + 4) printNl.\n"
APT_ETC = Path("/etc/apt")  # tests point this elsewhere


# --------------------------------------------------------------------------
# Pure logic: apt sources


@dataclass(frozen=True)
class SourceEntry:
    """One enabled apt source (a deb822 stanza with n URIs gives n entries)."""

    types: tuple[str, ...]
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None  # a path, fingerprints, or an embedded key block
    origin: str = ""


@dataclass(frozen=True)
class Flavor:
    """Where an old-enough GNU Smalltalk lives for one distribution family."""

    name: str
    codenames: frozenset[str]
    suite: str
    components: tuple[str, ...]
    keyrings: tuple[str, ...]  # the distribution's full archive keyring(s)
    keyring_prefixes: tuple[str, ...]  # how its archive keyrings are named
    uri_tails: tuple[str, ...]  # how its archive URIs conventionally end


# libgst7 is built against libffi7; bookworm/jammy ship libffi8, so libffi7
# comes along.  Other libraries come from the system unless ldd misses them.
GST_PACKAGES = (
    "gnu-smalltalk",
    "gnu-smalltalk-common",
    "libgst7",
    "libffi7",
    "libsigsegv2",
    "libltdl7",
)

# Libraries gst may need that a minimal system can lack; package names are
# the same in Debian bullseye and Ubuntu focal.
SONAME_PACKAGES = {
    "libffi.so.7": "libffi7",
    "libgmp.so.10": "libgmp10",
    "libltdl.so.7": "libltdl7",
    "libreadline.so.8": "libreadline8",
    "libsigsegv.so.2": "libsigsegv2",
    "libtinfo.so.6": "libtinfo6",
}

_NON_SECURITY_SUFFIXES = frozenset({"updates", "backports", "backports-sloppy", "proposed-updates", "proposed"})

# fmt: off
DEBIAN_CODENAMES = frozenset({
    "squeeze", "wheezy", "jessie", "stretch", "buster", "bullseye",
    "bookworm", "trixie", "forky", "duke", "sid",
    "oldoldstable", "oldstable", "stable", "testing", "unstable",
})
UBUNTU_CODENAMES = frozenset({
    "trusty", "xenial", "bionic", "cosmic", "disco", "eoan", "focal",
    "groovy", "hirsute", "impish", "jammy", "kinetic", "lunar", "mantic",
    "noble", "oracular", "plucky", "questing", "resolute",
})
# fmt: on

DEBIAN = Flavor(
    name="debian",
    codenames=DEBIAN_CODENAMES,
    suite="bullseye",
    components=("main",),
    keyrings=(
        "/usr/share/keyrings/debian-archive-keyring.gpg",
        "/usr/share/keyrings/debian-archive-keyring.pgp",
    ),
    keyring_prefixes=("debian-archive",),
    uri_tails=("/debian",),
)

# Ubuntu: best effort, not tested (stui's CI runs Debian).  focal (20.04) is
# the last release with gnu-smalltalk 3.2.5 built against libffi7.
UBUNTU = Flavor(
    name="ubuntu",
    codenames=UBUNTU_CODENAMES,
    suite="focal",
    components=("main", "universe"),
    keyrings=("/usr/share/keyrings/ubuntu-archive-keyring.gpg",),
    keyring_prefixes=("ubuntu-archive", "ubuntu-keyring"),
    uri_tails=("/ubuntu", "/ubuntu-ports"),
)

FLAVORS = (DEBIAN, UBUNTU)


@dataclass(frozen=True)
class Archive:
    """The private source to fetch from: the result of :func:`choose_archive`."""

    flavor: str
    uri: str
    suite: str
    components: tuple[str, ...]
    keyring: str | None  # None: apt's trusted keys (still verified)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def parse_one_line_sources(text: str, origin: str = "") -> list[SourceEntry]:
    """Entries of a ``sources.list``-style file (``#`` starts a comment anywhere)."""
    entries = []
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            continue
        options: dict[str, str] = {}
        rest = rest.strip()
        if rest.startswith("["):
            inside, sep, rest = rest[1:].partition("]")
            if not sep:
                continue  # malformed: apt rejects it too
            for opt in inside.split():
                m = re.match(r"([A-Za-z-]+)[+-]?=(.*)", opt)
                if m:
                    options[m.group(1).lower()] = m.group(2)
        words = rest.split()
        if len(words) < 2:
            continue
        entries.append(
            SourceEntry(
                types=(kind,),
                uri=words[0],
                suites=(words[1],),
                components=tuple(words[2:]),
                signed_by=options.get("signed-by") or None,
                origin=origin,
            )
        )
    return entries


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Stanzas as {lowercased field: value}; continuation lines joined by newlines."""
    stanza: dict[str, str] = {}
    key = None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
        elif raw[0] in " \t":
            if key is not None:
                stanza[key] += "\n" + raw.strip()
        else:
            name, sep, value = raw.partition(":")
            if not sep:
                continue
            key = name.strip().lower()
            stanza[key] = value.strip()


def parse_deb822_sources(text: str, origin: str = "") -> list[SourceEntry]:
    """Enabled entries of a ``.sources`` (deb822) file, one per URI."""
    entries = []
    for st in _deb822_stanzas(text):
        if st.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        types = tuple(st.get("types", "").split())
        suites = tuple(st.get("suites", "").split())
        signed_by = st.get("signed-by", "").strip() or None
        for uri in st.get("uris", "").split():
            entries.append(
                SourceEntry(
                    types=types,
                    uri=uri,
                    suites=suites,
                    components=tuple(st.get("components", "").split()),
                    signed_by=signed_by,
                    origin=origin,
                )
            )
    return entries


def _suite_ok(suite: str, flavor: Flavor) -> bool:
    """A release of ``flavor``'s main archive: bookworm, bookworm-updates... not -security."""
    base, dash, suffix = suite.partition("-")
    if base not in flavor.codenames:
        return False
    return not dash or suffix in _NON_SECURITY_SUFFIXES


def _keyring_path(signed_by: str | None) -> str | None:
    """The keyring file named by Signed-By, if it names exactly one file."""
    if signed_by and "\n" not in signed_by and signed_by.startswith("/"):
        return signed_by.split(",")[0].split()[0]
    return None


def _is_archive_entry(entry: SourceEntry, flavor: Flavor) -> bool:
    if "deb" not in entry.types or "main" not in entry.components:
        return False
    if _split_uri(entry.uri).scheme in ("", "cdrom"):
        return False
    if not any(_suite_ok(s, flavor) for s in entry.suites):
        return False
    keyring = _keyring_path(entry.signed_by)
    # Third-party repositories bring their own keyring; the archive's is ours.
    return keyring is None or PurePosixPath(keyring).name.startswith(flavor.keyring_prefixes)


def _split_uri(uri: str):  # -> urllib.parse.SplitResult
    """urllib is imported only when provisioning, so `stui -c` starts quicker."""
    from urllib.parse import urlsplit

    return urlsplit(uri)


def _archive_score(entry: SourceEntry, flavor: Flavor) -> tuple[bool, bool, bool]:
    keyring = _keyring_path(entry.signed_by)
    return (
        keyring is not None,  # signed by the archive keyring: strongest evidence
        _split_uri(entry.uri).path.rstrip("/").endswith(flavor.uri_tails),
        any(s in flavor.codenames for s in entry.suites),
    )


def choose_archive(
    entries: Sequence[SourceEntry],
    *,
    file_exists: Callable[[str], bool] = os.path.isfile,
) -> Archive:
    """The Debian (else Ubuntu) main archive among the machine's apt sources.

    Security archives and third-party repositories are skipped; among the
    rest the best-evidenced entry wins, earliest first on a tie.
    """
    for flavor in FLAVORS:
        candidates = [e for e in entries if _is_archive_entry(e, flavor)]
        if not candidates:
            continue
        best = max(candidates, key=lambda e: _archive_score(e, flavor))
        return Archive(
            flavor=flavor.name,
            uri=best.uri,
            suite=flavor.suite,
            components=flavor.components,
            keyring=choose_keyring(best.signed_by, flavor, file_exists),
        )
    raise ProvisionError(
        "No Debian or Ubuntu archive found in this machine's apt sources, "
        "so GNU Smalltalk cannot be downloaded.\n" + HOW_TO_GET_GST
    )


def choose_keyring(signed_by: str | None, flavor: Flavor, file_exists: Callable[[str], bool]) -> str | None:
    """A keyring that can verify the *old* suite.

    The full archive keyring holds the keys of older releases; a per-release
    keyring named by the entry (e.g. bookworm's alone) may not.
    """
    own = _keyring_path(signed_by)
    full_names = {PurePosixPath(k).name for k in flavor.keyrings}
    ordered = []
    if own and PurePosixPath(own).name in full_names:
        ordered.append(own)
    ordered += list(flavor.keyrings)
    if own:
        ordered.append(own)
    return next((k for k in ordered if file_exists(k)), None)


def sources_list_line(archive: Archive, arch: str | None = None) -> str:
    """The single line of the private sources list."""
    options = []
    if arch:
        options.append(f"arch={arch}")
    if archive.keyring:
        options.append(f"signed-by={archive.keyring}")
    opts = f"[{' '.join(options)}] " if options else ""
    return f"deb {opts}{archive.uri} {archive.suite} {' '.join(archive.components)}"


# Read after the system's apt.conf(.d): proxies and the like still apply, but
# hooks that would touch system state (appstream/packagekit refreshes, cache
# cleaners) are dropped.
PRIVATE_APT_CONF = """\
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Pre-Invoke;
#clear DPkg::Post-Invoke;
#clear DPkg::Pre-Install-Pkgs;
"""


def apt_options(apt_dir: Path, *, as_root: bool = False) -> list[str]:
    """apt-get options confining sources, lists, cache and state to ``apt_dir``."""
    opts = [
        "-q",
        "-c", str(apt_dir / "apt.conf"),
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", "Dir::Etc::Preferences=/dev/null",
        "-o", "Dir::Etc::PreferencesParts=/dev/null",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", "Dir::State::status=/dev/null",  # ignore what the system has installed
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
        "-o", "Acquire::Languages=none",
    ]  # fmt: skip
    if as_root:
        # apt would drop to _apt, fail to enter our 0700 directory and warn.
        opts += ["-o", "APT::Sandbox::User=root"]
    return opts


def apt_error_line(stderr: str, stdout: str = "") -> str:
    """The one line of apt's output worth showing a user."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if "unsandboxed" not in ln]

    def first(pred: Callable[[str], bool]) -> str | None:
        return next((ln for ln in lines if pred(ln)), None)

    line = (
        first(lambda ln: "GPG error" in ln)
        or first(lambda ln: ln.startswith("E:"))
        or first(lambda ln: ln.startswith("W: Failed to fetch"))
        or first(lambda ln: ln.startswith("W:"))
        or (lines[-1] if lines else None)
    )
    if line is None:
        tail = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
        line = tail[-1] if tail else "apt-get failed without a message"
    return " ".join(re.sub(r"^[EW]: ", "", line).split())


def missing_sonames(ldd_output: str) -> list[str]:
    """Libraries ``ldd`` could not resolve."""
    return re.findall(r"^\s*(\S+) => not found", ldd_output, re.MULTILINE)


def library_dirs(root: Path, triplet: str | None) -> list[Path]:
    """Directories of ``root`` holding shared libraries, for LD_LIBRARY_PATH."""
    dirs = [root / "usr/lib"]
    if triplet:
        dirs += [root / "usr/lib" / triplet, root / "lib" / triplet]
    # Also whatever is there, in case the triplet is unknown or differs.
    for base in (root / "usr/lib", root / "lib"):
        dirs += sorted(base.glob("*-linux-gnu*"))
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def require_tools(which: Callable[[str], str | None] = shutil.which, platform: str = sys.platform) -> dict[str, str]:
    """apt-get and dpkg-deb, or the error telling the user how to get gst."""
    found = {tool: which(tool) for tool in ("apt-get", "dpkg-deb")}
    if not platform.startswith("linux") or not all(found.values()):
        raise ProvisionError(
            "Cannot download GNU Smalltalk 3.2.5 here: that needs apt-get and "
            "dpkg-deb (Debian or Ubuntu).\n" + HOW_TO_GET_GST
        )
    return {tool: path for tool, path in found.items() if path}


def read_apt_sources(etc_apt: Path | None = None) -> list[SourceEntry]:
    """All enabled entries of the machine's apt sources, in apt's order."""
    etc_apt = APT_ETC if etc_apt is None else etc_apt
    entries: list[SourceEntry] = []
    main = etc_apt / "sources.list"
    parts = etc_apt / "sources.list.d"
    files = [main] if main.is_file() else []
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        parse = parse_deb822_sources if f.suffix == ".sources" else parse_one_line_sources
        entries += parse(text, str(f))
    return entries


def _multiarch_triplet() -> str | None:
    for argv in (
        ["dpkg-architecture", "-qDEB_HOST_MULTIARCH"],
        ["gcc", "-print-multiarch"],
    ):
        if shutil.which(argv[0]):
            with contextlib.suppress(ProvisionError):
                proc = _run(argv, what=argv[0], timeout=30)
                out = proc.stdout.strip()
                if proc.returncode == 0 and re.fullmatch(r"[\w]+-[\w-]+", out):
                    return out
    return None


def _native_arch() -> str | None:
    with contextlib.suppress(ProvisionError):
        proc = _run(["dpkg", "--print-architecture"], what="dpkg", timeout=30)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None


class _Builder:
    """One provisioning attempt inside a scratch directory ``work``."""

    def __init__(self, work: Path, archive: Archive, tools: Mapping[str, str], say: Progress):
        self.work, self.archive, self.tools, self.say = work, archive, tools, say
        self.apt_dir = work / "apt"
        self.debs = work / "debs"
        self.root = work / "root"
        self.apt_env = {**os.environ, "LC_ALL": "C", "LANGUAGE": ""}

    def apt(self, *args: str, what: str) -> subprocess.CompletedProcess[str]:
        argv = [
            self.tools["apt-get"],
            *apt_options(self.apt_dir, as_root=os.geteuid() == 0),
            *args,
        ]
        proc = _run(argv, what=what, cwd=self.debs, env=self.apt_env)
        if proc.returncode != 0:
            raise ProvisionError(f"{what} failed: {apt_error_line(proc.stderr, proc.stdout)}")
        return proc

    def fetch_lists(self) -> None:
        for d in ("lists/partial", "cache/archives/partial"):
            (self.apt_dir / d).mkdir(parents=True)
        self.debs.mkdir()
        (self.apt_dir / "apt.conf").write_text(PRIVATE_APT_CONF)
        line = sources_list_line(self.archive, _native_arch())
        (self.apt_dir / "sources.list").write_text(line + "\n")
        self.say(f"fetching package lists ({self.archive.flavor} {self.archive.suite})")
        proc = self.apt("update", what="apt-get update")
        # A network failure is only a warning to apt-get update.
        if not any((self.apt_dir / "lists").glob("*_Packages*")):
            raise ProvisionError(f"apt-get update failed: {apt_error_line(proc.stderr, proc.stdout)}")

    def download_and_unpack(self, packages: Iterable[str], note: str = "") -> None:
        packages = list(packages)
        n = len(packages)
        self.say(f"downloading {n} package{'s' if n != 1 else ''}{note}")
        for old in self.debs.glob("*.deb"):
            old.unlink()
        self.apt("download", *packages, what="apt-get download")
        self.say("unpacking")
        for deb in sorted(self.debs.glob("*.deb")):
            proc = _run(
                [self.tools["dpkg-deb"], "-x", str(deb), str(self.root)],
                what="dpkg-deb",
            )
            if proc.returncode != 0:
                raise ProvisionError(f"unpacking {deb.name} failed: {_first_line(proc.stderr)}")
            deb.unlink()

    def missing_libraries(self, env: Mapping[str, str]) -> list[str]:
        if not shutil.which("ldd"):
            return []
        proc = _run(["ldd", str(self.root / "usr/bin/gst")], what="ldd", env=env, timeout=60)
        return missing_sonames(proc.stdout + proc.stderr)


def _build(work: Path, archive: Archive, tools: Mapping[str, str], say: Progress) -> dict[str, object]:
    """Download, unpack, lay out and check an install in ``work``; return its manifest."""
    b = _Builder(work, archive, tools, say)
    b.fetch_lists()
    b.download_and_unpack(GST_PACKAGES)
    gst = b.root / "usr/bin/gst"
    if not gst.is_file():
        raise ProvisionError("the downloaded packages contain no usr/bin/gst")

    triplet = _multiarch_triplet()
    libs = [str(d.relative_to(work)) for d in library_dirs(b.root, triplet)]
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(str(work / d) for d in libs)}
    missing = b.missing_libraries(env)
    extra = sorted({SONAME_PACKAGES[s] for s in missing if s in SONAME_PACKAGES})
    if extra:
        b.download_and_unpack(extra, f" for missing {', '.join(missing)}")
        libs = [str(d.relative_to(work)) for d in library_dirs(b.root, triplet)]

    image_dir = work / "image"
    image_dir.mkdir()
    shutil.copyfile(b.root / "usr/lib/gnu-smalltalk/gst.im", image_dir / "gst.im")
    share = b.root / "usr/share/gnu-smalltalk"
    for f in [*share.glob("*.star"), share / "packages.xml"]:
        if f.is_file():
            shutil.copyfile(f, image_dir / f.name)

    manifest = {
        "format": MANIFEST_FORMAT,
        "version": GST_VERSION,
        "gst": "root/usr/bin/gst",
        "image_dir": "image",
        "kernel_dir": "root/usr/share/gnu-smalltalk/kernel",
        "library_dirs": libs,
        "archive": {
            "flavor": archive.flavor,
            "uri": archive.uri,
            "suite": archive.suite,
        },
        "packages": [*GST_PACKAGES, *extra],
    }
    say("checking gst")
    _check(_install_from_manifest(work, manifest), work, manifest)
    shutil.rmtree(b.apt_dir, ignore_errors=True)
    shutil.rmtree(b.debs, ignore_errors=True)
    return manifest


def _check(inst: GstInstall, work: Path, manifest: dict[str, object]) -> None:
    """Run the fresh gst on a one-line script; record its reported version."""
    env = inst.environ()
    manifest["version"] = probe_version(inst.gst, env)
    script = work / "check.st"
    script.write_text(CHECK_SCRIPT)
    proc = _run(inst.command(str(script)), what="checking gst", env=env, timeout=120)
    script.unlink()
    if proc.returncode != 0 or proc.stdout.strip() != "7":
        detail = _first_line(proc.stderr) or _first_line(proc.stdout) or f"exit {proc.returncode}"
        raise ProvisionError(f"the downloaded gst does not work: {detail}")


def provision(*, progress: Progress | None = None) -> GstInstall:
    """Download GNU Smalltalk 3.2.5 into the cache (or return the complete one there).

    Built in a scratch directory next to the install and renamed into place
    only after gst has run a script, so an interrupted run leaves nothing
    that looks installed; a lock keeps concurrent stui processes apart.
    """
    say = progress or (lambda _msg: None)
    target = install_dir()
    existing = load_install(target)
    if existing:
        return existing
    tools = require_tools()
    cache = target.parent
    try:
        trust.private_dir(cache)
        with exclusive(cache / f"{INSTALL_NAME}.lock", waiting=lambda: say("waiting for another stui to finish installing gst")):
            existing = load_install(target)
            if existing:
                return existing
            # We hold the lock, so leftovers are from killed runs.
            for stale in cache.glob(f"{INSTALL_NAME}.partial-*"):
                shutil.rmtree(stale, ignore_errors=True)
            if target.exists():
                shutil.rmtree(target)
            say("reading apt sources")
            archive = choose_archive(read_apt_sources())
            import tempfile  # only when provisioning

            work = Path(tempfile.mkdtemp(prefix=f"{INSTALL_NAME}.partial-", dir=cache))
            try:
                manifest = _build(work, archive, tools, say)
                (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
                os.rename(work, target)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
    except OSError as e:
        raise ProvisionError(f"cannot install gst into {cache}: {e.strerror or e}") from None
    inst = load_install(target)
    if inst is None:  # pragma: no cover - we just wrote it
        raise ProvisionError(f"the install in {target} is incomplete")
    say(f"installed GNU Smalltalk {inst.version} in {target}")
    return inst
