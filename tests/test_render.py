"""The renderers and the image's output: scripts get its very bytes, a
terminal gets text, --format json gets JSON that gives the bytes back."""

from __future__ import annotations

import io
import json

from rich.console import Console

from stui_repl.client.wire import EvalResult, output_bytes
from stui_repl.render import JsonRenderer, PlainRenderer, RichRenderer


def binary_stdout() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")


def written(stream: io.TextIOWrapper) -> bytes:
    stream.flush()
    return stream.buffer.getvalue()


def test_scripts_get_the_bytes_the_image_wrote():
    out, err = binary_stdout(), binary_stdout()
    renderer = PlainRenderer(out, err)
    renderer.output("\udce9 h\u00e9llo \u20ac\n")
    renderer.value(EvalResult(value="'\u00e9'"))
    renderer.output("\udcff\udc80", "stderr")
    renderer.output("\udce2\udc82")  # a sequence split over two events
    renderer.output("\udcac\n")
    assert written(out) == b"\xe9 h\xc3\xa9llo \xe2\x82\xac\n'\xc3\xa9'\n\xe2\x82\xac\n"
    assert written(err) == b"\xff\x80"


def test_a_text_only_stream_gets_the_text_as_it_is():
    out = io.StringIO()
    PlainRenderer(out, io.StringIO()).output("a\udce9\n")
    assert out.getvalue() == "a\udce9\n"


def test_json_records_spell_stray_bytes_as_escapes_and_join_split_sequences():
    out = io.StringIO()
    renderer = JsonRenderer(out, io.StringIO())
    renderer.output("\u00e9 \udce2\udc82")
    renderer.output("\udcac \udce9\n")
    renderer.record(1, "x", EvalResult(value="nil", value_class="UndefinedObject"))
    line = out.getvalue()
    assert "\u00e9 \u20ac \\udce9\\n" in line
    line.encode("utf-8")  # writable to any UTF-8 stdout
    assert output_bytes(json.loads(line)["output"]) == b"\xc3\xa9 \xe2\x82\xac \xe9\n"


def test_a_terminal_shows_stray_bytes_as_replacement_characters():
    screen = io.StringIO()
    renderer = RichRenderer(Console(file=screen, width=80, color_system=None))
    renderer.output("a\udce9b\n")
    renderer.output("\udce2\udc82")  # held back: its last byte comes with the next event
    assert screen.getvalue() == "a\ufffdb\n"
    renderer.output("\udcac\n")
    assert screen.getvalue() == "a\ufffdb\n\u20ac\n"


def test_a_terminal_ends_a_sequence_that_never_completes_before_showing_more():
    screen = io.StringIO()
    renderer = RichRenderer(Console(file=screen, width=80, color_system=None))
    renderer.output("x\udce2\udc82")
    renderer.info("next")
    assert screen.getvalue() == "x\ufffd\nnext\n"
