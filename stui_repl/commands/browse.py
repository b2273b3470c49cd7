"""The code tools: :source, :browse, :senders, :implementors, :references.

A person at a line prompt has no class browser, so these ask the image
(the source, browse, senders, implementors and references operations of
docs/protocol.md; they work on a remote image too) and print what it
answers: a method's source highlighted, a class's definition and selectors,
or a sorted list of `Class>>selector` with one line of context each, through
the pager when it is taller than the screen. Bad input (an unknown class, a
selector that is no selector) is one line, said by the image or here.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..client.wire import RemoteError
from ..errors import StuiError, UsageError
from ..render import RichRenderer
from .registry import Context, command

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_CLASS = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*"
_SELECTOR = rf"(?:{_IDENTIFIER}|(?:{_IDENTIFIER}:)+|[-+*/\\<>=~@%|&?,]+)"
_METHOD = re.compile(rf"(?P<class>{_CLASS})(?P<meta>\s+class)?\s*>>\s*#?(?P<selector>{_SELECTOR})")
_SELECTOR_ONLY = re.compile(rf"#?(?P<selector>{_SELECTOR})")


@dataclass(frozen=True)
class MethodRef:
    """`Animal>>name:`, `Animal class>>new`, or `#name:` (class None: every implementor)."""

    class_name: str | None
    selector: str
    meta: bool = False


def parse_method(text: str) -> MethodRef:
    """A method reference as typed; UsageError says what is wrong with it."""
    text = text.strip()
    match = _METHOD.fullmatch(text)
    if match:
        return MethodRef(match["class"], match["selector"], bool(match["meta"]))
    match = _SELECTOR_ONLY.fullmatch(text)
    if match and text[:1].isupper():
        raise UsageError(f"{text} looks like a class: :browse {text} shows it, :source {text}>>SELECTOR one of its methods")
    if match:
        return MethodRef(None, match["selector"])
    raise UsageError(f"not a method: {text!r} (write Class>>selector, Class class>>selector or #selector)")


def parse_selector(text: str) -> str:
    match = _SELECTOR_ONLY.fullmatch(text.strip())
    if not match:
        raise UsageError(f"not a selector: {text.strip()!r} (e.g. #printOn: or printOn:)")
    return match["selector"]


def parse_class(text: str) -> str:
    """A class name; `Point class` names the same class (its browser shows both sides)."""
    name = text.strip().removesuffix(" class").strip()
    if not re.fullmatch(_CLASS, name):
        raise UsageError(f"not a class name: {name!r}")
    return name


def label(method: dict[str, Any]) -> str:
    side = " class" if method.get("meta") else ""
    return f"{method.get('class', '?')}{side}>>{method.get('selector', '?')}"


def tidy_source(source: str) -> str:
    """A method's source as a person reads it: tabs expanded and, when the
    body is indented under its header (as in a class body), shifted left."""
    lines = source.expandtabs(8).split("\n")
    rest = [line for line in lines[1:] if line.strip()]
    if not rest:
        return source.expandtabs(8)
    indent = min(len(line) - len(line.lstrip(" ")) for line in rest)
    last = lines[-1]
    closing = len(last) - len(last.lstrip(" ")) if last.strip() == "]" else indent
    shift = min(indent, closing)
    return "\n".join([lines[0], *(line[shift:] for line in lines[1:])])


def ask(context: Context, message: dict[str, Any]) -> dict[str, Any]:
    """The image's answer; its refusal becomes one line for the person."""
    reply = context.evaluator.connection.request(message)
    if reply.get("ok"):
        return reply
    error = RemoteError.from_wire(reply.get("error"))
    if error.kind == "unknown-op":
        raise StuiError(f"this image's stui server has no {message['op']} operation (it is older than this stui)")
    raise StuiError(error.message or error.kind)


def _paged(context: Context, show: Callable[[], None], lines: int) -> None:
    """show() directly, or through the pager when its lines do not fit the screen."""
    renderer = context.renderer
    if (
        isinstance(renderer, RichRenderer)
        and context.controller.settings["pager"] == "auto"
        and renderer.console.is_terminal
        and lines > renderer.console.height - 2
    ):
        renderer.page(show, command=os.environ.get("PAGER") or ("less" if shutil.which("less") else "more"))
    else:
        show()


# -- :source -------------------------------------------------------------------------


@command("source", "METHOD", "print a method's source, highlighted, with its category", complete=lambda c, t: complete_method(c, t))
def _source(context: Context, argument: str) -> None:
    if not argument:
        raise UsageError(":source needs a method, e.g. :source Object>>printOn: or :source #printOn:")
    ref = parse_method(argument)
    message: dict[str, Any] = {"op": "source", "selector": ref.selector}
    if ref.class_name is not None:
        message.update({"class": ref.class_name, "meta": ref.meta})
    methods = ask(context, message).get("methods", [])
    theme = str(context.controller.settings["theme"])
    sources = [tidy_source(str(m["source"])) if m.get("source") else None for m in methods]

    def show() -> None:
        for method, source in zip(methods, sources):
            category = method.get("category") or "as yet unclassified"
            context.renderer.info(f'"{label(method)}" in {category!r}')
            if source is None:
                context.renderer.info("  (the image has no source for this method)")
            else:
                context.renderer.code(source, theme=theme)

    _paged(context, show, sum(2 + (s or "").count("\n") for s in sources))


# -- :browse -------------------------------------------------------------------------


@command("browse", "CLASS", "show a class: definition, comment, variables, selectors by category", complete=lambda c, t: _complete_names(c, t, classes_only=True))
def _browse(context: Context, argument: str) -> None:
    if not argument:
        raise UsageError(":browse needs a class, e.g. :browse Point")
    reply = ask(context, {"op": "browse", "class": parse_class(argument)})
    theme = str(context.controller.settings["theme"])
    lines = _class_lines(reply)

    def show() -> None:
        context.renderer.code(str(reply.get("definition", "")), theme=theme)
        for line in lines:
            context.renderer.info(line)

    _paged(context, show, len(lines) + 5)


def _class_lines(reply: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    comment = reply.get("comment")
    lines.append("")
    lines.extend(f'"{line}"' if line else "" for line in (str(comment).strip().split("\n") if comment else ["(no comment)"]))
    for key, title in (("classVariables", "class variables"), ("classInstanceVariables", "class-side instance variables")):
        if reply.get(key):
            lines.append(f"{title}: {' '.join(reply[key])}")
    for key, side in (("instanceCategories", ""), ("classCategories", " class")):
        categories = reply.get(key) or []
        lines.append("")
        lines.append(f"{reply.get('class')}{side}" + (": no methods" if not categories else ""))
        for category in categories:
            lines.append(f"  {category.get('name')}: {' '.join(category.get('selectors', []))}")
    return lines


# -- lists of methods ------------------------------------------------------------------


def _list(context: Context, title: str, message: dict[str, Any]) -> None:
    methods = ask(context, message).get("methods", [])
    if not methods:
        context.renderer.info(f"{title}: none")
        return
    width = min(max(len(label(m)) for m in methods), 60)
    lines = [f"{label(m).ljust(width)}  {m.get('context', '')}".rstrip() for m in methods]
    lines.append(f"({len(methods)} {'method' if len(methods) == 1 else 'methods'})")

    def show() -> None:
        for line in lines:
            context.renderer.info(line)

    _paged(context, show, len(lines))


def _selector_list(context: Context, argument: str, op: str, title: str) -> None:
    if not argument:
        raise UsageError(f":{op} needs a selector, e.g. :{op} #printOn:")
    selector = parse_selector(argument)
    _list(context, f"{title} #{selector}", {"op": op, "selector": selector})


@command("senders", "SELECTOR", "list the methods that send a selector", complete=lambda c, t: _complete_selectors(c, t))
def _senders(context: Context, argument: str) -> None:
    _selector_list(context, argument, "senders", "senders of")


@command("implementors", "SELECTOR", "list the methods that implement a selector", complete=lambda c, t: _complete_selectors(c, t))
def _implementors(context: Context, argument: str) -> None:
    _selector_list(context, argument, "implementors", "implementors of")


@command("references", "CLASS", "list the methods that use a class (or another global) by name", complete=lambda c, t: _complete_names(c, t, classes_only=False))
def _references(context: Context, argument: str) -> None:
    if not argument:
        raise UsageError(":references needs a class, e.g. :references Point")
    name = parse_class(argument)
    _list(context, f"references to {name}", {"op": "references", "name": name})


# -- completion ------------------------------------------------------------------------


def _candidates(context: Context | None, prefix: str, kind: str) -> list[dict[str, Any]]:
    if context is None:
        return []
    try:
        return context.evaluator.complete(prefix, kind)
    except (StuiError, OSError):  # not connected: no completions
        return []


def _complete_names(context: Context | None, typed: str, *, classes_only: bool) -> list[str]:
    found = _candidates(context, typed.strip(), "name")
    return [str(c["text"]) for c in found if not classes_only or c.get("type") == "class"]


def _complete_selectors(context: Context | None, typed: str) -> list[str]:
    typed = typed.strip()
    hash_ = "#" if typed.startswith("#") else ""
    return [hash_ + str(c["text"]) for c in _candidates(context, typed.removeprefix("#"), "selector")]


def complete_method(context: Context | None, typed: str) -> list[str]:
    """`Ani` -> `Animal`, `Animal>>na` -> `Animal>>name:`, `#pri` -> `#printOn:`."""
    typed = typed.strip()
    if typed.startswith("#"):
        return _complete_selectors(context, typed)
    if ">>" not in typed:
        return _complete_names(context, typed, classes_only=True)
    receiver, _, prefix = typed.partition(">>")
    return [f"{receiver}>>{selector}" for selector in _selectors_of(context, receiver) if selector.startswith(prefix)]


_RECEIVER = re.compile(rf"(?P<class>{_CLASS})(?P<meta>\s+class)?\s*")


def _selectors_of(context: Context | None, receiver: str) -> list[str]:
    """The selectors `Animal` (or `Animal class`) implements itself, as
    :browse lists them: what :source and :edit can open after `Animal>>`.
    None for a class the image does not have (a new one for :edit)."""
    match = _RECEIVER.fullmatch(receiver)
    if context is None or match is None:
        return []
    try:
        reply = ask(context, {"op": "browse", "class": match["class"]})
    except (StuiError, OSError):  # not connected, or no such class
        return []
    categories = reply.get("classCategories" if match["meta"] else "instanceCategories") or []
    return sorted(str(s) for category in categories for s in category.get("selectors", []))
