"""Sessions keep the code written in them (issue 12): real stui processes on
real gst images. What the code defines is recorded as the image reports it,
filed into every fresh image before the variables, and bad entries are named
in one line while the rest comes back."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import run_stui
from test_repl import PROMPT, type_line
from test_sessions import quit_repl, said_at_start, session_file, start

from stui_repl.session import toml as session_format

pytestmark = pytest.mark.usefixtures("server_image")

ANIMAL = "Object subclass: Animal [ |name| name [ ^name ] name: a [ name := a ] ]"


def code_of(home: Path, name: str = "default") -> list[tuple[str, str]]:
    session = session_format.parse(session_file(home, name).read_text())
    return [(entry.kind, entry.name) for entry in session.code]


def test_a_class_and_an_instance_of_it_come_back_in_a_new_image(home):
    child = start()
    type_line(child, ANIMAL, "defined Animal")
    type_line(child, "rex := Animal new name: 'Rex'; yourself", r"an Animal\s+Animal")
    type_line(child, "Animal compile: 'speak [ ^''woof'' ]'", "Animal")
    assert quit_repl(child) == 0
    assert code_of(home) == [("class", "Animal"), ("method", "Animal>>name"), ("method", "Animal>>name:"),
                             ("method", "Animal>>speak")]
    child = start()
    said_at_start(child, r"filed in 4 definitions; restored 1 variable")
    type_line(child, "rex name , rex speak", "'Rexwoof'")
    assert quit_repl(child) == 0


def test_every_kind_of_definition_is_recorded_once_per_identity(home):
    lines = [
        "Object subclass: #Shape instanceVariableNames: 'sides' classVariableNames: '' package: 'Geo'.",
        "Shape subclass: #Square.",
        "!Shape methodsFor: 'geometry'!",
        "sides",
        "    ^sides",
        "! !",
        "Shape class extend [ triangle [ ^self new ] ].",
        "Shape comment: 'Something with sides'.",
        "Shape addClassVarName: 'Count'.",
        "1 to: 5 do: [:i | Shape compile: 'size [ ^', i printString, ' ]'].",
        "Shape compile: 'gone [ ]'. Shape removeSelector: #gone.",
        "Object compile: 'stuiMark [ ^1 ]'.",
        "Smalltalk at: #Origin put: 3 @ 4.",
        "Smalltalk at: #Temporary put: 1. Smalltalk removeKey: #Temporary.",
        "Transcript showCr: 'only runs'.",
    ]
    script = "\n".join(lines) + "\n"
    done = run_stui("--session", "geo", input=script)
    assert done.returncode == 0, done.stderr
    assert code_of(home, "geo") == [
        ("class", "Shape"), ("method", "Shape>>sides"), ("method", "Shape>>size"), ("method", "Shape class>>triangle"),
        ("class", "Square"), ("method", "Object>>stuiMark"), ("global", "Origin")]
    session = session_format.parse(session_file(home, "geo").read_text())
    shape = session.code_entry("Shape")
    assert "classVariableNames: 'Count'" in shape.source and "Shape comment: 'Something with sides'" in shape.source
    assert session.code_entry("Shape>>size").source == "size [ ^5 ]"
    assert session.code_entry("Shape>>sides").category == "geometry"
    later = run_stui("--session", "geo", input="Square new sides. Shape triangle size. Origin x. Shape comment.\n")
    assert later.stdout.split() == ["nil", "5", "3", "'Something", "with", "sides'"], later.stderr


def test_bad_entries_are_named_in_one_line_and_the_rest_comes_back(home):
    assert run_stui("--session", "lab", input=ANIMAL + "\n").returncode == 0
    path = session_file(home, "lab")
    text = path.read_text()
    text = text.replace("name [ ^name ]", "name [ ^name + ]")  # a syntax error, by hand
    tables = [
        "[[code]]", 'kind = "method"', 'name = "Dog>>bark"', "source = '''", "bark [ ^'woof' ]", "'''",
        "[[code]]", 'kind = "class"', 'name = "Dog"', "source = '''",
        "Animal subclass: #Dog instanceVariableNames: '' classVariableNames: '' poolDictionaries: '' category: ''", "'''",
        "[[code]]", 'kind = "class"', 'name = "Cat"', "source = '''",
        "Feline subclass: #Cat instanceVariableNames: '' classVariableNames: '' poolDictionaries: '' category: ''", "'''",
        "[[code]]", 'kind = "removed"', 'name = "Animal>>neverThere"', "",
    ]
    extra = "\n".join(tables)
    text = text.replace("\n[history]\n", "\n" + extra + "\n[history]\n", 1)  # [history] stays last
    path.write_text(text)
    os.chmod(path, 0o600)
    before = session_format.parse(path.read_text()).code
    child = start("--session", "lab")
    line = next(l for l in child.screen.text.splitlines() if "could not file in" in l)
    assert "Animal>>name" in line and "Cat" in line and "Feline" in line and "Animal>>neverThere" in line
    assert "Dog>>bark" not in line, "a class later in the log is filed in before its methods"
    type_line(child, "Dog new bark", "'woof'")
    type_line(child, "(Animal new name: 3) name: 4", "an Animal")
    assert quit_repl(child) == 0
    assert session_format.parse(path.read_text()).code == before, "nothing is lost from the file"


def test_code_in_a_file_others_can_write_is_not_filed_in(home):
    assert run_stui("--session", "open", input=ANIMAL + "\n").returncode == 0
    path = session_file(home, "open")
    os.chmod(path, 0o644)
    done = run_stui("--session", "open", input="Smalltalk includesKey: #Animal.\n")
    assert done.stdout.strip() == "false"
    assert re.search(r"was not filed in: the file is open to other users \(mode 644\); chmod 600", done.stderr)
    os.chmod(path, 0o600)
    assert run_stui("--session", "open", input="Smalltalk includesKey: #Animal.\n").stdout.strip() == "true"


def test_redefining_one_method_a_thousand_times_leaves_one_entry(home):
    script = "Object subclass: #Counter.\n" + "".join(
        f"Counter compile: 'value [ ^{n} ]'.\n" for n in range(1000))
    assert run_stui("--session", "loop", "-q", input=script).returncode == 0
    assert code_of(home, "loop") == [("class", "Counter"), ("method", "Counter>>value")]
    assert run_stui("--session", "loop", input="Counter new value.\n").stdout.strip() == "999"


def test_healing_after_the_image_died_files_the_code_in_again(home):
    child = start()
    type_line(child, ANIMAL, "defined Animal")
    child.sendline(":session reconnect")
    child.screen.expect("started a new embedded image; filed in 3 definitions")
    child.screen.expect_exact(PROMPT)
    type_line(child, "(Animal new name: 'x'; yourself) name", "'x'")
    assert quit_repl(child) == 0
