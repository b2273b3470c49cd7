"""The code tools: :changes (the session's definitions), :fileout and :load.

What a session's code defined is kept in the session as the image reported
it (see session.model.CodeEntry). These commands show it, forget part of it,
settle what differs from an image that already had code, write it out as a
file that `gst FILE` and `stui -f FILE` both load, and file a file in so
that its definitions are kept too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..client import scanner
from ..errors import StuiError, UsageError
from ..session.model import CodeEntry
from .registry import Context, command

if TYPE_CHECKING:  # imported when a session is open: scripts without one start faster
    from ..session.active import ActiveSession


def _active(context: Context) -> ActiveSession:
    active = context.controller.active
    if active is None:
        raise UsageError("no session is open (stui --session NAME keeps code)")
    context.controller.take_code()  # what the last inputs defined, before it is shown or written
    return active


def _entry(active: ActiveSession, name: str) -> CodeEntry:
    if not name:
        raise UsageError("name a definition: a class (Animal), a method (Animal>>name:, Animal class>>new) or a global")
    entry = active.session.code_entry(name)
    if entry is None:
        raise UsageError(f"session {active.name} has no definition named {name} (:changes lists them)")
    return entry


def _list(context: Context, argument: str) -> None:
    active = _active(context)
    rows = [(entry.describe(), entry.name, entry.changed[:19].replace("T", " ")) for entry in active.session.code]
    if not rows:
        context.renderer.info(f"session {active.name} has defined no code yet")
        return
    context.renderer.table(f"code of session {active.name}, in the order it is filed in", ("kind", "name", "changed"), rows)
    if active.differing:
        context.renderer.info(f"the image has other source for {', '.join(active.differing)}: :changes apply or :changes skip")


def _show(context: Context, argument: str) -> None:
    entry = _entry(_active(context), argument)
    if entry.source is None:
        context.renderer.info(f"{entry.name} is removed whenever the session meets a fresh image")
        return
    if entry.category:
        context.renderer.info(f"{entry.describe()} {entry.name}, category {entry.category!r}")
    context.renderer.code(entry.source, theme=str(context.controller.settings["theme"]))


def _drop(context: Context, argument: str) -> None:
    active = _active(context)
    entry = _entry(active, argument)
    in_image = entry.kind != "removed" and context.confirm is not None and context.confirm(
        f"remove {entry.name} from the image too? [y/N] ")
    if in_image:
        outcome = context.evaluator.install_code([CodeEntry(name=entry.name, kind="removed", changed=entry.changed).wire()])[0]
        if outcome.get("outcome") != "installed":
            context.renderer.warning(f"{entry.name} was not removed from the image: {outcome.get('message', 'failed')}")
    dropped = active.session.forget_code(entry.name)
    active.dirty = True
    also = f" (with {len(dropped) - 1} of its methods)" if len(dropped) > 1 else ""
    where = " and from the image" if in_image else "; the image still has it"
    context.renderer.info(f"forgot {entry.name}{also} in session {active.name}{where}")


def _apply(context: Context, argument: str) -> None:
    active = _active(context)
    names = argument.split() or list(active.differing)
    if not names:
        context.renderer.info("nothing differs from the image")
        return
    from ..session.active import RestoreReport

    report = RestoreReport()
    active.file_in_code(context.evaluator, report, names, force=True)
    context.renderer.info(report.summary() or "nothing to file in")


def _skip(context: Context, argument: str) -> None:
    active = _active(context)
    kept, active.differing = active.differing, []
    if kept:
        context.renderer.info(f"the image keeps its own {', '.join(kept)}; the session keeps its source for a fresh image")
    else:
        context.renderer.info("nothing differs from the image")


SUBCOMMANDS: dict[str, tuple[str, str, Callable[[Context, str], None]]] = {
    "show": ("NAME", "print one definition's source, highlighted", _show),
    "drop": ("NAME", "forget a definition (a class with its methods) and, if you say so, remove it from the image", _drop),
    "apply": ("[NAME...]", "file in the session's source where the image has other source", _apply),
    "skip": ("", "keep the image's source where it differs (the session keeps its own for fresh images)", _skip),
}


def _complete_changes(context: Context | None, typed: str) -> list[str]:
    words = typed.split(" ", 1)
    if len(words) == 1:
        return [name for name in SUBCOMMANDS if name.startswith(words[0])]
    active = context.controller.active if context is not None else None
    if words[0] not in ("show", "drop", "apply") or active is None:
        return []
    return [f"{words[0]} {entry.name}" for entry in active.session.code if entry.name.startswith(words[1])]


def _subcommand_rows() -> list[tuple[str, str]]:
    return [(f":changes {name} {syntax}".rstrip(), text) for name, (syntax, text, _) in SUBCOMMANDS.items()]


@command("changes", "[SUBCOMMAND]", "the code this session defined: list, show, drop, apply, skip",
         complete=_complete_changes, details=_subcommand_rows)
def _changes(context: Context, argument: str) -> None:
    subcommand, _, rest = argument.partition(" ")
    if not subcommand:
        _list(context, "")
        return
    entry = SUBCOMMANDS.get(subcommand)
    if entry is None:
        raise UsageError(f"no :changes {subcommand} (show, drop, apply, skip)")
    entry[2](context, rest.strip())


# -- :fileout and :load -------------------------------------------------------------------


def _method_body(source: str) -> str:
    """`pattern [ body ]` as a bang-separated method list takes it: the pattern, then the body."""
    opening, closing = source.find("["), source.rfind("]")
    if opening < 0 or closing < opening:
        return source
    pattern, body = source[:opening].rstrip(), source[opening + 1: closing]
    lines = body.strip("\n").rstrip().splitlines() or [""]
    if len(lines) == 1:
        return f"{pattern}\n    {lines[0].strip()}"
    return pattern + "\n" + "\n".join(lines)


def fileout_text(entries: list[CodeEntry], title: str) -> str:
    """The definitions as a .st file in the bang-separated syntax gst and stui both read.

    gst 3's reader reads a chunk by its tokens, so a ! inside a string or a
    comment stays as it is (it is not doubled, as older readers want).

    Classes first, as a fresh image gets them, then methods, globals and
    removals in the session's order.
    """
    parts = [f'"{title}"!\n\n']
    for entry in (e for e in entries if e.kind == "class" and e.source is not None):
        parts.append(entry.source + "!\n\n")
    for entry in (e for e in entries if e.kind != "class"):
        if entry.kind == "method" and entry.source is not None:
            owner = entry.name.split(">>", 1)[0]
            category = (entry.category or "as yet unclassified").replace("'", "''")
            parts.append(f"!{owner} methodsFor: '{category}'!\n{_method_body(entry.source)}\n! !\n\n")
        elif entry.kind == "global" and entry.source is not None:
            parts.append(entry.source + "!\n\n")
        elif entry.kind == "removed":
            owner, _, selector = entry.name.partition(">>")
            if selector:
                parts.append(f"{owner} removeSelector: #{selector} ifAbsent: [nil]!\n\n")
            else:
                parts.append(f"Smalltalk removeKey: #{owner} ifAbsent: [nil]!\n\n")
    return "".join(parts)


@command("fileout", "[FILE]", "write the session's code to a file that gst FILE and stui -f FILE load alike")
def _fileout(context: Context, argument: str) -> None:
    active = _active(context)
    path = Path(argument or f"{active.name}.st").expanduser()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    text = fileout_text(active.session.code, f"Filed out from stui session {active.name} on {stamp} UTC")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StuiError(f"cannot write {path}: {exc.strerror or exc}") from None
    count = len(active.session.code)
    context.renderer.info(f"wrote {count} definition{'s' if count != 1 else ''} to {path}")


@command("load", "FILE", "file FILE in, as stui -f runs it; what it defines is kept in the session")
def _load(context: Context, argument: str) -> None:
    if not argument:
        raise UsageError(":load takes the name of a file to file in")
    path = Path(argument).expanduser()
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise StuiError(f"cannot read {path}: {exc.strerror or exc}") from None
    result = context.evaluator.file_in(scanner.scan_whole(text).numbered_pieces(), name=str(path), keep_going=False)
    if context.controller.active is not None:
        context.controller.take_code()
    if not result.ok and result.error is not None and not result.error.reported:
        context.renderer.error(result.error)
    context.renderer.info(f"loaded {path}" if result.ok else f"{path} stopped at its first error")
