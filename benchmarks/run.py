#!/usr/bin/env python3
"""stui's performance benchmarks: figures, never assertions.

    .venv/bin/python benchmarks/run.py            # full run, under 2 minutes
    .venv/bin/python benchmarks/run.py --quick    # about 25 s: every figure, few repetitions
    .venv/bin/python benchmarks/run.py --only 1,3 # some sections
    .venv/bin/python benchmarks/run.py --only 9   # 100,000 pipelined evals, counting hung batches
    .venv/bin/python benchmarks/run.py --only 10  # a session with 50 classes and 1,000 methods

See benchmarks/README.md for what each figure means. The exit status is 1
when a figure could not be measured (a section failed, or printed n/a), so
that tests/test_benchmarks.py, which runs --quick, notices a benchmark that
rotted; timings never decide it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import common  # puts the repository on sys.path
from common import checked, child_env, fmt, heading, line, missing, run_timed, stui_argv

SECTIONS = ("1", "3", "2", "8", "4", "5", "6", "7", "9", "10")  # 3 before 2 and 4: they use its breakdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every figure, with few repetitions and small inputs")
    parser.add_argument("--only", metavar="LIST", help="comma-separated sections to run (1-10)")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else set(SECTIONS)

    from stui_repl import paths
    from stui_repl.image import launcher
    from stui_repl.image.gst import ProvisionError, ensure_gst

    began = time.perf_counter()
    try:
        install = ensure_gst(allow_provision=False)
    except ProvisionError as exc:
        print(f"benchmarks: no gst ({exc}); run `stui setup` first", file=sys.stderr)
        return 2
    results: dict = {"install": install}

    heading("Setup")
    line("python", f"{platform.python_version()} ({sys.executable})")
    line("gst", f"{install.version} ({install.source}: {install.gst})")
    line("server image", str(launcher.server_image(install, progress=lambda m: line("", m))))
    line("cache", str(paths.cache_dir()))
    line("cpus / load average", f"{os.cpu_count()} / " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    line("mode", "quick" if args.quick else "full")
    # Warm-up: builds the image if needed, byte-compiles stui, fills the page cache.
    try:
        warm = checked(run_timed(stui_argv("-c", "3 + 4"), env=child_env(), timeout=300), "warm-up stui -c")
        line("warm-up stui -c (excluded)", fmt(warm.seconds))
    except Exception as exc:  # noqa: BLE001 - any failure here ends the run with its message
        print(f"benchmarks: the warm-up failed: {exc}", file=sys.stderr)
        return 1

    import breakdown
    import command
    import healing
    import pipeline100k
    import printing
    import prompt
    import roundtrip
    import script10k
    import session_code
    import sessions

    modules = {"1": roundtrip, "2": script10k, "3": command, "4": prompt, "5": breakdown, "6": sessions, "7": healing, "8": printing, "9": pipeline100k, "10": session_code}
    took: dict[str, float] = {}
    try:
        for section in SECTIONS:
            if section in wanted:
                started = time.perf_counter()
                try:
                    modules[section].run(results, quick=args.quick)
                except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                    missing(f"section {section} FAILED", f"{type(exc).__name__}: {exc}")
                took[section] = time.perf_counter() - started
        breakdown.summary(results)
    finally:
        common.cleanup()
    print(f"\n(total benchmark time {fmt(time.perf_counter() - began)}: "
          + ", ".join(f"section {section} {fmt(seconds)}" for section, seconds in took.items())
          + "; load average now " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + ")")
    if common.MISSING:
        print(f"benchmarks: {len(common.MISSING)} figure(s) not measured:", file=sys.stderr)
        for what in common.MISSING:
            print(f"  {what}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
