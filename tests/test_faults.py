"""Fault tests: the real image is killed underneath a real stui."""

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


def test_the_repl_says_so_when_its_image_dies(server_image):
    child = spawn_stui()
    child.expect("st>")
    os.kill(gst_child_of(child.pid), signal.SIGKILL)
    time.sleep(0.3)
    child.send("3 + 4\r")
    child.expect(r"(closed|lost) the connection")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert "Traceback" not in (child.before or "")
