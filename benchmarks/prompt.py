"""Figure 4: from spawning `stui` on a pty until the prompt `st>` is drawn.

pexpect does not answer the terminal's cursor-position request (CPR) the way
a real terminal does within milliseconds, so PROMPT_TOOLKIT_NO_CPR=1 is set
(as the project's pty tests do). prompt_toolkit draws `st>` and then moves the
cursor instead of printing the space, so the match is on `st>`.
Baseline: `python -c "import prompt_toolkit, rich"` in the same run.
"""

from __future__ import annotations

import time

from common import PYTHON, REPO, checked, child_env, fmt, heading, line, ratio, repeat, run_timed, target_note

TARGET = 0.250


def run(results: dict, *, quick: bool) -> None:
    import pexpect

    runs = 3 if quick else 7
    heading("4. Interactive: spawn `stui` on a pty until `st>` appears")
    env = child_env(extra={"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"})

    def prompt_up() -> float:
        start = time.perf_counter()
        child = pexpect.spawn(PYTHON, ["-m", "stui_repl"], cwd=str(REPO), env=env,
                              encoding="utf-8", dimensions=(24, 100), timeout=20)
        try:
            child.expect("st>")
            seconds = time.perf_counter() - start
            child.sendcontrol("d")
            child.expect(pexpect.EOF, timeout=10)
            return seconds
        finally:
            child.close(force=True)

    prompt = repeat("prompt", prompt_up, runs=runs, warmup=1, budget=15)
    imports = repeat("import prompt_toolkit, rich", lambda: checked(
        run_timed([PYTHON, "-c", "import prompt_toolkit, rich"], env=env), "python").seconds, runs=runs, warmup=1)
    repl_imports = repeat("import stui_repl.repl", lambda: checked(
        run_timed([PYTHON, "-c", "import stui_repl.repl"], env=env), "python").seconds, runs=runs, warmup=1)
    results["prompt"] = prompt.median
    results["prompt_imports"] = imports.median
    results["repl_imports"] = repl_imports.median
    line("prompt up", prompt.describe())
    line("", target_note(prompt.median, TARGET))
    line("baseline: import prompt_toolkit, rich", imports.describe())
    line("ratio prompt / baseline", ratio(prompt.median, imports.median))
    line("python -c 'import stui_repl.repl'", f"{repl_imports.describe()}  (everything the REPL imports)")
    phases = results.get("phases")
    if phases and repl_imports.ok:
        image = phases["launch (spawn gst, wait for port)"] + phases["connect + hello"]
        line("model: repl imports + launch + hello", f"{fmt(repl_imports.median + image)}  "
             f"(imports {fmt(repl_imports.median)} then image {fmt(image)}, one after the other)")
