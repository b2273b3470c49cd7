"""The server, hit directly over real sockets: framing, authentication,
isolation between clients, interrupts, surviving bad input, and workspace
leases (resuming a workspace after the connection broke)."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_stui

from stui_repl.client.connection import Connection
from stui_repl.errors import ImageUnreachable


class RawClient:
    """A client that can send anything, including garbage. Events (output,
    errors, a script's results) are kept apart from the replies, in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rwb")
        self.events: list[dict] = []

    def send_line(self, data: bytes) -> None:
        self.file.write(data + b"\n")
        self.file.flush()

    def send(self, message: dict) -> None:
        self.send_line(json.dumps(message).encode())

    def receive(self) -> dict | None:
        """The next reply; the events before it go to `events`."""
        while True:
            line = self.file.readline()
            if not line:
                return None
            message = json.loads(line)
            if "event" not in message:
                return message
            self.events.append(message)

    def output(self, request_id: object = None, stream: str = "stdout") -> str:
        """What the events so far say a request wrote (all of it, without an id)."""
        return "".join(
            e["text"] for e in self.events
            if e["event"] == "output" and e["stream"] == stream and (request_id is None or e["id"] == request_id))

    def results(self, request_id: object) -> list[dict]:
        return [e["result"] for e in self.events if e["event"] == "result" and e["id"] == request_id]

    def errors(self, request_id: object = None) -> list[dict]:
        return [e["error"] for e in self.events if e["event"] == "error" and (request_id is None or e["id"] == request_id)]

    def request(self, message: dict) -> dict:
        self.send(message)
        reply = self.receive()
        assert reply is not None, "connection closed"
        return reply

    def hello(self, token: str, resume: object = None) -> dict:
        message = {"id": 0, "op": "hello", "protocol": 2, "token": token}
        if resume is not None:
            message["resume"] = resume
        return self.request(message)

    @classmethod
    def with_code(cls, image, code: str) -> RawClient:
        """A client past hello on `image` whose workspace has filed `code` in."""
        raw = cls(image.port)
        assert raw.hello(image.token)["ok"]
        reply = raw.request({"id": "def", "op": "eval", "code": code, "mode": "fileIn"})
        assert reply["ok"], reply
        return raw

    def is_closed_by_server(self) -> bool:
        """Whether the server has closed this connection (waits for it, up to the socket timeout)."""
        try:
            return self.file.readline() == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        """Really close: the socket stays open while its makefile() is."""
        self.file.close()
        self.sock.close()


@pytest.fixture
def client(shared_image):
    raw = RawClient(shared_image.port)
    assert raw.hello(shared_image.token)["ok"]
    yield raw
    raw.close()


def test_hello_describes_the_image(shared_image):
    raw = RawClient(shared_image.port)
    reply = raw.hello(shared_image.token)
    assert reply["ok"] and reply["dialect"] == "gst"
    assert "3.2.5" in reply["version"]
    assert set(reply["ops"]) >= {"hello", "eval", "interrupt", "complete", "inspect", "bindings", "ping"}
    assert len(reply["imageId"]) == 16
    assert {d["id"] for d in reply["defects"]} >= {"float-printing", "smallint-mul-overflow"}
    raw.close()


def test_requests_before_hello_are_refused_and_the_connection_closed(shared_image):
    raw = RawClient(shared_image.port)
    reply = raw.request({"id": 1, "op": "eval", "code": "3 + 4"})
    assert reply["ok"] is False and reply["error"]["kind"] == "unauthenticated"
    assert raw.receive() is None
    raw.close()


def test_a_wrong_token_is_refused(shared_image):
    raw = RawClient(shared_image.port)
    reply = raw.hello("x" * len(shared_image.token))
    assert reply["error"]["kind"] == "bad-token"
    assert raw.receive() is None
    with pytest.raises(ImageUnreachable, match="refused the token"):
        Connection.open(shared_image.host, shared_image.port, "not-the-token-at-all")


def test_malformed_lines_get_an_error_and_the_connection_lives_on(client):
    for junk in (b"not json", b"[1, 2]", b'{"id": 3', b"\xff\xfe\x00", b'{"id": 4}', b'{"id": 5, "op": 7}'):
        client.send_line(junk)
        reply = client.receive()
        assert reply is not None and reply["ok"] is False, junk
        assert reply["error"]["kind"] in ("malformed", "unknown-op"), reply
    reply = client.request({"id": 9, "op": "ping"})
    assert reply["id"] == 9 and reply["ok"] is True and reply["pong"] is True


def test_bad_field_types_are_malformed(client):
    reply = client.request({"id": 1, "op": "eval", "code": 42})
    assert reply["error"]["kind"] == "malformed"
    reply = client.request({"id": 2, "op": "eval", "code": "3", "declare": "x"})
    assert reply["error"]["kind"] == "malformed"
    assert client.request({"id": 3, "op": "eval", "code": "3 + 4"})["value"] == "7"


RESERVED_WORDS = ["self", "super", "nil", "true", "false", "thisContext"]
NOT_IDENTIFIERS = ["", "1x", "a b", "a:", "a-b", "Smalltalk.Foo", "caf\u00e9"]


@pytest.mark.parametrize("name", RESERVED_WORDS + NOT_IDENTIFIERS)
def test_bindings_refuse_names_that_are_not_variable_names(client, name):
    """Regression: `bindings` declared `self` and `nil` as workspace
    variables, which then showed up in every listing and session."""
    requests = [
        {"op": "bindings", "action": "declare", "names": ["ok", name]},
        {"op": "bindings", "action": "remove", "names": [name]},
        {"op": "bindings", "names": [name]},
        {"op": "bindings", "action": "secret", "name": name, "value": "hunter2"},
        {"op": "eval", "code": "3", "declare": [name]},
        {"op": "inspect", "code": "3", "declare": [name]},
        {"op": "script", "units": [{"code": "3", "declare": [name]}]},
    ]
    field = {"bindings": "names", "eval": "declare", "inspect": "declare", "script": "declare"}
    for number, request in enumerate(requests, 1):
        reply = client.request({"id": number, **request})
        assert reply["ok"] is False, (request, reply)
        assert reply["error"]["kind"] == "malformed", (request, reply)
        message = reply["error"]["message"]
        expected_field = "name" if request.get("action") == "secret" else field[request["op"]]
        assert message.startswith(f"{expected_field}: "), message
        why = "is a reserved word" if name in RESERVED_WORDS else "is not a variable name"
        assert why in message, message
        assert "hunter2" not in json.dumps(reply)
    listed = [b["name"] for b in client.request({"id": 99, "op": "bindings"})["bindings"]]
    assert listed == [], "a refused request must declare nothing, not even its good names"


def test_a_request_needs_an_id_and_an_op(client):
    for bad_id in ({"op": "ping"}, {"id": None, "op": "ping"}, {"id": 1.5, "op": "ping"},
                   {"id": True, "op": "ping"}, {"id": [1], "op": "ping"}, {"id": {}, "op": "ping"}):
        reply = client.request(bad_id)
        assert reply == {"id": None, "ok": False, "error": {
            "kind": "malformed", "message": "a request needs an id: an integer or a string"}}, bad_id
    for bad_op in ({"id": 7}, {"id": 7, "op": 7}, {"id": 7, "op": None}, {"id": 7, "op": ["ping"]}):
        reply = client.request(bad_op)
        assert reply == {"id": 7, "ok": False, "error": {"kind": "malformed", "message": "op must be a string"}}, bad_op
    assert client.request({"id": "s", "op": "ping"})["ok"] is True


# Every field of every op, of the wrong kind: each gets its own message.
MALFORMED = [
    ({"op": "eval"}, "code must be a string"),
    ({"op": "eval", "code": 3}, "code must be a string"),
    ({"op": "eval", "code": "3", "declare": "x"}, "declare must be an array of strings"),
    ({"op": "eval", "code": "3", "declare": [1]}, "declare must be an array of strings"),
    ({"op": "eval", "code": "3", "line": 0}, "line must be a positive integer (at most 1073741823)"),
    ({"op": "eval", "code": "3", "line": "2"}, "line must be a positive integer (at most 1073741823)"),
    ({"op": "eval", "code": "3", "line": 2**70}, "line must be a positive integer (at most 1073741823)"),
    ({"op": "eval", "code": "3", "mode": "x"}, "mode must be statements or fileIn, not 'x'"),
    ({"op": "eval", "code": "3", "mode": 1}, "mode must be a string"),
    ({"op": "eval", "code": "3", "print": "no"}, "print must be true or false"),
    ({"op": "eval", "code": "3", "bindings": 1}, "bindings must be true or false"),
    ({"op": "eval", "code": "3", "defined": "yes"}, "defined must be true or false"),
    ({"op": "eval", "code": "3", "batch": 7}, "batch must be a string"),
    ({"op": "inspect", "code": ["3"]}, "code must be a string"),
    ({"op": "script"}, "units must be an array of objects"),
    ({"op": "script", "units": [3]}, "units must be an array of objects"),
    ({"op": "script", "units": [{"code": 3}]}, "code must be a string"),
    ({"op": "script", "units": [{"code": "3", "line": -1}]}, "line must be a positive integer (at most 1073741823)"),
    ({"op": "script", "units": [], "keepGoing": "yes"}, "keepGoing must be true or false"),
    ({"op": "script", "units": [], "print": 0}, "print must be true or false"),
    ({"op": "script", "units": [], "batch": False}, "batch must be a string"),
    ({"op": "fileIn"}, "chunks must be an array of strings"),
    ({"op": "fileIn", "chunks": "3"}, "chunks must be an array of strings"),
    ({"op": "fileIn", "chunks": ["3"], "name": 5}, "name must be a string"),
    ({"op": "fileIn", "chunks": ["3"], "line": 0}, "line must be a positive integer (at most 1073741823)"),
    ({"op": "fileIn", "chunks": ["3"], "keepGoing": 1}, "keepGoing must be true or false"),
    ({"op": "complete", "prefix": 5}, "prefix must be a string"),
    ({"op": "complete", "kind": "class"}, "kind must be name or selector, not 'class'"),
    ({"op": "complete", "limit": -1}, "limit must be an integer, 0 or more"),
    ({"op": "complete", "limit": 1.5}, "limit must be an integer, 0 or more"),
    ({"op": "complete", "limit": "10"}, "limit must be an integer, 0 or more"),
    ({"op": "bindings", "action": 5}, "action must be a string"),
    ({"op": "bindings", "action": "rename"}, "action must be list, remove, declare or secret, not 'rename'"),
    ({"op": "bindings", "names": "x"}, "names must be an array of strings"),
    ({"op": "bindings", "action": "secret", "name": "x"}, "a secret needs a string name and a string value"),
    ({"op": "bindings", "action": "secret", "name": 1, "value": "v"}, "a secret needs a string name and a string value"),
    ({"op": "hello", "protocol": 2, "token": "x"}, "already authenticated"),
]


@pytest.mark.parametrize("request_, message", MALFORMED, ids=[f"{r['op']}-{m[:30]}" for r, m in MALFORMED])
def test_every_malformed_request_gets_a_specific_error(client, request_, message):
    """Regression: `complete` with limit -1 answered an internal error (and
    a string limit a doesNotUnderstand), `print: "no"` printed, `line: 0`
    was taken. Nothing runs and the connection lives on."""
    reply = client.request({"id": 41, **request_})
    assert reply == {"id": 41, "ok": False, "error": {"kind": "malformed", "message": message}}
    assert client.request({"id": 42, "op": "eval", "code": "3 + 4"})["value"] == "7"


def test_optional_fields_may_be_null(client):
    reply = client.request({"id": 1, "op": "eval", "code": "3 + 4", "declare": None, "line": None,
                            "mode": None, "print": None, "batch": None})
    assert reply["value"] == "7"
    assert client.request({"id": 2, "op": "complete", "prefix": "Transcr", "limit": None, "kind": None})["candidates"]
    assert client.request({"id": 3, "op": "complete", "prefix": "Transcr", "limit": 0})["candidates"] == []


@pytest.mark.parametrize("hello, kind, message", [
    ({"op": "eval", "code": "3"}, "unauthenticated", "the first request must be hello with the token"),
    ({"op": "hello", "protocol": 2}, "malformed", "hello needs the token, a string"),
    ({"op": "hello", "protocol": 2, "token": 12345678901234567890}, "malformed", "hello needs the token, a string"),
    ({"op": "hello", "protocol": 1, "token": "TOKEN"}, "malformed", "this server speaks protocol 2 only"),
    ({"op": "hello", "protocol": 2, "token": "TOKEN", "client": 5}, "malformed", "client must be a string"),
    ({"op": "hello", "protocol": 2, "token": "wrong-token-of-the-same-size!!!!"}, "bad-token", "the token does not match"),
    ({"id": 1.5, "op": "hello", "protocol": 2, "token": "TOKEN"}, "malformed", "a request needs an id: an integer or a string"),
])
def test_anything_but_a_good_hello_closes_the_connection(shared_image, hello, kind, message):
    raw = RawClient(shared_image.port)
    request = {"id": 1, **{k: (shared_image.token if v == "TOKEN" else v) for k, v in hello.items()}}
    reply = raw.request(request)
    assert reply["ok"] is False and reply["error"] == {"kind": kind, "message": message}
    assert raw.is_closed_by_server()
    raw.close()


def test_an_unknown_op_is_named(client):
    reply = client.request({"id": "abc", "op": "frobnicate"})
    assert reply == {"id": "abc", "ok": False, "error": {"kind": "unknown-op", "message": "unknown op: 'frobnicate'"}}


def test_an_over_long_line_is_refused_and_the_server_survives(shared_image):
    raw = RawClient(shared_image.port)
    assert raw.hello(shared_image.token)["ok"]
    raw.sock.sendall(b'{"id": 1, "op": "eval", "code": "' + b"1" * (5 * 1024 * 1024))
    reply = raw.receive()
    assert reply is not None and reply["error"]["kind"] == "line-too-long"
    raw.close()
    other = RawClient(shared_image.port)
    assert other.hello(shared_image.token)["ok"]
    assert other.request({"id": 2, "op": "eval", "code": "3 + 4"})["value"] == "7"
    other.close()


def test_a_client_that_does_not_read_holds_back_only_itself(shared_image):
    """Regression: the server wrote with a blocking write(2), so a client
    that stopped reading (its output piling up in the kernel) stopped the
    whole image, and every other client waited for good."""
    import fcntl
    import termios

    greedy = socket.socket()
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    greedy.connect(("127.0.0.1", shared_image.port))
    greedy.sendall(json.dumps({"id": 0, "op": "hello", "protocol": 2, "token": shared_image.token}).encode() + b"\n")
    # A forked process leaves a partial line waiting, for the clock to send.
    greedy.sendall(json.dumps({"id": 1, "op": "eval", "code":
                               "[[stderr nextPutAll: 'y'. (Delay forMilliseconds: 5) wait] repeat] fork. "
                               "1 to: 2000000 do: [:i | Transcript showCr: 'output that nobody reads']"}).encode() + b"\n")

    def waiting() -> int:
        return int.from_bytes(fcntl.ioctl(greedy, termios.FIONREAD, b"\0\0\0\0"), "little")

    def unsent() -> int:
        """What the server's socket to the greedy client holds, unsent (/proc/net/tcp's tx_queue)."""
        ours = f"{greedy.getsockname()[1]:04X}"
        with open("/proc/net/tcp") as table:
            for row in table.readlines()[1:]:
                fields = row.split()
                if fields[1].endswith(f":{shared_image.port:04X}") and fields[2].endswith(f":{ours}"):
                    return int(fields[4].split(":")[0], 16)
        return 0

    wait_for(lambda: waiting() > 2048, "the output piles up in the greedy client's socket")
    sizes = [-1]

    def stuck() -> bool:
        """The server's buffer behind it is full: what it holds stopped growing."""
        sizes.append(unsent())
        time.sleep(0.3)
        return sizes[-1] > 0 and sizes[-1] == sizes[-2]

    if os.path.exists("/proc/net/tcp"):
        wait_for(stuck, "the server's socket to the greedy client is full")
    other = Connection.open(shared_image.host, shared_image.port, shared_image.token, timeout=60)
    assert other.request({"op": "eval", "code": "3 + 4"}, timeout=60)["value"] == "7"
    # The clock still runs: it stops runaway recursion (it once waited to
    # send the greedy client's output, and stood still with it).
    runaway = other.request({"op": "eval", "code": "[:f | f value: f] value: [:f | f value: f]"}, timeout=120)
    assert runaway["error"]["kind"] == "recursion"
    other.close()
    greedy.close()


def test_a_client_vanishing_mid_request_does_not_hurt_the_server(shared_image):
    raw = RawClient(shared_image.port)
    assert raw.hello(shared_image.token)["ok"]
    raw.sock.sendall(b'{"id": 1, "op": "eval", "code": "(Delay forMilliseconds: 200) wait. 3"}\n{"id": 2, "op"')
    raw.close()
    time.sleep(0.3)
    other = RawClient(shared_image.port)
    assert other.hello(shared_image.token)["ok"]
    assert other.request({"id": 2, "op": "ping"})["ok"]
    other.close()


def test_eval_answers_value_and_class_after_streaming_the_output(client):
    reply = client.request({"id": 1, "op": "eval", "code": "Transcript showCr: 'hi'. 42 printNl. stderr nextPutAll: 'e'; nl. 3 + 4"})
    assert reply["ok"] and reply["value"] == "7" and reply["class"] == "SmallInteger"
    assert "store" not in reply and "output" not in reply  # showing a value computes no storeString
    assert client.output(1) == "hi\n42\n" and client.output(1, "stderr") == "e\n"


def test_non_ascii_comes_back_intact(client):
    reply = client.request({"id": 1, "op": "eval", "code": "'h\u00e9llo \u20ac'"})
    assert reply["value"] == "'h\u00e9llo \u20ac'"
    reply = client.request({"id": 2, "op": "eval", "code": "'h\u00e9llo \u20ac' displayNl. 'h\u00e9llo \u20ac' size"})
    assert client.output(2) == "h\u00e9llo \u20ac\n" and reply["value"] == "10"


def test_output_bytes_that_are_not_utf8_come_as_lone_surrogates(client):
    # gst writes bytes: E9 alone is no UTF-8, so it comes as \udce9 (surrogateescape), not as U+00E9.
    code = "stdout nextPut: (Character value: 233); nextPutAll: 'h\u00e9'; nl; flush. (String with: (Character value: 233))"
    reply = client.request({"id": 1, "op": "eval", "code": code})
    assert client.output(1) == "\udce9h\u00e9\n"
    assert reply["value"] == "'\u00e9'"  # values keep the Latin-1 rule: they are for people


def test_a_utf8_sequence_flushed_in_halves_comes_as_stray_bytes_in_both_events(client):
    code = "stdout nextPut: (Character value: 16rC3); flush; nextPut: (Character value: 16rA9); nl"
    client.request({"id": 1, "op": "eval", "code": code})
    texts = [e["text"] for e in client.events if e["event"] == "output" and e["id"] == 1]
    assert texts == ["\udcc3", "\udca9\n"]
    assert "".join(texts).encode("utf-8", "surrogateescape") == "\u00e9\n".encode()


def test_errors_are_values(client):
    reply = client.request({"id": 1, "op": "eval", "code": "1/0"})
    error = reply["error"]
    assert error["kind"] == "exception" and error["class"] == "ZeroDivide"
    assert "divide" in error["message"] and error["stack"][-1] == "DoIt (line 1)"
    assert error["reported"] is True and client.errors(1) == [{k: v for k, v in error.items() if k != "reported"}]
    reply = client.request({"id": 2, "op": "eval", "code": "nil foo"})
    assert reply["error"]["message"] == "nil does not understand #foo"
    reply = client.request({"id": 3, "op": "eval", "code": "3 +", "line": 7})
    assert reply["error"]["kind"] == "syntax" and reply["error"]["line"] == 7 and reply["error"]["column"] == 4
    assert client.errors(3) == []  # a compile error is the reply's alone
    # As when gst files a statement in: a variable nothing declares is nil.
    assert client.request({"id": 4, "op": "eval", "code": "zork isNil"})["value"] == "true"


def test_workspace_variables_persist_and_temporaries_do_not(client):
    assert client.request({"id": 1, "op": "eval", "code": "x := 3 + 4", "declare": ["x"]})["value"] == "7"
    assert client.request({"id": 2, "op": "eval", "code": "x * 2"})["value"] == "14"
    assert client.request({"id": 3, "op": "eval", "code": "| t | t := 5. t * x"})["value"] == "35"
    assert client.request({"id": 4, "op": "eval", "code": "t"})["value"] == "nil"  # a new variable, nil, as in gst


def test_the_server_finds_assignments_itself_without_declare(client):
    assert client.request({"id": 1, "op": "eval", "code": "y := 6. [:a | a] value: y"})["value"] == "6"
    assert client.request({"id": 2, "op": "eval", "code": "y + 1"})["value"] == "7"


def test_assigning_a_global_name_shadows_it_in_the_workspace(client):
    assert client.request({"id": 1, "op": "eval", "code": "Transcript := 5", "declare": ["Transcript"]})["value"] == "5"
    assert client.request({"id": 2, "op": "eval", "code": "Transcript + 1"})["value"] == "6"
    assert client.request({"id": 3, "op": "eval", "code": "(Smalltalk at: #Transcript) class"})["value"] == "TextCollector"
    other = client.request({"id": 4, "op": "eval", "code": "Transcript showCr: 'still here'. 0"})
    assert other["ok"] is False  # 5 does not understand showCr: in this workspace
    assert client.request({"id": 5, "op": "bindings", "action": "remove", "names": ["Transcript"]})["removed"] == ["Transcript"]
    assert client.request({"id": 6, "op": "eval", "code": "Transcript showCr: 'back'. 0"})["ok"]
    assert client.output(6) == "back\n"


def test_bindings_list_declare_and_remove(client):
    client.request({"id": 1, "op": "eval", "code": "b := 2. a := 1", "declare": ["b", "a"]})
    names = [b["name"] for b in client.request({"id": 2, "op": "bindings"})["bindings"]]
    assert names == ["a", "b"]
    refused = client.request({"id": 3, "op": "bindings", "action": "declare", "names": ["c", "1bad"]})
    assert refused["error"] == {"kind": "malformed", "message": "names: '1bad' is not a variable name"}
    assert client.request({"id": 6, "op": "bindings", "action": "declare", "names": ["c"]})["declared"] == ["c"]
    assert client.request({"id": 4, "op": "eval", "code": "c"})["value"] == "nil"
    assert client.request({"id": 5, "op": "bindings", "action": "remove", "names": ["a", "zz"]})["removed"] == ["a"]


def test_complete_and_inspect(client):
    client.request({"id": 1, "op": "eval", "code": "myVariable := 3", "declare": ["myVariable"]})
    names = client.request({"id": 2, "op": "complete", "prefix": "myVa", "kind": "name"})["candidates"]
    assert {"text": "myVariable", "type": "variable"} in names
    classes = client.request({"id": 3, "op": "complete", "prefix": "Transc", "kind": "name"})["candidates"]
    assert {"text": "Transcript", "type": "global"} in classes
    selectors = client.request({"id": 4, "op": "complete", "prefix": "inject:", "kind": "selector"})["candidates"]
    assert {"text": "inject:into:", "type": "selector"} in selectors
    reply = client.request({"id": 5, "op": "inspect", "code": "3 @ 4"})
    assert reply["class"] == "Point" and [s["name"] for s in reply["named"]] == ["x", "y"]
    reply = client.request({"id": 6, "op": "inspect", "code": "(1 to: 150) asArray"})
    assert reply["size"] == 150 and len(reply["indexed"]) == 100


def test_batches_skip_after_the_first_failure(client):
    for index, code in enumerate(["1", "1/0", "2"]):
        client.send({"id": index, "op": "eval", "code": code, "batch": "b1"})
    replies = [client.receive() for _ in range(3)]
    assert [r["ok"] for r in replies] == [True, False, False]
    assert replies[2]["error"]["kind"] == "skipped"
    assert client.request({"id": 9, "op": "eval", "code": "3", "batch": "b2"})["ok"]


def test_twenty_concurrent_clients_each_have_their_own_x(shared_image):
    errors: list[str] = []

    def work(index: int) -> None:
        try:
            raw = RawClient(shared_image.port)
            assert raw.hello(shared_image.token)["ok"]
            for round_ in range(5):
                reply = raw.request({"id": round_, "op": "eval", "code": f"x := {index} * 100 + {round_}. x printNl. x", "declare": ["x"]})
                expected = str(index * 100 + round_)
                if reply.get("value") != expected or raw.output(round_) != expected + "\n":
                    errors.append(f"client {index}: {reply} {raw.events}")
            raw.close()
        except (OSError, AssertionError, ValueError) as exc:  # reported below
            errors.append(f"client {index}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []


def test_interrupt_ends_a_runaway_loop_and_keeps_the_workspace(shared_image):
    busy = RawClient(shared_image.port)
    assert busy.hello(shared_image.token)["ok"]
    busy.request({"id": 1, "op": "eval", "code": "kept := 42", "declare": ["kept"]})
    busy.send({"id": 2, "op": "eval", "code": "[true] whileTrue"})
    time.sleep(0.3)
    other = RawClient(shared_image.port)
    assert other.hello(shared_image.token)["ok"]
    assert other.request({"id": 1, "op": "eval", "code": "3 + 4"})["value"] == "7"
    busy.send({"id": 3, "op": "interrupt"})
    replies = {r["id"]: r for r in (busy.receive(), busy.receive())}
    assert replies[3] == {"id": 3, "ok": True, "interrupted": True}
    assert replies[2]["error"]["kind"] == "interrupted"
    assert busy.request({"id": 4, "op": "eval", "code": "kept"})["value"] == "42"
    busy.close()
    other.close()


def test_runaway_recursion_is_stopped_and_the_image_lives_on(client):
    reply = client.request({"id": 1, "op": "eval", "code": "kept := 7. b := nil. b := [:n | (b value: n + 1) + 1]. b value: 0",
                            "declare": ["kept", "b"]})
    assert reply["ok"] is False and reply["error"]["kind"] == "recursion"
    assert client.request({"id": 2, "op": "eval", "code": "kept * 6"})["value"] == "42"


def test_runaway_recursion_in_a_forked_process_is_stopped_and_reported(client):
    reply = client.request({"id": 1, "op": "eval", "code": "[[:f | f value: f] value: [:f | f value: f]] fork. 3"})
    assert reply["ok"] is True and reply["value"] == "3"
    errors = client.errors()
    assert [e["kind"] for e in errors] == ["recursion"], client.events
    assert "stack depth exceeded" in errors[0]["message"]
    assert client.request({"id": 2, "op": "eval", "code": "3 + 4"})["value"] == "7"


def test_interrupt_reaches_a_deep_recursion(client):
    client.send({"id": 1, "op": "eval", "code": "| b | b := nil. b := [:n | (b value: n + 1) + 1]. b value: 0"})
    time.sleep(0.1)
    client.send({"id": 2, "op": "interrupt"})
    replies = {r["id"]: r for r in (client.receive(), client.receive())}
    assert replies[1]["error"]["kind"] in ("interrupted", "recursion")
    assert client.request({"id": 3, "op": "ping"})["ok"]


def test_output_of_concurrent_evaluations_is_kept_apart(shared_image):
    first, second = RawClient(shared_image.port), RawClient(shared_image.port)
    for raw in (first, second):
        assert raw.hello(shared_image.token)["ok"]
    first.send({"id": 1, "op": "eval", "code": "1 to: 200 do: [:i | Transcript show: 'a']. 1"})
    second.send({"id": 1, "op": "eval", "code": "1 to: 200 do: [:i | Transcript show: 'b']. 2"})
    assert first.receive()["ok"] and second.receive()["ok"]
    assert first.output() == "a" * 200 and second.output() == "b" * 200
    first.close()
    second.close()


def test_script_runs_many_statements_and_stops_at_the_first_failure(client):
    units = [{"code": "s := 0", "declare": ["s"], "line": 1}]
    units += [{"code": f"s := s + {i}", "declare": ["s"], "line": i + 2} for i in range(10)]
    units += [{"code": "s printNl", "line": 12}, {"code": "1/0", "line": 13}, {"code": "'never' printNl", "line": 14}]
    reply = client.request({"id": 1, "op": "script", "units": units, "print": False})
    results = client.results(1)
    assert reply["results"] == len(results)
    assert sum(r.get("statements", 1) for r in results) == 13
    assert all(r["ok"] for r in results[:-1])
    assert client.output(1) == "45\n"
    assert results[-1]["error"]["class"] == "ZeroDivide"
    assert results[-1]["error"]["stack"][-1] == "DoIt (line 13)"


def test_script_with_values_and_keep_going(client):
    units = [{"code": "3 + 4", "line": 1}, {"code": "nil foo", "line": 2}, {"code": "'x'", "line": 3}]
    assert client.request({"id": 1, "op": "script", "units": units, "keepGoing": True})["ok"]
    results = client.results(1)
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[0]["value"] == "7" and results[2]["value"] == "'x'"


def test_a_compile_error_in_a_merged_run_names_its_own_statement(client):
    units = [{"code": "'a' printNl", "line": 1}, {"code": "'b' printNl", "line": 2},
             {"code": "3 + + 4", "line": 5}, {"code": "'c' printNl", "line": 6}]
    client.request({"id": 1, "op": "script", "units": units, "print": False})
    results = client.results(1)
    assert client.output(1) == "'a'\n'b'\n"
    assert results[2]["error"]["kind"] == "syntax" and results[2]["error"]["line"] == 5
    assert len(results) == 3


def test_a_merged_run_answers_once_for_all_its_statements(client):
    units = [{"code": f"'s{i}' displayNl", "line": i + 1} for i in range(5)]
    client.request({"id": 1, "op": "script", "units": units, "print": False})
    results = client.results(1)
    assert results == [{"ok": True, "ms": results[0]["ms"], "statements": 5}]
    assert client.output(1) == "s0\ns1\ns2\ns3\ns4\n"


def test_thousands_of_pipelined_evaluations_all_answer(shared_image):
    """Regression: a resume lost to gst's process start-up left an evaluation
    suspended forever, and its connection with it (about one batch in ten)."""
    from stui_repl.client.connection import Connection

    connection = Connection.open(shared_image.host, shared_image.port, shared_image.token)
    connection.request({"op": "eval", "code": "n := 0", "declare": ["n"]})
    for _batch in range(3):
        replies: list[bool] = []

        def collect(request, reply, replies=replies):
            replies.append(reply["ok"])
            return True

        requests = ({"op": "eval", "code": "n := n + 1", "declare": ["n"], "print": False} for _ in range(2000))
        connection.pipeline(requests, collect, window=64)
        assert replies == [True] * 2000
    assert connection.request({"op": "eval", "code": "n"})["value"] == "6000"
    connection.close()


def by_name(reply: dict) -> dict[str, dict]:
    return {description["name"]: description for description in reply["bindings"]}


def interrupt_until_stopped(raw: RawClient, waiting_for: object, first_id: int = 100) -> dict:
    """Interrupt until an interrupt stops something, then answer every reply
    by id, the one waited for included. Not timing-sensitive: an interrupt
    that comes before the work has started answers false and is sent again."""
    replies: dict = {}
    interrupt_id = first_id
    while waiting_for not in replies:
        raw.send({"id": interrupt_id, "op": "interrupt"})
        while interrupt_id not in replies:
            reply = raw.receive()
            assert reply is not None, "connection closed"
            replies[reply["id"]] = reply
        if replies[interrupt_id]["interrupted"]:
            break
        interrupt_id += 1
        time.sleep(0.02)
    while waiting_for not in replies:
        reply = raw.receive()
        assert reply is not None, "connection closed"
        replies[reply["id"]] = reply
    return replies


def test_bindings_have_a_store_that_rebuilds_them_in_another_workspace(shared_image, client):
    code = ("f := 3/4. a := #(1 2 3). s := 'abc'. o := OrderedCollection new add: 1; add: 'two'; yourself. "
            "n := Object new. long := String new: 5000 withAll: $x")
    names = ["f", "a", "s", "o", "n", "long"]
    assert client.request({"id": 1, "op": "eval", "code": code, "declare": names, "print": False})["ok"]
    bindings = by_name(client.request({"id": 2, "op": "bindings"}))
    assert set(bindings) == set(names)
    assert bindings["s"]["store"] == "'abc'"
    assert "store" not in bindings["n"] and bindings["n"]["value"] == "an Object"
    assert "store" not in bindings["long"]  # longer than 4096 characters
    fresh = RawClient(shared_image.port)
    assert fresh.hello(shared_image.token)["ok"]
    for index, name in enumerate(["f", "a", "s", "o"]):
        rebuilt = fresh.request({"id": index, "op": "eval", "code": f"{name} := {bindings[name]['store']}", "declare": [name]})
        assert rebuilt["ok"] and rebuilt["value"] == bindings[name]["value"] and rebuilt["class"] == bindings[name]["class"], rebuilt
    fresh.close()


def test_bindings_names_choose_what_is_described(client):
    client.request({"id": 1, "op": "eval", "code": "a := 1. b := 2. c := 3", "declare": ["a", "b", "c"]})
    reply = client.request({"id": 2, "op": "bindings", "names": ["c", "a", "nope"]})
    assert reply["bindings"] == [{"name": "a", "value": "1", "class": "SmallInteger", "store": "1"},
                                 {"name": "c", "value": "3", "class": "SmallInteger", "store": "3"}]
    assert client.request({"id": 3, "op": "bindings", "action": "list", "names": []})["bindings"] == []
    assert client.request({"id": 4, "op": "bindings", "names": "a"})["error"]["kind"] == "malformed"


def test_bindings_list_waits_for_the_evaluations_before_it(client):
    client.send({"id": 1, "op": "eval", "code": "(Delay forMilliseconds: 100) wait. late := 5", "declare": ["late"]})
    client.send({"id": 2, "op": "bindings", "names": ["late"]})
    first, second = client.receive(), client.receive()
    assert (first["id"], second["id"]) == (1, 2)
    assert second["bindings"] == [{"name": "late", "value": "5", "class": "SmallInteger", "store": "5"}]


def test_a_bindings_list_that_runs_away_can_be_interrupted(client):
    loopy = "Object subclass: StuiLoopy [ printOn: aStream [ [true] whileTrue ] ]"
    assert client.request({"id": 1, "op": "eval", "code": loopy, "mode": "fileIn"})["ok"]
    assert client.request({"id": 2, "op": "eval", "code": "loopy := StuiLoopy new", "declare": ["loopy"], "print": False})["ok"]
    client.send({"id": 3, "op": "bindings"})
    replies = interrupt_until_stopped(client, 3)
    assert replies[3]["ok"] is False and replies[3]["error"]["kind"] == "interrupted"
    assert client.request({"id": 4, "op": "eval", "code": "3 + 4"})["value"] == "7"


def test_eval_can_answer_the_bindings_it_declared(client):
    reply = client.request({"id": 1, "op": "eval", "code": "p := 3/4. q := p * 2", "declare": ["p", "q"], "bindings": True})
    assert reply["ok"] and reply["value"] == "3/2"
    assert [b["name"] for b in reply["bindings"]] == ["p", "q"]
    assert by_name(reply)["p"]["value"] == "3/4" and "store" in by_name(reply)["p"]
    reply = client.request({"id": 2, "op": "eval", "code": "r := 5. [:k | k] value: r", "bindings": True})
    assert [b["name"] for b in reply["bindings"]] == ["r"]
    reply = client.request({"id": 3, "op": "eval", "code": "p := 1", "declare": ["p"]})
    assert "bindings" not in reply
    assert client.request({"id": 4, "op": "eval", "code": "1", "bindings": "yes"})["error"]["kind"] == "malformed"


def test_describing_the_bindings_adds_nothing_to_the_output(client):
    noisy = "Object subclass: StuiNoisy [ printOn: aStream [ Transcript showCr: 'noise'. aStream nextPutAll: 'a noisy one' ] ]"
    assert client.request({"id": 1, "op": "eval", "code": noisy, "mode": "fileIn"})["ok"]
    reply = client.request({"id": 2, "op": "eval", "code": "noisy := StuiNoisy new", "declare": ["noisy"], "print": False, "bindings": True})
    assert client.output(2) == "" and reply["bindings"][0]["value"] == "a noisy one"
    reply = client.request({"id": 3, "op": "eval", "code": "noisy printNl", "print": False, "bindings": True})
    assert client.output(3) == "noise\na noisy one\n" and reply["bindings"] == []  # assigns nothing


def test_eval_answers_bindings_on_errors_too(client):
    reply = client.request({"id": 1, "op": "eval", "code": "e1 := 7. e2 := e1 / 0", "declare": ["e1", "e2"], "bindings": True})
    assert reply["ok"] is False and reply["error"]["class"] == "ZeroDivide"
    assert reply["bindings"] == [{"name": "e1", "value": "7", "class": "SmallInteger", "store": "7"},
                                 {"name": "e2", "value": "nil", "class": "UndefinedObject", "store": "nil"}]
    client.send({"id": 2, "op": "eval", "code": "k := 1. [true] whileTrue", "declare": ["k"], "bindings": True})
    replies = interrupt_until_stopped(client, 2)
    assert replies[2]["error"]["kind"] == "interrupted"
    assert replies[2]["bindings"] == [{"name": "k", "value": "1", "class": "SmallInteger", "store": "1"}]


def test_a_secret_works_as_its_string_and_never_shows(client):
    reply = client.request({"id": 1, "op": "bindings", "action": "secret", "name": "dbPass", "value": "hunter2"})
    assert reply == {"id": 1, "ok": True, "declared": ["dbPass"]}
    assert client.request({"id": 2, "op": "eval", "code": "dbPass size"})["value"] == "7"
    assert client.request({"id": 3, "op": "eval", "code": "dbPass = 'hunter2'"})["value"] == "true"
    assert client.request({"id": 4, "op": "eval", "code": "'hunter2' = dbPass"})["value"] == "true"
    assert client.request({"id": 5, "op": "eval", "code": "(ReadStream on: dbPass) next: 3"})["value"] == "'hun'"
    shown = [
        client.request({"id": 6, "op": "eval", "code": "dbPass"}),
        client.request({"id": 7, "op": "eval", "code": "dbPass printNl. dbPass displayNl. Transcript showCr: dbPass printString; "
                                                        "showCr: dbPass displayString; showCr: dbPass storeString; print: dbPass; cr. dbPass"}),
        client.request({"id": 8, "op": "eval", "code": "Array with: dbPass with: dbPass -> 1"}),
        client.request({"id": 9, "op": "bindings"}),
        client.request({"id": 10, "op": "bindings", "names": ["dbPass"]}),
        client.request({"id": 11, "op": "inspect", "code": "dbPass"}),
        client.request({"id": 12, "op": "eval", "code": "alias := dbPass", "declare": ["alias"], "bindings": True}),
        client.request({"id": 13, "op": "eval", "code": "dbPass foo"}),
    ]
    for reply in [*shown, *client.events]:
        assert "hunter" not in json.dumps(reply), reply
    value = shown[0]
    assert value["value"] == "'********'" and value["secret"] is True and "store" not in value
    assert client.output(7) == "'********'\n********\n'********'\n********\n'********'\n'********'\n"
    assert shown[2]["value"] == "('********' '********'->1 )" and "store" not in shown[2]
    for reply in (shown[3], shown[4], shown[6]):
        assert by_name(reply)["dbPass" if reply is not shown[6] else "alias"] == {
            "name": "dbPass" if reply is not shown[6] else "alias", "value": "'********'", "class": "StuiSecret", "secret": True}
    inspected = shown[5]
    assert inspected["secret"] is True and inspected["value"] == "'********'" and inspected["indexed"] == [] and inspected["size"] == 0
    assert shown[7]["error"]["message"] == "'********' does not understand #foo"


def test_derived_strings_are_plain_and_bad_secrets_are_refused(client):
    client.request({"id": 1, "op": "bindings", "action": "secret", "name": "token", "value": "s3cr3t"})
    assert client.request({"id": 2, "op": "eval", "code": "token , 'x'"})["value"] == "'s3cr3tx'"
    assert client.request({"id": 3, "op": "eval", "code": "'Bearer ' , token"})["value"] == "'Bearer s3cr3t'"
    for index, bad in enumerate([{"name": "9x", "value": "v"}, {"name": "x"}, {"name": "x", "value": 7}, {"value": "s3cr3t"}]):
        reply = client.request({"id": 10 + index, "op": "bindings", "action": "secret", **bad})
        assert reply["ok"] is False and reply["error"]["kind"] == "malformed", reply
        assert "s3cr3t" not in json.dumps(reply)


def test_an_evaluation_queued_behind_an_interrupted_one_runs(client):
    """Regression: gst terminates a process asynchronously, and the queued
    evaluation was handed to the evaluator that was still unwinding: lost,
    and the connection hung."""
    client.send({"id": 1, "op": "eval", "code": "[true] whileTrue"})
    client.send({"id": 2, "op": "eval", "code": "3 + 4"})
    replies = interrupt_until_stopped(client, 1)
    assert replies[1]["error"]["kind"] == "interrupted"
    queued = replies.get(2) or client.receive()
    assert queued["id"] == 2 and queued["value"] == "7"


def test_statements_sharing_a_line_are_not_merged_so_a_failure_names_its_own(client):
    # The server finds the failing statement of a merged run by its line;
    # units given without lines must still be told apart.
    units = [{"code": "a := 1", "declare": ["a"]}, {"code": "b := 1/0", "declare": ["b"]}, {"code": "c := 3", "declare": ["c"]}]
    client.request({"id": 1, "op": "script", "units": units, "print": False})
    results = client.results(1)
    assert [r["ok"] for r in results] == [True, False]
    assert results[0].get("statements", 1) == 1 and results[1]["error"]["class"] == "ZeroDivide"


# -- workspace leases: resuming a workspace after the connection broke -------------

HEX = set("0123456789abcdef")


def connect(image, resume: object = None) -> tuple[RawClient, dict]:
    raw = RawClient(image.port)
    reply = raw.hello(image.token, resume)
    assert reply["ok"], reply
    return raw, reply


def resume_of(reply: dict) -> dict:
    return {"workspace": reply["workspace"], "token": reply["resumeToken"]}


def workspace_counts(raw: RawClient) -> tuple[int, int]:
    counts = raw.request({"id": "ping", "op": "ping"})["workspaces"]
    return counts["attached"], counts["detached"]


def wait_for(condition, what: str, deadline: float = 60.0):
    """Poll until condition() answers something true. The deadline is only
    there so that a broken server fails the test instead of hanging it: a
    correct one gets there in a fraction of it, however slow the machine."""
    end = time.monotonic() + deadline
    while True:
        answer = condition()
        if answer:
            return answer
        assert time.monotonic() < end, f"still waiting, after {deadline:g} s, for {what}"
        time.sleep(0.05)


def value_of(raw: RawClient, code: str) -> str:
    reply = raw.request({"id": "v", "op": "eval", "code": code})
    assert reply["ok"], reply
    return reply["value"]


def test_hello_offers_a_resume_token_and_the_lease(shared_image):
    first, hello = connect(shared_image)
    second, other = connect(shared_image)
    for reply in (hello, other):
        assert len(reply["resumeToken"]) == 32 and set(reply["resumeToken"]) <= HEX
        assert reply["lease"] == 300 and reply["resumed"] is False
    assert hello["resumeToken"] != other["resumeToken"] and hello["workspace"] != other["workspace"]
    first.close()
    second.close()


def test_resume_after_closing_the_socket_keeps_the_variables(image):
    first, hello = connect(image)
    first.request({"id": 1, "op": "eval", "code": "kept := 6 * 7", "declare": ["kept"]})
    watcher, _ = connect(image)
    assert workspace_counts(watcher) == (2, 0)
    first.close()
    wait_for(lambda: workspace_counts(watcher) == (1, 1), "the closed connection's workspace to be detached")
    again, reply = connect(image, resume_of(hello))
    assert reply["resumed"] is True and reply["workspace"] == hello["workspace"]
    assert reply["resumeToken"] == hello["resumeToken"]
    assert value_of(again, "kept") == "42"
    assert workspace_counts(watcher) == (2, 0)
    again.close()
    watcher.close()


def test_a_wrong_token_or_an_unknown_workspace_gives_a_fresh_one(shared_image):
    owner, hello = connect(shared_image)
    owner.request({"id": 1, "op": "eval", "code": "mine := 1", "declare": ["mine"]})
    wrong = "0" * 32 if hello["resumeToken"] != "0" * 32 else "1" * 32
    attempts = [
        {"workspace": hello["workspace"], "token": wrong},
        {"workspace": "w999999", "token": wrong},
        {"workspace": "w999999", "token": hello["resumeToken"]},
        {"workspace": hello["workspace"]},
        {"workspace": hello["workspace"], "token": 7},
        "w1",
        [hello["workspace"], hello["resumeToken"]],
    ]
    replies = []
    for resume in attempts:
        stranger, reply = connect(shared_image, resume)
        assert reply["resumed"] is False, resume
        assert reply["workspace"] != hello["workspace"]
        assert stranger.request({"id": 2, "op": "eval", "code": "mine"})["value"] == "nil"  # not the other workspace's
        replies.append(reply)
        stranger.close()
    # Nothing tells a wrong token from a workspace that does not exist.
    shape = {key: type(value) for key, value in replies[0].items()}
    for reply in replies:
        assert {key: type(value) for key, value in reply.items()} == shape
        different = {key for key in reply if reply[key] != replies[0][key]}
        assert different <= {"workspace", "resumeToken"}
    assert set(hello) == set(replies[0])
    # The owner was not disturbed, and its token still works.
    assert value_of(owner, "mine") == "1"
    owner.close()
    again, reply = connect(shared_image, resume_of(hello))
    assert reply["resumed"] is True and value_of(again, "mine") == "1"
    again.close()


def test_the_resume_token_stays_the_workspaces_even_when_a_reply_was_never_read(shared_image):
    # A client that gave up waiting for a hello's reply (a stalled network)
    # must still be able to resume with the token it has.
    first, hello = connect(shared_image)
    first.request({"id": 1, "op": "eval", "code": "v := 1", "declare": ["v"]})
    first.close()
    second, resumed = connect(shared_image, resume_of(hello))
    assert resumed["resumed"] is True and resumed["resumeToken"] == hello["resumeToken"]
    second.close()
    third, again = connect(shared_image, resume_of(hello))
    assert again["resumed"] is True and again["workspace"] == hello["workspace"]
    assert value_of(third, "v") == "1"
    third.close()


def start_a_loop(raw: RawClient, watcher: RawClient, probe: str) -> None:
    """Have raw run an endless loop that counts in n and sets stopped when it
    is unwound; wait (through a global that watcher can read) until it runs."""
    raw.request({"id": 1, "op": "eval", "code": "n := 0. stopped := false", "declare": ["n", "stopped"]})
    raw.send({"id": 2, "op": "eval", "declare": ["n", "stopped"],
              "code": f"Smalltalk at: #{probe} put: true. [[true] whileTrue: [n := n + 1]] ensure: [stopped := true]"})
    wait_for(lambda: value_of(watcher, f"Smalltalk at: #{probe} ifAbsent: [false]") == "true", "the loop to start")
    watcher.request({"id": 3, "op": "eval", "code": f"Smalltalk removeKey: #{probe}"})


def assert_the_loop_stopped(raw: RawClient) -> None:
    wait_for(lambda: value_of(raw, "stopped") == "true", "the loop to be unwound")
    count = value_of(raw, "n")
    time.sleep(0.3)
    assert value_of(raw, "n") == count  # nothing counts any more


def test_resume_while_the_old_connection_is_open_takes_the_workspace_over(image):
    old, hello = connect(image)
    watcher, _ = connect(image)
    start_a_loop(old, watcher, "StuiLeaseProbeTakeOver")
    new, reply = connect(image, resume_of(hello))
    assert reply["resumed"] is True and reply["workspace"] == hello["workspace"]
    assert old.is_closed_by_server()  # and the loop's reply is lost with it
    assert_the_loop_stopped(new)
    assert workspace_counts(watcher) == (2, 0)
    old.close()
    new.close()
    watcher.close()


def test_an_evaluation_running_when_its_connection_is_cut_is_stopped(image):
    cut, hello = connect(image)
    watcher, _ = connect(image)
    cut.request({"id": 0, "op": "eval", "code": "kept := 'still here'", "declare": ["kept"]})
    start_a_loop(cut, watcher, "StuiLeaseProbeCut")
    cut.close()
    wait_for(lambda: workspace_counts(watcher) == (1, 1), "the cut connection's workspace to be detached")
    again, reply = connect(image, resume_of(hello))
    assert reply["resumed"] is True
    assert_the_loop_stopped(again)
    assert value_of(again, "kept") == "'still here'"
    again.close()
    watcher.close()


def test_a_workspace_whose_lease_expired_is_gone(gst_install, server_image):
    from stui_repl.image.launcher import launch

    running = launch(gst_install, lease=1)
    try:
        first, hello = connect(running)
        assert hello["lease"] == 1
        first.request({"id": 1, "op": "eval", "code": "x := 1", "declare": ["x"]})
        watcher, _ = connect(running)
        assert workspace_counts(watcher) == (2, 0)
        first.close()
        # (1, 1) while the lease runs, then (1, 0): only expiry leads there.
        wait_for(lambda: workspace_counts(watcher) == (1, 0), "the lease to expire")
        again, reply = connect(running, resume_of(hello))
        assert reply["resumed"] is False and reply["workspace"] != hello["workspace"]
        assert again.request({"id": 2, "op": "eval", "code": "x"})["value"] == "nil"  # a new workspace's x
        assert workspace_counts(watcher) == (2, 0)
        again.close()
        watcher.close()
    finally:
        running.stop()


def test_a_lease_of_zero_releases_the_workspace_at_once(gst_install, server_image):
    from stui_repl.image.launcher import launch

    running = launch(gst_install, lease=0)
    try:
        first, hello = connect(running)
        assert hello["lease"] == 0
        watcher, _ = connect(running)
        first.close()
        wait_for(lambda: workspace_counts(watcher) == (1, 0), "the workspace to be released")
        again, reply = connect(running, resume_of(hello))
        assert reply["resumed"] is False
        again.close()
        watcher.close()
    finally:
        running.stop()


def start_server_directly(gst_install, server_image, settings: dict) -> subprocess.CompletedProcess:
    from stui_repl.image.launcher import START_SCRIPT

    return subprocess.run(
        gst_install.command(str(START_SCRIPT), image=server_image), env=gst_install.environ(),
        input=json.dumps(settings) + "\n", capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize("token", [None, "", "short"])
def test_a_non_loopback_address_without_a_token_is_refused(gst_install, server_image, token):
    settings: dict = {"host": "0.0.0.0", "port": 0}
    if token is not None:
        settings["token"] = token
    done = start_server_directly(gst_install, server_image, settings)
    assert done.returncode != 0
    assert "LISTENING" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and "refusing to listen on 0.0.0.0" in lines[-1] and "loopback" in lines[-1], done.stderr


def test_the_launcher_reports_the_refusal_in_one_line(gst_install, server_image):
    from stui_repl.image.launcher import Launch

    with pytest.raises(ImageUnreachable) as caught:
        Launch(gst_install, "0.0.0.0", 0, "", None, 30.0, None, None).wait()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the image did not start: stui server: refusing to listen on 0.0.0.0 without a token")


@pytest.mark.parametrize("settings, complaint", [
    ({"lease": -1}, "lease must be"),
    ({"lease": "long"}, "lease must be"),
    ({"host": ""}, "host must be"),
    ({"port": "x"}, "port must be"),
])
def test_bad_settings_are_refused_before_listening(gst_install, server_image, settings, complaint):
    done = start_server_directly(gst_install, server_image, {"host": "127.0.0.1", "port": 0, "token": "t" * 32, **settings})
    assert done.returncode != 0 and "LISTENING" not in done.stdout
    assert complaint in done.stderr


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the listening TCP sockets on port (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_localhost_means_the_loopback_interface(gst_install, server_image):
    """gst's IPAddress fromString: reads 'localhost' (any name) as 0.0.0.0."""
    from stui_repl.image.launcher import launch

    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("needs /proc/net/tcp to see where the server listens")
    running = launch(gst_install, host="localhost")
    try:
        addresses = listening_addresses(running.port)
        assert addresses and all(address in ("0100007F", "00000000000000000000000001000000") for address in addresses), addresses
        raw, _ = connect(running)
        assert value_of(raw, "3 + 4") == "7"
        raw.close()
    finally:
        running.stop()


def test_stui_serve_passes_its_lease_to_the_server(server_image, tmp_path):
    token_file = tmp_path / "token"
    serving = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "serve", "--lease", "1.5", "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        ready, _, _ = select.select([serving.stdout], [], [], 120)
        address = serving.stdout.readline().strip() if ready else ""  # printed once it listens
        assert address, "stui serve printed no address"
        raw = RawClient(int(address.rsplit(":", 1)[1]))
        reply = raw.hello(token_file.read_text().strip())
        assert reply["ok"] and reply["lease"] == 1.5
        raw.close()
    finally:
        serving.terminate()
        serving.wait(30)
        serving.stdout.close()
        serving.stderr.close()


def test_stui_serve_writes_an_ipv6_address_in_brackets(server_image, tmp_path):
    """On the IPv6 loopback (the only addresses tests may listen on): no
    warning; any other address gets one line saying only the token protects it."""
    serving = subprocess.Popen(
        [sys.executable, "-m", "stui_repl", "serve", "--host", "::1", "--token-file", str(tmp_path / "token")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        ready, _, _ = select.select([serving.stdout], [], [], 120)
        address = serving.stdout.readline().strip() if ready else ""
        assert address.startswith("[::1]:") and address.rsplit(":", 1)[1].isdigit(), address
    finally:
        serving.terminate()
        serving.wait(30)
        serving.stdout.close()
        err = serving.stderr.read()
        serving.stderr.close()
    assert f"serving on {address}" in err and "reachable from the network" not in err


@pytest.mark.parametrize("lease", ["-1", "nan", "inf", "soon"])
def test_stui_serve_refuses_a_bad_lease(lease):
    done = run_stui("serve", "--lease", lease, timeout=30)
    assert done.returncode == 2 and "LISTENING" not in done.stdout
    assert "--lease" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# -- protocol 2: events, fileIn, definitions ---------------------------------------


def test_a_file_in_streams_its_output_and_reports_errors_where_gst_does(client):
    chunks = ["'one' displayNl.\n", "1/0.\n", "'two' displayNl.\n", "3 +.\n", "'three' displayNl.\n"]
    reply = client.request({"id": 1, "op": "fileIn", "chunks": chunks, "name": "demo.st", "keepGoing": True})
    assert reply["ok"] is False and reply["errors"] == 2 and reply["error"]["reported"] is True
    assert client.output(1) == "one\ntwo\n"  # as under gst, recovering from "3 +." skips the rest
    [error] = client.errors(1)
    assert (error["class"], error["file"], error["line"]) == ("ZeroDivide", "demo.st", 2)
    assert client.output(1, "stderr").startswith("demo.st:4: ")  # gst's own words for a parse error


def test_a_file_in_stops_at_its_first_error_unless_told_to_go_on(client):
    chunks = ["'one' displayNl.\n", "nil foo.\n", "'never' displayNl.\n"]
    reply = client.request({"id": 1, "op": "fileIn", "chunks": chunks, "name": "stop.st"})
    assert reply["ok"] is False and reply["errors"] == 1
    assert client.output(1) == "one\n"
    assert [e["line"] for e in client.errors(1)] == [2]
    for bad in ({"chunks": "1."}, {"chunks": [1]}, {"chunks": ["1."], "line": "2"}, {"chunks": ["1."], "line": 0}):
        assert client.request({"id": 2, "op": "fileIn", **bad})["error"]["kind"] == "malformed"


def test_a_file_in_too_large_for_one_line_goes_on_in_file_in_more_requests(client):
    """The rest of the text follows in fileInMore requests, each answered
    when the file-in takes it; the file-in's own reply comes last."""
    client.send({"id": 1, "op": "fileIn", "chunks": ["| x |\n", "x := 3.\n"], "name": "big.st", "more": True})
    client.send({"id": 2, "op": "fileInMore", "of": 1, "chunks": ["x := x * 2.\n", "'half' displayNl.\n"], "more": True})
    client.send({"id": 3, "op": "fileInMore", "of": 1, "chunks": ["x printNl.\n"], "more": False})
    replies = {reply["id"]: reply for reply in (client.receive() for _ in range(3))}
    assert replies[2] == {"id": 2, "ok": True, "taken": True} and replies[3]["ok"]
    assert replies[1]["ok"] and replies[1]["errors"] == 0
    assert client.output(1) == "half\n6\n"  # the temporaries of the first piece live on, as in one file


def test_a_file_in_runs_the_pieces_it_has_while_the_next_are_still_to_come(client):
    """Text still arriving (a pipe): what has come runs at once, without
    waiting for the piece after it; an empty last piece ends the text."""
    client.send({"id": 1, "op": "fileIn", "chunks": ["| x |\n", "x := 3.\n", "x printNl.\n"], "name": "s", "more": True})
    seen = json.loads(client.file.readline())  # nothing more has been sent: this comes all the same
    assert seen == {"event": "output", "id": 1, "stream": "stdout", "text": "3\n"}
    client.send({"id": 2, "op": "fileInMore", "of": 1, "chunks": ["x := x + 1.\n", "x printNl.\n"], "more": True})
    seen = [json.loads(client.file.readline()) for _ in range(2)]
    assert seen == [{"id": 2, "ok": True, "taken": True}, {"event": "output", "id": 1, "stream": "stdout", "text": "4\n"}]
    client.send({"id": 3, "op": "fileInMore", "of": 1, "chunks": [], "more": False})
    replies = {reply["id"]: reply for reply in (client.receive() for _ in range(2))}
    assert replies[3]["ok"] and replies[1] == {"id": 1, "ok": True, "errors": 0}


def test_pieces_of_a_file_in_that_stopped_are_skipped(client):
    client.send({"id": 1, "op": "fileIn", "chunks": ["nil foo.\n", "'never' displayNl.\n"], "name": "s.st", "more": True})
    client.send({"id": 2, "op": "fileInMore", "of": 1, "chunks": ["'nor this' displayNl.\n"], "more": False})
    replies = {reply["id"]: reply for reply in (client.receive() for _ in range(2))}
    assert replies[1]["ok"] is False and replies[1]["errors"] == 1, (replies, client.events)
    assert replies[2]["ok"] is False and replies[2]["error"]["kind"] == "skipped"
    assert client.output(1) == ""
    late = client.request({"id": 4, "op": "fileInMore", "of": 1, "chunks": ["1.\n"], "more": False})
    assert late["error"]["kind"] == "skipped"  # its file-in has ended: nothing waits for it
    assert client.request({"id": 5, "op": "fileInMore", "of": 1, "chunks": "1."})["error"]["kind"] == "malformed"


def test_compile_warnings_come_before_the_errors_of_the_statements_after_them(client):
    """gst prints a method's compile warning when it compiles it, before
    whatever the statements after it do: an error they end in included,
    even when no piece of the text ends between them."""
    text = "Object subclass: StuiLoose [ read [ ^stuiMystery ] ]\nStuiLoose new read.\nnil foo.\n"
    reply = client.request({"id": 1, "op": "fileIn", "chunks": [text], "name": "loose.st", "keepGoing": True})
    assert reply["errors"] == 3
    shown = [e["text"] if e["event"] == "output" else e["error"]["line"] for e in client.events if e.get("id") == 1]
    assert shown == ["loose.st:1: undefined variable stuiMystery referenced\n", 2, 3]


def test_compile_warnings_of_a_file_in_are_its_own_whoever_reads_them_first(client, shared_image):
    """gst's compiler writes its warnings where the server reads them for
    whichever client is answered next: another client's reply, while the
    file-in runs, must not take them away from it."""
    other = RawClient(shared_image.port)
    try:
        assert other.hello(shared_image.token)["ok"]
        text = "Object subclass: StuiLoose2 [ read [ ^stuiMystery2 ] ]\n(Delay forMilliseconds: 1000) wait.\nnil foo.\n"
        client.send({"id": 1, "op": "fileIn", "chunks": [text], "name": "loose2.st", "keepGoing": True})
        time.sleep(0.5)  # the file-in is in its Delay: the warning is written and not yet read
        assert other.request({"id": 7, "op": "ping"})["ok"]
        reply = client.receive()
        assert reply["errors"] == 2, (reply, client.events)
        assert client.output(1, "stderr") == "loose2.st:1: undefined variable stuiMystery2 referenced\n"
        assert other.output(None, "stderr") == ""
    finally:
        other.close()


def test_a_first_request_gets_the_compile_errors_it_caused(gst_install, server_image):
    """A client connects as soon as the image announces itself: what gst's
    compiler writes for its very first request reaches it, not the log.
    Sent at once, as stui -f sends it, the request may reach an image still
    settling in after the announcement; a few fresh images, for a race."""
    from stui_repl.image.launcher import launch

    hello = {"id": 0, "op": "hello", "protocol": 2}
    file_in = {"id": 1, "op": "fileIn", "chunks": ["3 +.\n"], "name": "first.st", "keepGoing": True}
    for _ in range(8):
        running = launch(gst_install)
        raw = RawClient(running.port)
        try:
            raw.send_line(json.dumps({**hello, "token": running.token}).encode() + b"\n" + json.dumps(file_in).encode())
            assert raw.receive()["ok"]
            reply = raw.receive()
            assert reply["errors"] == 1 and raw.output(1, "stderr").startswith("first.st:1: ")
        finally:
            raw.close()
            running.stop()


SOURCES = """"what a file-in records as its source"
| a |
a := 3.
thisContext printNl.
thisContext method methodSourceString printNl.
Object subclass: StuiSrc [
    one [ ^1 ]
    two: x [ ^x + 2 ]
]
(StuiSrc >> #two:) methodSourceString printNl.
(StuiSrc >> #two:) methodSourcePos printNl.
!StuiSrc methodsFor: 'bang'!
three
    ^3
! !
(StuiSrc >> #three) methodSourceString printNl.
(StuiSrc >> #two:) methodSourceFile displayNl.
"""


@pytest.mark.parametrize("keep_going", [True, False], ids=["keep-going", "stopping"])
def test_a_file_in_named_after_its_file_records_it_as_gst_does(client, tmp_path, keep_going):
    """The statements and methods of `gst FILE` have FILE as their source:
    contexts print its name, and method sources are read back from it at
    the right places, whether or not the file-in stops at its first error
    (which feeds the reader sentinels that are not in the file)."""
    from stui_repl.client import scanner

    path = tmp_path / "sources.st"
    path.write_text(SOURCES)
    chunks = [SOURCES] if keep_going else scanner.scan_whole(SOURCES).pieces()
    reply = client.request(
        {"id": 1, "op": "fileIn", "chunks": chunks, "name": str(path), "keepGoing": keep_going})
    assert reply["ok"], reply
    first, rest = client.output(1).split("\n", 1)
    assert first.startswith("UndefinedObject>>executeStatements (") and first.endswith("sources.st:4)")
    assert rest == (
        "'thisContext method methodSourceString printNl.'\n"
        "'two: x [ ^x + 2 ]'\n"
        f"{SOURCES.index('two: x')}\n"
        "'three\n    ^3\n'\n"
        f"{path}\n"
    )
    # What nobody asked for while the file-in ran is in place once it has ended.
    reply = client.request({"id": 2, "op": "eval", "code": "(StuiSrc >> #one) methodSourcePos"})
    assert reply["value"] == str(SOURCES.index("one [ ^1 ]"))


def test_a_file_in_whose_name_is_no_such_file_keeps_its_source_as_a_string(client, tmp_path):
    """A name that is not the file the text came from (here: a file with
    other text) must not send method sources to that file."""
    (tmp_path / "other.st").write_text("'something else' printNl.\n")
    code = "thisContext printNl. thisContext method methodSourceString printNl.\n"
    for name in (str(tmp_path / "other.st"), str(tmp_path / "missing.st"), "a String"):
        client.events.clear()
        assert client.request({"id": 1, "op": "fileIn", "chunks": [code], "name": name})["ok"]
        assert client.output(1) == (
            "UndefinedObject>>executeStatements (a String:1)\n'thisContext method methodSourceString printNl.'\n")


def test_a_file_in_from_a_later_line_of_its_file_records_where_it_starts(client, tmp_path):
    path = tmp_path / "later.st"
    text = "'skipped' printNl.\n\nObject subclass: StuiLater [ here [ ^thisContext ] ]\nStuiLater new here printNl.\n"
    path.write_text(text)
    rest = text[text.index("Object"):]
    reply = client.request({"id": 1, "op": "fileIn", "chunks": [rest], "name": str(path), "line": 3})
    assert reply["ok"], reply
    assert client.output(1).endswith("later.st:3)\n")
    client.events.clear()
    reply = client.request({"id": 2, "op": "eval", "code": "(StuiLater >> #here) methodSourcePos"})
    assert reply["value"] == str(text.index("here ["))


def test_output_and_errors_of_a_forked_process_arrive_after_the_reply(client):
    code = "[(Delay forMilliseconds: 200) wait. 'later' displayNl. nil bar] fork. 'now' displayNl"
    reply = client.request({"id": 1, "op": "eval", "code": code, "print": False})
    assert reply["ok"] and client.output(1) == "now\n"
    assert client.request({"id": 2, "op": "eval", "code": "(Delay forMilliseconds: 500) wait"})["ok"]
    late = [e for e in client.events if e.get("id") != 1]
    assert [e["event"] for e in late] == ["output", "error"]
    assert late[0]["text"] == "later\n" and late[1]["error"]["message"] == "nil does not understand #bar"


def test_a_declaration_can_name_what_it_defined(client):
    code = "Object subclass: StuiDefined [ |a| one [ ^1 ] ] StuiDefined class extend [ make [ ^self new ] ]"
    reply = client.request({"id": 1, "op": "eval", "code": code, "mode": "fileIn", "defined": True})
    assert reply["ok"] and reply["defined"] == ["StuiDefined", "StuiDefined>>one", "StuiDefined class>>make"]
    code = "StuiDefined extend [ one [ ^2 ] two [ ^self zork: ] ]"
    reply = client.request({"id": 2, "op": "eval", "code": code, "mode": "fileIn", "defined": True})
    assert reply["ok"] is False and reply["defined"] == ["StuiDefined>>one"]
    reply = client.request({"id": 3, "op": "eval", "code": "StuiDefined extend [ three [ ^3 ] ]", "mode": "fileIn"})
    assert reply["ok"] and "defined" not in reply
    assert client.request({"id": 4, "op": "eval", "code": "1", "defined": 1})["error"]["kind"] == "malformed"


def test_the_log_holds_what_no_client_owns(shared_image, client):
    """A process whose client went away still writes: to the log."""
    leaving = RawClient(shared_image.port)
    assert leaving.hello(shared_image.token)["ok"]
    code = "[(Delay forMilliseconds: 200) wait. 'nobody is listening' displayNl] fork"
    assert leaving.request({"id": 1, "op": "eval", "code": code})["ok"]
    leaving.close()
    deadline = time.monotonic() + 10
    while "nobody is listening" not in client.request({"id": 2, "op": "log"})["log"]:
        assert time.monotonic() < deadline, "the output of the orphaned process never reached the log"
        time.sleep(0.1)


def test_a_variable_only_read_is_nil_but_no_workspace_variable(client):
    assert client.request({"id": 1, "op": "eval", "code": "glimpsed isNil"})["value"] == "true"
    assert "glimpsed" not in by_name(client.request({"id": 2, "op": "bindings"}))
    assert client.request({"id": 3, "op": "eval", "code": "glimpsed := 4", "declare": ["glimpsed"]})["ok"]
    assert by_name(client.request({"id": 4, "op": "bindings"}))["glimpsed"]["value"] == "4"


# -- changes: the code a workspace defines -----------------------------------------------


def test_the_image_reports_what_a_workspaces_code_defines(client):
    assert client.request({"id": 1, "op": "changes", "action": "record"})["recording"] is True
    assert client.request({"id": 2, "op": "eval", "mode": "fileIn",
                           "code": "Object subclass: ProtoAnimal [ |name| name [ ^name ] ]"})["ok"]
    assert client.request({"id": 3, "op": "eval", "code": "ProtoAnimal compile: 'speak [ ^1 ]'. x := 3"})["ok"]
    assert client.request({"id": 4, "op": "fileIn", "name": "lib.st",
                           "chunks": ["!ProtoAnimal class methodsFor: 'making'!\nmake\n    ^self new\n! !\n",
                                      "Smalltalk at: #ProtoConfig put: 42!\n"]})["ok"]
    changes = client.request({"id": 5, "op": "changes", "action": "take"})["changes"]
    assert [(c["kind"], c["name"]) for c in changes] == [
        ("class", "ProtoAnimal"), ("method", "ProtoAnimal>>name"), ("method", "ProtoAnimal>>speak"),
        ("method", "ProtoAnimal class>>make"), ("global", "ProtoConfig")]
    assert changes[3]["source"] == "make [\n    ^self new\n]" and changes[3]["category"] == "making"
    assert client.request({"id": 6, "op": "changes", "action": "take"})["changes"] == []
    assert client.request({"id": 7, "op": "eval", "code": "Smalltalk removeKey: #ProtoAnimal. Smalltalk removeKey: #ProtoConfig"})["ok"]
    removed = client.request({"id": 8, "op": "changes", "action": "take"})["changes"]
    assert [(c["kind"], c["of"], c["name"]) for c in removed] == [("removed", "class", "ProtoAnimal"), ("removed", "global", "ProtoConfig")]


def test_installing_definitions_one_by_one(client):
    entries = [
        {"kind": "method", "name": "ProtoDog>>bark", "category": "noise", "source": "bark [ ^'woof' ]"},
        {"kind": "class", "name": "ProtoDog", "source": "Object subclass: #ProtoDog instanceVariableNames: '' classVariableNames: '' poolDictionaries: '' category: ''"},
        {"kind": "method", "name": "ProtoDog>>broken", "source": "broken [ ^( ]"},
        {"kind": "removed", "name": "ProtoDog>>missing"},
    ]
    reply = client.request({"id": 1, "op": "changes", "action": "install", "entries": entries})
    assert [o["outcome"] for o in reply["outcomes"]] == ["installed", "installed", "failed", "failed"]
    assert "does not exist" in reply["outcomes"][3]["message"]
    assert client.request({"id": 2, "op": "eval", "code": "ProtoDog new bark"})["value"] == "'woof'"
    again = client.request({"id": 3, "op": "changes", "action": "install", "entries": entries[:2]})
    assert [o["outcome"] for o in again["outcomes"]] == ["same", "same"]
    other = [{**entries[0], "source": "bark [ ^'arf' ]"}]
    assert client.request({"id": 4, "op": "changes", "action": "install", "entries": other})["outcomes"] == [{"outcome": "differs"}]
    assert client.request({"id": 5, "op": "changes", "action": "install", "entries": other, "force": True})["outcomes"] == [{"outcome": "installed"}]
    assert client.request({"id": 6, "op": "eval", "code": "ProtoDog new bark"})["value"] == "'arf'"
    client.request({"id": 7, "op": "eval", "code": "Smalltalk removeKey: #ProtoDog"})


@pytest.mark.parametrize(("request_", "message"), [
    ({"action": "install"}, "entries must be an array of objects"),
    ({"action": "install", "entries": [3]}, "entries[0] must be an object"),
    ({"action": "install", "entries": [{"kind": "method", "name": "x", "source": "x [ ]"}]}, "entries[0].name must be Class>>selector"),
    ({"action": "frobnicate"}, "action"),
])
def test_malformed_changes_requests(client, request_, message):
    reply = client.request({"id": 1, "op": "changes", **request_})
    assert reply["ok"] is False and reply["error"]["kind"] == "malformed"
    assert message in reply["error"]["message"]
