"""The meta-commands (`:help`, `:session`, ...): a registry and its commands.

`registry` holds the table and imports no command; the command modules
register themselves when they are imported, which importing this package
does. At the prompt, on `:` lines of scripts and from the shell
(`stui session ...`) the same handlers run.

It may import render, the session, image and client layers and the base
modules; never a mode.
"""

from . import builtin, code, edit, session  # noqa: F401  (they register themselves)
from .registry import REGISTRY, Context

__all__ = ["REGISTRY", "Context"]
