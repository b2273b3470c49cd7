"""stui: a line-mode REPL for Smalltalk images."""

__version__ = "0.1.0"
