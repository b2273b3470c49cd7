"""Tests for stui_repl.client.scanner: splitting, completeness, assignments, completion."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from stui_repl.client.scanner import (
    ScriptScanner,
    ScriptTooLarge,
    Unit,
    assigned_names,
    completion_context,
    is_complete,
    split_script,
    tokenize,
)


def codes(text: str) -> list[str]:
    return [u.code for u in split_script(text)]


def kinds(text: str) -> list[str]:
    return [u.kind for u in split_script(text)]


def brief(text: str) -> list[tuple[str, str]]:
    return [(u.kind, u.code) for u in split_script(text)]


# --- Unit ------------------------------------------------------------------


def test_unit_is_an_immutable_record() -> None:
    unit = Unit("statement", "x := 3", 1, 1, ("x",))
    with pytest.raises(AttributeError):
        unit.code = "y"  # type: ignore[misc]
    assert unit == Unit(kind="statement", code="x := 3", line=1, column=1, names=("x",))
    assert hash(unit) == hash(Unit("statement", "x := 3", 1, 1, ("x",)))
    assert Unit("meta", ":help", 2, 3).names == ()
    assert unit._replace(line=7).line == 7
    assert "code='x := 3'" in repr(unit)


# --- statements and periods -------------------------------------------------


def test_simple_statements() -> None:
    assert split_script("x := 3. y := 4") == [
        Unit("statement", "x := 3", 1, 1, ("x",)),
        Unit("statement", "y := 4", 1, 9, ("y",)),
    ]


def test_final_statement_without_period_counts() -> None:
    assert codes("3 printNl.\n4 printNl") == ["3 printNl", "4 printNl"]


def test_blank_and_comment_only_text_gives_nothing() -> None:
    assert split_script("") == []
    assert split_script("  \n\t\n") == []
    assert split_script('"only a comment" "and another. with a period"\n') == []


def test_empty_statements_are_dropped() -> None:
    assert codes(". .. x := 3.. . y := 4.") == ["x := 3", "y := 4"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x := 1.5. y := 2", ["x := 1.5", "y := 2"]),
        ("x := 1.5e10. y := 2", ["x := 1.5e10", "y := 2"]),
        ("x := 1e-3. y := 2", ["x := 1e-3", "y := 2"]),
        ("x := 2.5s2. y := 2", ["x := 2.5s2", "y := 2"]),
        ("x := 3s. y := 2", ["x := 3s", "y := 2"]),
        ("x := 1.0d0 + 1.5q0. y := 2", ["x := 1.0d0 + 1.5q0", "y := 2"]),
        ("x := 2r1010. y := 2", ["x := 2r1010", "y := 2"]),
        ("x := 16r1F. y := 2", ["x := 16r1F", "y := 2"]),
        ("x := 16r1F.A1. y := 2", ["x := 16r1F.A1", "y := 2"]),
        ("x := 2r1e4. y := 2", ["x := 2r1e4", "y := 2"]),
        ("x := 1_000_000. y := 2", ["x := 1_000_000", "y := 2"]),
        ("x := -3. y := 2", ["x := -3", "y := 2"]),
        ("x := 3 - -2. y := 2", ["x := 3 - -2", "y := 2"]),
        ("x := 3.", ["x := 3"]),
        ("x := 3.\n", ["x := 3"]),
        ("x := 3.y := 4", ["x := 3", "y := 4"]),
        ("x := 3.\ny := 4.", ["x := 3", "y := 4"]),
        ("x := 16rFF.Transcript show: 'a'", ["x := 16rFF", "Transcript show: 'a'"]),
        ("x := a1.5 printNl", ["x := a1", "5 printNl"]),
        ("x := 1e5.3 printNl", ["x := 1e5", "3 printNl"]),
    ],
)
def test_periods_in_numbers_versus_statement_ends(text: str, expected: list[str]) -> None:
    assert codes(text) == expected


def test_qualified_names_keep_their_dots() -> None:
    # gst reads "a.b" with no blanks as a namespace path, not two statements.
    assert codes("Smalltalk.Foo new. y := 2") == ["Smalltalk.Foo new", "y := 2"]
    assert codes("x := Smalltalk.Kernel.Foo. y") == ["x := Smalltalk.Kernel.Foo", "y"]
    assert codes("a := b.c := 3") == ["a := b.c := 3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x := $. . y := 1", ["x := $.", "y := 1"]),
        ("x := $.. y := 1", ["x := $.", "y := 1"]),
        ("x := $'. y := 1", ["x := $'", "y := 1"]),
        ('x := $". y := 1', ['x := $"', "y := 1"]),
        ("x := $!. y := 1", ["x := $!", "y := 1"]),
        ("x := $ . y := 1", ["x := $ ", "y := 1"]),
        ("x := $\n. y := 1", ["x := $\n", "y := 1"]),
        ("x := $$. y := 1", ["x := $$", "y := 1"]),
        ("x := $[. y := 1", ["x := $[", "y := 1"]),
        ("x := $(. y := 1", ["x := $(", "y := 1"]),
        ("x := $a.b := 1", ["x := $a", "b := 1"]),
        ("x := $ ", ["x := $ "]),
    ],
)
def test_character_literals(text: str, expected: list[str]) -> None:
    assert codes(text) == expected


def test_strings_with_periods_quotes_and_bangs() -> None:
    text = "x := 'it''s. done!'. y := 'a\n.b'. z := ''"
    assert codes(text) == ["x := 'it''s. done!'", "y := 'a\n.b'", "z := ''"]


def test_comments_with_quotes_and_periods() -> None:
    text = "x := 3 \"it's. a comment\". \"another. one\" y := 4"
    assert codes(text) == ["x := 3 \"it's. a comment\"", "y := 4"]


def test_comments_before_a_statement_are_not_part_of_it() -> None:
    units = split_script('"header.\n with lines"\n\n  "more" x := 3.')
    assert units == [Unit("statement", "x := 3", 4, 10, ("x",))]


def test_symbols() -> None:
    text = "x := #foo. y := #at:put:. z := #+. w := #'hello. world'. v := ##foo"
    assert codes(text) == [
        "x := #foo", "y := #at:put:", "z := #+", "w := #'hello. world'", "v := ##foo"]


@pytest.mark.parametrize(
    "statement",
    [
        "x := (1 + 2. 3)",
        "x := [1. 2. 3] value",
        "x := {1. 2. 3}",
        "x := #(1 . 2 $. #(3. 4) foo: 'a.b')",
        "x := #[1 2 3]",
        "x := #{Smalltalk.Foo}",
        "x := ##(1 + 2. 3)",
        "x := [:a | [:b | a. b] value: 1. a] value: 2",
    ],
)
def test_periods_inside_brackets(statement: str) -> None:
    assert codes(statement + ". y := 1") == [statement, "y := 1"]


def test_multi_line_keyword_message_and_cascade() -> None:
    text = (
        "Object subclass: #Animal\n"
        "    instanceVariableNames: 'name sound'\n"
        "    classVariableNames: ''\n"
        "    package: 'zoo'.\n"
        "Transcript\n"
        "    show: 'a';\n"
        "    show: 'b.';\n"
        "    cr.\n"
    )
    units = split_script(text)
    assert [u.kind for u in units] == ["statement", "statement"]
    assert units[0].code.startswith("Object subclass: #Animal\n")
    assert units[0].code.endswith("package: 'zoo'")
    assert (units[1].line, units[1].column) == (5, 1)
    assert units[1].code == "Transcript\n    show: 'a';\n    show: 'b.';\n    cr"


def test_nested_blocks() -> None:
    text = "1 to: 3 do: [:i |\n  #(1 2) do: [:j |\n    Transcript show: (i * j) printString; cr]].\nx := 1"
    units = split_script(text)
    assert len(units) == 2
    assert units[1] == Unit("statement", "x := 1", 4, 1, ("x",))


def test_caret_statement() -> None:
    assert codes("^x foo. ^3") == ["^x foo", "^3"]


def test_trailing_comment_inside_statement_is_kept() -> None:
    assert codes('x := 3 "three" .') == ['x := 3 "three"']
    assert codes('x := 3 "three"') == ['x := 3 "three"']


def test_shebang_line_is_skipped() -> None:
    assert split_script("#! /usr/bin/gst -f\nx := 3!") == [Unit("statement", "x := 3", 2, 1, ("x",))]
    assert split_script("#!/usr/bin/gst -f") == []
    assert split_script("\ufeff#!gst\nx := 3") == [Unit("statement", "x := 3", 2, 1, ("x",))]


def test_byte_order_mark_is_not_code() -> None:
    assert split_script("\ufeffx := 3") == [Unit("statement", "x := 3", 1, 2, ("x",))]


# --- line and column -----------------------------------------------------


def test_line_and_column_after_comments_on_line_5() -> None:
    text = (
        '"A script.\n'
        ' It has a long comment. With periods."\n'
        "\n"
        '"and another one"\n'
        "    Transcript showCr: 'hi'.   x := 3.\n"
        "\ty := 4"
    )
    units = split_script(text)
    assert [(u.line, u.column) for u in units] == [(5, 5), (5, 32), (6, 2)]


def test_line_numbers_with_crlf() -> None:
    units = split_script("x := 1.\r\n\r\n  y := 2.\r\n")
    assert [(u.code, u.line, u.column) for u in units] == [("x := 1", 1, 1), ("y := 2", 3, 3)]


def test_line_numbers_in_generic_and_fast_paths_agree() -> None:
    text = "x := 1.\ny := [2] value.\nz := 3.\n(w := 4) printNl.\nv := 5"
    assert [(u.line, u.column) for u in split_script(text)] == [
        (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]


# --- temporaries -----------------------------------------------------------


def test_temps_unit() -> None:
    units = split_script("| a b |\na := 1. b := a + 1")
    assert units == [
        Unit("temps", "| a b |", 1, 1, ("a", "b")),
        Unit("statement", "a := 1", 2, 1, ("a",)),
        Unit("statement", "b := a + 1", 2, 9, ("b",)),
    ]


def test_temps_after_a_comment_and_on_one_line() -> None:
    units = split_script('"vars" |a "the a" b| a := 1')
    assert [(u.kind, u.code, u.column, u.names) for u in units] == [
        ("temps", '|a "the a" b|', 8, ("a", "b")),
        ("statement", "a := 1", 22, ("a",)),
    ]


def test_empty_temps_produce_nothing() -> None:
    assert brief("|| x := 1") == [("statement", "x := 1")]
    assert brief("| | x := 1") == [("statement", "x := 1")]


def test_temps_later_in_the_script() -> None:
    # gst accepts temporaries before any statement, not just the first.
    assert kinds("x := 1.\n| y |\ny := 2") == ["statement", "temps", "statement"]


def test_pipe_inside_a_statement_is_code() -> None:
    assert brief("x := a | b. y := [:e | e]") == [
        ("statement", "x := a | b"), ("statement", "y := [:e | e]")]


def test_malformed_temps_are_left_to_the_server() -> None:
    assert brief("| a 3 | a := 1") == [("statement", "| a 3 | a := 1")]


# --- bracket declarations ----------------------------------------------------


@pytest.mark.parametrize(
    "declaration",
    [
        "Object subclass: Animal [ ]",
        "Object subclass: #Animal [ ]",
        "Animal extend [ foo [ ^1 ] ]",
        "Animal class extend [ foo [ ^1 ] ]",
        "Animal class >> foo: x [ ^x ]",
        "Animal >> bar [ ^2 ]",
        "Animal >> + other [ ^other ]",
        "Animal >> + [ ]",
        "Animal >> at: i put: v [ ^v ]",
        "Eval [ | a | a := 3. a printNl ]",
        "Namespace current: Foo [ Object subclass: Bar [ ] ]",
        "Namespace current: Smalltalk.Foo [ ]",
        "Smalltalk.Animal extend [ zz [ ^8 ] ]",
        "nil subclass: Root [ ]",
    ],
)
def test_bracket_declarations(declaration: str) -> None:
    assert split_script(declaration + "\nx := 1") == [
        Unit("declaration", declaration, 1, 1),
        Unit("statement", "x := 1", 2, 1, ("x",)),
    ]


def test_declaration_with_nested_methods_strings_and_comments() -> None:
    declaration = (
        "Object subclass: Animal [\n"
        "    | name sound |\n"
        "    <comment: 'An animal. [really]'>\n"
        "    Count := 0.\n"
        "    Animal class >> named: aString [ ^self new setName: aString ]\n"
        '    name [ "answer the name. ]" ^name ]\n'
        "    speak [ ^'] ' , $] asString , ']' ]\n"
        "    do: aBlock [ #(1 2) do: [:e | aBlock value: e]. ^$[ ]\n"
        "]"
    )
    text = '"zoo"\n' + declaration + " Animal new speak printNl."
    units = split_script(text)
    assert units == [
        Unit("declaration", declaration, 2, 1),
        Unit("statement", "Animal new speak printNl", 10, 3),
    ]


def test_period_after_declaration_is_harmless() -> None:
    assert kinds("Eval [ 1 ]. Eval [ 2 ].\nx := 1.") == [
        "declaration", "declaration", "statement"]


def test_declarations_after_statements_and_temps() -> None:
    assert kinds("| a |\na := 1.\nObject subclass: Foo [ ]\nFoo new") == [
        "temps", "statement", "declaration", "statement"]


@pytest.mark.parametrize(
    "statement",
    [
        "x ifTrue: [ 1 ] ifFalse: [ 2 ]",
        "a := [ 1 ]",
        "a := [:x | x ]",
        "#(1 2) do: [:e | e printNl ]",
        "foo value: [ ]",
        "y := x > 3 and: [ x < 5 ]",
        "[ 1 ] value",
        "[:x | x ] value: 3",
        "x := y -> [ 3 ]",
        "x := 3 + [ 4 ] value",
        "x foo: 'a' bar: [ ]",
        'x foo: "comment" [ ]',
        "(x > 3) ifTrue: [ 4 ]",
        "x := { [ 1 ] }",
        "^[ 1 ]",
    ],
)
def test_ordinary_blocks_are_not_declarations(statement: str) -> None:
    assert split_script(statement + ". z") == [
        Unit("statement", statement, 1, 1, assigned_names(statement)),
        Unit("statement", "z", 1, len(statement) + 3),
    ]


def test_kernel_style_file() -> None:
    text = (
        '"======================================================================\n'
        "| Copyright notice. It's long.\n"
        ' ======================================================================"\n'
        "\n"
        "Namespace current: Kernel [\n"
        "\n"
        "Object subclass: Foo [\n"
        "    | a |\n"
        "    <category: 'Language-Implementation'>\n"
        "    Foo class >> new [ <category: 'instance creation'> ^self basicNew init ]\n"
        "    init [ a := 'x]y'. ^self ]\n"
        "]\n"
        "\n"
        "]\n"
        "\n"
        "Eval [ Kernel.Foo new printNl ]\n"
    )
    units = split_script(text)
    assert [(u.kind, u.line) for u in units] == [("declaration", 5), ("declaration", 16)]
    assert units[0].code.endswith("]\n\n]")


# --- bang chunks -------------------------------------------------------------


def test_plain_chunks_are_split_into_statements() -> None:
    text = (
        "Object subclass: #A instanceVariableNames: '' classVariableNames: '' "
        "package: 'x'!\n"
        "x := 3. y := 4!\n"
        "Transcript showCr: 'hi!'!"
    )
    assert brief(text) == [
        ("statement", "Object subclass: #A instanceVariableNames: '' classVariableNames: '' package: 'x'"),
        ("statement", "x := 3"),
        ("statement", "y := 4"),
        ("statement", "Transcript showCr: 'hi!'"),
    ]


def test_bang_in_comment_and_character_literal_is_not_a_terminator() -> None:
    assert brief('"wow!" x := $! value. y := 2!') == [
        ("statement", "x := $! value"), ("statement", "y := 2")]


def test_doubled_bang_stands_for_one_outside_strings() -> None:
    assert brief("x := a !! b. y := 'c!!d'!") == [
        ("statement", "x := a ! b"), ("statement", "y := 'c!!d'")]


def test_bang_ends_a_chunk_even_inside_brackets() -> None:
    assert brief("x foo: [ 3 ! y := 4!") == [
        ("statement", "x foo: [ 3"), ("statement", "y := 4")]


def test_method_list_is_one_verbatim_declaration() -> None:
    method_list = (
        "!Animal methodsFor: 'speaking'!\n"
        "speak\n"
        "    \"Say it. Loudly!\"\n"
        "    ^'Hello. World!' , $! asString , (String with: $!!)\n"
        "!\n"
        "bark: n\n"
        "    | s | s := ''. n timesRepeat: [ s := s , 'woof.' ]. ^s! !"
    )
    text = "Object subclass: #Animal!\n" + method_list + "\nAnimal new speak printNl!\n"
    units = split_script(text)
    assert units == [
        Unit("statement", "Object subclass: #Animal", 1, 1),
        Unit("declaration", method_list, 2, 1),
        Unit("statement", "Animal new speak printNl", 9, 1),
    ]


def test_class_side_method_list_and_several_lists() -> None:
    first = "!Animal class methodsFor: 'creation'!\nnew\n    ^super new init! !"
    second = "!Animal methodsFor: 'init'!\ninit\n    name := ''!\nname ^name! !"
    text = f"{first}\n\n{second}\n"
    units = split_script(text)
    assert [(u.kind, u.code, u.line) for u in units] == [
        ("declaration", first, 1), ("declaration", second, 5)]


def test_method_list_without_leading_bang() -> None:
    # gst enters method-list mode whenever a chunk evaluates methodsFor:.
    text = "A methodsFor: 'x'!\nfoo ^1! !\nA class methodsFor: 'y' stamp: 'z'!\nbar ^2! !"
    assert brief(text) == [
        ("declaration", "A methodsFor: 'x'!\nfoo ^1! !"),
        ("declaration", "A class methodsFor: 'y' stamp: 'z'!\nbar ^2! !"),
    ]


def test_method_list_after_period_terminated_statements() -> None:
    assert brief("x := 3.\n!A methodsFor: 'x'!\nfoo ^1! !") == [
        ("statement", "x := 3"), ("declaration", "!A methodsFor: 'x'!\nfoo ^1! !")]


def test_methods_for_as_argument_is_not_a_method_list() -> None:
    assert kinds("x := y foo: (A methodsFor: 'x')!\nz := 1!") == ["statement", "statement"]


def test_unterminated_method_list_runs_to_the_end() -> None:
    text = "!A methodsFor: 'x'!\nfoo ^1!\n"
    assert brief(text) == [("declaration", "!A methodsFor: 'x'!\nfoo ^1!")]
    assert not is_complete(text)
    assert is_complete(text + "! !")


# --- meta lines ----------------------------------------------------------------


def test_meta_lines_at_statement_starts() -> None:
    text = "  :help\nx := 3.\n:load 'foo.st'\ny := 4.\n\t:quit   "
    assert split_script(text) == [
        Unit("meta", ":help", 1, 3),
        Unit("statement", "x := 3", 2, 1, ("x",)),
        Unit("meta", ":load 'foo.st'", 3, 1),
        Unit("statement", "y := 4", 4, 1, ("y",)),
        Unit("meta", ":quit", 5, 2),
    ]


def test_colon_lines_inside_a_statement_are_code() -> None:
    assert brief("x := [\n :a | a] value: 3.\nx foo\n:bar") == [
        ("statement", "x := [\n :a | a] value: 3"), ("statement", "x foo\n:bar")]


def test_colon_after_code_on_the_same_line_is_not_meta() -> None:
    assert kinds("x := 3. :help") == ["statement", "statement"]


def test_meta_line_is_not_scanned_as_smalltalk() -> None:
    assert brief(":load it's\nx := 1") == [("meta", ":load it's"), ("statement", "x := 1")]
    assert is_complete(":load it's")


# --- malformed input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x := 1. y := 'abc. z := 3", ["x := 1", "y := 'abc. z := 3"]),
        ('x := 1. y := 3 "abc. z := 3', ["x := 1", 'y := 3 "abc. z := 3']),
        ("x := 1. y := [ 3. z := 4", ["x := 1", "y := [ 3. z := 4"]),
        ("x := 1. y := (3. z := 4", ["x := 1", "y := (3. z := 4"]),
        ("x := 1. y := #(3. z", ["x := 1", "y := #(3. z"]),
        ("x := 1. Object subclass: Foo [ bar [ ", ["x := 1", "Object subclass: Foo [ bar ["]),
        ('x := 1. "abc', ["x := 1", '"abc']),
        ("x := 1. 'abc''", ["x := 1", "'abc''"]),
    ],
)
def test_unterminated_input_becomes_a_final_malformed_unit(text: str, expected: list[str]) -> None:
    """Left for gst's own reader to report (mode fileIn), in its own words."""
    units = split_script(text)
    assert [u.code for u in units] == expected
    assert [u.kind for u in units] == ["statement", "malformed"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x := 1. ) y", [("statement", "x := 1"), ("malformed", ") y")]),
        ("x := 1. ] y. z", [("statement", "x := 1"), ("malformed", "] y"), ("statement", "z")]),
        ("3 + 4)", [("malformed", "3 + 4)")]),
        ("x := $", [("statement", "x := $")]),
    ],
)
def test_a_bracket_closed_but_never_opened_makes_its_statement_malformed(text: str, expected: list) -> None:
    assert [(u.kind, u.code) for u in split_script(text)] == expected


def test_unterminated_declaration_is_malformed() -> None:
    assert kinds("Eval [ 1") == ["malformed"]


# --- assigned_names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x := 3 + 4", ("x",)),
        ("x := y := 3", ("x", "y")),
        ("x:=3", ("x",)),
        ("Transcript := 5", ("Transcript",)),
        ("x := 1. y := 2. x := 3", ("x", "y")),
        ("| t | t := 1. u := t", ("u",)),
        ("| t | t := 1. | u | u := t. v := u", ("v",)),
        ("[:x | x := 1] value: 2. x := 3", ("x",)),
        ("[:x :y | y := x] value: 1 value: 2", ()),
        ("[ | t | t := 1 ] value. t := 2", ("t",)),
        ("[:a | | t | t := a. s := t ] value: 1", ("s",)),
        ("[:a || t | t := a ] value: 1", ()),
        ("[:a | [:b | a := b. c := a ] value: 1 ] value: 2", ("c",)),
        ("[:a | a ] value: 1. a := 2", ("a",)),
        ("x := #(a := b)", ("x",)),
        ("x := #(a #(b := c) [1 2] d: e)", ("x",)),
        ("x := #[1 2 3]. y := 2", ("x", "y")),
        ("x foo; bar: (y := 3); baz: [ z := 4 ]", ("y", "z")),
        ("x foo: (y := 1) bar: [:k | k := 2. w := k]", ("y", "w")),
        ("x := {y := 1. z := 2}", ("x", "y", "z")),
        ("x := 'a := b'. \"c := d\" e := $:", ("x", "e")),
        ('x "comment" := 3', ("x",)),
        ("Smalltalk.Foo := 3", ()),
        ("x := Smalltalk.Foo", ("x",)),
        ("x := ##(y := 3)", ("x", "y")),
        ("3 + 4", ()),
        ("", ()),
        ("x := [ 1", ("x",)),
        ("x ifTrue: [ y := 1 ] ifFalse: [:e | e := 2. f := 3 ]", ("y", "f")),
        # Reserved words are never variables: assigning one is gst's compile
        # error to report (the server refuses to declare them).
        ("self := 3", ()),
        ("nil := 3. y := nil", ("y",)),
        ("[ thisContext := 1. true := false. x := super ] value", ("x",)),
        ("selfish := 1", ("selfish",)),
    ],
)
def test_assigned_names(code: str, expected: tuple[str, ...]) -> None:
    assert assigned_names(code) == expected


@pytest.mark.parametrize(
    "code",
    [
        "x := 3 + 4",
        "x := y := 3",
        "[:x | x := 1] value: 2",
        "1 to: 3 do: [:k | y := y + k]",
        "[ | t | t := 1. u := t ] value",
        "[:a | | t | t := a. s := t ] value: 1",
        "x := #(a := b) , #[1 2]",
        "x foo; bar: (y := 3); baz: [ z := 4 ]",
        'x "comment" := 3',
        "x := {y := 1. z := 2}",
        "Smalltalk.Foo := 3",
        "[:a | [:b | a := b. c := a ] value: 1 ] value: 2",
        "self := 3",
        "[ false := true. x := 1 ] value",
    ],
)
def test_split_script_names_agree_with_assigned_names(code: str) -> None:
    (unit,) = split_script(code + ".")
    assert unit.names == assigned_names(code)


def test_statement_names_in_a_script() -> None:
    units = split_script("x := 3 + 4.\nTranscript := 5.\n[:x | x := 1] value: 2.\ny := x")
    assert [u.names for u in units] == [("x",), ("Transcript",), (), ("y",)]


# --- is_complete -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n  ",
        "x := 3",
        "x := 3.",
        "x := 3 +",
        "x at:",
        "x := (3 + 4)",
        "x := [:a | a]",
        "x := {1. 2}",
        "x := #(1 (2) #(3))",
        "x := #[1 2]",
        "x := #{Foo}",
        "x := 'a''b'",
        "x := $'",
        'x := $"',
        "x := $(",
        "x := $[",
        "x := ')' , ']'",
        'x := 3 "(["',
        "Object subclass: Foo [ bar [ ^1 ] ]",
        ":load it's",
        "!A methodsFor: 'x'!\nfoo ^1! !",
        "x := 3!",
        "x := [ 3 ! y",
    ],
)
def test_is_complete_true(text: str) -> None:
    assert is_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "x := (3 + 4",
        "x := [:a | a",
        "x := {1. 2",
        "x := #(1 2",
        "x := #[1 2",
        "x := #{Foo",
        "x := 'abc",
        "x := 'it''s",
        'x := 3 "comment',
        "x := [ 'a]' ",
        "Object subclass: Foo [",
        "Object subclass: Foo [ bar [ ^1 ]",
        "1 to: 3 do: [:i |\n  i printNl.",
        "!A methodsFor: 'x'!\nfoo ^1!",
        "x := 1.\ny := (",
    ],
)
def test_is_complete_false(text: str) -> None:
    assert not is_complete(text)


# --- completion_context ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("name", "")),
        ("Tra", ("name", "Tra")),
        ("x := Tra", ("name", "Tra")),
        ("x foo", ("selector", "foo")),
        ("x ", ("selector", "")),
        ("x at:pu", ("selector", "at:pu")),
        ("x at:", ("selector", "at:")),
        ("x at: pu", ("name", "pu")),
        ("x at: ", ("name", "")),
        ("3 fac", ("selector", "fac")),
        ("3 ", ("selector", "")),
        ("'abc' si", ("selector", "si")),
        ("#foo va", ("selector", "va")),
        ("$a as", ("selector", "as")),
        ("(x) si", ("selector", "si")),
        ("(x)", ("selector", "")),
        ("[:a | a] val", ("selector", "val")),
        ("{1} fi", ("selector", "fi")),
        ("x foo; ba", ("selector", "ba")),
        ("x := 3 + y", ("name", "y")),
        ("x := 3 + ", ("name", "")),
        ("(Tr", ("name", "Tr")),
        ("[ Tr", ("name", "Tr")),
        ("{ Tr", ("name", "Tr")),
        ("x. Tr", ("name", "Tr")),
        ("^Tr", ("name", "Tr")),
        ("x := y ifTrue: [ a", ("name", "a")),
        ("a := b.\nc", ("name", "c")),
        ("x foo! ba", ("name", "ba")),
        ("Smalltalk.Fo", ("name", "Fo")),
        ("#{Smalltalk.Fo", ("name", "Fo")),
        ("| a b | a fo", ("selector", "fo")),
        ("[:x | | t | t fo", ("selector", "fo")),
        (":he", ("meta", ":he")),
        ("  :load fo", ("meta", ":load fo")),
        ("x := 3.\n:he", ("meta", ":he")),
        ("x := 'abc", ("none", "")),
        ("x := 'abc' , 'de", ("none", "")),
        ('x "comm', ("none", "")),
        ("#(foo ba", ("none", "")),
        ("#[1 2 ", ("none", "")),
        ("x := 3", ("none", "")),
        ("x := 'abc'", ("none", "")),
        ("x := #foo", ("none", "")),
        ("x := $a", ("none", "")),
        ("x := $", ("none", "")),
        ("| a b", ("none", "")),
        ("[:x", ("none", "")),
        ("[:x ", ("none", "")),
        ("[ | t", ("none", "")),
    ],
)
def test_completion_context(text: str, expected: tuple[str, str]) -> None:
    assert completion_context(text) == expected


def test_completion_context_skips_earlier_meta_lines() -> None:
    assert completion_context(":help\nTra") == ("name", "Tra")
    assert completion_context("x := 3.\n:help\nx fo") == ("selector", "fo")


# --- tokenize ----------------------------------------------------------------


def test_tokenize_kinds() -> None:
    text = "x := #(1 $a) at: 2 put: 'b'; yourself. \"c\" ^#foo:bar: + 16r1F"
    assert [(t.kind, t.text) for t in tokenize(text)] == [
        ("ident", "x"), ("assign", ":="), ("open", "#("), ("number", "1"),
        ("char", "$a"), ("close", ")"), ("keyword", "at:"), ("number", "2"),
        ("keyword", "put:"), ("string", "'b'"), ("semicolon", ";"),
        ("ident", "yourself"), ("period", "."), ("caret", "^"),
        ("symbol", "#foo:bar:"), ("binop", "+"), ("number", "16r1F"),
    ]


def test_tokenize_positions_and_trivia() -> None:
    tokens = tokenize('a "b" c', trivia=True)
    assert [(t.kind, t.start, t.end) for t in tokens] == [
        ("ident", 0, 1), ("ws", 1, 2), ("comment", 2, 5), ("ws", 5, 6), ("ident", 6, 7)]
    assert "".join(t.text for t in tokens) == 'a "b" c'


def test_tokenize_unterminated() -> None:
    assert tokenize("x 'ab")[-1].kind == "badstring"
    assert tokenize('x "ab')[-1].kind == "badcomment"


# --- scale --------------------------------------------------------------------


def test_ten_thousand_statement_script() -> None:
    text = "".join(f"x := x + {i}.\n" for i in range(10_000))
    units = split_script(text)
    assert len(units) == 10_000
    assert units[0] == Unit("statement", "x := x + 0", 1, 1, ("x",))
    assert units[4321] == Unit("statement", "x := x + 4321", 4322, 1, ("x",))
    assert units[-1] == Unit("statement", "x := x + 9999", 10_000, 1, ("x",))


def test_large_mixed_script() -> None:
    pieces = []
    for i in range(2_500):
        pieces.append(f"x := x + {i}. \"note {i}.\"\n")
        pieces.append(f"Transcript showCr: 'line {i}.', x printString.\n")
        pieces.append("1 to: 3 do: [:k | y := y + k].\n")
        pieces.append("z := #(1 $. 'a.b' #foo:bar:) size + 1.5e3.\n")
    units = split_script("".join(pieces))
    assert len(units) == 10_000
    assert units[9_998] == Unit("statement", "1 to: 3 do: [:k | y := y + k]", 9_999, 1, ("y",))
    assert units[9_999].names == ("z",)
    assert is_complete("".join(pieces))


def test_random_input_never_raises_and_positions_point_at_the_code() -> None:
    pieces = [
        "x", "Foo", "a.b", " ", "\n", ":=", ".", "1.5", "16r1F.A", "$", "$.", "'", "''", '"',
        "!", "[", "]", "(", ")", "{", "}", "#(", "#[", "#", "|", ":", ":x", "foo:", ">>", "+",
        "^", ";", "Eval", "methodsFor:", "'x'", "\t", "é",
    ]
    rng = random.Random(20240601)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        units = split_script(text)
        is_complete(text)
        completion_context(text)
        if "!!" in text:  # unescaped code no longer matches the text
            continue
        starts = [0]
        for line in text.split("\n"):
            starts.append(starts[-1] + len(line) + 1)
        for unit in units:
            assert text.startswith(unit.code, starts[unit.line - 1] + unit.column - 1), (text, unit)
            if unit.kind == "statement":
                assert unit.names == assigned_names(unit.code), (text, unit)


@pytest.mark.parametrize("name", ["self", "super", "nil", "true", "false", "thisContext", "1x", "a b", ""])
def test_reserved_words_and_non_identifiers_are_no_variable_names(name: str) -> None:
    from stui_repl.client.scanner import is_identifier

    assert not is_identifier(name)
    assert is_identifier("selfish") and is_identifier("_x1")


# --- scripts that arrive in parts ---------------------------------------------


def scan_in_parts(text: str, cuts: list[int]) -> tuple[list[Unit], str, list[str]]:
    """Feed text cut at `cuts` to a ScriptScanner: the units, the stretches'
    texts joined, and every stretch's pieces joined."""
    scanner = ScriptScanner()
    stretches = [scanner.feed(text[a:b]) for a, b in itertools.pairwise([0, *cuts, len(text)])]
    stretches.append(scanner.end())
    found = [stretch for stretch in stretches if stretch is not None]
    pieces = [piece for stretch in found for piece in stretch.pieces()]
    return [unit for stretch in found for unit in stretch.units], "".join(s.text for s in found), pieces


FIDELITY = sorted((Path(__file__).parent / "fidelity").glob("*.st"))


@pytest.mark.parametrize("path", FIDELITY, ids=[p.name for p in FIDELITY])
def test_a_script_scanned_in_parts_is_the_script_scanned_whole(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    rng = random.Random(path.name)
    for size in (1, 7, 64, 1000):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, len(text) // size)))
        units, joined, pieces = scan_in_parts(text, cuts)
        assert units == split_script(text), (size, cuts)
        assert joined == text and "".join(pieces) == text


def test_random_scripts_scanned_in_parts() -> None:
    pieces = [
        "x", "Foo", "a.b", " ", "\n", "\n", ":=", ".", ".\n", "1.5", "3.", "14", "$", "$.", "'", "''", '"',
        "!", "!\n", "[", "]", "(", ")", "#(", "|", ":", ":x", "foo:", ">>", "^", ";", "Eval", "methodsFor:",
        "'x'", "é", "Object subclass: A [", "! !", "!!", "| a |", "\n:vars\n", "#!", "\ufeff", '"c"', "{", "}",
        "#[", "16r1F.A", "y := ",
    ]
    rng = random.Random(20261203)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        cuts = sorted({rng.randint(1, max(1, len(text) - 1)) for _ in range(rng.randint(0, 10))} - {len(text)})
        units, joined, _ = scan_in_parts(text, cuts)
        assert units == split_script(text), (text, cuts)
        assert joined == text


def test_a_line_that_ends_a_statement_hands_it_on_before_the_script_ends() -> None:
    scanner = ScriptScanner()
    first = scanner.feed("1 printNl.\n2 print")
    assert first is not None and [u.code for u in first.units] == ["1 printNl"] and first.text == "1 printNl.\n"
    assert scanner.feed("Nl") is None  # no line break yet
    assert scanner.feed(".\n3") is not None
    last = scanner.end()
    assert last is not None and [(u.code, u.line) for u in last.units] == [("3", 3)]


def test_what_might_go_on_waits_for_what_follows() -> None:
    scanner = ScriptScanner()
    assert scanner.feed("x := 3.") is None  # 3.14 or 3 then 14
    assert scanner.feed("14\n") is None  # a statement still without its period
    assert [(u.code, u.column) for u in scanner.end().units] == [("x := 3.14", 1)]
    scanner = ScriptScanner()
    done = scanner.feed("a := 1. b := 2\n")
    assert [u.code for u in done.units] == ["a := 1"]
    assert [(u.code, u.line, u.column) for u in scanner.end().units] == [("b := 2", 1, 9)]


def test_a_unit_that_never_ends_is_too_large() -> None:
    scanner = ScriptScanner(limit=1000)
    scanner.feed("x := '" + "a" * 500 + "\n")
    with pytest.raises(ScriptTooLarge):
        scanner.feed("b" * 600)
