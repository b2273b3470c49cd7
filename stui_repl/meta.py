"""Meta-commands (`:help`, `:vars`, ...): a registry, not a chain of ifs.

Each command is registered with its syntax and one line of help; `:help`
and completion read the same table, so a new command documents itself.
The same commands work at the prompt and on `:` lines of a script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConnectionLost, StuiError
from .evaluator import Evaluator
from .render import PlainRenderer
from .wire import RemoteError

if TYPE_CHECKING:
    from .live_session import LiveSession
    from .workbench import Workbench


class Context:
    """What a meta-command may use and change.

    With a workbench (the REPL, or a script run with --session) the evaluator
    is the workbench's current one, so commands follow a session switch.
    """

    def __init__(
        self,
        evaluator: Evaluator | None,
        renderer: PlainRenderer,
        *,
        workbench: Workbench | None = None,
        ask_secret: Callable[[str], str] | None = None,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        self._evaluator = evaluator
        self.renderer = renderer
        self.workbench = workbench
        self.ask_secret = ask_secret
        self.confirm = confirm
        self.last_error: RemoteError | None = None
        self.quit_requested = False
        self.notes: dict[str, object] = {}

    @property
    def evaluator(self) -> Evaluator:
        evaluator = self.workbench.evaluator if self.workbench is not None else self._evaluator
        if evaluator is None:
            raise StuiError("not connected to an image")
        return evaluator


Handler = Callable[[Context, str], None]


# Completes the argument typed so far: answers whole replacement words.
ArgumentCompleter = Callable[[Context | None, str], list[str]]


@dataclass(frozen=True)
class MetaCommand:
    name: str
    syntax: str
    help: str
    handler: Handler
    aliases: tuple[str, ...] = ()
    complete: ArgumentCompleter | None = None
    # Rows (syntax, help) of subcommands, for `:help NAME`.
    details: Callable[[], list[tuple[str, str]]] | None = None


class Registry:
    def __init__(self) -> None:
        self._by_name: dict[str, MetaCommand] = {}
        self._commands: list[MetaCommand] = []

    def command(
        self,
        name: str,
        syntax: str = "",
        help: str = "",
        aliases: tuple[str, ...] = (),
        complete: ArgumentCompleter | None = None,
        details: Callable[[], list[tuple[str, str]]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            entry = MetaCommand(name, syntax, help, handler, aliases, complete, details)
            self._commands.append(entry)
            for key in (name, *aliases):
                self._by_name[key] = entry
            return handler

        return register

    def lookup(self, name: str) -> MetaCommand | None:
        return self._by_name.get(name)

    def commands(self) -> list[MetaCommand]:
        return sorted(self._commands, key=lambda c: c.name)

    def names(self) -> list[str]:
        """Every spelling, for completion."""
        return sorted(self._by_name)

    def run(self, context: Context, line: str) -> None:
        name, _, argument = line.strip().removeprefix(":").partition(" ")
        entry = self.lookup(name)
        if entry is None:
            context.renderer.problem(f"unknown meta-command :{name} (:help lists them)")
            return
        try:
            entry.handler(context, argument.strip())
        except ConnectionLost:
            raise  # the caller decides what a lost image means
        except StuiError as exc:
            context.renderer.problem(str(exc))


REGISTRY = Registry()
command = REGISTRY.command


@command("help", "[COMMAND]", "list the meta-commands, or describe one")
def _help(context: Context, argument: str) -> None:
    entries = REGISTRY.commands()
    if argument:
        entry = REGISTRY.lookup(argument.removeprefix(":"))
        if entry is None:
            context.renderer.problem(f"no meta-command :{argument.removeprefix(':')}")
            return
        entries = [entry]
    rows = [
        (f":{e.name} {e.syntax}".rstrip(), e.help + (f" (also :{', :'.join(e.aliases)})" if e.aliases else ""))
        for e in entries
    ]
    context.renderer.table("meta-commands", ("command", "what it does"), rows)
    if argument and entries[0].details is not None:
        context.renderer.table(f":{entries[0].name}", ("command", "what it does"), entries[0].details())
    if not argument:
        context.renderer.info("Anything else is Smalltalk. Enter runs complete input; Ctrl-C interrupts; Ctrl-D quits.")


@command("quit", "", "leave stui", aliases=("q", "exit"))
def _quit(context: Context, argument: str) -> None:
    context.quit_requested = True


@command("trace", "", "show the stack of the last error")
def _trace(context: Context, argument: str) -> None:
    if context.last_error is None:
        context.renderer.info("no error yet")
    elif not context.last_error.stack:
        context.renderer.trace(context.last_error)
        context.renderer.info("(this error has no stack)")
    else:
        context.renderer.trace(context.last_error)


@command("vars", "", "list this workspace's variables, and how the session keeps each")
def _vars(context: Context, argument: str) -> None:
    bindings = context.evaluator.bindings()
    live = context.workbench.live if context.workbench is not None else None
    if live is None:
        rows = [(b.get("name", ""), b.get("class", ""), b.get("value", "")) for b in bindings]
        context.renderer.table("workspace variables", ("name", "class", "value"), rows)
        return
    kept = live.session.variables
    rows = []
    for binding in bindings:
        name = str(binding.get("name", ""))
        rows.append((name, str(binding.get("class", "")), str(binding.get("value", "")), _kept_as(live, name)))
    in_image = {row[0] for row in rows}
    for variable in live.session.replay_order():
        if variable.name not in in_image:
            rows.append((variable.name, variable.value_class, variable.value, _kept_as(live, variable.name) + ", not in the image"))
    rows.sort(key=lambda row: row[0])
    context.renderer.table(f"workspace variables (session {live.name})", ("name", "class", "value", "saved as"), rows)
    if any(name not in kept for name in in_image):
        context.renderer.info("(variables marked 'not yet' are saved at the next save)")


def _kept_as(live: LiveSession, name: str) -> str:
    variable = live.session.variables.get(name)
    if variable is None:
        return "not yet"
    return variable.kept_as + (", locked" if name in live.locked else "")


@command("inspect", "EXPR", "show an object's class and instance variables")
def _inspect(context: Context, argument: str) -> None:
    if not argument:
        context.renderer.problem(":inspect needs an expression, e.g. :inspect 3 @ 4")
        return
    reply = context.evaluator.inspect(argument)
    if not reply.get("ok"):
        error = RemoteError.from_wire(reply.get("error"))
        context.last_error = error
        context.renderer.error(error)
        return
    context.renderer.info(f"{reply.get('value', '')}  ({reply.get('class', '?')})")
    rows = [(slot.get("name", ""), slot.get("class", ""), slot.get("value", "")) for slot in reply.get("named", ())]
    rows += [(f"[{slot.get('index')}]", slot.get("class", ""), slot.get("value", "")) for slot in reply.get("indexed", ())]
    size = int(reply.get("size", 0) or 0)
    if rows:
        context.renderer.table("slots", ("slot", "class", "value"), rows)
    if size > len(reply.get("indexed", ())):
        context.renderer.info(f"({size} indexed slots in all, first {len(reply.get('indexed', ()))} shown)")


@command("defects", "", "list the image's known defects and what stui does about them")
def _defects(context: Context, argument: str) -> None:
    info = context.evaluator.connection.info
    defects = info.defects if info else ()
    rows = [
        (str(d.get("id", "")), "worked around" if d.get("workedAround") else "open", str(d.get("summary", "")))
        for d in defects
    ]
    context.renderer.table("known defects of this image", ("defect", "state", "what goes wrong"), rows)


# The session commands register themselves in the same table.
from . import session_commands  # noqa: F401
