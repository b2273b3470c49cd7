"""The meta-commands (`:help`, `:session`, ...): a registry and its commands.

`registry` holds the table and imports no command; the command modules
register themselves when they are imported, which the registry has done the
first time it is asked for a command (a script without `:` lines, such as
`stui -c`, never pays for them). At the prompt, on `:` lines of scripts and
from the shell (`stui session ...`) the same handlers run.

It may import render, the session, image and client layers and the base
modules; never a mode.
"""

from .registry import REGISTRY, Context


def _register_commands() -> None:
    from . import browse, builtin, code, debug, edit, session  # noqa: F401  (they register themselves)


REGISTRY.loader = _register_commands

__all__ = ["REGISTRY", "Context"]
