"""`python -m stui_repl` is the same as `stui`."""

import sys

from .cli import main

sys.exit(main())
