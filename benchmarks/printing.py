"""Figure 8: a script that prints 1,000,000 short lines, `stui -f FILE` against `gst FILE`.

Streaming sends what the image writes as it is written; this figure shows
what that costs when a program does nothing but print. Both commands write
into a file, as `> FILE` would, and must write the same bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import child_env, heading, line, ratio, repeat, run_timed, seconds_printing, stui_argv

TARGET_RATIO = 1.5
SCRIPT = "1 to: {lines} do: [:i | i printNl].\n"


def run(results: dict, *, quick: bool) -> None:
    install = results["install"]
    lines = 20_000 if quick else 1_000_000
    heading(f"8. A script printing {lines:,} short lines" + ("  (--quick: 20,000)" if quick else ""))
    expected = "".join(f"{i}\n" for i in range(1, lines + 1)).encode()
    budget = 10 if quick else 30
    with tempfile.TemporaryDirectory(prefix="stui-bench-") as tmp:
        path = Path(tmp) / "print.st"
        path.write_text(SCRIPT.format(lines=lines))

        gst = repeat("gst FILE", lambda: seconds_printing(
            run_timed(install.command(str(path)), env=install.environ(), timeout=120), "gst FILE", expected),
            runs=3 if quick else 5, warmup=1, budget=budget)
        stui_f = repeat("stui -f FILE", lambda: seconds_printing(
            run_timed(stui_argv("-f", str(path)), env=child_env(), timeout=120, stall=3), "stui -f", expected),
            runs=3 if quick else 5, budget=budget)
    results["print_gst"] = gst.median
    results["print_stui_f"] = stui_f.median
    line("gst FILE > file (baseline)", gst.describe())
    line("stui -f FILE > file", stui_f.describe())
    verdict = ""
    if stui_f.ok and gst.ok:
        verdict = f"  (target <= {TARGET_RATIO}x: {'meets' if stui_f.median / gst.median <= TARGET_RATIO else 'misses'})"
    line("ratio stui -f / gst", ratio(stui_f.median, gst.median) + verdict)
