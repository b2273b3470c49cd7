"""The image's log: what gst writes on stderr, kept masked, private and pruned.

Real pipes and files for the copy itself, and a real image whose orphaned
process writes a session's secret and the image's token.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from stui_repl.image.log import ImageLog


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)



def copy_through(log: ImageLog, writer: int, data: bytes) -> None:
    os.write(writer, data)
    os.close(writer)
    log.close(timeout=5)


def test_the_log_is_private_and_masks_the_token_and_the_secrets(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    log = ImageLog(os.fdopen(reader, "rb"), "t0ken", directory=tmp_path / "logs")
    log.scrub = lambda text: text.replace("hunter2", "********")
    copy_through(log, writer, b"hello t0ken\npassword hunter2\nno newline at the end hunter2")
    assert log.path.read_bytes() == b"hello ********\npassword ********\nno newline at the end ********"
    assert mode(tmp_path / "logs") == 0o700 and mode(log.path) == 0o600
    assert log.tail().endswith(b"at the end ********")


def test_a_secret_split_across_two_writes_is_still_masked(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    log = ImageLog(os.fdopen(reader, "rb"), "", directory=tmp_path)
    log.scrub = lambda text: text.replace("hunter2", "********")
    os.write(writer, b"pass hun")
    time.sleep(0.2)
    copy_through(log, writer, b"ter2 done\n")
    assert log.path.read_bytes() == b"pass ******** done\n"


def test_an_image_that_writes_nothing_leaves_no_log(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    log = ImageLog(os.fdopen(reader, "rb"), "t", directory=tmp_path / "logs")
    copy_through(log, writer, b"")
    assert not (tmp_path / "logs").exists()


def test_only_the_newest_logs_are_kept(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    for age in range(8):
        old = logs / f"image-1-{age}.log"
        old.write_text("old\n")
        os.utime(old, (time.time() - 1000 + age, time.time() - 1000 + age))
    reader, writer = os.pipe()
    log = ImageLog(os.fdopen(reader, "rb"), "t", directory=logs)
    copy_through(log, writer, b"new\n")
    kept = sorted(p.name for p in logs.iterdir())
    assert len(kept) == 5 and log.path.name in kept
    assert kept == sorted([log.path.name, *(f"image-1-{age}.log" for age in (4, 5, 6, 7))])


def test_what_an_orphaned_process_writes_reaches_the_log_masked(own_cache: Path, home: Path) -> None:
    """End to end: a session's secret, and the image's token, never reach the log in plain text."""
    from stui_repl.client.connection import Connection
    from stui_repl.session.controller import SessionController

    controller = SessionController()
    controller.use_session(controller.load_session("logged"))
    controller.attach()
    try:
        assert controller.active is not None and controller.evaluator is not None
        controller.active.set_secret(controller.evaluator, "dbPass", "hunter2-hunter2")
        image = controller.attachment.image
        leaving = Connection.open(image.host, image.port, image.token)
        code = f"[(Delay forMilliseconds: 100) wait. Transcript showCr: 'leak hunter2-hunter2 {image.token}'] fork"
        assert leaving.request({"op": "eval", "code": code})["ok"]
        leaving.close()
        deadline = time.monotonic() + 10
        while not (image.log_path.exists() and b"leak" in image.log_path.read_bytes()):
            assert time.monotonic() < deadline, "the orphan's output never reached the log"
            time.sleep(0.05)
        text = image.log_path.read_bytes()
        assert b"leak ******** ********" in text and b"hunter2" not in text and image.token.encode() not in text
        assert mode(image.log_path) == 0o600 and mode(own_cache / "logs") == 0o700
    finally:
        controller.close()
