"""gst as the oracle: run a program with plain `gst FILE` and with `stui -f
FILE --keep-going`, and compare what each printed, stdout and stderr
together, in order.

Only the differences the README lists on purpose are taken out first:
gst reports an unhandled error as a backtrace on stdout ("Object: nil error:
..." and the contexts), stui as one line on stderr ("FILE:LINE: Class:
message"). Both become "<error at FILE:LINE: message>": an error reported
for the same place in the same file, with the message of gst's header, among
the same output. stui's message is on one line, and names the receiver of a
message not understood ("nil does not understand #foo") where gst's header
says "Object: nil error: did not understand #foo".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# gst's report of an unhandled error: "Object: nil error: did not understand
# #foo" (or "Error class ... error: ..."), maybe after output that did not end
# its line, maybe on more than one line, then one line per context, each
# ending with its place: "SmallInteger(Number)>>zeroDivide (SysExcept.st:1426)".
HEADER = re.compile(r"^(?P<before>.*?)(?:Object: .*?|Error class.*?) error: (?P<message>.*)$")
CONTEXT = re.compile(r"^\S.*>>\S.*$|^\S.*\(\S[^()]*:\d+\)$")
PLACE = re.compile(r"\((?P<file>[^()]*):(?P<line>\d+)\)$")
# stui's: "FILE:LINE: Class: message", maybe after output that did not end
# its line; FILE is a path as given, a String, or a name gst gave a file-in.
STUI_ERROR = re.compile(
    r"^(?P<before>.*?)(?P<file>/\S+?|a String|[\w.-]+\.st):(?P<line>\d+): (?P<class>[A-Z][\w.]*): (?P<message>.*)$"
)
STUI_NOT_UNDERSTOOD = re.compile(r"^.* does not understand (?P<selector>#\S+)$")
# STUI_ERROR backtracks quadratically on a long line, so it only sees the
# end of a line that has the shape at all.
STUI_ERROR_HINT = re.compile(r":\d+: [A-Z]")
STUI_ERROR_REACH = 2048
HEADER_LINES = 3


def error_mark(file: str | None, line: int | str | None, message: str) -> str:
    """Where an error was reported, and what it said: the file (by its base
    name) and line gst's backtrace ends with, the ones stui's line names."""
    where = f" at {Path(file).name}:{line}" if file else ""
    return f"<error{where}: {message}>"


def kernel_dir(gst_install) -> Path:
    """The kernel sources of the gst the tests run (its examples are beside them)."""
    args = list(gst_install.base_args)
    if "--kernel-directory" in args:
        return Path(args[args.index("--kernel-directory") + 1])
    return Path("/usr/share/gnu-smalltalk/kernel")


def normalize_gst(text: str, kernel_files: frozenset[str] = frozenset()) -> str:
    """gst's backtraces become error marks, placed at the last context that
    is not in the kernel (a process's backtrace ends in Process.st)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = HEADER.match(lines[i])
        # The header's message may run over a few lines before the contexts.
        first = next((j for j in range(i + 1, min(i + 1 + HEADER_LINES, len(lines))) if CONTEXT.match(lines[j])), None)
        if header and first is not None:
            j = first
            while j < len(lines) and CONTEXT.match(lines[j]):
                j += 1
            places = [m for m in map(PLACE.search, lines[first:j]) if m and m.group("file") not in kernel_files]
            message = " ".join([header.group("message"), *lines[i + 1 : first]])
            file, line = (places[-1].group("file"), places[-1].group("line")) if places else (None, None)
            mark = error_mark(file, line, message)
            out.append(header.group("before") + mark)
            i = j
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def normalize_stui(text: str) -> str:
    """stui's one-line errors become error marks."""
    out = []
    for line in text.split("\n"):
        hint = STUI_ERROR_HINT.search(line)
        start = max(0, hint.start() - STUI_ERROR_REACH) if hint else 0
        match = STUI_ERROR.match(line[start:]) if hint else None
        if match:
            message = match.group("message")
            if match.group("class") == "MessageNotUnderstood":
                message = STUI_NOT_UNDERSTOOD.sub(r"did not understand \g<selector>", message)
            mark = error_mark(match.group("file"), match.group("line"), message)
            out.append(line[:start] + match.group("before") + mark)
        else:
            out.append(line)
    return "\n".join(out)


def run_gst(gst_install, script: Path, timeout: float = 60) -> str:
    done = subprocess.run(
        gst_install.command(str(script)), env=gst_install.environ(), cwd=script.parent,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="backslashreplace", timeout=timeout, check=False,
    )
    return done.stdout


def run_stui(script: Path, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stui_repl", "-f", str(script), "--keep-going"], cwd=script.parent,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="backslashreplace", timeout=timeout, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout


def compare(gst_install, script: Path) -> tuple[str, str]:
    """What gst and stui printed, normalized: equal when stui is faithful."""
    kernel_files = frozenset(path.name for path in kernel_dir(gst_install).glob("*.st"))
    return normalize_gst(run_gst(gst_install, script), kernel_files), normalize_stui(run_stui(script))
