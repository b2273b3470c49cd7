"""--debug's view of the wire: every message stui sends and receives, on
stderr, with secrets masked.

The masking is by field (the hello token, a resume token, the value of a
`:secret`) and then by content (any secret's plaintext, wherever an image
echoed it), so a debug log can be pasted into a bug report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

MASK = "********"


def masked(message: dict[str, Any]) -> dict[str, Any]:
    """A copy without the fields that hold secrets."""
    shown = dict(message)
    if "token" in shown:
        shown["token"] = MASK
    if isinstance(shown.get("resume"), dict):
        shown["resume"] = {**shown["resume"], "token": MASK}
    if "resumeToken" in shown:
        shown["resumeToken"] = MASK
    if shown.get("op") == "bindings" and shown.get("action") == "secret" and "value" in shown:
        shown["value"] = MASK
    return shown


class WireTrace:
    def __init__(self, scrub: Callable[[], Callable[[str], str] | None], out: TextIO | None = None) -> None:
        self._scrub = scrub
        self._out = out or sys.stderr

    def __call__(self, direction: str, address: str, message: dict[str, Any]) -> None:
        if message.get("op") == "ping" or "pong" in message:
            return  # the heartbeat's, from another thread: they would garble the prompt
        shown: Any = masked(message)
        scrub = self._scrub()
        if scrub is not None:
            # Before encoding: JSON escapes quotes and backslashes, and a
            # secret holding one would no longer match its plaintext.
            shown = _scrubbed(shown, scrub)
        self._out.write(f"stui: {address} {direction} {json.dumps(shown, ensure_ascii=False)}\n")
        self._out.flush()


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, scrub) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, scrub) for item in value]
    return value
