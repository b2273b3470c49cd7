"""The wire module: framing and reply parsing, without sockets."""

from __future__ import annotations

import json

import pytest

from stui_repl.client import wire


def test_encode_is_one_ascii_line():
    line = wire.encode({"id": 1, "op": "eval", "code": "'h\u00e9llo \u20ac \U0001f600'"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.isascii()
    assert json.loads(line)["code"] == "'h\u00e9llo \u20ac \U0001f600'"


def test_splitter_reassembles_lines_across_chunks():
    splitter = wire.LineSplitter()
    assert splitter.feed(b'{"id": 1}\n{"id"') == [b'{"id": 1}']
    assert splitter.feed(b": 2}") == []
    assert splitter.feed(b"\n\n") == [b'{"id": 2}', b""]


def test_splitter_refuses_an_endless_line():
    splitter = wire.LineSplitter(max_line=10)
    with pytest.raises(wire.ProtocolError, match="longer than 10"):
        splitter.feed(b"x" * 11)


@pytest.mark.parametrize("junk", [b"not json", b"[1, 2]", b"\xff\xfe", b'"just a string"'])
def test_decode_refuses_what_is_not_an_object(junk):
    with pytest.raises(wire.ProtocolError):
        wire.decode(junk)


def test_eval_result_from_a_value_reply():
    result = wire.EvalResult.from_reply(
        {"id": 1, "ok": True, "value": "7", "class": "SmallInteger", "store": "7", "output": "hi\n", "ms": 3})
    assert result.ok and result.value == "7" and result.value_class == "SmallInteger"
    assert result.output == "hi\n" and result.ms == 3 and result.error is None


def test_eval_result_from_errors_and_their_one_line_texts():
    exception = wire.EvalResult.from_reply({"ok": False, "output": "", "error": {
        "kind": "exception", "class": "ZeroDivide", "message": "divide by zero", "stack": ["a", "b"]}})
    assert not exception.ok and exception.error.stack == ("a", "b")
    assert exception.error.one_line() == "ZeroDivide: divide by zero"
    syntax = wire.RemoteError.from_wire({"kind": "syntax", "message": "expected expression", "line": 3, "column": 5})
    assert syntax.one_line() == "syntax error at line 3, column 5: expected expression"
    assert syntax.one_line(with_location=False) == "syntax error: expected expression"
    assert wire.RemoteError.from_wire("garbage").kind == "malformed"
    assert wire.RemoteError.from_wire({"kind": "interrupted", "message": "evaluation interrupted"}).one_line() == \
        "evaluation interrupted"


def test_server_info_from_hello():
    info = wire.ServerInfo.from_reply({
        "ok": True, "dialect": "gst", "version": "GNU Smalltalk version 3.2.5", "server": "0.1.0",
        "imageId": "abc", "workspace": "w1", "ops": ["eval"], "limits": {"maxLine": 99},
        "defects": [{"id": "x"}, "junk"]})
    assert info.dialect == "gst" and info.workspace == "w1" and info.max_line == 99
    assert info.defects == ({"id": "x"},)


def test_eval_request_sends_only_what_differs_from_the_defaults():
    assert wire.eval_request("3") == {"op": "eval", "code": "3"}
    assert wire.eval_request("x := 3", declare=("x",), mode="fileIn", print_value=False, batch="b", line=4) == {
        "op": "eval", "code": "x := 3", "declare": ["x"], "mode": "fileIn", "print": False, "batch": "b", "line": 4}


def test_the_launcher_starts_again_when_gst_crashes_while_starting(monkeypatch):
    from stui_repl.image import launcher

    attempts = []

    def crashing_start(*args):
        attempts.append(args)
        if len(attempts) < launcher.START_ATTEMPTS:
            raise launcher._StartCrashed("libgst.so.7(+0x783b9)")
        return "started"

    monkeypatch.setattr(launcher, "server_image", lambda install, progress=None: "image")
    monkeypatch.setattr(launcher, "_start", crashing_start)
    assert launcher.launch(install=object()) == "started"
    assert len(attempts) == launcher.START_ATTEMPTS

    def always_crashing(*args):
        raise launcher._StartCrashed("libgst.so.7(+0x783b9)")

    monkeypatch.setattr(launcher, "_start", always_crashing)
    from stui_repl.errors import ImageUnreachable

    with pytest.raises(ImageUnreachable, match="did not start"):
        launcher.launch(install=object())


def test_unanswered_statements_are_an_error_not_silence():
    from stui_repl.client import scanner
    from stui_repl.client.evaluator import Evaluator

    class OneAnswerConnection:
        def pipeline(self, requests, on_reply, window):
            for request in requests:
                if not on_reply(request, {"ok": True, "results": [{"ok": True, "output": "", "ms": 0}]}):
                    return

    outcomes = []
    units = scanner.split_script("1. 2. 3.")
    Evaluator(OneAnswerConnection()).run_units(units, lambda o: outcomes.append(o) or True, print_values=False, keep_going=False)
    assert [o.result.ok for o in outcomes] == [True, False]
    assert outcomes[1].result.error.message == "the image answered 1 of 3 statements"
