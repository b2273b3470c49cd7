"""Figure 2: a 10,000-statement script through `stui -q < FILE`, `stui -f FILE` and `gst FILE`.

gst is the same install stui uses (GstInstall.command(FILE) with its
environment, base image). All three must print the same thing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import (
    RunFailed,
    child_env,
    fmt,
    heading,
    line,
    ratio,
    repeat,
    run_timed,
    seconds_printing,
    stui_argv,
)

TARGET_RATIO = 1.5


def make_script(statements: int) -> str:
    body = "x := x + 1234.\n" * statements
    return f"| x |\nx := 0.\n{body}x printNl.\n"


def scanning_cost(text: str) -> float:
    """Seconds stui's client spends splitting the script into statements."""
    from stui_repl.client import scanner

    start = time.perf_counter()
    scanner.split_script(text)
    return time.perf_counter() - start


def evaluate_on_open_connection(install, text: str, client_cpu: list[float]) -> float:
    """Seconds for script.run(text) (what `stui -q` does after start-up) on an open connection.

    Appends the client's own CPU time for the run to client_cpu.
    """
    import io

    from roundtrip import _session

    from stui_repl.image.attachment import Attachment
    from stui_repl.modes import script
    from stui_repl.render import PlainRenderer
    from stui_repl.session.controller import SessionController

    with _session(install) as (connection, dog):

        class Ticking(PlainRenderer):
            def output(self, text: str, stream: str = "stdout") -> None:
                dog.tick()
                super().output(text, stream)

        out = io.StringIO()
        controller = SessionController(open_attachment=lambda *args, **options: Attachment(connection))
        controller.attach()
        cpu = time.process_time()
        start = time.perf_counter()
        status = script.run(script.ScriptInput("bench", text=text), controller, Ticking(out=out), source="bench",
                            print_values=False, keep_going=False)
        seconds = time.perf_counter() - start
        client_cpu.append(time.process_time() - cpu)
    if status != 0:
        raise RunFailed(f"script.run answered {status}: {out.getvalue()[-80:]!r}")
    return seconds


def run(results: dict, *, quick: bool) -> None:
    install = results["install"]
    statements = 2000 if quick else 10000
    heading(f"2. A {statements:,}-statement script" + ("  (--quick: 2,000 instead of 10,000)" if quick else ""))
    text = make_script(statements)
    output = f"{1234 * statements}\n".encode()
    env = child_env()
    gst_env = install.environ()
    # A slow stui gets fewer runs rather than a longer benchmark.
    budget = 8 if quick else 20
    # A run that takes far longer than expected is a hang (see README), not a figure.
    expected = results.get("stui_c", 0.5) + statements * results.get("pipelined_per_statement", 0.002)
    timeout = min(90.0, max(20.0, 10 + 3 * expected))

    with tempfile.TemporaryDirectory(prefix="stui-bench-") as tmp:
        path = Path(tmp) / "script.st"
        path.write_text(text)

        def expect_output(timed, what: str) -> float:
            return seconds_printing(timed, what, output)

        gst = repeat("gst FILE", lambda: expect_output(
            run_timed(install.command(str(path)), env=gst_env, timeout=timeout), "gst FILE"),
            runs=5 if quick else 7, warmup=1)
        stui_q = repeat("stui -q < FILE", lambda: expect_output(
            run_timed(stui_argv("-q"), env=env, stdin_path=path, timeout=timeout, stall=3), "stui -q"),
            runs=3 if quick else 4, budget=budget)
        stui_f = repeat("stui -f FILE", lambda: expect_output(
            run_timed(stui_argv("-f", str(path)), env=env, timeout=timeout, stall=3), "stui -f"),
            runs=3 if quick else 4, budget=budget)

        client_cpu: list[float] = []
        in_process = repeat("script.run on an open connection",
                            lambda: evaluate_on_open_connection(install, text, client_cpu),
                            runs=3, budget=budget / 2)

    results["script_statements"] = statements
    results["script_in_process"] = in_process.median
    results["script_gst"] = gst.median
    results["script_stui_q"] = stui_q.median
    results["script_stui_f"] = stui_f.median
    results["script_scan"] = scanning_cost(text)
    results["script_client_cpu"] = statistics.median(client_cpu) if client_cpu else float("nan")
    line("gst FILE (baseline)", gst.describe())
    line("stui -q < FILE", stui_q.describe())
    line("stui -f FILE", stui_f.describe())
    for label, sample in (("stui -q / gst", stui_q), ("stui -f / gst", stui_f)):
        verdict = ""
        if sample.ok and gst.ok:
            verdict = f"  (target <= {TARGET_RATIO}x: {'meets' if sample.median / gst.median <= TARGET_RATIO else 'misses'})"
        line(f"ratio {label}", ratio(sample.median, gst.median) + verdict)
    if stui_q.ok and gst.ok:
        line("outputs", f"identical ({output.decode().strip()})")
    line("script.run, image already open", f"{in_process.describe()}  (the evaluation alone, no start-up)")
    if "stui_c" in results and "gst_one_line" in results:
        line("per statement, stui -q", f"{fmt((stui_q.median - results['stui_c']) / statements)}  (minus the "
             f"`stui -c` start-up)  vs gst {fmt((gst.median - results['gst_one_line']) / statements)}")
