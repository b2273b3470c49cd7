"""Figure 7: from losing the embedded image to a usable prompt again, with
200 variables restored.

One REPL on a session with its caps filled (sessions.build_large). Each
round kills the image with SIGKILL and times, on the pty, until `1 + 1` is
answered again: noticing (the supervisor looks for a dead image every 0.25 s),
healing (launch, hello, restore) and the evaluation. Healing itself is also
timed in-process, since the pty's notices are drawn by the prompt's event
loop while healing runs in another thread. Baseline, same run: starting stui
afresh on the same session until its prompt (what a person would otherwise
do).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from common import PYTHON, REPO, Sample, bench_home, child_env, fmt, heading, line, repeat, time_to_prompt

from stui_repl.session.store import SessionStore


def _gst_child(pid: int) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(pid), "-f", "gst"], capture_output=True, text=True, check=False)
        if found.stdout.split():
            return int(found.stdout.split()[0])
        time.sleep(0.02)
    raise RuntimeError("stui started no gst")


def run(results: dict, *, quick: bool) -> None:
    import pexpect
    from sessions import build_large

    from stui_repl.session import toml as session_format

    heading("7. Healing: a killed embedded image back to a usable prompt, 200 variables restored")
    rounds = 3 if quick else 6
    store = SessionStore(Path(bench_home()) / "state" / "sessions")
    text = session_format.render(build_large("healing"))
    store.write_text("healing", text)
    env = child_env(extra={"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"})

    child = pexpect.spawn(PYTHON, ["-m", "stui_repl", "--session", "healing"], cwd=str(REPO), env=env,
                          encoding="utf-8", dimensions=(24, 200), timeout=60)
    detect, total = [], []
    try:
        child.expect("st>")
        child.sendline(":set heartbeat 1")
        child.expect("heartbeat = 1")
        for _ in range(rounds):
            child.expect("st>")
            killed = time.perf_counter()
            os.kill(_gst_child(child.pid), signal.SIGKILL)
            child.expect("reconnecting")
            noticed = time.perf_counter()
            child.expect(r"restored (\d+) variables")
            restored = int(child.match.group(1))
            child.sendline("1 + 1")
            child.expect(r"2(\x1b\[[0-9;]*m)?\s+(\x1b\[[0-9;]*m)?SmallInteger")  # rich dims the class
            answered = time.perf_counter()
            detect.append(noticed - killed)
            total.append(answered - killed)
        child.sendline(":q")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
        store.write_text("healing", text)

    def cold_start() -> float:
        try:
            return time_to_prompt("--session", "healing", env=env, timeout=60)
        finally:
            store.write_text("healing", text)

    baseline = repeat("cold start", cold_start, runs=rounds)
    # The notices are printed by the prompt's event loop while healing runs
    # in another thread, so only the total is exact on the pty; the healing
    # itself is timed in-process below.
    sample = repeat("total", iter(total).__next__, runs=len(total))
    line("on the pty: kill to `1 + 1` answered", sample.describe())
    line("", f"of which noticing ~{fmt(sorted(detect)[len(detect) // 2])} (a dead image is looked for every 0.25 s); "
         f"{restored} variables restored")
    results["healing_total"] = sample.median
    healed_in_process = _heal_in_process(store, rounds)
    line("SessionController.heal() + `1 + 1`, in-process", healed_in_process.describe())
    line("baseline: stui started afresh on it", baseline.describe())
    if healed_in_process.ok and baseline.ok:
        line("ratio heal / fresh start", f"{healed_in_process.median / baseline.median:.2f}x")
    results["healing_heal"] = healed_in_process.median


def _heal_in_process(store: SessionStore, rounds: int) -> Sample:
    """Kill the image under a SessionController, then time heal() and one evaluation."""
    from stui_repl.client import scanner
    from stui_repl.session.controller import SessionController

    bench = SessionController(store=store, vault_factory=lambda: None)
    bench.use_session(bench.load_session("healing"))
    bench.attach()

    def once() -> float:
        assert bench.attachment is not None and bench.attachment.image is not None
        bench.attachment.image.process.kill()
        bench.attachment.image.process.wait()
        start = time.perf_counter()
        bench.heal()
        result = bench.evaluator.evaluate_unit(scanner.split_script("1 + 1")[0])
        assert result.value == "2", result
        return time.perf_counter() - start

    try:
        return repeat("heal", once, runs=rounds)
    finally:
        if bench.attachment is not None:
            bench.attachment.close()
