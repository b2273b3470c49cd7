"""Where the time goes, from the figures already measured plus a server-side
micro-benchmark (server_micro.st, run in the server image without sockets).
"""

from __future__ import annotations

import math
import re

from common import BENCH_DIR, RunFailed, checked, fmt, heading, line, missing, ratio, run_timed


def server_micro(results: dict) -> dict[str, float]:
    """Seconds per operation inside the server image, by name.

    The server image sends the Transcript to stderr (its stdout is reserved
    for the port announcement), so both streams are read.
    """
    from stui_repl.image import launcher

    install = results["install"]
    image = launcher.server_image(install)
    try:
        timed = checked(run_timed(install.command(str(BENCH_DIR / "server_micro.st"), image=image),
                                  env=install.environ(), timeout=60), "server_micro.st")
    except RunFailed as exc:
        missing("server micro-benchmark", f"failed: {exc}")
        return {}
    found = {m.group(1): float(m.group(2)) / 1e6
             for m in re.finditer(r"^BENCH (\S+) (-?\d+)$", (timed.stdout + timed.stderr).decode(), re.MULTILINE)}
    if "evaluation-no-fork" not in found:
        text = (timed.stdout + timed.stderr).decode("utf-8", "replace").strip().splitlines()
        missing("server micro-benchmark", f"unreadable: {text[-1] if text else 'no output'}")
        return {}
    return found


def run(results: dict, *, quick: bool) -> None:
    heading("5. Server side, in the image without sockets (server_micro.st)")
    micro = server_micro(results)
    for name, label in (
        ("new-workspace", "new workspace (done by hello)"),
        ("Class>>environment:", "  of which Class>>environment:"),
        ("instVarNamed:environment", "  same without recompiling"),
        ("compile+run", "compile + run `x := x + 1234`"),
        ("compile+run-no-declare", "  same, server finds assigned names"),
        ("evaluation-no-fork", "StuiEvaluation run (print off)"),
        ("evaluation-printing", "StuiEvaluation run (print on)"),
        ("fork+wait", "fork eval process + wait"),
        ("json-decode-request", "JSON decode one request"),
        ("json-encode-reply", "JSON encode one reply"),
        ("script-json-decode", "script request, per statement: decode"),
        ("script-setup", "  decode + set up"),
        ("script-run", "  decode + set up + run"),
        ("script-json-encode", "  encode its result events"),
    ):
        if name in micro:
            line(label, fmt(micro[name]))
        elif micro:
            missing(label, f"server_micro.st printed no {name}")
    results["micro"] = micro


def summary(results: dict) -> None:
    heading("Summary (medians; baselines measured in this run)")
    rows = [
        ("1. round trip `3 + 4`", results.get("roundtrip"), "TCP echo", results.get("echo"), None),
        (f"2. {results.get('script_statements', 10000):,}-stmt script, stui -q", results.get("script_stui_q"),
         "gst FILE", results.get("script_gst"), "<= 1.5x gst"),
        (f"   {results.get('script_statements', 10000):,}-stmt script, stui -f", results.get("script_stui_f"),
         "gst FILE", results.get("script_gst"), "<= 1.5x gst"),
        ("3. stui -c '3 + 4'", results.get("stui_c"), "gst 1-line", results.get("gst_one_line"), "60 ms"),
        ("", None, "python -c pass", results.get("python_pass"), None),
        ("4. prompt up (pty)", results.get("prompt"), "import pt+rich", results.get("prompt_imports"), "200 ms"),
    ]
    print(f"  {'figure':<34} {'value':>10}   {'baseline':<16} {'value':>10} {'ratio':>8}   target")
    for name, value, base_name, base, target in rows:
        v = fmt(value) if value is not None else ""
        b = fmt(base) if base is not None else "n/a"
        r = ratio(value, base) if value is not None and base is not None else ""
        r = "" if r == "n/a" else r
        print(f"  {name:<34} {v:>10}   {base_name:<16} {b:>10} {r:>8}   {target or ''}")
    if results.get("pipeline_hangs"):
        print(f"  !! {results['pipeline_hangs']} pipelined batch(es) hung in section 1 (see README: known hang)")
    if "pipeline100k_hangs" in results:
        print(f"  9. pipelined evals: {results['pipeline100k_hangs']} of {results['pipeline100k_batches']} "
              "batches hung (see README: known hang)")

    heading("Where the time goes")
    phases = results.get("phases")
    if phases:
        fixed = results.get("phases_wall", 0.0)
        rest = results.get("phases_rest", 0.0)
        hello = phases.get("connect + hello", 0.0)
        imports = phases.get("imports", 0.0)
        launch = phases.get("launch (spawn gst, wait for port)", 0.0)
        line("stui -c fixed cost", f"{fmt(fixed)} = python {fmt(rest)} + imports {fmt(imports)} + "
             f"launch {fmt(launch)} + hello {fmt(hello)} + rest "
             f"{fmt(fixed - rest - imports - launch - hello)}")
    micro = results.get("micro", {})
    if micro.get("new-workspace", 0.0) > 0.010:
        line("hello is mostly the new workspace", f"{fmt(micro['new-workspace'])} in the image, of which "
             f"Class>>environment: {fmt(micro.get('Class>>environment:', float('nan')))} (it recompiles "
             "class Class)")
    per = results.get("pipelined_per_statement")
    statements = results.get("script_statements")
    evaluation = results.get("script_in_process")
    if statements and evaluation and not math.isnan(evaluation):
        fixed = results.get("stui_c", float("nan"))
        line(f"{statements:,}-statement script", f"start-up (stui -c) {fmt(fixed)} + evaluation on an open "
             f"connection {fmt(evaluation)} ({fmt(evaluation / statements)} per statement) = "
             f"{fmt(fixed + evaluation)}; measured stui -q {fmt(results.get('script_stui_q', float('nan')))}, "
             f"-f {fmt(results.get('script_stui_f', float('nan')))}")
        line("  of the evaluation, client side", f"scanning {fmt(results.get('script_scan', float('nan')))}; "
             f"client CPU for the whole evaluation {fmt(results.get('script_client_cpu', float('nan')))} "
             "(the rest of the wall time is waiting for the image)")
    if micro.get("script-run") and statements and evaluation:
        inside = micro["script-run"] + micro.get("script-json-encode", 0.0)
        line("  in the image, per statement", f"{fmt(inside)} for a `script` request of 256 (decode "
             f"{fmt(micro.get('script-json-decode', float('nan')))}, set up "
             f"{fmt(micro['script-setup'] - micro.get('script-json-decode', 0.0))}, run "
             f"{fmt(micro['script-run'] - micro['script-setup'])}, encode "
             f"{fmt(micro.get('script-json-encode', float('nan')))}); on the wire {fmt(evaluation / statements)}")
    if per and statements:
        line("single eval requests, pipelined", f"{fmt(per)} each (section 1; the REPL's path): {statements:,} "
             f"of them would take {fmt(statements * per)}")
        if micro.get("evaluation-no-fork"):
            inside = (micro["evaluation-no-fork"] + micro.get("fork+wait", 0.0)
                      + micro.get("json-decode-request", 0.0) + micro.get("json-encode-reply", 0.0))
            line("  of which server work", f"{fmt(inside)} (evaluate {fmt(micro['evaluation-no-fork'])} "
                 f"+ fork {fmt(micro.get('fork+wait', 0.0))} + JSON "
                 f"{fmt(micro.get('json-decode-request', 0.0) + micro.get('json-encode-reply', 0.0))})")
            line("  of which everything else", f"{fmt(per - inside)} ({100 * (per - inside) / per:.0f}%: "
                 "socket I/O, reader/worker hand-off, scheduling)")
    if statements:
        gst = results.get("script_gst")
        if gst:
            line("gst per statement", fmt((gst - results.get("gst_one_line", 0.0)) / statements))
