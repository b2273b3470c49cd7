"""Scripted mode through the real stui CLI (subprocess pipes) on real gst."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run_stui

ORACLE_SCRIPTS = {
    "printing": """
        3 printNl.
        'hello' displayNl.
        'hello' printNl.
        #sym printNl.
        $a printNl.
        (3/4) printNl.
        (1 to: 5) asArray printNl.
        (OrderedCollection new add: 1; add: 'two'; yourself) printNl.
        Transcript showCr: 'via Transcript'; show: 'no newline '; cr.
        Transcript display: 42; cr; print: 'quoted'; cr.
        stdout nextPutAll: 'straight to stdout'; nl.
    """,
    "bracket classes": """
        Object subclass: Animal [
            | name |
            Animal class >> named: aString [ ^self new setName: aString ]
            setName: aString [ name := aString ]
            speak [ ^name, ' says ', self sound ]
            sound [ ^'...' ]
        ]
        Animal subclass: Dog [
            sound [ ^'woof' ]
        ]
        (Dog named: 'Rex') speak displayNl.
        Integer extend [ double [ ^self * 2 ] ]
        21 double printNl.
        Eval [ | t | t := 5. (t + 1) printNl ]
    """,
    "bang chunks": """
        Object subclass: #Counter
            instanceVariableNames: 'count'
            classVariableNames: ''
            poolDictionaries: ''
            category: 'demo'!

        !Counter methodsFor: 'counting'!
        increment
            count := (count ifNil: [0]) + 1.
            ^count
        !
        count
            ^count
        ! !

        | c |
        c := Counter new.
        c increment; increment.
        c count printNl!
    """,
    "control flow": """
        | total |
        total := 0.
        1 to: 10 do: [:i | total := total + i].
        total printNl.
        (total > 50 ifTrue: ['big'] ifFalse: ['small']) displayNl.
        #(3 1 2) asSortedCollection asArray printNl.
        ((1 to: 10) inject: 0 into: [:a :b | a + b]) printNl.
        [:x :y | x * y] valueWithArguments: #(6 7).
        ('abc' collect: [:ch | ch asUppercase]) displayNl.
        ('a:b:c' tokenize: ':') printNl.
    """,
}


@pytest.mark.parametrize("name", sorted(ORACLE_SCRIPTS))
def test_dash_f_prints_exactly_what_gst_prints(name, gst_install, server_image, tmp_path):
    script = tmp_path / "script.st"
    script.write_text(textwrap.dedent(ORACLE_SCRIPTS[name]).lstrip())
    expected = subprocess.run(
        gst_install.command(str(script)), env=gst_install.environ(),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert expected.returncode == 0 and "error" not in expected.stdout.lower(), expected.stdout
    got = run_stui("-f", str(script))
    assert got.returncode == 0, got.stderr
    assert got.stdout == expected.stdout
    assert got.stderr == ""


@pytest.mark.parametrize("keep_going", [False, True], ids=["stopping", "keep-going"])
def test_dash_f_reads_a_crlf_file_as_gst_does(keep_going, gst_install, server_image, tmp_path):
    """gst reads the file's bytes: a string literal keeps its CR, and what
    the file compiles names the file (the image reads the same text there)."""
    script = tmp_path / "crlf.st"
    script.write_bytes(b"thisContext printNl.\r\n'a\r\nb' size printNl.\r\n")
    expected = subprocess.run(
        gst_install.command(str(script)), env=gst_install.environ(), cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert expected.stdout.endswith("crlf.st:1)\n4\n"), expected.stdout
    got = run_stui("-f", str(script), *(["--keep-going"] if keep_going else []))
    assert (got.returncode, got.stdout, got.stderr) == (0, expected.stdout, "")


def test_piped_input_prints_each_value_after_its_output(server_image):
    done = run_stui(input="3 + 4.\nx := 5.\nTranscript showCr: 'hi'. x * 2.\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "7\n5\nhi\nTranscript\n10\n"


BYTES_SCRIPT = (
    "stdout nextPut: (Character value: 233); nl.\n"
    "'h\u00e9llo \u20ac' displayNl.\n"
    "stdout nextPut: (Character value: 16rE2); flush; nextPutAll: (String with: (Character value: 16r82) with: (Character value: 16rAC)); nl.\n"
    "stderr nextPut: (Character value: 255); nl.\n"
)
BYTES_WRITTEN = b"\xe9\nh\xc3\xa9llo \xe2\x82\xac\n\xe2\x82\xac\n"


@pytest.mark.parametrize("how", ["-f", "-c", "piped"])
def test_output_is_the_very_bytes_the_image_wrote(how, server_image, tmp_path):
    """Bytes that are not UTF-8, and UTF-8 written in halves, come out as
    gst writes them, whatever stui's stdout encoding."""
    script = tmp_path / "bytes.st"
    script.write_text(BYTES_SCRIPT)
    args = {"-f": ["-f", str(script)], "-c": ["-q", "-c", BYTES_SCRIPT], "piped": ["-q"]}[how]
    done = subprocess.run(
        [sys.executable, "-m", "stui_repl", *args], input=BYTES_SCRIPT.encode() if how == "piped" else None,
        capture_output=True, timeout=60, check=False, env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == BYTES_WRITTEN
    assert done.stderr == b"\xff\n"


@pytest.mark.parametrize("how", ["-f", "-c", "piped"])
def test_a_latin1_script_reaches_the_image_as_its_bytes(how, server_image, tmp_path):
    """A string literal holding 0xE9 (a Latin-1 file) is one byte in the
    image, as under gst FILE: not U+FFFD, not the UTF-8 of é."""
    source = b"'caf\xe9' displayNl. 'caf\xe9' size printNl.\n"
    script = tmp_path / "latin1.st"
    script.write_bytes(source)
    args = {"-f": ["-f", str(script)], "-c": ["-q", "-c", os.fsdecode(source)], "piped": ["-q"]}[how]
    done = subprocess.run(
        [sys.executable, "-m", "stui_repl", *args], input=source if how == "piped" else None,
        capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"caf\xe9\n4\n"


def test_values_are_printed_correctly_despite_the_image_defects(server_image):
    done = run_stui(input="2 sqrt.\n0.1.\n2 raisedTo: 100.\n100 factorial printString size.\n'h\u00e9llo \u20ac'.\n")
    assert done.stdout.splitlines() == [
        "1.4142135623730951", "0.1", "1267650600228229401496703205376", "158", "'h\u00e9llo \u20ac'"]


def test_file_level_temporaries_and_workspace_variables(server_image):
    done = run_stui(input="| a b |\na := 3. b := a * 2.\nb.\nc := a + b.\nc.\n")
    assert done.stdout == "3\n6\n6\n9\n9\n"


def test_the_first_error_stops_the_script_with_status_1(server_image):
    done = run_stui(input="1.\n'before' displayNl.\n1/0.\n'after' displayNl.\n")
    assert done.returncode == 1
    assert done.stdout == "1\nbefore\n'before'\n"
    assert done.stderr == "stdin:3: ZeroDivide: The program attempted to divide a number by zero\n"


def test_keep_going_runs_everything_and_still_fails(server_image):
    done = run_stui("--keep-going", input="nil foo.\n'after' displayNl.\n")
    assert done.returncode == 1
    assert done.stdout == "after\n'after'\n"
    assert done.stderr == "stdin:1: MessageNotUnderstood: nil does not understand #foo\n"


def test_a_syntax_error_names_the_file_line_and_column(server_image, tmp_path):
    script = tmp_path / "broken.st"
    script.write_text("'one' displayNl.\n\n'two' displayNl.\nx := (3 + .\n'never' displayNl.\n")
    done = run_stui("-f", str(script))
    assert done.returncode == 1
    assert done.stdout == "one\ntwo\n"
    assert done.stderr == f"{script}:4: expected object\n"  # gst's own words


def test_a_compile_error_in_a_class_definition_names_its_line(server_image, tmp_path):
    script = tmp_path / "classes.st"
    script.write_text("'start' displayNl.\nObject subclass: Broken [\n    ok [ ^1 ]\n    bad [ ^zork ]\n]\n")
    done = run_stui("-f", str(script))
    assert done.returncode == 1
    assert done.stderr.startswith(f"{script}:4:") and "zork" in done.stderr


def test_dash_c_and_quiet_and_print(server_image):
    assert run_stui("-c", "3 + 4").stdout == "7\n"
    assert run_stui("-q", "-c", "3 printNl. 4").stdout == "3\n"
    assert run_stui("-c", "x := 6. x * 7").stdout == "6\n42\n"


def test_dash_f_with_print_shows_values(server_image, tmp_path):
    script = tmp_path / "p.st"
    script.write_text("3 + 4.\n'x' displayNl.\n")
    assert run_stui("-f", str(script), "--print").stdout == "7\nx\n'x'\n"


def test_format_json_writes_one_object_per_statement(server_image):
    done = run_stui("--format", "json", input="3 + 4.\n'hi' displayNl.\n1/0.\n")
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3]
    assert records[0]["value"] == "7" and records[0]["class"] == "SmallInteger" and records[0]["ok"]
    assert records[1]["output"] == "hi\n"
    assert records[2]["ok"] is False and records[2]["error"]["class"] == "ZeroDivide"
    assert done.returncode == 1


def test_meta_command_lines_in_a_script(server_image):
    done = run_stui(input="x := 42.\n:vars\n:quit\n'never' displayNl.\n")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "42" and any(line.split()[:2] == ["x", "SmallInteger"] for line in lines)
    assert "never" not in done.stdout


def test_an_unknown_meta_command_is_one_line(server_image):
    done = run_stui(input=":frobnicate\n")
    assert done.stderr == "stui: unknown meta-command :frobnicate (:help lists them)\n"


def test_no_escape_codes_when_not_a_terminal(server_image):
    done = run_stui(input="3.\n:vars\n1/0.\n")
    assert "\x1b" not in done.stdout + done.stderr


def test_usage_errors_exit_2(server_image, tmp_path):
    done = run_stui("--no-such-option")
    assert done.returncode == 2 and done.stderr.startswith("stui: ") and done.stderr.count("\n") == 1
    done = run_stui("-f", str(tmp_path / "missing.st"))
    assert done.returncode == 2 and "cannot read" in done.stderr
    done = run_stui("-c", "1", "-f", "x")
    assert done.returncode == 2


def test_an_unreachable_image_exits_3(server_image):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_stui("--connect", f"127.0.0.1:{port}", "-c", "1", env={"STUI_TOKEN": "x" * 32})
    assert done.returncode == 3
    assert done.stderr.startswith("stui: cannot reach an image at 127.0.0.1:") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_connect_to_a_running_server(shared_image):
    done = run_stui("--connect", shared_image.address, "-c", "3 + 4", env={"STUI_TOKEN": shared_image.token})
    assert done.stdout == "7\n"
    done = run_stui("--connect", shared_image.address, "-c", "3 + 4", env={"STUI_TOKEN": "wrong" * 8})
    assert done.returncode == 3 and "refused the token" in done.stderr
    assert shared_image.token not in done.stderr + done.stdout


def test_a_long_script_runs_completely(server_image):
    lines = ["| x |", "x := 0."] + [f"x := x + {i}." for i in range(3000)] + ["x printNl."]
    done = run_stui("-q", input="\n".join(lines) + "\n", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{sum(range(3000))}\n"


PHARO_CLASS = (
    "Object subclass: #Animal instanceVariableNames: 'name' classVariableNames: 'Count' package: 'Demo'.\n"
    "Animal variableSubclass: #Herd instanceVariableNames: '' classVariableNames: '' category: 'Demo'.\n"
    "Animal extend [ name [ ^name ifNil: ['nameless'] ] ]\n"
    "Animal new name displayNl.\n"
    "(Herd new: 2) size printNl.\n"
    "Animal category displayNl.\n"
)


def test_pharo_class_messages_work_in_every_scripted_mode(server_image, tmp_path):
    """A deliberate difference: plain gst 3.2.5 does not understand them."""
    script = tmp_path / "pharo.st"
    script.write_text(PHARO_CLASS)
    assert run_stui("-f", str(script)).stdout == "nameless\n2\nDemo\n"
    assert run_stui("-q", input=PHARO_CLASS).stdout == "nameless\n2\nDemo\n"
    assert run_stui("-q", "-c", PHARO_CLASS).stdout == "nameless\n2\nDemo\n"


@pytest.mark.parametrize("mode", ["-c", "-f"])
def test_a_reader_that_stops_reading_ends_stui_quietly(server_image, tmp_path, mode):
    """`stui -c ... | head -3`: as gst, stui ends when its reader goes, without a word."""
    code = "[true] whileTrue: [Transcript showCr: 'x']"
    if mode == "-f":  # filed in: the output arrives while stui waits for the file-in's reply
        (tmp_path / "forever.st").write_text(code + ".\n")
        code = str(tmp_path / "forever.st")
    stui = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", mode, code],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert [stui.stdout.readline() for _ in range(3)] == ["x\n"] * 3
    stui.stdout.close()
    assert stui.wait(timeout=30) == 141
    assert stui.stderr.read() == ""


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("#(1 2", "parse error, expected ')'"),
        ("]", "expected expression"),
        ("3 + 4)", "expected expression"),
        ("x := 'abc", "Unterminated string, attempting recovery"),
    ],
)
def test_unbalanced_code_is_a_syntax_error_in_gsts_words(server_image, code, message):
    """Once taken for success: `#(1 2` printed nil and `]` a BlockClosure.
    gst's own reader reports such code now, as `gst FILE` does."""
    for done in (run_stui("-c", code), run_stui(input=code + "\n")):
        assert done.returncode == 1, done
        assert done.stdout == ""
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr


def closed_fd_run(fd: int, *args: str) -> subprocess.CompletedProcess:
    """stui with fd closed before it starts (`stui ... >&-`)."""
    return subprocess.run(
        [sys.executable, "-m", "stui_repl", *args], capture_output=True, text=True, timeout=60, check=False,
        preexec_fn=lambda: os.close(fd), cwd=Path(__file__).resolve().parents[1],
    )


def test_closed_standard_streams_are_a_note_not_a_crash(server_image):
    done = closed_fd_run(1, "-c", "Transcript showCr: 'lost'. 3")
    assert done.returncode == 0 and done.stderr == "stui: stdout is closed: what goes there is lost\n"
    assert closed_fd_run(2, "-c", "1/0").returncode == 1  # the error line had nowhere to go
    done = closed_fd_run(0, "-c", "3 + 4")
    assert (done.returncode, done.stdout, done.stderr) == (0, "7\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-f", ""), "-f needs a file name"),
        (("-f", "/dev/zero"), "/dev/zero holds a statement longer than 64 MiB: not a script"),
    ],
)
def test_what_is_not_a_script_is_a_usage_error(args, message):
    done = run_stui(*args, input="3 + 4\n")
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and done.stderr.count("\n") == 1


def test_a_binary_token_file_is_a_usage_error(tmp_path):
    token = tmp_path / "token"
    token.write_bytes(bytes(range(256)))
    token.chmod(0o600)  # else refused before it is read: others may read it
    done = run_stui("--connect", "127.0.0.1:9", "--token-file", str(token), "-c", "1")
    assert done.returncode == 2 and done.stderr == f"stui: the token file {token} is not text: a token is one line of text\n"


def test_a_script_larger_than_a_request_line_runs_whole(server_image, tmp_path):
    """6 MB of script: more than the image takes in one request line (4 MiB),
    so it goes in pieces, in every scripted mode."""
    literal = "a" * 2_000_000
    text = "| s |\n" + "".join(f"s := '{literal}'. s size printNl.\n" for _ in range(3)) + "'end' displayNl.\n"
    script = tmp_path / "big.st"
    script.write_text(text)
    expected = "2000000\n" * 3 + "end\n"
    for done in (run_stui("-f", str(script)), run_stui("-f", str(script), "--keep-going"), run_stui("-q", input=text)):
        assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")


# -- scripts as they arrive ------------------------------------------------------------------------


class Lines:
    """Lines of a pipe as they come, each waited for at most `seconds` (""
    when none comes in time, so that a test fails rather than hangs). Read
    from the descriptor itself: a buffered reader may hold lines that
    select() no longer sees."""

    def __init__(self, stream, seconds: float = 60) -> None:
        self.fd = stream.fileno()
        self.seconds = seconds
        self.buffer = b""

    def next(self) -> str:
        import select
        import time

        deadline = time.monotonic() + self.seconds
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            data = os.read(self.fd, 65536) if ready else b""
            if not data:
                return ""
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode() + "\n"


@pytest.mark.parametrize("args", [(), ("-q",)], ids=["values", "filed-in"])
def test_a_piped_statement_runs_before_the_next_has_come(server_image, args):
    """As `cmd | gst`: what has come runs, whatever is still to come."""
    stui = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", *args], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )
    values = not args
    output = Lines(stui.stdout)
    try:
        stui.stdin.write("| n |\nn := 20.\n(n + 1) printNl.\n")
        stui.stdin.flush()
        lines = [output.next() for _ in range(3 if values else 1)]
        assert lines == (["20\n", "21\n", "21\n"] if values else ["21\n"])
        stui.stdin.write("(n + 2) printNl.\n")
        stui.stdin.flush()
        lines = [output.next() for _ in range(2 if values else 1)]
        assert lines == (["22\n", "22\n"] if values else ["22\n"])
        stui.stdin.close()
        assert stui.wait(timeout=60) == 0, stui.stderr.read()
    finally:
        stui.kill()
        stui.wait()


def test_a_meta_line_after_the_beginning_of_a_filed_in_script_runs_in_its_place(server_image, tmp_path):
    """Past its beginning a script being filed in is not looked at ahead: a
    `:` line ends the file-in there, runs, and a new one takes the rest."""
    filler = '"' + "a comment to make the script long " * 4 + '"\n'
    text = "'first' displayNl.\n" + filler * 3000 + "'before' displayNl.\n:vars\n'after' displayNl.\n1/0.\n"
    script = tmp_path / "long.st"
    script.write_text(text)
    done = run_stui("-f", str(script))
    assert done.stdout == "first\nbefore\nworkspace variables: none\nafter\n"
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "long.st:3005: ZeroDivide" in done.stderr, done.stderr


def test_a_long_piped_script_is_read_as_it_runs_not_held_whole(server_image, tmp_path):
    """30 MB of script: the client holds a part of it at a time (before, it
    held all of it several times over). Its memory is read at the end,
    while the script's last statement waits to be let go."""
    release = tmp_path / "release"
    filler = '"' + "x" * 140 + '"\n'
    script = tmp_path / "long.st"
    with script.open("w") as out:
        out.write("| n |\nn := 0.\n")
        for _ in range(200):
            out.write(filler * 1000 + "n := n + 1.\n")
        out.write(f"n printNl.\n[(File name: '{release}') exists] whileFalse: [(Delay forMilliseconds: 20) wait].\n")
    with script.open("rb") as stdin:
        stui = subprocess.Popen(
            [sys.executable, "-m", "stui_repl", "-q"], cwd=ROOT, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    try:
        assert Lines(stui.stdout, 300).next() == "200\n"
        status = Path(f"/proc/{stui.pid}/status").read_text()
        peak_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
        release.touch()
        assert stui.wait(timeout=60) == 0, stui.stderr.read()
    finally:
        stui.kill()
        stui.wait()
    assert peak_kib < 64 * 1024, f"the client's memory peaked at {peak_kib >> 10} MiB for a 30 MB script"
