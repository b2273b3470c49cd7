"""The fidelity suite: programs run by plain `gst FILE` and by `stui -f FILE
--keep-going` print the same, once the README's deliberate differences
are taken out (see fidelity_oracle.py). Our own programs live in
tests/fidelity/; gst's own examples are run too, but for those that cannot
run here or that look at the whole image, which also holds stui's server.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
from fidelity_oracle import compare, kernel_dir

PROGRAMS = sorted((Path(__file__).parent / "fidelity").glob("*.st"))

# gst's examples that are not compared, and why.
EXAMPLES_LEFT_OUT = {
    "Bench.st": "a benchmark: 20 s of gst alone",
    "Dinner.st": "the dining philosophers never finish",
    "CairoBlit.st": "needs Cairo and a display",
    "CairoDemo.st": "needs Cairo and a display",
    "Gen2.st": "prints the VM's bytecode counter, which counts the server's own work too",
    "Gen3.st": "prints the VM's bytecode counter, which counts the server's own work too",
    "MemUsage.st": "counts the instances of every class in the image, which holds stui's server",
    "PrtHier.st": "prints every class in the image, which holds stui's server",
}


def gst_examples(gst_install) -> list[Path]:
    return sorted((kernel_dir(gst_install).parent / "examples").glob("*.st"))


def assert_same(gst_install, source: Path, tmp_path: Path) -> None:
    script = tmp_path / source.name  # both run it under the same name, from the same place
    shutil.copy(source, script)
    expected, got = compare(gst_install, script)
    if got != expected:
        diff = "\n".join(difflib.unified_diff(expected.splitlines(), got.splitlines(), "gst", "stui", lineterm=""))
        pytest.fail(f"{source.name}: stui differs from gst\n{diff}", pytrace=False)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda path: path.stem)
def test_our_programs(program, gst_install, server_image, tmp_path):
    assert_same(gst_install, program, tmp_path)


def test_the_suite_is_large_enough():
    assert len(PROGRAMS) >= 60


def test_gst_examples(gst_install, server_image, tmp_path):
    examples = gst_examples(gst_install)
    assert len(examples) > 20, "gst's examples are missing"
    for example in examples:
        if example.name not in EXAMPLES_LEFT_OUT:
            assert_same(gst_install, example, tmp_path)
