"""The code tools (:source, :browse, :senders, :implementors, :references):
their protocol operations on a real image, the commands at a real prompt,
and the parsing of what a person types."""

from __future__ import annotations

import re
import sys

import pytest
import test_repl
from conftest import run_stui, spawn_stui
from test_repl import PROMPT, Screen, submit
from test_server_protocol import RawClient

from stui_repl.commands.browse import MethodRef, parse_method, parse_selector, tidy_source
from stui_repl.errors import UsageError

repl = test_repl.repl  # the fixture: a real stui at a prompt

ANIMAL = (
    "Object subclass: Animal [ | name | <comment: 'An animal with a name'> "
    "name: aString [ <category: 'accessing'> name := aString ] "
    "describe [ <category: 'printing'> ^'I am ', name printString ] ]\n"
    "Animal class extend [ named: aString [ <category: 'instance creation'> ^self new name: aString ] ]\n"
    "Object subclass: Zoo [ animals [ ^Array with: (Animal named: 'Rex') ] ]\n"
)


@pytest.fixture(scope="module")
def client(shared_image):
    return RawClient.with_code(shared_image, ANIMAL)


def labels(reply: dict) -> list[str]:
    assert reply["ok"], reply
    return [f"{m['class']}{' class' if m['meta'] else ''}>>{m['selector']}" for m in reply["methods"]]


# -- the protocol ------------------------------------------------------------------------


def test_source_of_a_kernel_method_is_read_from_the_kernel_directory(client):
    """The image was built for another kernel directory: gst's own
    sourceCodeAt: fails there, the server does not."""
    reply = client.request({"id": 1, "op": "source", "class": "Object", "selector": "printOn:"})
    assert reply["ok"], reply
    [method] = reply["methods"]
    assert (method["class"], method["meta"], method["category"]) == ("Object", False, "printing")
    assert method["source"].startswith("printOn: aStream [")
    assert "nextPutAll: self class article" in method["source"]


def test_source_of_a_method_of_a_package_is_read_from_its_archive(client):
    """The server image loads Sockets from Sockets.star: its methods hold
    the archive member, though their file names look relative."""
    reply = client.request({"id": 1, "op": "source", "class": "Sockets.Socket", "selector": "flush"})
    assert reply["ok"], reply
    [method] = reply["methods"]
    assert method["source"].startswith("flush [")
    assert "writeBuffer flush" in method["source"]


def test_source_of_a_method_defined_at_the_prompt_and_of_a_class_side_one(client):
    reply = client.request({"id": 2, "op": "source", "class": "Animal", "selector": "name:"})
    assert reply["methods"][0]["source"] == "name: aString [ <category: 'accessing'> name := aString ]"
    reply = client.request({"id": 3, "op": "source", "class": "Animal", "meta": True, "selector": "named:"})
    assert labels(reply) == ["Animal class>>named:"]
    assert reply["methods"][0]["category"] == "instance creation"


def test_source_without_a_class_gives_every_implementor(client):
    reply = client.request({"id": 4, "op": "source", "selector": "printOn:"})
    found = labels(reply)
    assert {"Object>>printOn:", "Point>>printOn:"} <= set(found)
    assert found == sorted(found, key=str.lower)
    assert all(m["source"] is None or "printOn:" in m["source"] for m in reply["methods"])


def test_browse_describes_a_class_and_both_sides(client):
    reply = client.request({"id": 5, "op": "browse", "class": "Animal"})
    assert reply["ok"], reply
    assert reply["superclass"] == "Object"
    assert reply["comment"] == "An animal with a name"
    assert reply["instanceVariables"] == ["name"]
    assert "Object subclass: #Animal" in reply["definition"]
    assert "instanceVariableNames: 'name'" in reply["definition"]
    assert reply["instanceCategories"] == [
        {"name": "accessing", "selectors": ["name:"]},
        {"name": "printing", "selectors": ["describe"]},
    ]
    assert reply["classCategories"] == [{"name": "instance creation", "selectors": ["named:"]}]


def test_senders_finds_sends_by_literal_and_by_special_bytecode(client):
    """#new is one of gst's special selectors: sent by bytecode, with no
    literal, which CompiledCode>>refersTo: misses."""
    assert "Zoo>>animals" in labels(client.request({"id": 6, "op": "senders", "selector": "named:"}))
    reply = client.request({"id": 7, "op": "senders", "selector": "new"})
    found = labels(reply)
    assert "Animal class>>named:" in found
    assert found == sorted(found, key=str.lower)
    context = {label: m["context"] for label, m in zip(found, reply["methods"])}
    assert context["Animal class>>named:"] == "named: aString [ <category: 'instance creation'> ^self new name: aString ]"
    # printOn: is sent from inside a block in Collection>>printOn: (a do: loop)
    reply = client.request({"id": 8, "op": "senders", "selector": "printOn:"})
    senders = dict(zip(labels(reply), (m["context"] for m in reply["methods"])))
    assert "printOn: aStream" in senders["Collection>>printOn:"]


def test_implementors_and_references(client):
    assert labels(client.request({"id": 9, "op": "implementors", "selector": "named:"}))[0] == "Animal class>>named:"
    assert labels(client.request({"id": 10, "op": "references", "name": "Animal"})) == ["Zoo>>animals"]
    reply = client.request({"id": 11, "op": "references", "name": "SystemExceptions.NotYetImplemented"})
    assert "Object>>notYetImplemented" in labels(reply)


def test_the_servers_own_classes_are_left_out_of_lists(client):
    found = labels(client.request({"id": 12, "op": "implementors", "selector": "printOn:"}))
    assert not [label for label in found if label.startswith("Stui")]


@pytest.mark.parametrize(
    ("request_", "kind", "message"),
    [
        ({"op": "source", "class": "Zork", "selector": "x"}, "not-found", "no class named Zork"),
        ({"op": "source", "class": "Animal", "selector": "zork"}, "not-found", "Animal does not define #zork"),
        ({"op": "source", "selector": "zorkZork:"}, "not-found", "nothing implements #zorkZork:"),
        ({"op": "browse", "class": "Zork"}, "not-found", "no class named Zork"),
        ({"op": "references", "name": "Zork"}, "not-found", "no global named Zork"),
        ({"op": "source", "class": "Animal", "selector": "a b"}, "malformed", "selector: 'a b' is not a selector"),
        ({"op": "senders", "selector": "at::"}, "malformed", "selector: 'at::' is not a selector"),
        ({"op": "senders"}, "malformed", "selector must be a string"),
        ({"op": "senders", "selector": 3}, "malformed", "selector must be a string"),
        ({"op": "browse", "class": "1x"}, "malformed", "class: '1x' is not a class name"),
        ({"op": "source", "class": "Animal", "meta": "yes", "selector": "x"}, "malformed", "meta must be true or false"),
        ({"op": "references", "name": "a-b"}, "malformed", "name: 'a-b' is not a global's name"),
    ],
)
def test_bad_requests_get_specific_errors(client, request_, kind, message):
    reply = client.request({"id": "bad", **request_})
    assert reply["ok"] is False
    assert (reply["error"]["kind"], reply["error"]["message"]) == (kind, message)


def test_a_selector_no_method_uses_has_no_senders(client):
    assert client.request({"id": 13, "op": "senders", "selector": "neverSentAnywhere:"})["methods"] == []


# -- the commands --------------------------------------------------------------------------


def test_commands_at_the_prompt(repl):
    for line in ANIMAL.strip().split("\n"):
        submit(repl, line)
        repl.screen.expect_exact("defined")
        repl.screen.expect_exact(PROMPT)
    submit(repl, ":source Animal class>>named:")
    repl.screen.expect_exact("\"Animal class>>named:\" in 'instance creation'")
    repl.screen.expect_exact("^self new name: aString")
    submit(repl, ":source Object>>printOn:")
    repl.screen.expect_exact("nextPutAll: self class article;")
    submit(repl, ":browse Animal")
    repl.screen.expect_exact('"An animal with a name"')
    repl.screen.expect(r"accessing: name:")
    repl.screen.expect(r"Animal class")
    repl.screen.expect(r"instance creation: named:")
    submit(repl, ":senders #named:")
    repl.screen.expect(r"Zoo>>animals\s+animals \[ \^Array with: \(Animal named: 'Rex'\) \]")
    repl.screen.expect(r"\(\d+ methods\)")
    submit(repl, ":implementors #describe")
    repl.screen.expect(r"Animal>>describe\s+describe \[ <category: 'printing'> \^'I am ', name printString \]")
    repl.screen.expect_exact("(1 method)")
    submit(repl, ":references Animal")
    repl.screen.expect(r"Zoo>>animals")
    submit(repl, ":source Zork>>x")
    repl.screen.expect_exact("no class named Zork")
    submit(repl, ":senders a b")
    repl.screen.expect_exact("not a selector: 'a b'")
    repl.screen.expect_exact(PROMPT)


def test_tab_completes_classes_and_selectors_in_the_commands(repl):
    repl.send(":browse Rectang\t")
    repl.screen.expect_exact("Rectangle")
    submit(repl, "")
    repl.screen.expect_exact("Object subclass: #Rectangle")
    repl.screen.expect_exact(PROMPT)
    repl.send(":implementors #printStr\t")
    repl.screen.expect_exact("#printString")
    repl.send("\x1b[F")  # whatever was offered: finish the line as a complete selector
    submit(repl, "")
    repl.screen.expect(r"Object>>printString")


def test_completion_after_a_class_offers_only_what_that_side_implements(client):
    """`Point>>` completes with Point's own selectors, `Point class>>` with
    its class side's (what :source and :edit can open); an unknown class,
    with nothing."""
    from types import SimpleNamespace

    from stui_repl.commands.browse import complete_method

    connection = SimpleNamespace(request=lambda message: client.request({"id": "c", **message}))  # as Connection numbers them
    context = SimpleNamespace(evaluator=SimpleNamespace(connection=connection))
    assert complete_method(context, "Point>>tr") == ["Point>>transpose", "Point>>truncateTo:", "Point>>truncatedGrid:"]
    assert complete_method(context, "Point class>>") == ["Point class>>new", "Point class>>x:y:"]
    assert complete_method(context, "Zork>>") == []


def test_long_lists_go_through_the_pager(server_image, tmp_path):
    pager = tmp_path / "pager.sh"
    seen = tmp_path / "seen"
    pager.write_text(f"#!/bin/sh\ncat > {seen}\n")
    pager.chmod(0o755)
    child = spawn_stui(env_extra={"PAGER": str(pager)})
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    submit(child, ":senders #new")
    submit(child, "3 + 4")
    child.screen.expect(r"7\s+SmallInteger")
    child.sendcontrol("d")
    child.close(force=True)
    text = seen.read_text()
    assert "Set new" in text
    assert text.count("\n") > 100


def test_a_script_prints_plain_source():
    done = run_stui("-c", ":source Point>>x:")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("\"Point>>x:\" in 'accessing'\nx: aNumber [\n")
    assert "\x1b[" not in done.stdout


# -- what a person types -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "ref"),
    [
        ("Animal>>name:", MethodRef("Animal", "name:")),
        ("Animal class>>new", MethodRef("Animal", "new", meta=True)),
        ("Animal class >> #new", MethodRef("Animal", "new", meta=True)),
        ("#name:", MethodRef(None, "name:")),
        ("at:put:", MethodRef(None, "at:put:")),
        ("SystemExceptions.NotYetImplemented>>signal", MethodRef("SystemExceptions.NotYetImplemented", "signal")),
        ("Point>>+", MethodRef("Point", "+")),
    ],
)
def test_method_references(typed, ref):
    assert parse_method(typed) == ref


@pytest.mark.parametrize("typed", ["a b", "Animal>>", ">>x", "Animal>>name: x", "Animal"])
def test_bad_method_references_say_so(typed):
    with pytest.raises(UsageError):
        parse_method(typed)


def test_selectors():
    assert parse_selector("#printOn:") == "printOn:"
    assert parse_selector(" printString ") == "printString"
    with pytest.raises(UsageError):
        parse_selector("print On:")


def test_tidy_source_shifts_a_class_bodys_indentation_left():
    kernel = "printOn: aStream [\n\t\"Print\"\n\n\t<category: 'printing'>\n\taStream print: 3\n    ]"
    assert tidy_source(kernel) == "printOn: aStream [\n    \"Print\"\n\n    <category: 'printing'>\n    aStream print: 3\n]"
    assert tidy_source("x [ ^1 ]") == "x [ ^1 ]"


# -- :edit, with a scripted editor -------------------------------------------------------

EDITOR = """\
import pathlib, sys
here = pathlib.Path(sys.argv[0]).parent
target = pathlib.Path(sys.argv[-1])
count = len(list(here.glob("seen-*")))
(here / f"seen-{count + 1}").write_text(target.read_text())
reply = here / f"reply-{count + 1}"
text = reply.read_text() if reply.exists() else ""
if text.startswith("REPLACE\\n"):  # REPLACE, a line, what replaces it: an edit of what was shown
    _, old, new = text.split("\\n", 2)
    text = target.read_text().replace(old, new, 1)
target.write_text(text)
"""


@pytest.fixture
def editor(tmp_path):
    """An $EDITOR that records what it was shown (seen-N) and saves reply-N."""
    (tmp_path / "editor.py").write_text(EDITOR)

    def replies(*texts: str) -> None:
        for number, text in enumerate(texts, 1):
            (tmp_path / f"reply-{number}").write_text(text)

    def seen(number: int) -> str:
        return (tmp_path / f"seen-{number}").read_text()

    return {"EDITOR": f"{sys.executable} {tmp_path / 'editor.py'}", "replies": replies, "seen": seen, "dir": tmp_path}


def start_with_editor(editor, *replies: str) -> object:
    """stui at a prompt with the scripted editor (which will save `replies`), Animal defined."""
    editor["replies"](*replies)
    child = spawn_stui(env_extra={"EDITOR": editor["EDITOR"], "VISUAL": ""})
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    for line in ANIMAL.strip().split("\n"):
        submit(child, line)
        child.screen.expect_exact("defined")
        child.screen.expect_exact(PROMPT)
    return child


def leave(child) -> None:
    child.sendcontrol("d")
    child.close(force=True)


def edit_and_use(child, command: str, said: str, code: str, value: str) -> None:
    """:edit something, see stui say `said`, then evaluate code and see value."""
    submit(child, command)
    child.screen.expect_exact(said)
    submit(child, code)
    child.screen.expect(value)


def test_edit_a_method_until_it_compiles(editor):
    child = start_with_editor(
        editor,
        "name: aString [\n    name := aString.\n    ^self foo: \n]\n",
        "\"stui: whatever stui said\"\nname: aString [\n    <category: 'accessing'>\n    name := aString asUppercase\n]\n",
    )
    edit_and_use(child, ":edit Animal>>name:", "compiled Animal>>name:", "(Animal named: 'rex') describe", r"'I am ''REX'''\s+String")
    leave(child)
    assert editor["seen"](1).startswith("name: aString [ <category: 'accessing'> name := aString ]")
    second = editor["seen"](2).split("\n")
    assert second[0].startswith('"stui: it did not compile: line 4: ')
    assert second[2:5] == ["name: aString [", "    name := aString.", "    ^self foo: "]
    assert second[6].startswith('"stui: ^ line 4: ')  # under the line gst named
    assert second[5] == "]"


def test_edit_creates_a_class_and_a_method_and_an_empty_file_abandons(editor):
    child = start_with_editor(
        editor,
        "Object subclass: Dog [\n    bark [ ^'woof' ]\n]\n",
        "",
        "",
    )
    edit_and_use(child, ":edit Dog", "compiled Dog", "Dog new bark", r"'woof'\s+String")
    submit(child, ":edit Dog>>wag")
    child.screen.expect_exact("Dog>>wag: the file was emptied, nothing compiled")
    submit(child, ":edit Animal")
    child.screen.expect_exact("Animal: the file was emptied, nothing compiled")
    child.screen.expect_exact(PROMPT)
    leave(child)
    assert editor["seen"](1) == "Object subclass: Dog [\n    <comment: 'A new class.'>\n]\n"
    assert editor["seen"](2) == "wag [\n    <category: 'still unclassified'>\n    ^self\n]\n"
    whole = editor["seen"](3)
    assert whole.startswith("Object subclass: Animal [\n    | name |\n")
    assert "    <comment: 'An animal with a name'>\n" in whole
    assert "    Animal class >> named: aString [ <category: 'instance creation'> ^self new name: aString ]\n" in whole
    assert "    name: aString [ <category: 'accessing'> name := aString ]\n" in whole


def test_source_is_highlighted_at_a_colour_terminal(server_image):
    child = spawn_stui(env_extra={"NO_COLOR": ""})
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    submit(child, ":source Point>>x:")
    child.screen.expect_exact("x := aNumber")
    child.sendcontrol("d")
    child.close(force=True)
    shown = child.screen.raw[child.screen.raw.index("in 'accessing'"):]  # the source, after its heading
    assert re.search(r"\x1b\[(?:[0-9]+;)*(?:3[0-7]|9[0-7]|38;5;[0-9]+)(?:;[0-9]+)*m", shown), "the source is coloured"


def test_edit_a_whole_class_and_a_class_side_method(editor):
    child = start_with_editor(
        editor,
        "REPLACE\n    name: aString [ <category: 'accessing'> name := aString ]\n    legs [ ^4 ]\n\n    name: aString [ name := aString ]",
        "REPLACE\n^self new name: aString ]\n^(self new name: aString) yourself ]",
    )
    edit_and_use(child, ":edit Animal", "compiled Animal", "(Animal named: 'rex') legs", r"4\s+SmallInteger")
    edit_and_use(child, ":edit Animal class>>named:", "compiled", "(Animal named: 'rex') describe", r"'I am ''rex'''\s+String")
    leave(child)
    assert editor["seen"](2) == "named: aString [ <category: 'instance creation'> ^self new name: aString ]\n"
