"""Whose files stui trusts: the discipline of OpenSSH's StrictModes.

A session file is code (opening the session evaluates its recipes), the
server image and the provisioned gst are code, and the key and a token file
open everything else. So stui reads or runs such a file only when nobody but
you could have written it: it must belong to you (or to root, who can change
anything anyway), it must not be writable by group or others, and neither
may the directories of stui's it is in. A secret (the key, a token file)
must be readable by you alone as well. Anything else is refused with one
line naming the path and what to change (errors.Untrusted, exit status 4).
Owner and mode decide, never access(): as root, access() allows everything.

stui makes its directories 0700 and its files 0600. A directory of its own
(paths.own_directories) that an older stui left looser is tightened to 0700
when it is yours, all of them at once, and stui says so in one line. A 0700
directory protects what is below it too: nobody else can reach the files of
the provisioned gst tree to change them, whatever their own modes.

Cheap, for scripted start-up is timed: one stat per path (fstat on a file
stui opens anyway), nothing walked, nothing cached.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from . import paths
from .errors import Untrusted

GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH
GROUP_OTHER_ANY = 0o077


def _to_stderr(line: str) -> None:
    print(f"stui: {line}", file=sys.stderr, flush=True)


# Where the one line about tightened directories goes (a test may listen).
tell: Callable[[str], None] = _to_stderr


def problem(st: os.stat_result, *, secret: bool = False, uid: int | None = None) -> str | None:
    """Why what has this status must not be trusted, or None if it may be (pure)."""
    me = os.geteuid() if uid is None else uid
    if st.st_uid not in (me, 0):
        return f"owned by uid {st.st_uid}, not by you (uid {me})"
    write = st.st_mode & GROUP_OTHER_WRITE
    loose = write or st.st_mode & (GROUP_OTHER_ANY if secret else 0)
    if not loose:
        return None
    who = " and ".join(name for name, bits in (("group", 0o070), ("others", 0o007)) if loose & bits)
    return f"{'writable' if write else 'readable'} by {who} (mode {stat.S_IMODE(st.st_mode):04o})"


def check(path: Path, st: os.stat_result, what: str, *, secret: bool = False) -> None:
    """Raise Untrusted, one line with the fix, unless `st` (of `path`) may be trusted."""
    why = problem(st, secret=secret)
    if why is None:
        return
    import shlex  # only on the way to an error

    if why.startswith("owned"):
        fix = "remove it, or make it yours (chown) if you trust what it holds"
    else:
        fix = f"run: chmod {'600' if secret else 'go-w'} {shlex.quote(str(path))}"
    raise Untrusted(f"refusing {what} {path}: {why}; {fix}", why)


def stat_of(path: Path, what: str, *, secret: bool = False) -> os.stat_result | None:
    """One stat of `path` (through links), checked; None if nothing is there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    check(path, st, what, secret=secret)
    return st


def read(path: Path, what: str, *, secret: bool = False) -> bytes | None:
    """What the file holds, if it may be trusted; None if there is no such
    file. Checked on the open file, so what is checked is what is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        check(path, os.fstat(fd), what, secret=secret)
        return file.read()


def private_dir(path: Path, *, create: bool = True) -> bool:
    """Make sure `path`, a directory of stui's own, is safe to keep things in.

    Missing, it is made 0700 with any missing parents (as the XDG spec asks),
    unless `create` is false: then the answer is False. Present, it and
    stui's directories above it, up to the cache, state or configuration
    directory, are checked; one that is yours and looser is tightened.
    """
    for level in _levels(path):
        try:
            st = os.stat(level)
        except FileNotFoundError:
            if not create:
                return False
            _make(path)
            return True
        _check_dir(level, st)
    return True


def _levels(path: Path) -> list[Path]:
    """`path` and stui's directories above it, top first."""
    for root in (paths.cache_dir(), paths.state_dir(), paths.config_dir()):
        if path == root or root in path.parents:
            levels = [root]
            for part in path.relative_to(root).parts:
                levels.append(levels[-1] / part)
            return levels
    return [path]


def _make(path: Path) -> None:
    missing = [path, *(p for p in path.parents)]
    for index, directory in enumerate(missing):
        if os.path.isdir(directory):
            missing = missing[:index]
            break
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # another stui made it a moment ago
            _check_dir(directory, os.stat(directory))


def _check_dir(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise Untrusted(f"refusing {path}: stui keeps a directory there, and it is not one; move it away", "not a directory")
    if st.st_uid == os.geteuid() and st.st_mode & GROUP_OTHER_ANY:
        _tighten(path)
        st = os.stat(path)
    check(path, st, "the directory")


def _tighten(first: Path) -> None:
    """Make every directory of stui's that is yours and looser than 0700
    private, and say so in one line: stui made them so before it kept them
    private, and an older stui's files are no less yours for it."""
    me = os.geteuid()
    done = []
    for directory in dict.fromkeys([*paths.own_directories(), first]):
        try:
            st = os.stat(directory)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == me and st.st_mode & GROUP_OTHER_ANY:
                os.chmod(directory, 0o700)
                done.append(f"{directory} (was {stat.S_IMODE(st.st_mode):04o})")
        except OSError:
            continue
    if done:
        tell(f"made stui's directories private (0700), as stui keeps them now: {', '.join(done)}")


def check_open(fd: int, path: Path, what: str) -> None:
    """Check a file stui has just opened (a lock file), by its descriptor."""
    check(path, os.fstat(fd), what)
