"""Meta-commands (`:help`, `:vars`, ...): a registry, not a chain of ifs.

Each command is registered with its syntax and one line of help; `:help`
and completion read the same table, so a new command documents itself.
The same commands work at the prompt and on `:` lines of a script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .evaluator import Evaluator
from .render import PlainRenderer
from .wire import RemoteError


@dataclass
class Context:
    """What a meta-command may use and change."""

    evaluator: Evaluator
    renderer: PlainRenderer
    last_error: RemoteError | None = None
    quit_requested: bool = False
    notes: dict[str, object] = field(default_factory=dict)


Handler = Callable[[Context, str], None]


@dataclass(frozen=True)
class MetaCommand:
    name: str
    syntax: str
    help: str
    handler: Handler
    aliases: tuple[str, ...] = ()


class Registry:
    def __init__(self) -> None:
        self._by_name: dict[str, MetaCommand] = {}
        self._commands: list[MetaCommand] = []

    def command(self, name: str, syntax: str = "", help: str = "", aliases: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            entry = MetaCommand(name, syntax, help, handler, aliases)
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
        entry.handler(context, argument.strip())


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


@command("vars", "", "list this workspace's variables")
def _vars(context: Context, argument: str) -> None:
    rows = [(b.get("name", ""), b.get("class", ""), b.get("value", "")) for b in context.evaluator.bindings()]
    context.renderer.table("workspace variables", ("name", "class", "value"), rows)


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
