"""stui: a line-mode REPL for Smalltalk images."""

import atexit
import gc

__version__ = "0.1.0"

# When stui exits, Python collects the garbage of every object it ever made
# (some 30,000 for a script: the modules, the prompt's) on its way out, about
# 7 ms of a `stui -c`. Frozen, they are just freed as the modules go; what
# must be written is written and closed before stui gets here.
atexit.register(gc.freeze)
