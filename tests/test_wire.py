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
    result = wire.EvalResult.from_reply({"id": 1, "ok": True, "value": "7", "class": "SmallInteger", "ms": 3})
    assert result.ok and result.value == "7" and result.value_class == "SmallInteger"
    assert result.output == "" and result.ms == 3 and result.error is None


def test_events_are_told_from_replies():
    assert wire.event_of({"id": 3, "ok": True}) is None
    output = wire.event_of({"event": "output", "id": 3, "stream": "stderr", "text": "oops\n"})
    assert output == wire.Event("output", 3, stream="stderr", text="oops\n")
    assert wire.event_of({"event": "output", "id": None, "text": "x"}).stream == "stdout"
    error = wire.event_of({"event": "error", "id": None, "error": {
        "kind": "exception", "class": "ZeroDivide", "message": "m", "file": "a.st", "line": 4}})
    assert error.kind == "error" and error.request_id is None
    assert error.error.one_line() == "a.st:4: ZeroDivide: m"
    assert error.error.one_line(with_location=False) == "ZeroDivide: m"
    result = wire.event_of({"event": "result", "id": 9, "result": {"ok": True, "statements": 3}})
    assert wire.statements_of(result.result) == 3


def test_output_text_gives_back_the_bytes_the_image_wrote():
    # What the server sends for the bytes E9 'h' C3 A9 LF: a stray byte as \udcXX, UTF-8 as its character.
    line = b'{"event": "output", "id": 1, "stream": "stdout", "text": "\\udce9h\\u00e9\\n"}'
    event = wire.event_of(wire.decode(line))
    assert event.text == "\udce9h\u00e9\n"
    assert wire.output_bytes(event.text) == b"\xe9h\xc3\xa9\n"


def test_a_utf8_sequence_split_over_two_events_is_whole_again_as_bytes():
    # The server escapes each half as stray bytes; joined, they are the character.
    first = wire.event_of(json.loads('{"event": "output", "id": 1, "text": "\\u20ac\\udce2\\udc82"}'))
    second = wire.event_of(json.loads('{"event": "output", "id": 1, "text": "\\udcac!"}'))
    assert wire.output_bytes(first.text) + wire.output_bytes(second.text) == "\u20ac\u20ac!".encode()
    assert wire.output_bytes(first.text + second.text).decode() == "\u20ac\u20ac!"


def test_a_surrogate_that_stands_for_no_byte_is_replaced():
    event = wire.event_of({"event": "output", "id": 1, "text": "\ud800x\udc00\udc7f\udd00\udce9\U0001f600"})
    assert event.text == "\ufffdx\ufffd\ufffd\ufffd\udce9\U0001f600"
    assert wire.output_bytes(event.text) == "\ufffdx\ufffd\ufffd\ufffd".encode() + b"\xe9" + "\U0001f600".encode()


def test_a_file_in_request_carries_the_pieces_of_the_text():
    assert wire.file_in_request(["a. ", "b."], name="x.st") == {"op": "fileIn", "chunks": ["a. ", "b."], "name": "x.st"}
    assert wire.file_in_request(["a."], name="x.st", keep_going=True)["keepGoing"] is True


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
    import types

    from stui_repl.image import launcher

    spawned = []

    def crashing_until_the_last(running, timeout):
        if len(spawned) < launcher.START_ATTEMPTS:
            raise launcher._StartCrashed("libgst.so.7(+0x783b9)")
        return 4242

    monkeypatch.setattr(launcher, "server_image", lambda install, progress=None: "image")
    monkeypatch.setattr(launcher.Launch, "_spawn", lambda self: spawned.append(1) or types.SimpleNamespace(port=0))
    monkeypatch.setattr(launcher, "_read_port", crashing_until_the_last)
    assert launcher.launch(install=object()).port == 4242
    assert len(spawned) == launcher.START_ATTEMPTS

    def always_crashing(running, timeout):
        raise launcher._StartCrashed("libgst.so.7(+0x783b9)")

    monkeypatch.setattr(launcher, "_read_port", always_crashing)
    from stui_repl.errors import ImageUnreachable

    with pytest.raises(ImageUnreachable, match="did not start"):
        launcher.launch(install=object())


def test_unanswered_statements_are_an_error_not_silence():
    from stui_repl.client import scanner
    from stui_repl.client.evaluator import Evaluator

    class OneAnswerConnection:
        on_event = None
        info = None

        def __init__(self) -> None:
            self.events: list = []

        def pipeline(self, requests, on_reply, window, on_sent, source=None):
            for number, request in enumerate(requests, 1):
                request["id"] = number
                on_sent(request)
                self.on_event(wire.Event("result", number, result={"ok": True, "ms": 0}))
                if not on_reply(request, {"ok": True, "results": 1}):
                    return

    outcomes = []
    units = scanner.split_script("1. 2. 3.")
    Evaluator(OneAnswerConnection()).run_units(units, lambda o: outcomes.append(o) or True, print_values=False, keep_going=False)
    assert [o.result.ok for o in outcomes] == [True, False]
    assert outcomes[1].result.error.message == "the image did not answer every statement of a batch"


def test_file_in_pieces_make_the_whole_text_and_end_before_each_statement():
    from stui_repl.client import scanner

    text = '"start" | a |\na := 1. a printNl!\nObject subclass: Foo [ bar [ ^1 ] ]\n"c" Foo new bar printNl'
    chunks = scanner.scan_whole(text).pieces()
    assert "".join(chunks) == text
    assert chunks == ['"start" | a |\n', "a := 1. ", "a printNl!\n", "Object subclass: Foo [ bar [ ^1 ] ]\n\"c\" ",
                      "Foo new bar printNl"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("0", False), ("192.168.1.10", False), ("example.org", False)],
)
def test_which_listening_addresses_stay_on_this_machine(host, loopback):
    from stui_repl.client.connection import is_loopback

    assert is_loopback(host) is loopback


def test_an_ipv6_address_is_written_in_brackets():
    from stui_repl.client.connection import join_address

    assert join_address("::1", 7000) == "[::1]:7000"
    assert join_address("127.0.0.1", 7000) == "127.0.0.1:7000"
