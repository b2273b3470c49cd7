"""The interactive REPL on a pty (pexpect), against a real embedded gst."""

from __future__ import annotations

import re
import time

import pexpect
import pytest
from conftest import spawn_stui

PROMPT = "st>"  # prompt_toolkit moves the cursor rather than printing the space


@pytest.fixture
def repl(server_image):
    child = spawn_stui()
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    yield child
    for _attempt in range(5):  # a Ctrl-D sent before the prompt is drawn is lost
        if not child.isalive():
            break
        child.sendcontrol("d")
        try:
            child.expect(pexpect.EOF, timeout=3)
        except pexpect.TIMEOUT:
            continue
    child.close(force=True)


ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][A-Z0-9])|\x07")


class Screen:
    """What the pty printed, with escape sequences removed, read as it comes."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.text = ""
        self.raw = ""  # with the escape sequences, for tests about colour
        self.pos = 0

    def expect(self, pattern: str, timeout: float = 30) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.text, self.pos)
            if match:
                self.pos = match.end()
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not seen; screen ends with {self.text[-400:]!r}")
            try:
                chunk = self.child.read_nonblocking(4096, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            self.raw += chunk
            self.text += ANSI.sub("", chunk)

    def expect_exact(self, text: str, timeout: float = 30) -> re.Match:
        return self.expect(re.escape(text), timeout)


def type_line(child: pexpect.spawn, line: str, expect: str, timeout: float = 30) -> None:
    """Enter a line, wait for what it prints, then for the next prompt.

    The input is first seen accepted (echoed, then a new line): the echo
    may hold the expected text too, and matching it there would move on
    before the image has answered.
    """
    child.sendline(line)
    child.screen.expect(re.escape(line) + r"\r*\n", timeout)
    child.screen.expect(expect, timeout)
    child.screen.expect_exact(PROMPT, timeout)


def submit(child: pexpect.spawn, line: str) -> None:
    child.send(line + "\r")


def greeting(server_image) -> str:
    """What stui prints before its first prompt, once it has quit."""
    child = spawn_stui()
    screen = Screen(child)
    screen.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return screen.text


def test_greeting_names_the_image_and_its_defects_once(server_image):
    first = greeting(server_image)
    assert re.search(r"stui \S+ on GNU Smalltalk (version )?3\.2\.5 \(embedded, session default\)", first)
    assert re.search(r"this image has \d+ known defects, \d+ worked around \(:defects lists them\)", first)
    again = greeting(server_image)
    assert "GNU Smalltalk" in again
    assert "known defects" not in again


def test_evaluates_and_shows_the_class(repl):
    submit(repl, "3 + 4")
    repl.screen.expect(r"7\s+SmallInteger")
    repl.screen.expect_exact(PROMPT)


def test_output_comes_before_the_value(repl):
    submit(repl, "Transcript showCr: 'from the image'. 42")
    repl.screen.expect("from the image")
    repl.screen.expect(r"42\s+SmallInteger")


def test_incomplete_input_continues_on_the_next_line(repl):
    submit(repl, "x := (3 +")
    repl.screen.expect_exact("...")
    submit(repl, "4)")
    repl.screen.expect(r"7\s+SmallInteger")
    repl.screen.expect_exact(PROMPT)
    submit(repl, "x * 2")
    repl.screen.expect(r"14\s+SmallInteger")


def test_tab_completes_from_the_image(repl):
    repl.send("Transcri\t")
    repl.screen.expect_exact("Transcript")
    submit(repl, " class")
    repl.screen.expect(r"TextCollector\s+TextCollector class")


def test_ctrl_c_interrupts_a_runaway_loop_and_keeps_the_workspace(repl):
    submit(repl, "kept := 42")
    repl.screen.expect(r"42\s+SmallInteger")
    repl.screen.expect_exact(PROMPT)
    submit(repl, "[true] whileTrue")
    repl.screen.expect_exact("[true] whileTrue")
    time.sleep(1.0)
    repl.sendintr()
    repl.screen.expect("evaluation interrupted")
    repl.screen.expect_exact(PROMPT)
    submit(repl, "kept + 1")
    repl.screen.expect(r"43\s+SmallInteger")


def test_ctrl_c_at_the_prompt_clears_the_line(repl):
    repl.send("this is not sent")
    repl.sendintr()
    repl.screen.expect_exact(PROMPT)
    submit(repl, "1 + 1")
    repl.screen.expect(r"2\s+SmallInteger")


def test_errors_are_one_red_line_and_trace_shows_the_stack(repl):
    submit(repl, "1/0")
    repl.screen.expect("ZeroDivide: The program attempted to divide a number by zero")
    repl.screen.expect_exact(PROMPT)
    submit(repl, ":trace")
    repl.screen.expect(r"SmallInteger\(Number\)>>zeroDivide")
    repl.screen.expect(r"DoIt \(line 1\)")


def test_a_syntax_error_points_at_the_column(repl):
    submit(repl, "3 + + 4")
    repl.screen.expect("syntax error at line 1, column")
    repl.screen.expect_exact("3 + + 4")
    repl.screen.expect(r"\n\s+\^")


def test_meta_commands(repl):
    submit(repl, ":help")
    for name in (":defects", ":help", ":inspect", ":quit", ":trace", ":vars"):
        repl.screen.expect_exact(name)
    repl.screen.expect_exact(PROMPT)
    submit(repl, "answer := 42")
    repl.screen.expect_exact(PROMPT)
    submit(repl, ":vars")
    repl.screen.expect(r"answer\W+SmallInteger\W+42")
    submit(repl, ":inspect 3 @ 4")
    repl.screen.expect(r"3@4\s+\(Point\)")
    repl.screen.expect(r"x\W+SmallInteger\W+3")


def test_class_definitions_at_the_prompt(repl):
    submit(repl, "Object subclass: Greeter [ greet [ ^'hello' ] ]")
    repl.screen.expect("defined Greeter, Greeter>>greet")
    submit(repl, "Greeter new greet")
    repl.screen.expect(r"'hello'\s+String")


def test_ctrl_d_and_quit_leave_with_status_0(repl):
    submit(repl, ":quit")
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 0


def test_pharo_class_messages_at_the_prompt(repl):
    submit(repl, "Object subclass: #Animal instanceVariableNames: 'name' classVariableNames: '' package: 'Demo'")
    repl.screen.expect(r"Animal\s+Animal class")
    submit(repl, "Animal new")
    repl.screen.expect(r"an Animal\s+Animal")


def test_log_shows_the_images_log(repl):
    submit(repl, ":log")
    repl.screen.expect("the image's log is empty")
    repl.screen.expect_exact(PROMPT)


def test_bytes_that_are_not_utf8_show_as_replacement_characters(repl):
    # 0xE9 alone is no UTF-8; 0xC3 0xA9 is é even when flushed in halves (two output events).
    submit(repl, "stdout nextPut: (Character value: 233); nl; nextPut: (Character value: 16rC3); flush;"
                 " nextPut: (Character value: 16rA9); nl. 42")
    repl.screen.expect("\r\n\ufffd\r\n\u00e9\r\n")
    repl.screen.expect(r"42\s+SmallInteger")
    repl.screen.expect_exact(PROMPT)


def wait_for_file(path) -> str:
    """Smalltalk that waits until the test creates `path`: code that cannot
    finish before the test has seen what it printed first."""
    return f"[(File name: '{path}') exists] whileFalse: [(Delay forMilliseconds: 20) wait]"


def test_a_running_loop_shows_its_output_before_it_ends(repl, tmp_path):
    go = tmp_path / "go"
    submit(repl, f"'first' displayNl. {wait_for_file(go)}. 'last' displayNl")
    repl.screen.expect(r"\r\nfirst\r\n")  # while the loop still waits
    assert "last" not in repl.screen.text[repl.screen.pos:]
    go.touch()
    repl.screen.expect(r"last\r\n")
    repl.screen.expect_exact(PROMPT)


def test_a_forked_process_prints_above_the_prompt_and_the_typed_line_survives(repl, tmp_path):
    go = tmp_path / "go"
    submit(repl, f"[{wait_for_file(go)}. 'from the background' displayNl] fork")
    repl.screen.expect_exact(PROMPT)
    repl.send("3 + ")  # half a line, not entered
    time.sleep(0.3)
    go.touch()
    repl.screen.expect("from the background")
    repl.screen.expect_exact(PROMPT)  # drawn again below it, with the line typed so far
    repl.screen.expect_exact("3 +")
    submit(repl, "4")
    repl.screen.expect(r"7\s+SmallInteger")


def test_values_that_print_forever_or_hang_a_storestring_show_at_once(repl):
    type_line(repl, ":set pager off", "pager = off")  # the cyclic one fills many screens
    submit(repl, "Processor activeProcess")  # shown as gst's own REPL shows it: once the statement has ended
    repl.screen.expect(r"CallinProcess\('call-in process' at userSchedulingPriority, terminated\)\s+CallinProcess")
    submit(repl, "a := Array new: 1. b := Array with: a. a at: 1 put: b. a")
    repl.screen.expect(r"\(\(\(\(.*\.\.\.\s+Array")
    submit(repl, "b size")
    repl.screen.expect(r"1\s+SmallInteger")


def test_a_loop_that_prints_without_end_is_stopped_by_ctrl_c(repl):
    submit(repl, "n := 0. [true] whileTrue: [n := n + 1. Transcript showCr: 'line ', n printString]")
    repl.screen.expect(r"line 2000\r\n", timeout=60)  # streamed, while it runs
    rss_before = resident_kb(repl.pid)
    repl.screen.expect(r"line 20000\r\n", timeout=120)
    assert resident_kb(repl.pid) < rss_before + 50_000  # what is shown is not kept
    repl.sendintr()
    repl.screen.expect("evaluation interrupted", timeout=60)
    repl.screen.expect_exact(PROMPT)
    submit(repl, "n > 20000")
    repl.screen.expect(r"true\s+True")


def resident_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
