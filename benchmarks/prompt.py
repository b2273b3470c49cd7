"""Figure 4: from spawning `stui` on a pty until the prompt `st>` is drawn.

pexpect does not answer the terminal's cursor-position request (CPR) the way
a real terminal does within milliseconds, so PROMPT_TOOLKIT_NO_CPR=1 is set
(as the project's pty tests do). prompt_toolkit draws `st>` and then moves the
cursor instead of printing the space, so the match is on `st>`.
Baseline: `python -c "import prompt_toolkit, rich"` in the same run.
"""

from __future__ import annotations

from common import PYTHON, checked, child_env, fmt, heading, line, ratio, repeat, run_timed, target_note, time_to_prompt

TARGET = 0.200  # issue 13: the prompt drawn in 200 ms (an empty session)
# Everything the REPL imports before its first prompt (modes.repl imports
# prompt_toolkit and rich only when it makes the prompt; the lexer comes after).
REPL_IMPORTS = "import stui_repl.modes.repl, stui_repl.modes.prompt, rich.console, rich.text"


def run(results: dict, *, quick: bool) -> None:

    runs = 3 if quick else 7
    heading("4. Interactive: spawn `stui` on a pty until `st>` appears")
    env = child_env(extra={"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"})

    prompt = repeat("prompt", lambda: time_to_prompt(env=env, timeout=20), runs=runs, warmup=1, budget=15)
    imports = repeat("import prompt_toolkit, rich", lambda: checked(
        run_timed([PYTHON, "-c", "import prompt_toolkit, rich"], env=env), "python").seconds, runs=runs, warmup=1)
    repl_imports = repeat("import stui_repl.modes.repl", lambda: checked(
        run_timed([PYTHON, "-c", REPL_IMPORTS], env=env), "python").seconds, runs=runs, warmup=1)
    results["prompt"] = prompt.median
    results["prompt_imports"] = imports.median
    results["repl_imports"] = repl_imports.median
    line("prompt up", prompt.describe())
    line("", target_note(prompt.median, TARGET))
    line("baseline: import prompt_toolkit, rich", imports.describe())
    line("ratio prompt / baseline", ratio(prompt.median, imports.median))
    line("python -c 'import stui_repl.modes.repl'", f"{repl_imports.describe()}  (and modes.prompt, rich: "
         "everything imported before the prompt)")
    phases = results.get("phases")
    if phases and repl_imports.ok:
        image = phases["launch (spawn gst, wait for port)"] + phases["connect + hello"]
        line("model: repl imports + launch + hello", f"{fmt(repl_imports.median + image)}  "
             f"(imports {fmt(repl_imports.median)} then image {fmt(image)}, one after the other)")
