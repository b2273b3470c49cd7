"""Smalltalk-aware scanning of scripts and REPL input (pure, no I/O).

stui must cut a script into the units it sends to the image one at a time,
tell whether REPL input may be submitted, and know which workspace
variables a statement assigns (the server pre-declares them so that they
persist).  All of that needs GNU Smalltalk 3.2.5's lexical rules -- strings,
comments, character literals, numbers such as ``16r1F.A`` or ``2.5s2``,
qualified names such as ``Smalltalk.Foo`` -- but no parse tree, so this
module is a lexer plus a few rules.  Scripted mode splits 10,000-statement
files within a tight budget, so the splitter runs on compiled regexes whose
matches are whole runs of uninteresting tokens (and whole simple
statements), not on a per-character loop.

API
---
``split_script(text) -> list[Unit]``
    Scripted mode.  A ``Unit`` has ``kind`` (``"statement"``, ``"temps"``,
    ``"declaration"``, ``"meta"``, or ``"malformed"`` for a statement whose
    brackets do not balance, which only gst's own reader can report in its
    own words), ``code`` (its source, trimmed, without
    the period or ``!`` that ends it), ``line`` and ``column`` (1-based, of
    its first code character; a tab is one column) and ``names`` (the
    workspace variables a statement assigns, the names temps declare,
    otherwise empty).  Comments before a unit are not part of its ``code``;
    comments inside it, or between its last token and its period, are.
``is_complete(text) -> bool``
    REPL: may this input be submitted?  False only while a bracket, string,
    comment or chunk-format method list is left open.
``assigned_names(code) -> tuple[str, ...]``
    The workspace variables a statement sequence assigns (lexical scoping of
    sequence temporaries, block arguments and block temporaries).
``is_identifier(name) -> bool``
    May ``name`` be a variable's name?
``completion_context(text_before_cursor) -> tuple[str, str]``
    REPL completer: ``(kind, prefix)``, kind being ``"selector"``,
    ``"name"``, ``"meta"`` or ``"none"``.
``tokenize(text) -> list[Token]``
    The lexer, for anyone else who needs one.

Rules (gst 3.2.5's behaviour was checked where it matters)
----------------------------------------------------------
* A statement ends at a period outside brackets, strings, comments and
  literals.  ``1.5``, ``1.5e10`` and ``16r1F.A`` are numbers; ``3.`` and
  ``3.y`` end a statement; ``a.b`` (no blanks) is one qualified name, as
  gst reads it.
* ``| a b |`` at the start of a statement, outside brackets, is a ``temps``
  unit (gst accepts temporaries before any statement); ``||`` is dropped.
* A ``[`` outside brackets starts a bracket *declaration* when the token
  before it is an identifier or a symbol, or a binary selector right after
  ``>>``: ordinary expressions only open a block at the start, after a
  keyword, ``:=``, ``^``, an opening bracket or a binary operator.  The unit
  runs from the statement start to the matching ``]``; no period needed.
* ``!`` outside strings, comments and ``$!`` ends a chunk, even inside
  brackets (where gst resynchronises too); elsewhere ``!!`` stands for one
  ``!`` and is unescaped in a statement's code.  A chunk whose last statement
  is a message whose first top-level keyword is ``methodsFor:`` starts a
  method list, as it does in gst: that statement and the method chunks up
  to an empty one (``! !``) make one verbatim ``declaration``, which starts
  at the lone ``!`` before the statement when there is one
  (``!Foo methodsFor: 'x'!``).  Method bodies are scanned lexically, so
  ``'!'``, ``"!"`` and ``$!`` in them are safe.
* A line whose first non-blank character is ``:`` while no statement is in
  progress is a ``meta`` unit: that line, trimmed, not read as Smalltalk.
* Malformed input never raises: from an unterminated string, comment or
  bracket on, the rest of the text (or chunk) is one final ``statement``.
* A first line starting with ``#!`` is skipped, as gst does.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate, pairwise
from typing import NamedTuple

__all__ = [
    "Token",
    "Unit",
    "assigned_names",
    "completion_context",
    "is_complete",
    "split_script",
    "tokenize",
]


class Unit(NamedTuple):
    """One piece of a script, sent to the image on its own."""

    kind: str
    code: str
    line: int
    column: int
    names: tuple[str, ...] = ()


class Token(NamedTuple):
    """A lexical token; see ``tokenize`` for the kinds."""

    kind: str
    text: str
    start: int
    end: int


# --- lexical building blocks ---------------------------------------------

_ID = r"[A-Za-z_][A-Za-z0-9_]*+"
# Names code reads but never assigns: never workspace variables (the server
# refuses to declare them; assigning one is gst's compile error to report).
RESERVED_WORDS = frozenset(("self", "super", "nil", "true", "false", "thisContext"))
_QID = rf"{_ID}(?:\.{_ID})*+"  # Smalltalk.Foo: a dot between letters
_STR = r"'[^']*+(?:''[^']*+)*+'"
_CMT = r'"[^"]*+"'
_WS = rf"(?:\s++|{_CMT})*+"  # blanks and comments
_NUM = (
    r"[0-9][0-9_]*+"
    r"(?:r-?[0-9A-Z_]++(?:\.[0-9A-Z]++(?![A-Za-z0-9_]))?|\.[0-9][0-9_]*+)?"
    r"(?:[edq]-?[0-9]++)?(?:s[0-9]*+)?"
)
_SYMBODY = (
    rf"(?:{_STR}|[A-Za-z_][A-Za-z0-9_:]*+(?:\.[A-Za-z_][A-Za-z0-9_:]*+)*+"
    r"|[-+*/\\<>=~@%&?,|]++)"
)
_BINCHARS = r"\-+*/\\<>=~@%&?,"

# Token kinds, tried in this order: frequent ones first, and each after any
# kind whose text it would cut short (keyword before ident, ":=" before ":",
# closed strings and comments before their unterminated forms).
_TOKEN_KINDS = [
    ("keyword", rf"{_ID}:(?!=)"),
    ("ident", _QID),
    ("binop", rf"[{_BINCHARS}]++"),
    ("number", _NUM),
    ("open", r"\#*+[(\[{]"),
    ("close", r"[)\]}]"),
    ("period", r"\."),
    ("assign", r":="),
    ("colon", r":"),
    ("pipe", r"\|"),
    ("string", _STR),
    ("symbol", rf"\#++(?:{_SYMBODY})?"),
    ("char", r"\$[\s\S]?"),
    ("caret", r"\^"),
    ("semicolon", r";"),
    ("bang", r"!"),
    ("comment", _CMT),
    ("badcomment", r'"[\s\S]*+'),
    ("badstring", r"'[\s\S]*+"),
    ("other", r"[\s\S]"),
]


def _compiled_on_use(pattern: str) -> Callable[[], re.Pattern[str]]:
    """A regex compiled when first needed. Compiling the large ones takes
    milliseconds of every start, and a script rarely needs the lexer (the
    splitter below has its own); the REPL needs it at its first keystroke."""
    compiled: list[re.Pattern[str]] = []

    def pattern_now() -> re.Pattern[str]:
        if not compiled:
            compiled.append(re.compile(pattern))
        return compiled[0]

    return pattern_now


_TOKEN = _compiled_on_use(
    r"(?P<ws>\s++)|" + "|".join(f"(?P<{k}>{p})" for k, p in _TOKEN_KINDS))
# The same without whitespace and comments, one match per real token.
_SIG_TOKEN = _compiled_on_use(
    rf"{_WS}(?:"
    + "|".join(f"(?P<{k}>{p})" for k, p in _TOKEN_KINDS if k != "comment")
    + r"|\Z)")
_TRIVIA = frozenset(("ws", "comment"))
_LITERALS = frozenset(("number", "string", "char", "symbol"))


def tokenize(text: str, *, trivia: bool = False) -> list[Token]:
    """Lex ``text`` the way gst does; whitespace and comments on request.

    Kinds: ws, comment, string, char, symbol, number, keyword (``at:``),
    ident (maybe qualified: ``Smalltalk.Foo``), open (``( [ { #( #[ #{
    ##(``), close, assign, colon, period, bang, pipe, caret, semicolon,
    binop, other, and badstring/badcomment for one still open at the end.
    """
    return [
        Token(m.lastgroup, m.group(), m.start(), m.end())
        for m in _TOKEN().finditer(text)
        if trivia or m.lastgroup not in _TRIVIA
    ]


def _lex(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of the real tokens: ``tokenize`` made cheap."""
    return [(m.lastgroup, m.group(m.lastindex))
            for m in _SIG_TOKEN().finditer(text) if m.lastindex]


# --- the splitter ----------------------------------------------------------

# Everything that cannot change the statement structure, swallowed in runs
# so the Python loop mostly sees brackets, periods, bangs, pipes, colons and
# assignments.  A "." that a run leaves, glued to a word, goes to
# _dot_is_code.
_RUN_ITEM = "|".join(
    [
        r"[^A-Za-z0-9_'\"$#()\[\]{}.!|:]++",
        rf"{_QID}(?::(?!=)|(?!\s*+:=))",
        _NUM,
        _STR,
        _CMT,
        r"\$[\s\S]?",
        rf"\#++(?:{_SYMBODY}|(?![(\[{{]))",
    ]
)
_MASTER = re.compile(
    rf"(?P<run>(?:{_RUN_ITEM})++)"
    rf"|(?P<assign>(?P<name>{_QID})\s*+:=)"
    rf"|(?P<period>\.(?![A-Za-z0-9_]){_WS})"
    r"|(?P<dot>\.)"
    r"|(?P<open>\#*+[(\[{])"
    r"|(?P<close>[)\]}])"
    r"|(?P<pipe>\|)"
    r"|(?P<colon>:=?)"
    r"|(?P<bang>!!?)"
    r"|(?P<bad>['\"][\s\S]*+)"
)
_G = _MASTER.groupindex
_RUN, _ASSIGN, _NAME, _OPEN, _CLOSE = (
    _G["run"], _G["assign"], _G["name"], _G["open"], _G["close"])
_PERIOD, _DOT, _BANG, _PIPE, _COLON = (
    _G["period"], _G["dot"], _G["bang"], _G["pipe"], _G["colon"])

# The common case in one match: a statement with no brackets, pipes, bangs
# or colons outside keywords, at most one assignment (at its start), and its
# period.
_FAST = re.compile(
    rf"{_WS}((?:({_QID})\s*+:=)?(?:{_RUN_ITEM})*+)\.(?![A-Za-z0-9_]){_WS}")

_SKIP = re.compile(_WS)
# "[:a :b | | t u |": the arguments and temporaries a block declares.
_BLOCK_HEAD = _compiled_on_use(
    rf"\[{_WS}(?:((?::{_WS}{_ID}(?!:(?!=)){_WS})++)\|?)?{_WS}"
    rf"(?:\|((?:\s++|{_CMT}|{_ID})*+)\|)?")
_TEMPS = re.compile(rf"\|((?:\s++|{_CMT}|{_ID})*+)\|")
_TEMP_NAME = re.compile(rf"{_CMT}|({_ID})")
_METHOD_BODY = re.compile(rf"(?:[^'\"$!]++|{_STR}|{_CMT}|\$[\s\S]|!!)*+")
_PAREN, _LITERAL, _BLOCK = range(3)


def _dot_is_code(text: str, p: int, lexed: int) -> int:
    """Whether the "." at ``p``, glued to the next word, lies inside a token
    (``16r1F.A``, ``Smalltalk.Foo``) rather than ending a statement
    (``3.y``, ``a1.5``, ``$a.b``, ``16rFF.Foo``): the end of that token, or
    0.  Rare, so the lexer decides, from ``lexed``, a token boundary."""
    for m in _TOKEN().finditer(text, lexed):
        if m.end() > p:
            return m.end() if m.start() < p else 0
    return 0


def _opens_declaration(before: str) -> bool:
    """Whether a top-level ``[`` after ``before`` (the statement's text since
    its last bracket, period, assignment...) starts a declaration."""
    tail = before.rstrip()
    if not tail or tail[-1] == ":":  # after a keyword: an ordinary block
        return False
    toks = _lex(before)
    if not toks:
        return False
    kind = toks[-1][0]
    if kind in ("ident", "symbol"):
        return True
    return kind == "binop" and len(toks) > 1 and toks[-2][1] == ">>"


def _starts_method_list(code: str) -> bool:
    """Whether evaluating ``code`` makes gst read a chunk-format method list:
    its first top-level keyword is ``methodsFor:``."""
    if "methodsFor:" not in code:
        return False
    depth = 0
    for kind, text in _lex(code):
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind == "keyword" and depth <= 0:
            return text == "methodsFor:"
    return False


def _method_list_end(text: str, pos: int) -> int:
    """Where the method chunks from ``pos`` end (after the empty chunk), or
    -1 if the text ends first."""
    n = len(text)
    while True:
        e = _METHOD_BODY.match(text, pos).end()
        if e >= n or text[e] != "!":
            return -1
        if _SKIP.match(text, pos, e).end() == e:
            return e + 1
        pos = e + 1


def _trim(code: str) -> str:
    """``code.strip()``, keeping the blank of a final ``$ `` literal."""
    trimmed = code.strip()
    if trimmed.endswith("$") and len(trimmed) < len(code.lstrip()):
        dollars = len(trimmed) - len(trimmed.rstrip("$"))
        if dollars % 2:
            return code.lstrip()[: len(trimmed) + 1]
    return trimmed


def _unescape(text: str, start: int, end: int, escapes: list[int]) -> str:
    """``text[start:end]`` with each "!!" at ``escapes`` turned into "!"."""
    pieces, prev = [], start
    for e in escapes:
        pieces.append(text[prev : e + 1])
        prev = e + 2
    pieces.append(text[prev:end])
    return "".join(pieces)


class _Scan(NamedTuple):
    units: list[Unit]
    starts: list[int]  # where each unit begins in the text
    complete: bool  # nothing was left open
    rest: int  # where a scan of what follows must begin: see ScriptScanner


def _scan(text: str, *, line: int = 1, column: int = 1, header: bool = True) -> _Scan:
    """Split ``text`` into units; also say whether nothing was left open.
    ``text`` begins at ``line`` and ``column`` of its script, and at the
    script's start when ``header`` (a byte-order mark or ``#!`` line)."""
    n = len(text)
    units: list[Unit] = []
    starts: list[int] = []
    # The first line's start is shifted so that its columns count from `column`.
    line_starts = [1 - column, *accumulate(map((1).__add__, map(len, text.split("\n"))))]
    shift = line - 1

    def add(kind: str, at: int, code: str, names: tuple[str, ...]) -> None:
        index = bisect_right(line_starts, at)
        units.append(Unit(kind, code, index + shift, at - line_starts[index - 1] + 1, names))
        starts.append(at)

    complete = True
    start = -1  # first code character of the statement in progress
    opened: list[int] = []  # its open brackets: _PAREN, _LITERAL or _BLOCK
    scopes: list[set[str]] = []  # the names its open blocks declare
    literal = 0  # how many open brackets are in a literal array
    names: list[str] = []  # the workspace variables it assigns
    tricky = False  # an odd assignment: ask assigned_names
    decl = False  # it is a bracket declaration
    escapes: list[int] = []  # where its "!!" are
    chunk_units = 0  # len(units) when the current chunk began
    lead_bang = -1  # a lone "!" just before the current chunk
    stray = False  # the statement closes a bracket it never opened
    open_list = -1  # where a method list the text leaves open begins

    def finish(end: int, *, left_open: bool = False) -> None:
        nonlocal stray
        code = _trim(_unescape(text, start, end, escapes) if escapes
                     else text[start:end])
        if stray or left_open:
            add("malformed", start, code, ())
            stray = False
            return
        add("statement", start, code,
            assigned_names(code) if tricky else tuple(names))

    pos = 1 if header and text.startswith("\ufeff") else 0  # a byte-order mark
    if header and text.startswith("#!", pos):  # gst skips a "#! /usr/bin/gst -f" line
        nl = text.find("\n", pos)
        pos = n if nl < 0 else nl
    while pos < n:
        if start < 0:  # at a statement start: try the fast path first
            f = None
            for f in iter(_FAST.scanner(text, pos).match, None):
                cs, ce = f.span(1)
                if cs < ce:
                    code = text[cs:ce].rstrip()
                    if code[-1] == "$":
                        code = _trim(text[cs:ce])
                    index = bisect_right(line_starts, cs)
                    name = f.group(2)
                    starts.append(cs)
                    units.append(Unit(
                        "statement", code, index + shift, cs - line_starts[index - 1] + 1,
                        (name,) if name and "." not in name and name not in RESERVED_WORDS else ()))
            if f is not None:
                pos = f.end()
                if pos >= n:
                    break
        jump = -1  # where to resume after leaving the loop below
        seg = pos  # start of the text since the last structural token
        lexed = pos  # a token boundary at or after seg
        for m in _MASTER.finditer(text, pos):
            k = m.lastindex
            if k == _RUN:
                if start < 0:
                    s = _SKIP.match(text, m.start()).end()
                    if s < m.end():
                        start = s
                continue
            p = m.start()
            if k == _DOT:
                end = _dot_is_code(text, p, max(seg, lexed))
                if end:
                    lexed = end
                    continue
                k = _PERIOD
            if k == _ASSIGN:
                if start < 0:
                    start = p
                name = m.group(_NAME)
                if (name not in names and "." not in name and not literal
                        and name not in RESERVED_WORDS
                        and not any(name in scope for scope in scopes)):
                    names.append(name)
            elif k == _PERIOD:
                if not opened:
                    if start >= 0:
                        finish(p)
                        start, names, tricky, escapes = -1, [], False, []
                    jump = m.end()
                    break
            elif k == _OPEN:
                if start < 0:
                    start = p
                bracket = m.group()
                if literal or bracket in ("#(", "#[", "#{"):
                    opened.append(_LITERAL)
                    literal += 1
                elif bracket == "[":
                    if (not opened and start < p
                            and _opens_declaration(text[seg:p])):
                        decl = True
                    opened.append(_BLOCK)
                    head = _BLOCK_HEAD().match(text, p)
                    scope = set(_TEMP_NAME.findall(head.group()))
                    scope.discard("")
                    scopes.append(scope)
                else:
                    opened.append(_PAREN)
            elif k == _CLOSE:
                if start < 0:
                    start = p
                if not opened:
                    stray = True
                else:
                    closed = opened.pop()
                    if closed == _BLOCK:
                        scopes.pop()
                    elif closed == _LITERAL:
                        literal -= 1
                    if decl and not opened:
                        add("declaration", start, text[start : m.end()], ())
                        start, names, tricky, escapes, stray = -1, [], False, [], False
                        decl = False
                        jump = m.end()
                        break
            elif k == _BANG:
                if m.group() == "!!":
                    if start < 0:
                        start = p
                    escapes.append(p)
                elif start >= 0 and not opened and not escapes and (
                        _starts_method_list(text[start:p])):
                    at = start
                    if lead_bang >= 0 and len(units) == chunk_units:
                        at = lead_bang
                    end = _method_list_end(text, p + 1)
                    start, names, tricky, stray = -1, [], False, False
                    if end < 0:
                        add("declaration", at, text[at:].rstrip(), ())
                        complete, jump, open_list = False, n, at
                    else:
                        add("declaration", at, text[at:end], ())
                        chunk_units, lead_bang, jump = len(units), -1, end
                    break
                else:
                    lone = start < 0
                    if not lone:
                        finish(p)
                    start, names, tricky, escapes, stray = -1, [], False, [], False
                    decl, opened, scopes, literal = False, [], [], 0
                    chunk_units, lead_bang = len(units), p if lone else -1
                    jump = m.end()
                    break
            elif k == _PIPE:
                if start < 0:
                    t = _TEMPS.match(text, p)
                    if t:
                        declared = tuple(
                            x for x in _TEMP_NAME.findall(t.group(1)) if x)
                        if declared:
                            add("temps", p, t.group(), declared)
                        jump = t.end()
                        break
                    start = p
            elif k == _COLON:
                if start < 0:
                    ls = text.rfind("\n", 0, p) + 1
                    # (A text that begins mid-line has code before it on that line.)
                    if (ls or column == 1) and (ls == p or text[ls:p].isspace()):
                        e = text.find("\n", p)
                        if e < 0:
                            e = n
                        add("meta", p, text[p:e].strip(), ())
                        jump = e
                        break
                    start = p
                if len(m.group()) == 2:
                    tricky = True
            else:  # an unterminated string or comment swallows the rest
                if start < 0:
                    start = p
                complete = False
            seg = m.end()
        if jump < 0:
            break
        pos = jump

    if opened:
        complete = False
    rest = n
    if start >= 0:
        rest = start
        finish(n, left_open=not complete)
    if lead_bang >= 0 and len(units) - (start >= 0) == chunk_units:
        rest = lead_bang  # a statement after it may start a method list that begins at it
    if open_list >= 0:
        rest = open_list
    return _Scan(units, starts, complete, rest)


def split_script(text: str) -> list[Unit]:
    """Cut a script into the units scripted mode sends one by one."""
    return _scan(text).units


def scan_whole(text: str) -> Stretch:
    """A whole script as one stretch (see ScriptScanner for one in parts)."""
    scan = _scan(text)
    return Stretch(text, scan.units, scan.starts, 1)


# The longest unit a script may hold: more is surely not a script (-f /dev/zero).
MAX_UNIT = 64 * 1024 * 1024


class ScriptTooLarge(ValueError):
    """A unit of a script goes on beyond MAX_UNIT characters."""


class Stretch(NamedTuple):
    """A stretch of a script whose units are all known: its text exactly as
    it came, and the units that begin in it (their lines are the script's)."""

    text: str
    units: list[Unit]
    starts: list[int]  # where each unit begins in text
    line: int  # the line text begins on

    def pieces(self) -> list[str]:
        """The text cut where each unit begins, the first piece from the
        stretch's start: piece i ends just before unit i + 1 (a file-in
        sends them so)."""
        edges = [0, *self.starts[1:], len(self.text)]
        return [self.text[a:b] for a, b in pairwise(edges) if b > a]

    def numbered_pieces(self) -> list[tuple[str, int]]:
        """The pieces, each with the line it begins on (what a file-in sends)."""
        return [(text, self.line if i == 0 else self.units[i].line) for i, text in enumerate(self.pieces())]


class ScriptScanner:
    """Scans a script that arrives in parts (a pipe, a long file) holding
    only what is not yet known: a unit is handed on once the text after it
    shows that it ended, so a script of any length is scanned in the memory
    of its longest unit, and a slow pipe's statements go as they come.

    Text is scanned up to its last line break: a period, bang or bracket
    that ends a line ends its unit whatever follows, while one at the very
    end of the text might not (``3.`` before ``14``, ``!`` before ``!``). A
    unit still open is scanned again with what follows; it is kept until at
    least half its length has come again, so that a long one costs linear
    time, not quadratic."""

    def __init__(self, *, limit: int = MAX_UNIT) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._held = 0  # characters in _parts
        self._kept = 0  # of which the last scan kept back
        self._line = 1  # where _parts begin in the script
        self._column = 1
        self._header = True  # they begin at the script's start

    def feed(self, text: str) -> Stretch | None:
        """Take the next part; answer the stretch it completed, if any."""
        self._parts.append(text)
        self._held += len(text)
        if self._held > self.limit:
            raise ScriptTooLarge(f"a statement longer than {self.limit >> 20} MiB")
        if "\n" not in text or self._held - self._kept < self._kept // 2:
            return None
        whole = "".join(self._parts)
        return self._take(whole, whole.rfind("\n") + 1)

    def end(self) -> Stretch | None:
        """The script has ended: the rest of it, whatever state it is in."""
        return self._take("".join(self._parts), None)

    def _take(self, whole: str, cut: int | None) -> Stretch | None:
        body = whole if cut is None else whole[:cut]
        scan = _scan(body, line=self._line, column=self._column, header=self._header)
        rest = len(body) if cut is None else scan.rest
        count = len(scan.units) if cut is None else bisect_left(scan.starts, rest)
        text, line = body[:rest], self._line
        self._parts = [whole[rest:]] if rest < len(whole) else []
        self._held = self._kept = len(whole) - rest
        if not text:
            return None
        self._header = False
        breaks = text.count("\n")
        if breaks:
            self._line += breaks
            self._column = len(text) - text.rfind("\n")
        else:
            self._column += len(text)
        return Stretch(text, scan.units[:count], scan.starts[:count], line)


def is_complete(text: str) -> bool:
    """Whether REPL input may be submitted: no bracket, string, comment or
    method list left open.  A trailing keyword or operator is fine (the
    image reports it); fast enough to call on every keystroke."""
    return _scan(text).complete


# --- assignments -----------------------------------------------------------


def _declare(toks: list[tuple[str, str]], i: int, into: set[str]) -> int:
    """Read ``| a b |`` at ``toks[i]`` into ``into``: index after it, or
    ``i + 1`` (nothing declared) when it is not closed by a bar."""
    j, n = i + 1, len(toks)
    while j < n and toks[j][0] == "ident":
        j += 1
    if j < n and toks[j][0] == "pipe":
        into.update(text for _, text in toks[i + 1 : j])
        return j + 1
    return i + 1


def assigned_names(code: str) -> tuple[str, ...]:
    """Workspace variables a statement sequence assigns, in first-assignment
    order: each ``name :=`` whose name is neither a temporary of the
    sequence (``| t |`` at a statement start) nor an argument or temporary
    of an enclosing block.  Uppercase names count: ``Transcript := 5`` must
    shadow the global, not overwrite it.  Literal arrays hold no
    assignments; qualified names (``Smalltalk.Foo :=``) are not variables."""
    toks = _lex(code)
    scopes: list[set[str]] = [set()]  # sequence temps, then one per block
    opened: list[str] = []
    found: list[str] = []
    at_start = True  # at the start of a top-level statement
    i, n = 0, len(toks)
    while i < n:
        kind, text = toks[i]
        if kind == "pipe" and at_start:
            i = _declare(toks, i, scopes[0])
            at_start = False
            continue
        at_start = False
        i += 1
        if kind == "ident":
            if (i < n and toks[i][0] == "assign" and text not in found
                    and "." not in text and text not in RESERVED_WORDS
                    and not any(text in scope for scope in scopes)):
                found.append(text)
        elif kind == "open":
            if text in ("#(", "#[", "#{"):  # a literal: skip it whole
                level = 1
                while i < n and level:
                    if toks[i][0] == "open":
                        level += 1
                    elif toks[i][0] == "close":
                        level -= 1
                    i += 1
                continue
            opened.append(text)
            if text == "[":
                block: set[str] = set()
                scopes.append(block)
                while i + 1 < n and toks[i][0] == "colon" and toks[i + 1][0] == "ident":
                    block.add(toks[i + 1][1])
                    i += 2
                if block and i < n and toks[i][0] == "pipe":
                    i += 1  # the bar after the arguments
                if i < n and toks[i][0] == "pipe":
                    i = _declare(toks, i, block)
        elif kind == "close":
            if opened and opened.pop() == "[":
                scopes.pop()
        elif kind == "period" or kind == "bang":
            at_start = not opened
    return tuple(found)


# --- completion ------------------------------------------------------------

_AFTER_OPERAND = frozenset(("ident", "close", "semicolon")) | _LITERALS


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_identifier(name: str) -> bool:
    """Can `name` be a workspace variable?"""
    return bool(_IDENTIFIER.fullmatch(name)) and name not in RESERVED_WORDS


def completion_context(text_before_cursor: str) -> tuple[str, str]:
    """What the REPL completer should offer at the cursor: ``(kind, prefix)``.

    ``"selector"`` after an operand (identifier, literal, closing bracket)
    or a cascade ``;``; ``"name"`` where an expression starts (also in
    temporaries); ``"meta"`` on a ``:command`` line, the prefix then being
    that line so far, trimmed; ``"none"`` inside a string, comment or
    literal array, while declaring temporaries or block arguments, and
    right after a literal (``3``, ``#foo``).  Otherwise the prefix is the
    word being typed: letters, digits, underscores and colons
    (``at:pu``); in ``Smalltalk.Fo`` it is ``Fo``.
    """
    text = text_before_cursor
    metas = [u for u in split_script(text) if u.kind == "meta"]
    if metas:
        lines = text.split("\n")
        if metas[-1].line == len(lines):
            return "meta", metas[-1].code
        for u in metas:  # not Smalltalk: blank them out
            lines[u.line - 1] = " " * len(lines[u.line - 1])
        text = "\n".join(lines)
    toks = tokenize(text, trivia=True)
    if toks and toks[-1].kind in ("badstring", "badcomment"):
        return "none", ""
    sig = [t for t in toks if t.kind not in _TRIVIA]
    i = len(sig)  # the tokens before sig[i] are context, the rest the prefix
    prefix = ""
    if sig and sig[-1].end == len(text):
        last = sig[-1]
        if last.kind in ("ident", "keyword"):
            i -= 1
            if last.kind == "ident" and "." in last.text:
                return "name", last.text.rsplit(".", 1)[1]
            while (i > 0 and sig[i - 1].kind == "keyword"
                   and sig[i - 1].end == sig[i].start):
                i -= 1
            prefix = text[sig[i].start :]
        elif last.kind in _LITERALS or last.kind == "colon":
            return "none", ""
    opened: list[str] = []
    at_start = True  # where "| t |" would declare temporaries
    declaring = False  # inside "| a b" or "[:a :b"
    for t in sig[:i]:
        kind = t.kind
        if declaring:
            if kind == "pipe":
                declaring, at_start = False, True
                continue
            if kind in ("ident", "colon"):
                continue
            declaring = False
        if at_start and (kind == "pipe" or kind == "colon" and opened
                         and opened[-1] == "["):
            declaring = True
        elif kind == "open":
            opened.append(t.text)
        elif kind == "close" and opened:
            opened.pop()
        at_start = kind in ("period", "bang") or t.text == "["
    if declaring or (opened and opened[-1] in ("#(", "#[")):
        return "none", ""
    prev = sig[i - 1].kind if i else None
    if prev in _AFTER_OPERAND:
        return "selector", prefix
    return "name", prefix
