"""Figure 6: what a large session costs: start-up, saving, memory, file size.

A "large" session has the default caps filled: 10,000 history entries (a
realistic mix of one-liners and multi-line class definitions) and 200
variables (storeStrings, and some re-created from their source). Each figure
has a baseline from the same run:

* start-up: the prompt with the large session against the same prompt with
  an empty session (both restore into a fresh embedded image);
* saving: `SessionFile.save` of the large session against writing and
  fsyncing the same bytes with no TOML at all (the I/O floor);
* memory: what loading the session allocates (tracemalloc peak), and the
  growth of the process's resident size, in a fresh interpreter;
* reading: stui's loader against tomllib and tomlkit reading the history
  written the plain TOML way, as an array of tables.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from common import (
    PYTHON,
    REPO,
    bench_home,
    child_env,
    fmt,
    fsynced_write,
    heading,
    line,
    missing,
    prompt_up_pair,
    ratio,
    repeat,
    target_note,
)

HISTORY = 10_000
VARIABLES = 200
TARGETS = {"startup": 0.100, "prompt": 0.250, "save": 0.020, "memory": 5 * 1024 * 1024, "size": 1024 * 1024}


def _inputs(count: int) -> list[str]:
    shapes = [
        "x := 3 + 4",
        "(1 to: {i}) inject: 0 into: [:a :b | a + b]",
        "Transcript showCr: 'step {i} done'; cr",
        "Object subclass: Shape{i} [\n    | width height |\n    area [ ^width * height ]\n]",
        "coll := OrderedCollection new. coll add: {i}; yourself",
        "d at: #key{i} put: 'it''s {i}'",
    ]
    return [shapes[i % len(shapes)].format(i=i) for i in range(count)]


def build_large(name: str):  # -> Session
    from stui_repl.session.model import Session

    session = Session.new(name, "2026-01-01T00:00:00.000Z", "bench")
    for i, text in enumerate(_inputs(HISTORY)):
        when = f"2026-01-{1 + i // 2000:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00.000Z"
        session.add_history(text, when, HISTORY)
    for i in range(VARIABLES):
        when = "2026-01-05T00:00:00.000Z"
        if i % 4 == 3:
            session.record_variable(f"obj{i}", when, value_class="Object", value="an Object", source=f"obj{i} := Object new")
        elif i % 4 == 2:
            session.record_variable(f"arr{i}", when, value_class="Array", value=f"(1 2 {i} )", store=f"((Array new: 3) at: 1 put: 1; at: 2 put: 2; at: 3 put: {i}; yourself)")
        else:
            session.record_variable(f"v{i}", when, value_class="SmallInteger", value=str(i * 7), store=str(i * 7))
    return session


def run(results: dict, *, quick: bool) -> None:

    from stui_repl.session import toml as session_format
    from stui_repl.session.model import Session
    from stui_repl.session.store import SessionFile, SessionStore

    heading("6. Sessions: 10,000 history entries and 200 variables")
    runs = 3 if quick else 7
    home = Path(bench_home())
    store = SessionStore(home / "state" / "sessions")
    large = build_large("large")
    text = session_format.render(large)
    store.write_text("large", text)
    store.write_text("empty", session_format.render(Session.new("empty", "2026-01-01T00:00:00.000Z", "bench")))
    size = len(text.encode())
    line("file size, default caps filled", f"{size / 1024:.0f} KiB")
    line("", target_note(size, TARGETS["size"], unit="bytes"))
    results["session_size"] = size

    # -- start-up ----------------------------------------------------------------------
    env = child_env(extra={"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"})
    big, empty = prompt_up_pair("large", "empty", runs=runs, env=env, reset=lambda: store.write_text("large", text))
    added = big.median - empty.median
    line("prompt up, large session", big.describe())
    line("", target_note(big.median, TARGETS["prompt"]))
    line("baseline: prompt up, empty session", empty.describe())
    line("added by the large session", fmt(added))
    line("", target_note(added, TARGETS["startup"]))
    results["session_startup_added"] = added

    # -- saving ------------------------------------------------------------------------
    file = SessionFile(store, "large")
    loaded = file.load().session

    def save_once() -> float:
        loaded.add_history(f"1 + {time.perf_counter_ns()}", "2026-02-01T00:00:00.000Z", HISTORY)
        start = time.perf_counter()
        file.save(loaded, history_limit=HISTORY)
        return time.perf_counter() - start

    def raw_write() -> float:
        return fsynced_write(store.directory / "raw.bin", text.encode())

    saving = repeat("save", save_once, runs=runs * 3, warmup=1)
    floor = repeat("raw write", raw_write, runs=runs * 3, warmup=1)
    line("SessionFile.save (merge check, render, atomic write)", saving.describe())
    line("baseline: write + fsync the same bytes", floor.describe())
    line("ratio", ratio(saving.median, floor.median))
    line("", target_note(saving.median, TARGETS["save"]))
    results["session_save"] = saving.median

    # -- memory ------------------------------------------------------------------------
    probe = (
        "import os, sys, tracemalloc\n"
        "from stui_repl.session.store import SessionFile, SessionStore\n"
        "from stui_repl.session import toml as session_format\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "before = rss()\n"
        "tracemalloc.start()\n"
        "file = SessionFile(SessionStore(__import__('pathlib').Path(sys.argv[1])), 'large')\n"
        "session = file.load().session\n"
        "kept, peak = tracemalloc.get_traced_memory()\n"
        "tracemalloc.stop()\n"
        "print(peak, kept, rss() - before, len(session.history))\n"
    )
    out = subprocess.run([PYTHON, "-c", probe, str(store.directory)], capture_output=True, text=True,
                         env=child_env(), cwd=str(REPO), timeout=60, check=False)
    if out.returncode == 0:
        peak, kept, grown, entries = (int(v) for v in out.stdout.split())
        line("loaded session, kept in memory", f"{kept / 2**20:.1f} MiB for {entries} entries (tracemalloc)")
        line("", target_note(kept, TARGETS["memory"], unit="bytes"))
        line("loading: peak allocation", f"{peak / 2**20:.1f} MiB (the file's text and TOML tables, freed after)")
        line("loading: resident size grew by", f"{grown / 2**20:.1f} MiB")
        results["session_memory"] = kept
    else:
        missing("memory probe", "failed: " + (out.stderr.strip().splitlines()[-1] if out.stderr else "?"))

    # -- reading, against plain TOML layouts ---------------------------------------------
    def load_once() -> float:
        start = time.perf_counter()
        SessionFile(store, "large").load()
        return time.perf_counter() - start

    loading = repeat("load", load_once, runs=runs, warmup=1)
    plain = _array_of_tables(large)
    tomllib_plain = repeat("tomllib", lambda: _timed_parse("tomllib", plain), runs=runs)
    tomlkit_plain = repeat("tomlkit", lambda: _timed_parse("tomlkit", plain), runs=1)
    line("SessionFile.load (read, parse, split the history)", loading.describe())
    line("baseline: tomllib, history as [[history]] tables", tomllib_plain.describe())
    line("baseline: tomlkit, history as [[history]] tables", tomlkit_plain.describe())
    line("ratio load / tomllib tables", ratio(loading.median, tomllib_plain.median))


def _array_of_tables(session) -> str:
    from stui_repl.toml_text import toml_string

    return "".join(f"[[history]]\nat = {when}\ninput = {toml_string(text)}\n\n" for when, text in session.history)


def _timed_parse(which: str, text: str) -> float:
    if which == "tomllib":
        import tomllib

        start = time.perf_counter()
        tomllib.loads(text)
    else:
        import tomlkit

        start = time.perf_counter()
        tomlkit.parse(text)
    return time.perf_counter() - start
