"""Sessions keep the code written in them (issue 12): real stui processes on
real gst images. What the code defines is recorded as the image reports it,
filed into every fresh image before the variables, and bad entries are named
in one line while the rest comes back."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pexpect
import pytest
from conftest import run_stui, spawn_stui
from test_repl import PROMPT, Screen, type_line
from test_sessions import quit_repl, said_at_start, session_file, set_secret, start

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
    assert code_of(home, "geo") == [  # in the order the script defined them
        ("class", "Shape"), ("class", "Square"), ("method", "Shape>>sides"), ("method", "Shape class>>triangle"),
        ("method", "Shape>>size"), ("method", "Object>>stuiMark"), ("global", "Origin")]
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


# -- the commands -------------------------------------------------------------------------


def meta(child, line: str, *patterns: str) -> None:
    """Run a meta-command at the prompt and see each pattern in what it says, in order."""
    child.sendline(line)
    for pattern in patterns:
        child.screen.expect(pattern)
    child.screen.expect_exact(PROMPT)


def test_changes_lists_shows_and_drops_definitions(home):
    child = start("--session", "pets")
    type_line(child, ANIMAL, "defined Animal")
    type_line(child, "Animal class extend [ named: a [ ^self new name: a; yourself ] ]", "defined")
    meta(child, ":changes", r"class\W+Animal\W", r"class method\W+Animal class>>named:")
    meta(child, ":changes show Animal>>name:", re.escape("name: a [ name := a ]"))
    meta(child, ":changes show Nothing", "has no definition named Nothing")
    child.send(":changes show Animal cl\t")
    child.screen.expect_exact(":changes show Animal class>>named:")
    meta(child, "", re.escape("named: a [ ^self new name: a; yourself ]"))
    child.sendline(":changes drop Animal class>>named:")
    child.screen.expect_exact("remove Animal class>>named: from the image too? [y/N]")
    meta(child, "y", "forgot Animal class>>named: in session pets and from the image")
    type_line(child, "Animal respondsTo: #named:", "false")
    child.sendline(":changes drop Animal")
    child.screen.expect_exact("from the image too? [y/N]")
    meta(child, "", "forgot Animal \\(with 2 of its methods\\) in session pets; the image still has it")
    assert quit_repl(child) == 0
    assert code_of(home, "pets") == []


def test_fileout_gives_a_file_gst_and_stui_load_to_the_same_result(home, tmp_path, gst_install):
    lines = [
        "Object subclass: #Account instanceVariableNames: 'balance' classVariableNames: 'Rate' package: 'Bank'.",
        "Account class instanceVariableNames: 'opened'.",
        "Account comment: 'Money, with a ! in it'.",
        "!Account methodsFor: 'money'!",
        "deposit: n",
        "    balance := (balance ifNil: [0]) + n.",
        "    ^self",
        "!",
        "balance",
        "    \"the balance, or 'none!'\"",
        "    ^balance ifNil: ['none!']",
        "! !",
        "Account class extend [ open [ opened := (opened ifNil: [0]) + 1. ^self new ] ].",
        "Account subclass: #Savings.",
        "Savings extend [ deposit: n [ ^super deposit: n * 2 ] ].",
        "Smalltalk at: #Bank put: 'First'.",
    ]
    assert run_stui("--session", "bank", input="\n".join(lines) + "\n").returncode == 0
    out = tmp_path / "bank.st"
    done = run_stui("--session", "bank", "-c", f":fileout {out}")
    assert done.returncode == 0, done.stderr
    assert "wrote 7 definitions" in done.stderr + done.stdout
    check = tmp_path / "check.st"
    probes = [
        "(Account open deposit: 3; deposit: 4; balance) printNl!",
        "Account new balance printNl!",
        "(Savings new deposit: 5; balance) printNl!",
        "Account comment printNl!",
        "(Account >> #deposit:) methodCategory printNl!",
        "Bank printNl!",
        "Account class instVarNames printNl!",
    ]
    check.write_text(out.read_text() + "\n".join(probes) + "\n")
    plain = subprocess.run(gst_install.command(str(check)), env=gst_install.environ(), capture_output=True, text=True,
                           timeout=60, check=False)
    ours = run_stui("-f", str(check))
    expected = ["7", "'none!'", "10", "'Money, with a ! in it'", "'money'", "'First'", "(#opened )"]
    assert plain.stdout.splitlines() == expected, plain.stdout + plain.stderr
    assert ours.stdout.splitlines() == expected, ours.stdout + ours.stderr


def test_load_files_a_file_in_and_keeps_its_definitions(home, tmp_path):
    library = tmp_path / "lib.st"
    library.write_text("Object subclass: Greeter [ greet [ ^'hello' ] ]\nTranscript showCr: 'loaded'!\n")
    child = start("--session", "lib")
    child.sendline(f":load {library}")
    child.screen.expect("loaded")
    child.screen.expect(f"loaded {re.escape(str(library))}")
    child.screen.expect_exact(PROMPT)
    assert quit_repl(child) == 0
    assert code_of(home, "lib") == [("class", "Greeter"), ("method", "Greeter>>greet")]


def test_session_show_lists_the_code(home):
    assert run_stui("--session", "shown", input=ANIMAL + "\n").returncode == 0
    done = run_stui("session", "show", "shown")
    assert re.search(r"class\s+Animal", done.stdout) and re.search(r"method\s+Animal>>name:", done.stdout), done.stdout


# -- scripts, conflicts, trust ------------------------------------------------------------


def test_a_library_filed_in_by_a_script_is_there_at_the_prompt(home, tmp_path):
    library = tmp_path / "mylib.st"
    library.write_text("Object subclass: Lib [ hello [ ^'hi from lib' ] ]\nLib class extend [ make [ ^self new ] ]\n")
    assert run_stui("--session", "lib", "-f", str(library)).returncode == 0
    assert run_stui("--session", "lib", "-c", "Object subclass: #Extra. Extra compile: 'x [ ^42 ]'").returncode == 0
    child = start("--session", "lib")
    said_at_start(child, "filed in 5 definitions")
    type_line(child, "Lib make hello , Extra new x printString", "'hi from lib42'")
    assert quit_repl(child) == 0


def test_an_image_with_other_source_is_not_clobbered_until_asked(home):
    child = start("--session", "clash")
    type_line(child, "Object subclass: Duck [ speak [ ^'quack' ] ]", "defined Duck")
    meta(child, ":session save", "saved session clash")
    path = session_file(home, "clash")
    path.write_text(path.read_text().replace("^'quack'", "^'QUACK'"))  # edited by hand meanwhile
    type_line(child, "Duck compile: 'swim [ ^#paddle ]'", "Duck")  # not saved yet: kept all the same
    meta(child, ":session restore", r"the image has other source for Duck>>speak \(:changes apply")
    type_line(child, "Duck new speak", "'quack'")
    meta(child, ":changes skip", "the image keeps its own Duck>>speak")
    meta(child, ":changes apply Duck>>speak", "filed in 1 definition")
    type_line(child, "Duck new speak", "'QUACK'")
    meta(child, ":session restore", "filed in 3 definitions")  # the same source: nothing to say
    assert quit_repl(child) == 0
    assert code_of(home, "clash") == [("class", "Duck"), ("method", "Duck>>speak"), ("method", "Duck>>swim")]
    assert "^'QUACK'" in path.read_text()


def test_importing_a_session_with_code_shows_it_and_asks(home, tmp_path):
    assert run_stui("--session", "giver", input=ANIMAL + "\n").returncode == 0
    exported = tmp_path / "giver.toml"
    exported.write_text(run_stui("session", "export", "giver").stdout)
    refused = run_stui("session", "import", "--as", "taker", str(exported))
    assert refused.returncode == 2 and "holds 3 definitions that run in the image" in refused.stderr
    assert "--yes" in refused.stderr and not session_file(home, "taker").exists()
    child = spawn_stui("session", "import", "--as", "taker", str(exported))
    child.expect_exact("Object subclass: #Animal")
    child.expect_exact("!Animal methodsFor: 'still unclassified'!")
    child.expect_exact("import it? [y/N]")
    child.sendline("n")
    child.expect("not imported")
    child.expect(pexpect.EOF)
    assert not session_file(home, "taker").exists()
    taken = run_stui("session", "import", "--as", "taker", "--yes", str(exported))
    assert taken.returncode == 0 and session_file(home, "taker").exists()
    assert run_stui("--session", "taker", "-c", "(Animal new name: 7; yourself) name").stdout.strip() == "7"


def test_code_holding_a_secrets_text_is_not_kept(home):
    child = start("--session", "vault")
    set_secret(child, "pw", "hunter2-zz")
    type_line(child, "Smalltalk at: #Leak put: pw , ''", "\\*\\*\\*\\*\\*\\*\\*\\*")
    assert "Leak is not kept in session vault: its source holds a secret" in child.screen.text
    type_line(child, "Smalltalk at: #Fine put: 42", "42")
    assert quit_repl(child) == 0
    text = session_file(home, "vault").read_text()
    assert "hunter2-zz" not in text
    assert code_of(home, "vault") == [("global", "Fine")]


def test_connecting_to_an_image_that_has_other_code_names_what_differs(home, shared_image):
    address = f"127.0.0.1:{shared_image.port}"
    env = {"STUI_TOKEN": shared_image.token}
    theirs = run_stui("--connect", address, "-c", "Object subclass: #Heron. Heron compile: 'call [ ^''kraak'' ]'", env=env)
    assert theirs.returncode == 0, theirs.stderr
    ours = "Object subclass: #Heron. Heron compile: 'call [ ^''squawk'' ]'. Heron compile: 'fly [ ^true ]'.\n"
    assert run_stui("--session", "birds", input=ours).returncode == 0
    child = spawn_stui("--session", "birds", env_extra=env)
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    meta(child, f":connect {address}", r"now on .*filed in 2 of 3 definitions; the image has other source for Heron>>call")
    type_line(child, "Heron new call", "'kraak'")
    type_line(child, "Heron new fly", "true")
    meta(child, ":changes apply", "filed in 1 definition")
    type_line(child, "Heron new call", "'squawk'")
    assert quit_repl(child) == 0


@pytest.mark.parametrize("quiet", [False, True], ids=["values", "quiet"])
def test_code_a_script_defined_before_its_image_died_is_kept(home, quiet):
    """A script's results carry what its statements defined: the session
    keeps the code that ran even when the image dies before the end."""
    import signal
    import sys

    from conftest import ROOT
    from test_faults import gst_child_of

    script = (
        ANIMAL + "\n"
        "Animal compile: 'speak [ ^''woof'' ]'.\n"
        "(Animal new name: 'Rex'; yourself) speak displayNl.\n"
        "(Delay forSeconds: 60) wait.\n"
    )
    stui = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "--session", "died", *(["-q"] if quiet else [])],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stui.stdin.write(script)
        stui.stdin.close()
        gst = gst_child_of(stui.pid)
        while (line := stui.stdout.readline()) and line != "woof\n":
            pass
        assert line == "woof\n"
        os.kill(gst, signal.SIGKILL)
        err = stui.stderr.read()
        assert stui.wait(timeout=60) == 3, err
    finally:
        if stui.poll() is None:
            stui.kill()
            stui.wait()
    assert code_of(home, "died") == [("class", "Animal"), ("method", "Animal>>name"), ("method", "Animal>>name:"),
                                     ("method", "Animal>>speak")]
