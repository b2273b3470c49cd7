"""The Smalltalk server's own SUnit tests, each file in a gst of its own
(some suites install workarounds or output routing that others must not see)."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from stui_repl.image.launcher import SERVER_DIR

TEST_FILES = sorted((SERVER_DIR / "tests").glob("Stui*Test.st"))


def load_order() -> list:
    """The server's files in the order load-gst.st files them in."""
    load = (SERVER_DIR / "load-gst.st").read_text()
    return [SERVER_DIR / name for name in re.findall(r"'((?:core|gst)/[A-Za-z]+\.st)'", load)]


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda path: path.stem)
def test_sunit_suite(gst_install, test_file):
    files = [SERVER_DIR / "tests" / "load-packages.st", *load_order(), test_file]
    done = subprocess.run(
        gst_install.command(str(SERVER_DIR / "tests" / "run-gst.st"), "-a", *map(str, files)),
        env=gst_install.environ(), capture_output=True, text=True, timeout=600, check=False,
    )
    summary = re.search(r"^(\d+) passed, (\d+) failed$", done.stdout, re.MULTILINE)
    assert summary, done.stdout[-3000:] + done.stderr[-2000:]
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert (summary.group(2), failures) == ("0", []), done.stdout[-3000:]
    assert int(summary.group(1)) > 0
    assert done.returncode == 0


def test_every_server_source_is_loaded():
    listed = {path.name for path in load_order()}
    present = {path.name for path in (SERVER_DIR / "core").glob("*.st")} | {path.name for path in (SERVER_DIR / "gst").glob("*.st")}
    assert listed == present


def test_the_server_image_is_saved_with_free_object_slots(server_image):
    """gst 3.2.5 records in the image header how many object-table slots are
    free below the highest one in use. Under about 2000, the image collects
    garbage while it starts, before it has an active process, and gst dies
    ("Error occurred while not in byte code interpreter"): filing the server
    in leaves about that many, so whether an image started depended on the
    lengths of the sources and of their paths. StuiGstMain
    class>>prepareSnapshot opens 20000 before load-gst.st saves the image."""
    header = server_image.read_bytes()[:168]
    fields = struct.unpack("<12Q", header[72:168])  # after 64 + 6 + 1 + 1 bytes: version, sizes...
    version, free_slots = fields[0], fields[8]
    if header[64:69] != b"GSTIm" or version != 0x030205:
        pytest.skip("not a 64-bit little-endian gst 3.2.5 image")
    assert free_slots >= 10000
