"""Figure 3: `stui -c '3 + 4'`, the whole command, and where its time goes.

Baselines in the same run: `python -c pass` (the interpreter alone) and
`gst FILE` on a one-line file (the same gst install stui uses, base image).
Breakdown: phases.py (in-process timings of each step of the -c path) and
`python -X importtime -m stui_repl -c 1`.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import (
    BENCH_DIR,
    PYTHON,
    RunFailed,
    checked,
    child_env,
    fmt,
    heading,
    line,
    missing,
    ratio,
    repeat,
    run_timed,
    stui_argv,
    target_note,
)

TARGET = 0.060


def run(results: dict, *, quick: bool) -> None:
    install = results["install"]
    runs = 5 if quick else 11
    heading("3. `stui -c '3 + 4'`: the whole command")
    env = child_env()

    def stui_c() -> float:
        timed = checked(run_timed(stui_argv("-c", "3 + 4"), env=env, timeout=30), "stui -c")
        if timed.stdout.decode().strip() != "7":
            raise RunFailed(f"stui -c printed {timed.stdout[:80]!r}")
        return timed.seconds

    with tempfile.TemporaryDirectory(prefix="stui-bench-") as tmp:
        one_line = Path(tmp) / "one.st"
        one_line.write_text("(3 + 4) printNl.\n")
        gst_env = install.environ()

        def gst_one() -> float:
            timed = checked(run_timed(install.command(str(one_line)), env=gst_env, timeout=30), "gst")
            if timed.stdout.decode().strip() != "7":
                raise RunFailed(f"gst printed {timed.stdout[:80]!r}")
            return timed.seconds

        stui = repeat("stui -c", stui_c, runs=runs, warmup=1, budget=20)
        python = repeat("python -c pass", lambda: checked(run_timed([PYTHON, "-c", "pass"], env=env), "python").seconds,
                        runs=runs, warmup=1)
        gst = repeat("gst one-line", gst_one, runs=runs, warmup=1)
        env_nopyc = child_env(bytecode_cache=False)
        nopyc = repeat("stui -c (no .pyc)", lambda: checked(
            run_timed(stui_argv("-c", "3 + 4"), env=env_nopyc, timeout=30), "stui -c").seconds,
            runs=max(3, runs // 2), budget=10)

    floor = python.median + gst.median
    results["stui_c"] = stui.median
    results["python_pass"] = python.median
    results["gst_one_line"] = gst.median
    line("stui -c '3 + 4'", stui.describe())
    line("", target_note(stui.median, TARGET))
    line("baseline: python -c pass", python.describe())
    line("baseline: gst one-line file", gst.describe())
    line("ratio stui / gst one-line", ratio(stui.median, gst.median))
    line("ratio stui / (python + gst)", f"{ratio(stui.median, floor)}  (python + gst = {fmt(floor)})")
    line("same, without .pyc (this env)", f"{nopyc.describe()}  (PYTHONDONTWRITEBYTECODE=1 is set here)")

    heading("3b. Where `stui -c` spends its time")
    phase_times: dict[str, list[float]] = defaultdict(list)
    walls = []
    for _ in range(3 if quick else 5):
        try:
            spawned = time.time()
            timed = checked(run_timed([PYTHON, str(BENCH_DIR / "phases.py"), "3 + 4"], env=env, timeout=30),
                            "phases.py")
            exited = time.time()
        except RunFailed as exc:
            missing("phases run", f"failed: {exc}")
            continue
        text = timed.stdout.decode()
        data = json.loads(text[text.index("PHASES ") + 7:])
        walls.append(timed.seconds)
        phase_times["interpreter start-up"].append(data["started"] - spawned)
        for name, seconds in data["phases"].items():
            phase_times[name].append(seconds)
        phase_times["interpreter exit"].append(exited - data["ended"])
        phase_times["other (helper's own imports, spawn)"].append(
            timed.seconds - (data["started"] - spawned) - sum(data["phases"].values()) - (exited - data["ended"]))
    if walls:
        medians = {name: statistics.median(v) for name, v in phase_times.items()}
        wall = statistics.median(walls)
        rest = medians["interpreter start-up"] + medians["interpreter exit"]
        for name, seconds in medians.items():
            line(name, f"{fmt(seconds):>9}  {100 * seconds / wall:4.0f}%")
        line("total wall (median)", fmt(wall))
        results["phases"] = medians
        results["phases_wall"] = wall
        results["phases_rest"] = rest
    else:
        missing("where `stui -c` spends its time", "no phases run finished")

    heading("3c. Imports of `stui -c` (python -X importtime -m stui_repl -c 1)")
    imports = importtime(env, runs=3 if quick else 5)
    if imports:
        total, own, top, heavy = imports
        results["import_total"] = total
        line("all imports (cumulative)", fmt(total))
        line("stui_repl modules (self time)", fmt(own))
        line("heaviest modules, self time:", "")
        for name, seconds in top:
            line(f"  {name}", fmt(seconds))
        line("stui_repl modules, cumulative:", "(includes what each imports first)")
        for name, seconds in heavy:
            line(f"  {name}", fmt(seconds))


IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime(env: dict[str, str], runs: int):
    """Median total import time, stui_repl's own share, the heaviest modules by
    self time, and stui_repl's modules by cumulative time (or None)."""
    totals, owns = [], []
    selfs: dict[str, list[float]] = defaultdict(list)
    cumulatives: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        try:
            timed = checked(run_timed([PYTHON, "-X", "importtime", "-m", "stui_repl", "-c", "1"],
                                      env=env, timeout=30), "importtime")
        except RunFailed as exc:
            missing("importtime", f"failed: {exc}")
            return None
        total = own = 0.0
        for match in IMPORT_LINE.finditer(timed.stderr.decode("utf-8", "replace")):
            self_us, cumulative_us, indent, name = match.groups()
            if len(indent) == 1:  # a top-level import
                total += int(cumulative_us) / 1e6
            if name.startswith("stui_repl"):
                own += int(self_us) / 1e6
            selfs[name].append(int(self_us) / 1e6)
            cumulatives[name].append(int(cumulative_us) / 1e6)
        totals.append(total)
        owns.append(own)
    top = sorted(((name, statistics.median(v)) for name, v in selfs.items()), key=lambda x: -x[1])[:8]
    heavy = sorted(((name, statistics.median(v)) for name, v in cumulatives.items()
                    if name.startswith("stui_repl.")), key=lambda x: -x[1])[:6]
    return statistics.median(totals), statistics.median(owns), top, heavy
