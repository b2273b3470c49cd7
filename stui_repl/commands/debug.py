""":debug: the post-mortem debugger of the last failure (or interrupt).

When an evaluation at the prompt fails, the image keeps its process where
it stopped (the REPL's evals ask for it, see docs/protocol.md, debug) until
the next evaluation. `:debug` opens a `debug>` prompt on it, with a history
and completion of its own: `where` lists the frames, `frame N` shows one's
source with its line marked, `temps` its receiver and variables; any other
input is evaluated in the selected frame. `retry`, `return EXPR` and
`proceed` let the evaluation go on, and what it then does is shown as the
prompt shows an evaluation; `abandon` (or Ctrl-D) unwinds it. `:debug VERB`
runs one verb without the prompt (`:debug abandon`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..client.wire import EvalResult, RemoteError
from ..errors import ConnectionLost, StuiError, UsageError
from .registry import Context, command

PROMPT = "debug> "

# verb -> (syntax, what it does): the debug> prompt's help, :help debug and the man page.
VERBS: dict[str, tuple[str, str]] = {
    "where": ("where", "list the frames: > marks the selected one, * your code"),
    "frame": ("frame N", "show frame N's source with its current line marked, and select it"),
    "temps": ("temps", "the selected frame's receiver, arguments and temporaries, with their values"),
    "retry": ("retry", "restart the selected frame (after fixing its method, say)"),
    "return": ("return EXPR", "return the value of EXPR from the selected frame"),
    "proceed": ("proceed", "go on from where it stopped (after an interrupt, or a resumable error)"),
    "abandon": ("abandon", "unwind it (its ensure: blocks run) and leave the debugger"),
    "help": ("help", "this list; any other input is evaluated in the selected frame"),
}


# What an evaluation (of code in a frame, or the one going on) may end with.
_EVALUATION_ERRORS = ("exception", "syntax", "undeclared", "interrupted", "recursion", "fileIn")


class Finished(Exception):
    """The kept process is gone: the debugger prompt ends."""


class DebugSession:
    """One person's look at the kept process: requests and how their answers read."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.renderer = context.renderer

    # -- asking the image ----------------------------------------------------------------

    def ask(self, action: str, *, frame: int | None = None, code: str | None = None) -> dict[str, Any]:
        evaluator = self.context.evaluator
        info = evaluator.connection.info
        if info is not None and "debug" not in info.ops:
            raise StuiError("this image's stui server has no debugger (it is older than this stui)")
        patience = float(self.context.controller.settings["heartbeat_timeout"])
        reply = evaluator.debug(
            action, frame=frame, code=code, on_interrupt=lambda: self.renderer.info("interrupting…"),
            patience=patience,
        )
        error = None if reply.get("ok") else RemoteError.from_wire(reply.get("error"))
        if error is not None and error.kind == "not-found" and error.message.startswith("nothing to debug"):
            raise Finished(error.message)
        if error is not None and error.kind not in _EVALUATION_ERRORS:
            raise StuiError(error.message or error.kind)  # the request itself was refused
        return reply

    # -- the verbs ---------------------------------------------------------------------

    def run(self, line: str) -> None:
        """One line at the debug> prompt; Finished when the process is gone."""
        verb, _, argument = line.strip().partition(" ")
        argument = argument.strip()
        if verb == "help":
            for syntax, text in VERBS.values():
                self.renderer.info(f"  {syntax:<12} {text}")
        elif verb == "where" and not argument:
            self.where()
        elif verb == "frame":
            self.frame(_frame_number(argument))
        elif verb == "temps" and not argument:
            self.temps()
        elif verb == "return":
            if not argument:
                raise UsageError("return needs an expression: return 42")
            self.going_on(self.ask("return", code=argument))
        elif verb in ("retry", "proceed") and not argument:
            self.going_on(self.ask(verb))
        elif verb == "abandon" and not argument:
            self.ask("abandon")
            self.renderer.info("abandoned")
            raise Finished("abandoned")
        else:
            self.evaluate(line.strip())

    def where(self) -> None:
        reply = self.ask("where")
        error = reply.get("error")
        if reply.get("reason") == "interrupted":
            self.renderer.info("interrupted here:")
        elif isinstance(error, dict):
            self.renderer.info(RemoteError.from_wire(error).one_line() + ":")
        selected = reply.get("selected")
        for frame in reply.get("frames", []):
            self.renderer.info(frame_line(frame, selected=frame.get("index") == selected))
        if reply.get("truncated"):
            self.renderer.info("  … (deeper frames left out)")

    def frame(self, number: int) -> None:
        reply = self.ask("frame", frame=number)
        self.renderer.info(frame_line(reply.get("frame", {}), selected=True))
        for line in source_lines(reply.get("source"), reply.get("line"), reply.get("firstLine")):
            self.renderer.info(line)

    def temps(self) -> None:
        reply = self.ask("temps")
        receiver = reply.get("receiver") or {}
        rows = [("self", "receiver", str(receiver.get("class", "")), str(receiver.get("value", "")))]
        rows += [
            (str(v.get("name", "")), str(v.get("kind", "")), str(v.get("class", "")), str(v.get("value", "")))
            for v in reply.get("variables", [])
        ]
        label = (reply.get("frame") or {}).get("label", "")
        self.renderer.table(f"frame {(reply.get('frame') or {}).get('index', '?')}: {label}", ("name", "kind", "class", "value"), rows)

    def evaluate(self, code: str) -> None:
        self.show(EvalResult.from_reply(self.ask("eval", code=code)))
        # A method fixed here is the session's, as one fixed at the prompt.
        self.context.controller.take_code()

    def going_on(self, reply: dict[str, Any]) -> None:
        """The evaluation went on: its outcome, as the prompt shows one. It
        is over unless it stopped again (the debugger then stays)."""
        result = EvalResult.from_reply(reply)
        self.show(result)
        # What it defined is the session's, as after an input at the prompt
        # (what it assigned, the session reads when it saves).
        self.context.controller.take_code()
        if result.error is None or not result.error.debuggable:
            raise Finished("the evaluation ended")

    def show(self, result: EvalResult) -> None:
        if result.error is None:
            self.renderer.value(result)
            return
        self.context.last_error = result.error
        if not result.error.reported:
            self.renderer.error(result.error)


def frame_line(frame: dict[str, Any], *, selected: bool = False) -> str:
    """`> 3 * Account>>deposit:  (line 4)`: selected, number, your code, where."""
    where = ""
    if frame.get("file"):
        where = f"  ({frame['file']}:{frame.get('line', '?')})"
    elif frame.get("line") is not None:
        where = f"  (line {frame['line']})"
    mark = ">" if selected else " "
    mine = "*" if frame.get("user") else " "
    return f"{mark}{frame.get('index', '?'):>3} {mine} {frame.get('label', '?')}{where}"


def source_lines(source: Any, current: Any, first: Any) -> list[str]:
    """The source numbered as its file (or the evaluated code) numbers it,
    the current line marked with `->`."""
    if not isinstance(source, str):
        return ["  (the image has no source for this method)"]
    start = first if isinstance(first, int) else 1
    lines = source.expandtabs(8).split("\n")
    width = len(str(start + len(lines) - 1))
    shown = []
    for offset, text in enumerate(lines):
        mark = "->" if offset + 1 == current else "  "
        shown.append(f"{mark} {start + offset:>{width}}  {text}".rstrip())
    return shown


def _frame_number(argument: str) -> int:
    if not argument.isdigit() or int(argument) < 1:
        raise UsageError("frame needs a frame number from where: frame 3")
    return int(argument)


def _complete_verbs(context: Context | None, typed: str) -> list[str]:
    return [verb for verb in VERBS if verb.startswith(typed.strip())]


def _ask_lines() -> Callable[[], str] | None:
    """A debug> prompt of its own (history, completion of the verbs), at a
    terminal; None elsewhere."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import InMemoryHistory

    session: PromptSession[str] = PromptSession(
        history=InMemoryHistory(), completer=WordCompleter(list(VERBS), sentence=True), complete_while_typing=False,
    )
    return lambda: session.prompt(PROMPT)


_PROMPT_LINES: list[Callable[[], str]] = []  # one debug> prompt (and history) for the whole run


@command(
    "debug", "[VERB]", "debug the last failed or interrupted evaluation at a debug> prompt",
    complete=_complete_verbs, details=lambda: list(VERBS.values()),
)
def _debug(context: Context, argument: str) -> None:
    session = DebugSession(context)
    try:
        if argument:
            session.run(argument)
            return
        session.where()
        if not _PROMPT_LINES:
            ask = _ask_lines()
            if ask is None:
                return  # not at a terminal: :debug VERB runs one verb
            _PROMPT_LINES.append(ask)
        _prompt_loop(session, _PROMPT_LINES[0])
    except Finished as done:
        if str(done).startswith("nothing to debug"):
            context.renderer.info(str(done))


def _prompt_loop(session: DebugSession, ask: Callable[[], str]) -> None:
    """Until the process is gone, or Ctrl-D (which abandons it)."""
    while True:
        try:
            line = ask()
        except KeyboardInterrupt:
            continue
        except EOFError:
            session.ask("abandon")
            session.renderer.info("abandoned")
            return
        if not line.strip():
            continue
        try:
            session.run(line)
        except Finished:
            return
        except ConnectionLost:
            raise
        except StuiError as exc:
            session.renderer.problem(str(exc))
