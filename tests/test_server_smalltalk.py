"""The Smalltalk server's own SUnit tests, each file in a gst of its own
(some suites install workarounds or output routing that others must not see)."""

from __future__ import annotations

import re
import subprocess

import pytest

from stui_repl.launcher import SERVER_DIR

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
