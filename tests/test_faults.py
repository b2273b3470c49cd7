"""Fault tests: the real image is killed, stopped or cut off underneath a real stui."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pexpect
from conftest import ROOT, spawn_stui


def gst_child_of(pid: int, timeout: float = 20) -> int:
    """The gst process a stui process started (its direct child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(pid), "-f", "gst"], capture_output=True, text=True, check=False)
        if found.stdout.split():
            return int(found.stdout.split()[0])
        time.sleep(0.05)
    raise AssertionError("stui started no gst")


def test_a_script_whose_image_is_killed_exits_3_with_one_line(server_image):
    stui = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "-c", "'started' displayNl. [true] whileTrue"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    gst = gst_child_of(stui.pid)
    time.sleep(1.0)
    os.kill(gst, signal.SIGKILL)
    _out, err = stui.communicate(timeout=30)
    assert stui.returncode == 3
    assert err.startswith("stui: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "closed the connection" in err or "lost the connection" in err


def start_repl(*args: str):
    from test_repl import PROMPT, Screen

    child = spawn_stui(*args)
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    return child


def type_line(child, line: str, expect: str, timeout: float = 30) -> None:
    from test_repl import PROMPT

    child.sendline(line)
    child.screen.expect(expect, timeout)
    child.screen.expect_exact(PROMPT)


def leave(child) -> None:
    child.sendline(":quit")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in child.screen.text


def test_the_repl_restarts_its_image_when_it_dies_while_idle(server_image):
    child = start_repl()
    type_line(child, ":set heartbeat 1", "heartbeat = 1")
    type_line(child, "x := 41", "41")
    os.kill(gst_child_of(child.pid), signal.SIGKILL)
    child.screen.expect("the embedded image exited; reconnecting")
    child.screen.expect("the image died; started a new one; restored 1 variable")
    type_line(child, "x + 1", r"42\s+SmallInteger")
    leave(child)


def test_an_evaluation_cut_short_is_reported_unknown_and_not_run_again(server_image):
    child = start_repl()
    type_line(child, "x := 1", "1")
    child.sendline("Transcript showCr: 'side effect'. [true] whileTrue")
    child.screen.expect("side effect")
    os.kill(gst_child_of(child.pid), signal.SIGKILL)
    child.screen.expect("the result of that evaluation is unknown, and it is not run again")
    child.screen.expect("started a new one; restored 1 variable")
    type_line(child, "x", r"1\s+SmallInteger")
    output_lines = [line for line in child.screen.text.splitlines() if line.strip() == "side effect"]
    assert len(output_lines) == 1  # it ran once: it was not sent again
    leave(child)


def test_a_hung_image_is_noticed_by_the_heartbeat_and_replaced(server_image):
    child = start_repl()
    type_line(child, ":set heartbeat 1", "heartbeat = 1")
    type_line(child, ":set heartbeat_timeout 2", "heartbeat_timeout = 2")
    type_line(child, "y := 'still here'", "still here")
    hung = gst_child_of(child.pid)
    os.kill(hung, signal.SIGSTOP)
    try:
        child.screen.expect("the embedded image stopped answering; reconnecting")
        child.screen.expect("the image hung: stopped it and started a new one; restored 1 variable")
        type_line(child, "y size", "10")
    finally:
        try:
            os.kill(hung, signal.SIGKILL)
        except ProcessLookupError:
            pass
    leave(child)


def test_ctrl_c_on_a_hung_image_gives_up_waiting_for_the_answer(server_image):
    child = start_repl()
    type_line(child, ":set heartbeat_timeout 2", "heartbeat_timeout = 2")
    type_line(child, "z := 7", "7")
    child.sendline("(Delay forSeconds: 30) wait")
    time.sleep(0.5)
    hung = gst_child_of(child.pid)
    os.kill(hung, signal.SIGSTOP)
    try:
        child.sendcontrol("c")
        child.screen.expect("did not answer within 2 s: the result of that evaluation is unknown")
        child.screen.expect("started a new one; restored 1 variable")
        type_line(child, "z", "7")
    finally:
        try:
            os.kill(hung, signal.SIGKILL)
        except ProcessLookupError:
            pass
    leave(child)
