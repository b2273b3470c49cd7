"""Figure 10: what a session's code costs: replay at start-up, saving, the file, :fileout.

A "coded" session is made the way a person makes one: a script run with
`stui --session` defines 50 classes with 20 methods each (1,000 methods of
a few lines, a third of them on the class side), and the image reports
them. Each figure has a baseline from the same run:

* start-up: the prompt with the coded session against the same prompt with
  an empty session (both file into a fresh embedded image);
* the replay alone: the install request of all 1,050 definitions over an
  open connection to a fresh image;
* saving: `SessionFile.save` against writing and fsyncing the same bytes;
* :fileout: writing the .st file against writing the same bytes;
* redefining one method 1,000 times in a script with --session against the
  same script without a session, and the number of entries it leaves.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import common
from common import PYTHON, REPO, fmt, heading, line, repeat

CLASSES = 50
METHODS = 20  # per class: 1,000 in all
TARGETS = {"startup": 0.150, "save": 0.020, "size": 1024 * 1024, "fileout": 0.100}


def defining_script() -> str:
    """50 classes in both syntaxes, 1,000 methods: the code of a modest project."""
    parts = []
    for c in range(CLASSES):
        superclass = "Object" if c % 5 == 0 else f"Part{c - c % 5}"
        methods = []
        for m in range(METHODS):
            if m % 3 == 2:
                continue
            methods.append(
                f"    item{m}: anObject [\n"
                f"        <category: 'accessing'>\n"
                f"        | result |\n"
                f"        result := anObject isNil ifTrue: [{m}] ifFalse: [anObject printString size + {m}].\n"
                f"        ^result * {c + 1}\n"
                f"    ]\n")
        parts.append(f"{superclass} subclass: Part{c} [\n    | a{c} b{c} |\n    <comment: 'Part {c} of the benchmark'>\n"
                     + "".join(methods) + "]\n")
        class_side = "".join(
            f"    make{m} [ ^self new item{m - 1}: {m}; yourself ]\n" for m in range(METHODS) if m % 3 == 2)
        parts.append(f"Part{c} class extend [\n{class_side}]\n")
    return "".join(parts)


def run(results: dict, *, quick: bool) -> None:
    from stui_repl.commands.code import fileout_text
    from stui_repl.session import toml as session_format
    from stui_repl.session.model import Session
    from stui_repl.session.store import SessionFile, SessionStore

    heading("10. Code in sessions: 50 classes, 1,000 methods")
    runs = 3 if quick else 7
    home = Path(common.bench_home())
    store = SessionStore(home / "state" / "sessions")
    env = common.child_env()
    made = subprocess.run([PYTHON, "-m", "stui_repl", "--session", "coded", "-q"], input=defining_script(),
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300, check=False)
    if made.returncode != 0:
        line("making the coded session FAILED", (made.stderr.strip().splitlines() or ["?"])[-1])
        return
    text = store.read_text("coded") or ""
    coded = session_format.parse(text)
    methods = sum(1 for entry in coded.code if entry.kind == "method")
    classes = sum(1 for entry in coded.code if entry.kind == "class")
    line("recorded by the image", f"{classes} classes, {methods} methods")
    store.write_text("empty", session_format.render(Session.new("empty", "2026-01-01T00:00:00.000Z", "bench")))
    size = len(text.encode())
    line("file size", f"{size / 1024:.0f} KiB")
    line("", common.target_note(size, TARGETS["size"], unit="bytes"))
    results["code_size"] = size

    # -- start-up ----------------------------------------------------------------------
    prompt_env = common.child_env(extra={"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"})
    coded_up, empty_up = common.prompt_up_pair("coded", "empty", runs=runs, env=prompt_env,
                                        reset=lambda: store.write_text("coded", text))
    added = coded_up.median - empty_up.median
    line("prompt up, coded session", coded_up.describe())
    line("baseline: prompt up, empty session", empty_up.describe())
    line("added by filing the code in", fmt(added))
    line("", common.target_note(added, TARGETS["startup"]))
    results["code_startup_added"] = added
    _replay_alone(coded, runs)

    # -- saving ------------------------------------------------------------------------
    file = SessionFile(store, "coded")
    loaded = file.load().session

    def save_once() -> float:
        loaded.add_history(f"1 + {time.perf_counter_ns()}", "2026-02-01T00:00:00.000Z", 10_000)
        start = time.perf_counter()
        file.save(loaded, history_limit=10_000)
        return time.perf_counter() - start

    def raw_write(data: bytes) -> float:
        return common.fsynced_write(store.directory / "raw.bin", data)

    saving = repeat("save", save_once, runs=runs * 3, warmup=1)
    floor = repeat("raw write", lambda: raw_write(text.encode()), runs=runs * 3, warmup=1)
    line("SessionFile.save (merge check, render, atomic write)", saving.describe())
    line("baseline: write + fsync the same bytes", floor.describe())
    line("ratio", common.ratio(saving.median, floor.median))
    line("", common.target_note(saving.median, TARGETS["save"]))
    results["code_save"] = saving.median

    # -- :fileout ----------------------------------------------------------------------
    out = store.directory / "coded.st"

    def fileout_once() -> float:
        start = time.perf_counter()
        out.write_text(fileout_text(coded.code, "benchmark"), encoding="utf-8")
        return time.perf_counter() - start

    filing = repeat(":fileout", fileout_once, runs=runs * 3, warmup=1)
    written = out.read_bytes()
    plain = repeat("raw write", lambda: raw_write(written), runs=runs * 3, warmup=1)
    line(":fileout (text of 1,050 definitions, written)", filing.describe())
    line("baseline: write + fsync the same bytes", plain.describe())
    line("", common.target_note(filing.median, TARGETS["fileout"]))
    results["code_fileout"] = filing.median

    # -- one method redefined 1,000 times ------------------------------------------------
    script = "Object subclass: #Counter.\n" + "".join(f"Counter compile: 'value [ ^{n} ]'.\n" for n in range(1000))

    def scripted(*session: str) -> float:
        start = time.perf_counter()
        done = subprocess.run([PYTHON, "-m", "stui_repl", *session, "-q"], input=script, capture_output=True,
                              text=True, env=env, cwd=str(REPO), timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError((done.stderr.strip().splitlines() or ["?"])[-1])
        return time.perf_counter() - start

    recording = repeat("recording", lambda: scripted("--session", "loop"), runs=runs)
    bare = repeat("bare", scripted, runs=runs)
    entries = session_format.parse(store.read_text("loop") or "").code
    line("1,000 redefinitions, stui --session -q", recording.describe())
    line("baseline: the same script without a session", bare.describe())
    line("entries left in the session", f"{len(entries)} ({', '.join(e.name for e in entries)})")
    results["code_redefinitions_entries"] = len(entries)


def _replay_alone(coded, runs: int) -> None:
    """The install request by itself, over an open connection to a fresh image each time."""
    from stui_repl.client.evaluator import Evaluator
    from stui_repl.image.attachment import Attachment

    entries = [entry.wire() for entry in coded.code]

    def once() -> float:
        attachment = Attachment.open(None, None)
        try:
            evaluator = Evaluator(attachment.connection)
            start = time.perf_counter()
            outcomes = evaluator.install_code(entries)
            seconds = time.perf_counter() - start
        finally:
            attachment.close()
        failed = [o for o in outcomes if o.get("outcome") not in ("installed", "same")]
        if failed:
            raise RuntimeError(f"{len(failed)} definitions failed: {failed[0].get('message')}")
        return seconds

    alone = repeat("install", once, runs=runs)
    line("the install request alone (1,050 definitions)", alone.describe())
