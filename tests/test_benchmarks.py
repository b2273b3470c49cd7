"""The benchmarks still run: `benchmarks/run.py --quick` measures every figure.

Nothing here looks at a timing (the figures are noisy and are read by people,
benchmarks/README.md); the test fails only when a section could not measure
what it prints, as when server_micro.st used a method the server had lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Every section run.py prints, by the start of its heading.
SECTIONS = ("Setup", "1.", "2.", "3.", "3b.", "3c.", "4.", "5.", "6.", "7.", "8.", "9.", "Summary", "Where the time goes")
FIGURE = re.compile(r"\d[\d,]*(\.\d+)? ?(µs|ms|s|KiB|MiB|x)\b")


def sections_of(output: str) -> dict[str, str]:
    """Each section's heading start mapped to the text under it."""
    found = {}
    for block in output.split("\n== ")[1:]:
        heading, _, body = block.partition(" ==\n")
        found[heading.split(" ")[0] if heading[0].isdigit() else heading] = body
    return found


def test_quick_benchmarks_measure_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, f"benchmarks failed:\n{done.stderr[-3000:]}\n{done.stdout[-3000:]}"
    found = sections_of(done.stdout)
    for section in SECTIONS:
        key = next((name for name in found if name == section or name.startswith(section)), None)
        assert key is not None, f"no section {section!r} in:\n{done.stdout[-3000:]}"
        assert FIGURE.search(found[key]), f"section {section!r} printed no figure:\n{found[key]}"
    assert "n/a" not in done.stdout, done.stdout


# run.py with section 5 replaced by one that cannot measure its figure.
BROKEN_SECTION = """\
import sys; sys.path.insert(0, sys.argv[1]); import common, run
def broken(results, *, quick): common.missing('a figure', 'the section rotted')
import breakdown; breakdown.run = broken
sys.exit(run.main(['--only', '5']))
"""


def test_a_figure_not_measured_fails_the_run() -> None:
    """The exit status the test above relies on: a section that prints n/a makes run.py exit 1."""
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_SECTION, str(ROOT / "benchmarks")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "a figure: n/a (the section rotted)" in done.stderr
