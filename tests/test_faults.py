"""Fault tests: the real image is killed, stopped or cut off underneath a real stui."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from conftest import ROOT, spawn_stui
from test_repl import type_line

from stui_repl.client.connection import Connection


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


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """A silent hang: the process is stopped (SIGSTOP), and killed afterwards if stui left it."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_repl(*args: str):
    from test_repl import PROMPT, Screen

    child = spawn_stui(*args)
    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    return child


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
    type_line(child, ":session", r"connected, image\s+restarted")
    leave(child)


def test_an_evaluation_cut_short_is_reported_unknown_and_not_run_again(server_image):
    child = start_repl()
    type_line(child, "x := 1", "1")
    child.sendline("Transcript showCr: 'side effect'. [true] whileTrue")
    child.screen.expect(r"(?m)^side effect\r?$")  # the first statement's output, not the echoed input
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
    with stopped(gst_child_of(child.pid)):
        child.screen.expect("the embedded image stopped answering; reconnecting")
        child.screen.expect("the image hung: stopped it and started a new one; restored 1 variable")
        type_line(child, "y size", "10")
    leave(child)


def test_ctrl_c_on_a_hung_image_gives_up_waiting_for_the_answer(server_image):
    child = start_repl()
    type_line(child, ":set heartbeat_timeout 2", "heartbeat_timeout = 2")
    type_line(child, "z := 7", "7")
    child.sendline("Transcript showCr: 'looping'. [true] whileTrue")
    child.screen.expect(r"(?m)^looping\r?$")  # the first statement answered: the loop is under way
    with stopped(gst_child_of(child.pid)):
        child.sendcontrol("c")
        child.screen.expect("did not answer within 2 s: the result of that evaluation is unknown")
        child.screen.expect("started a new one; restored 1 variable")
        type_line(child, "z", "7")
    leave(child)


# -- remote images, through a relay whose connections the tests cut --------------------


@pytest.fixture
def remote(gst_install, server_image):
    """A served image (as `stui serve` runs one) behind a cuttable relay."""
    from cuttable_proxy import CuttableProxy

    from stui_repl.image.launcher import launch

    images = [launch(gst_install, lease=60)]
    proxy = CuttableProxy(images[0].port)

    def restart(lease: float = 60) -> None:
        """Stop the image and serve a new one, on another port, behind the same relay."""
        images[-1].stop()
        images.append(launch(gst_install, lease=lease, token=images[0].token))
        proxy.target_port = images[-1].port

    proxy.images = images
    proxy.restart = restart
    yield proxy
    proxy.close()
    for image in images:
        image.stop()


def start_remote(remote, *settings: str):
    child = spawn_stui("--connect", remote.address, env_extra={"STUI_TOKEN": remote.images[0].token})
    from test_repl import PROMPT, Screen

    child.screen = Screen(child)
    child.screen.expect_exact(PROMPT)
    for setting in settings:
        type_line(child, f":set {setting}", setting.split()[0])
    return child


def test_a_cut_connection_gets_its_workspace_back_from_the_lease(remote):
    child = start_remote(remote)
    type_line(child, "thing := Object new", "an Object")
    type_line(child, "before := thing identityHash", "SmallInteger")
    remote.cut()
    child.screen.expect(r"closed the connection; reconnecting")
    child.screen.expect("your workspace was still there")
    # The same object, not one re-created from its source: the workspace was kept.
    type_line(child, "thing identityHash = before", "true")
    leave(child)


def test_an_image_restarted_on_another_port_gets_the_workspace_from_the_session(remote):
    child = start_remote(remote)
    type_line(child, "kept := 6 * 7", r"42\s+SmallInteger")
    remote.restart()
    child.screen.expect("reconnecting")
    child.screen.expect("a restarted image; restored 1 variable")
    type_line(child, "kept", r"42\s+SmallInteger")
    leave(child)


def test_after_the_lease_expired_the_workspace_comes_from_the_session(remote, gst_install):
    remote.restart(lease=1)
    child = start_remote(remote, "reconnect_give_up 300")
    type_line(child, "kept := 'from the file'", r"'from the file'\s+String")
    remote.refusing = True
    remote.cut()
    child.screen.expect("reconnecting")
    deadline = time.monotonic() + 60
    image = remote.images[-1]
    probe = Connection.open(image.host, image.port, image.token)
    try:
        while probe.request({"op": "ping"})["workspaces"]["detached"] != 0:
            assert time.monotonic() < deadline, "the lease never expired"
            time.sleep(0.1)
    finally:
        probe.close()
    remote.refusing = False
    child.screen.expect("which had let your workspace go; restored 1 variable", timeout=60)
    type_line(child, "kept size", "13")
    leave(child)


def test_a_silent_server_is_given_up_on_and_reconnect_tries_again(remote):
    child = start_remote(remote, "heartbeat 1", "heartbeat_timeout 1", "reconnect_give_up 3")
    type_line(child, "n := 5", r"5\s+SmallInteger")
    stopped = remote.images[-1].process.pid
    os.kill(stopped, signal.SIGSTOP)
    try:
        child.screen.expect("stopped answering; reconnecting")
        child.screen.expect(r"gave up reconnecting after \d+ s", timeout=60)
        child.sendline("n")
        child.screen.expect("not connected to an image: :session reconnect tries again")
    finally:
        os.kill(stopped, signal.SIGCONT)
    type_line(child, ":session reconnect", "your workspace was still there")
    type_line(child, "n + 1", r"6\s+SmallInteger")
    leave(child)


def gone_within(pid: int, seconds: float) -> bool:
    """Whether pid ends within `seconds` (looked at once at least, even when none are left)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):  # a zombie has ended
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_however_a_script_ends_its_busy_image_ends_too(server_image, signum):
    """gst does not notice its stdin close while it computes: the kernel
    kills it with stui (and stui stops it itself when it can)."""
    stui = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "-c", "Transcript showCr: 'spinning'. [true] whileTrue: [3 + 4]"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    gst = gst_child_of(stui.pid)
    try:
        assert stui.stdout.readline() == "spinning\n"  # streamed while the loop runs
        signalled = time.monotonic()
        os.kill(stui.pid, signum)
        _out, err = stui.communicate(timeout=30)
        assert gone_within(gst, signalled + 2 - time.monotonic()), f"gst {gst} still ran 2 s after {signum.name}"
        assert "Traceback" not in err
        expected = {signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}.get(signum, 128 + signum)
        assert stui.returncode == expected
    finally:  # a failure leaves no spinning image behind
        if stui.poll() is None:
            stui.kill()
            stui.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(gst, signal.SIGKILL)


@pytest.mark.parametrize("busy", [True, False], ids=["busy", "idle"])
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
def test_a_repl_told_to_stop_saves_its_session_and_stops_its_image(home, signum, busy):
    """The terminal went away (SIGHUP) or someone asked stui to stop
    (SIGTERM): as with Ctrl-D, the session is saved and the image stops."""
    from test_sessions import session_file

    child = start_repl()
    type_line(child, "kept := 6 * 7", "42")
    type_line(child, "also := 'more'", "'more'")
    gst = gst_child_of(child.pid)
    if busy:
        child.sendline("[true] whileTrue: [3 + 4]")
        time.sleep(1.0)
    signalled = time.monotonic()
    child.kill(signum)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus is None or child.exitstatus == 128 + signum
    assert gone_within(gst, signalled + 2 - time.monotonic()), f"gst still ran 2 s after {signum.name}"
    saved = session_file(home).read_text()
    assert "kept" in saved and "also" in saved and "'more'" in saved  # the variables and the history
    if busy:
        assert "[true] whileTrue" in saved
