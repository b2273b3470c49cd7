"""The meta-command registry: a table, not a chain of ifs.

Each command is registered with its syntax and one line of help; `:help`
and completion read the same table, so a new command documents itself.
This module imports no command: the command modules register themselves
(see the package). The same commands work at the prompt, on `:` lines of a
script and, for `:session`, from the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..client.evaluator import Evaluator
from ..client.wire import RemoteError
from ..errors import ConnectionLost, StuiError, UsageError
from ..render import PlainRenderer

if TYPE_CHECKING:
    from ..session.controller import SessionController


class Context:
    """What a meta-command may use and change.

    The evaluator is always the controller's current one, so commands follow
    a session switch. From the shell the controller has no image.
    """

    def __init__(
        self,
        renderer: PlainRenderer,
        controller: SessionController,
        *,
        ask_secret: Callable[[str], str] | None = None,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        self.renderer = renderer
        self.controller = controller
        self.ask_secret = ask_secret
        self.confirm = confirm
        self.last_error: RemoteError | None = None
        self.quit_requested = False

    @property
    def evaluator(self) -> Evaluator:
        evaluator = self.controller.evaluator
        if evaluator is None:
            raise StuiError("not connected to an image")
        return evaluator


Handler = Callable[[Context, str], None]


# Completes the argument typed so far: answers whole replacement words.
ArgumentCompleter = Callable[[Context | None, str], list[str]]


class MetaCommand(NamedTuple):
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
        # Imports the command modules, which register themselves: called
        # before the table is first read (the package sets it).
        self.loader: Callable[[], None] | None = None

    def _loaded(self) -> None:
        loader, self.loader = self.loader, None
        if loader is not None:
            loader()

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
        self._loaded()
        return self._by_name.get(name)

    def commands(self) -> list[MetaCommand]:
        self._loaded()
        return sorted(self._commands, key=lambda c: c.name)

    def names(self) -> list[str]:
        """Every spelling, for completion."""
        self._loaded()
        return sorted(self._by_name)

    def dispatch(self, context: Context, line: str) -> None:
        """Run a `:command` line; its failures are raised (StuiError), for the shell's exit status."""
        name, _, argument = line.strip().removeprefix(":").partition(" ")
        entry = self.lookup(name)
        if entry is None:
            raise UsageError(f"unknown meta-command :{name} (:help lists them)")
        entry.handler(context, argument.strip())

    def run(self, context: Context, line: str) -> None:
        """Run a `:command` line at the prompt or in a script: a failure is one line, and stui goes on."""
        try:
            self.dispatch(context, line)
        except ConnectionLost:
            raise  # the caller decides what a lost image means
        except StuiError as exc:
            context.renderer.problem(str(exc))


REGISTRY = Registry()
command = REGISTRY.command
