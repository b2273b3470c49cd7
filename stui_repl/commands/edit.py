""":edit: change a method or a whole class in $VISUAL / $EDITOR.

The editor opens on the source the image holds (a template for a method or
class that does not exist yet); saving compiles it. When it does not
compile, the editor opens again with gst's complaint as a comment at the
top and a marker under the line it names, until it compiles or the person
empties the file (abandon). stui's own comments (lines `"stui: ..."`) are
taken out before compiling. The text is compiled as a declaration, the way
a class definition typed at the prompt is, so the session records it as it
records any definition.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..client import scanner, wire
from ..errors import StuiError, UsageError
from .browse import MethodRef, ask, complete_method, parse_class, parse_method, tidy_source
from .registry import Context, command

_OURS = re.compile(r'^\s*"stui: .*"\s*$')
_COMPLAINT = re.compile(r"^[^:\n]*:(\d+): (.+)$", re.MULTILINE)


@dataclass
class Draft:
    """What the editor shows, and how to compile what it gives back."""

    title: str
    text: str
    prefix: str = ""  # wraps the text into a declaration
    suffix: str = ""

    def declaration(self, text: str) -> str:
        return f"{self.prefix}{text}{self.suffix}"

    @property
    def offset(self) -> int:
        """Lines the prefix adds before the text."""
        return self.prefix.count("\n")


def without_our_comments(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not _OURS.match(line))


def with_complaint(text: str, complaint: str, line: int | None) -> str:
    """The text again, the complaint on top and a marker under its line."""
    lines = text.split("\n")
    if line is not None and 1 <= line <= len(lines):
        indent = len(lines[line - 1]) - len(lines[line - 1].lstrip())
        lines.insert(line, " " * indent + f'"stui: ^ {_quoted(complaint)}"')
    top = [
        f'"stui: it did not compile: {_quoted(complaint)}"',
        '"stui: fix it and save, or empty the file to give up (stui takes these lines out)"',
    ]
    return "\n".join([*top, *lines])


def complaint_in(stderr: str, offset: int) -> tuple[str, int | None]:
    """gst's first complaint (`input:4: parse error...`) and the line of the text it names."""
    match = _COMPLAINT.search(stderr)
    if match is None:
        return (stderr.strip().split("\n")[0] or "it did not compile", None)
    line = int(match[1]) - offset
    return (f"line {line}: {match[2]}" if line >= 1 else match[2], line if line >= 1 else None)


def _quoted(text: str) -> str:
    return text.replace('"', "'")


# -- drafts -------------------------------------------------------------------------------


def method_draft(context: Context, ref: MethodRef) -> Draft:
    assert ref.class_name is not None
    side = f"{ref.class_name}{' class' if ref.meta else ''}"
    message = {"op": "source", "class": ref.class_name, "meta": ref.meta, "selector": ref.selector}
    reply = context.evaluator.connection.request(message)
    if reply.get("ok"):
        method = reply["methods"][0]
        source = tidy_source(str(method.get("source") or ""))
        if not source:
            raise StuiError(f"the image has no source for {side}>>{ref.selector}, so it cannot be edited")
        if not source.rstrip().endswith("]"):  # the old, bang-separated syntax
            category = str(method.get("category") or "still unclassified").replace("'", "''")
            return Draft(f"{side}>>{ref.selector}", source, f"!{side} methodsFor: '{category}'!\n", "\n! !\n")
        return Draft(f"{side}>>{ref.selector}", source, f"{side} extend [\n", "\n]\n")
    error = wire.RemoteError.from_wire(reply.get("error"))
    if error.kind != "not-found" or "does not define" not in error.message:
        raise StuiError(error.message or error.kind)
    return Draft(f"{side}>>{ref.selector}", _method_template(ref.selector), f"{side} extend [\n", "\n]\n")


def _method_template(selector: str) -> str:
    keywords = re.findall(r"[A-Za-z_][A-Za-z0-9_]*:", selector)
    if keywords:
        names = ["anObject"] if len(keywords) == 1 else [f"arg{i}" for i in range(1, len(keywords) + 1)]
        pattern = " ".join(f"{k} {n}" for k, n in zip(keywords, names))
    elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", selector):
        pattern = selector
    else:
        pattern = f"{selector} anObject"
    return f"{pattern} [\n    <category: 'still unclassified'>\n    ^self\n]"


def class_draft(context: Context, name: str) -> Draft:
    reply = context.evaluator.connection.request({"op": "browse", "class": name})
    if not reply.get("ok"):
        error = wire.RemoteError.from_wire(reply.get("error"))
        if error.kind != "not-found":
            raise StuiError(error.message or error.kind)
        return Draft(name, f"Object subclass: {name} [\n    <comment: 'A new class.'>\n]")
    return Draft(name, _class_text(context, name, reply))


def _class_text(context: Context, name: str, reply: dict[str, Any]) -> str:
    lines = [f"{reply.get('superclass') or 'nil'} subclass: {name} ["]
    if reply.get("instanceVariables"):
        lines.append(f"    | {' '.join(reply['instanceVariables'])} |")
    if reply.get("category"):
        lines.append(f"    <category: '{_escaped(reply['category'])}'>")
    if reply.get("comment") is not None:
        lines.append(f"    <comment: '{_escaped(reply['comment'])}'>")
    if reply.get("classVariables"):
        lines.append(f'    "Class variables (saving leaves them as they are): {" ".join(reply["classVariables"])}"')
    if reply.get("classInstanceVariables"):
        lines.append(f"    {name} class [ | {' '.join(reply['classInstanceVariables'])} | ]")
    for key, meta in (("classCategories", True), ("instanceCategories", False)):
        for category in reply.get(key) or []:
            for selector in category.get("selectors", []):
                source = ask(context, {"op": "source", "class": name, "meta": meta, "selector": selector})["methods"][0].get("source")
                if not source:
                    continue
                text = tidy_source(str(source))
                if meta:
                    text = f"{name} class >> {text}"
                lines.append("")
                lines.extend(f"    {line}" if line else "" for line in text.split("\n"))
    lines.append("]")
    return "\n".join(lines)


def _escaped(text: str) -> str:
    return str(text).replace("'", "''")


# -- the loop -----------------------------------------------------------------------------


def _editor() -> list[str]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or ("vi" if shutil.which("vi") else "")
    if not editor:
        raise StuiError(":edit needs an editor: set $VISUAL or $EDITOR")
    return shlex.split(editor)


def _compile(context: Context, code: str) -> tuple[wire.EvalResult, str]:
    """Compile a declaration as the prompt does; gst's complaints are shown
    as they come and kept for the next round in the editor."""
    evaluator = context.evaluator
    shown = evaluator.on_event
    said: list[str] = []

    def listen(event: wire.Event) -> None:
        if event.kind == "output" and event.stream == "stderr":
            said.append(event.text)
        if shown is not None:
            shown(event)

    unit = scanner.Unit("declaration", code, 1, 1)
    evaluator.on_event = listen
    try:
        result = evaluator.evaluate_unit(unit, defined=True)
    finally:
        evaluator.on_event = shown
    context.controller.record(unit, result)
    return result, "".join(said)


def edit(context: Context, draft: Draft) -> None:
    editor = _editor()
    original = draft.text
    folder = Path(tempfile.mkdtemp(prefix="stui-edit-"))
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", draft.title) + ".st")
    text = draft.text
    try:
        while True:
            path.write_text(text + "\n")
            try:
                status = subprocess.run([*editor, str(path)], check=False).returncode
            except OSError as exc:
                raise StuiError(f"could not run the editor {shlex.join(editor)}: {exc.strerror}") from None
            if status != 0:
                context.renderer.info(f"the editor exited with status {status}: nothing compiled")
                return
            edited = without_our_comments(path.read_text()).rstrip()
            if not edited.strip():
                context.renderer.info(f"{draft.title}: the file was emptied, nothing compiled")
                return
            if edited == original.rstrip():
                context.renderer.info(f"{draft.title}: unchanged, nothing compiled")
                return
            result, stderr = _compile(context, draft.declaration(edited))
            if result.ok:
                defined = ", ".join(result.defined) if result.defined else draft.title
                context.renderer.info(f"compiled {defined}")
                return
            complaint, line = complaint_in(stderr or (result.error.message if result.error else ""), draft.offset)
            text = with_complaint(edited, complaint, line)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@command("edit", "METHOD | CLASS", "open a method or a whole class in $EDITOR; saving compiles it", complete=lambda c, t: complete_method(c, t))
def _edit(context: Context, argument: str) -> None:
    if not argument:
        raise UsageError(":edit needs a method or a class, e.g. :edit Animal>>name: or :edit Animal")
    if not sys.stdin.isatty():
        raise UsageError(":edit needs a terminal for the editor")
    if ">>" in argument:
        ref = parse_method(argument)
        edit(context, method_draft(context, ref))
    else:
        edit(context, class_draft(context, parse_class(argument)))
