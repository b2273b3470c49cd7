"""The post-mortem debugger: its protocol operation over a real socket, and
the :debug prompt on a real gst (issue 14)."""

from __future__ import annotations

import json
import re
import time

import pytest
import test_repl
from test_repl import PROMPT, submit
from test_server_protocol import RawClient, connect, resume_of, wait_for, workspace_counts

from stui_repl.commands.debug import frame_line, source_lines

repl = test_repl.repl  # the fixture: a real stui at a prompt
DEBUG = "debug>"

CLASSES = (
    "Object subclass: Account [ | balance | "
    "balance [ ^balance ] "
    "deposit: amount [ | before | before := balance. balance := before + amount. ^balance ] "
    "withdraw: amount [ amount > balance ifTrue: [^self error: 'insufficient funds']. balance := balance - amount ] "
    "init [ balance := 0 ] ]\n"
)


@pytest.fixture
def client(shared_image):
    raw = RawClient.with_code(shared_image, CLASSES)
    yield raw
    raw.close()


def test_a_failure_is_kept_for_the_debugger_and_where_lists_its_frames(client):
    reply = client.request({"id": 1, "op": "eval", "code": "a := Account new init. a deposit: nil", "debug": True})
    assert reply["ok"] is False and reply["error"]["debug"] is True, reply
    where = client.request({"id": 2, "op": "debug", "action": "where"})
    assert where["ok"], where
    print(where)
    labels = [f["label"] for f in where["frames"]]
    assert "Account>>deposit:" in labels
    assert labels[-1] == "DoIt"


def fail_in_deposit(client: RawClient, request_id: object = 1) -> dict:
    reply = client.request({"id": request_id, "op": "eval", "code": "a := Account new init. a deposit: 5. a deposit: nil", "debug": True})
    assert reply["ok"] is False and reply["error"].get("debug") is True, reply
    return reply


def frame_index(client: RawClient, label: str) -> int:
    where = client.request({"id": "w", "op": "debug", "action": "where"})
    return next(f["index"] for f in where["frames"] if f["label"] == label)


def test_frame_shows_the_source_with_the_current_line(client):
    fail_in_deposit(client)
    index = frame_index(client, "Account>>deposit:")
    reply = client.request({"id": 2, "op": "debug", "action": "frame", "frame": index})
    assert reply["ok"], reply
    assert reply["source"].startswith("deposit: amount [")
    assert reply["frame"]["label"] == "Account>>deposit:"
    assert reply["line"] == 1
    doit = client.request({"id": 3, "op": "debug", "action": "frame", "frame": index + 1})
    assert doit["source"] == "a := Account new init. a deposit: 5. a deposit: nil"


def test_temps_names_receiver_arguments_and_temporaries(client):
    fail_in_deposit(client)
    index = frame_index(client, "Account>>deposit:")
    reply = client.request({"id": 2, "op": "debug", "action": "temps", "frame": index})
    assert reply["ok"], reply
    assert reply["receiver"]["class"] == "Account"
    found = {v["name"]: (v["kind"], v["value"]) for v in reply["variables"]}
    assert found == {"amount": ("argument", "nil"), "before": ("temporary", "5")}


def test_code_evaluated_in_a_frame_sees_self_arguments_and_temporaries(client):
    fail_in_deposit(client)
    index = frame_index(client, "Account>>deposit:")
    reply = client.request({"id": 2, "op": "debug", "action": "eval", "frame": index, "code": "before + balance + 100"})
    assert (reply["ok"], reply.get("value"), reply.get("class")) == (True, "110", "SmallInteger"), reply
    reply = client.request({"id": 3, "op": "debug", "action": "eval", "code": "amount := 7. self balance"})
    assert reply["value"] == "5", reply
    # the assignment reached the frame
    reply = client.request({"id": 4, "op": "debug", "action": "temps"})
    assert {v["name"]: v["value"] for v in reply["variables"]}["amount"] == "7"


def test_retry_after_fixing_the_method_runs_the_evaluation_to_its_end(client):
    client.request({"id": 0, "op": "eval", "mode": "fileIn", "code": "Object subclass: Fragile [ run [ ^self step + 1 ] step [ ^nil foo ] ]"})
    reply = client.request({"id": 1, "op": "eval", "code": "Fragile new run * 10", "debug": True})
    assert reply["error"]["debug"] is True, reply
    index = frame_index(client, "Fragile>>step")
    fixed = client.request({"id": 2, "op": "debug", "action": "eval", "code": "Fragile compile: 'step [ ^41 ]'. 0"})
    assert fixed["ok"], fixed
    reply = client.request({"id": 3, "op": "debug", "action": "retry", "frame": index})
    assert (reply["ok"], reply.get("value")) == (True, "420"), reply
    gone = client.request({"id": 4, "op": "debug", "action": "where"})
    assert gone["error"]["kind"] == "not-found"


def test_retry_of_the_evaluated_code_runs_it_again(client):
    client.request({"id": 0, "op": "eval", "code": "acct := Account new init", "declare": ["acct"]})
    reply = client.request({"id": 1, "op": "eval", "code": "| t | t := 5. acct withdraw: t. acct balance", "debug": True})
    assert reply["error"]["message"] == "insufficient funds", reply
    index = frame_index(client, "DoIt")
    fixed = client.request({"id": 2, "op": "debug", "action": "eval", "code": "acct deposit: 12"})
    assert fixed.get("value") == "12", fixed
    reply = client.request({"id": 3, "op": "debug", "action": "retry", "frame": index})
    assert (reply["ok"], reply.get("value")) == (True, "7"), reply


def test_return_answers_a_value_from_a_frame(client):
    fail_in_deposit(client)
    index = frame_index(client, "SmallInteger>>+")
    reply = client.request({"id": 2, "op": "debug", "action": "return", "frame": index, "code": "5 * 100"})
    assert (reply["ok"], reply.get("value")) == (True, "500"), reply


def test_proceed_resumes_a_resumable_error_and_refuses_another(client):
    reply = client.request({"id": 1, "op": "eval", "code": "(3 / 0) printNl. 'after' displayNl. 7", "debug": True})
    assert reply["error"]["debug"] is True
    reply = client.request({"id": 2, "op": "debug", "action": "proceed"})
    assert (reply["ok"], reply.get("value")) == (True, "7"), reply
    assert client.output(2) == "nil\nafter\n"
    client.request({"id": 3, "op": "eval", "code": "self error: 'stop'", "debug": True})
    reply = client.request({"id": 4, "op": "debug", "action": "proceed"})
    assert reply["error"]["kind"] == "not-resumable", reply


def test_what_the_evaluation_forks_after_going_on_runs_before_the_reply(client):
    client.request({"id": 1, "op": "eval", "code": "(1/0) isNil ifTrue: [['forked' displayNl] fork]. 5", "debug": True})
    reply = client.request({"id": 2, "op": "debug", "action": "proceed"})
    assert reply["value"] == "5"
    assert client.output(2) == "forked\n"


def test_a_new_failure_after_going_on_is_kept_again(client):
    fail_in_deposit(client)
    index = frame_index(client, "Account>>deposit:")
    reply = client.request({"id": 2, "op": "debug", "action": "retry", "frame": index})
    assert reply["ok"] is False and reply["error"]["debug"] is True, reply
    assert client.request({"id": 3, "op": "debug", "action": "where"})["ok"]


def test_abandon_runs_the_ensure_blocks_then_nothing_is_left(client):
    reply = client.request({"id": 1, "op": "eval", "code": "[1/0] ensure: ['cleaned' displayNl]", "debug": True})
    assert reply["error"]["debug"] is True
    assert client.output(1) == ""
    reply = client.request({"id": 2, "op": "debug", "action": "abandon"})
    assert reply == {"id": 2, "ok": True, "abandoned": True}
    assert client.output(2) == "cleaned\n"
    assert client.request({"id": 3, "op": "debug", "action": "where"})["error"]["kind"] == "not-found"


def test_the_next_evaluation_abandons_the_kept_process(client):
    client.request({"id": 1, "op": "eval", "code": "[nil foo] ensure: ['unwound' displayNl]", "debug": True})
    reply = client.request({"id": 2, "op": "eval", "code": "3 + 4"})
    assert reply["value"] == "7"
    assert client.output(2) == "unwound\n"
    assert client.request({"id": 3, "op": "debug"})["error"]["kind"] == "not-found"


def test_without_debug_an_error_unwinds_as_before(client):
    reply = client.request({"id": 1, "op": "eval", "code": "[nil foo] ensure: ['unwound' displayNl]"})
    assert "debug" not in reply["error"]
    assert client.output(1) == "unwound\n"
    assert client.request({"id": 2, "op": "debug", "action": "where"})["error"]["kind"] == "not-found"


def test_an_interrupt_keeps_the_loop_and_proceed_continues_it(client):
    client.send({"id": 1, "op": "eval", "code": "n := 0. [n < 3000000] whileTrue: [n := n + 1]. n", "debug": True})
    replies = {}
    interrupt_id = 100
    while True:  # not timing-sensitive: interrupt until one stops something
        client.send({"id": interrupt_id, "op": "interrupt"})
        while interrupt_id not in replies:
            reply = client.receive()
            replies[reply["id"]] = reply
        if replies[interrupt_id]["interrupted"]:
            break
        interrupt_id += 1
    while 1 not in replies:
        reply = client.receive()
        replies[reply["id"]] = reply
    error = replies[1]["error"]
    assert (error["kind"], error.get("debug")) == ("interrupted", True), replies[1]
    where = client.request({"id": 2, "op": "debug", "action": "where"})
    assert where["reason"] == "interrupted" and where["frames"][-1]["label"] == "DoIt", where
    reply = client.request({"id": 3, "op": "debug", "action": "proceed"})
    assert (reply["ok"], reply.get("value")) == (True, "3000000"), reply


def replies_within(client: RawClient, ids: set, seconds: float) -> dict:
    """The replies to ids, however much output comes meanwhile; a reply
    that has not come within seconds fails the test."""
    replies: dict = {}
    deadline = time.monotonic() + seconds
    while not ids <= replies.keys():
        assert time.monotonic() < deadline, f"no reply to {ids - replies.keys()} within {seconds} s: {replies}"
        reply = client.receive()
        assert reply is not None, "connection closed"
        replies[reply["id"]] = reply
    return replies


def test_interrupts_while_the_loop_writes_never_hang_the_connection(client):
    """Each interrupt lands somewhere in a loop that writes without end,
    often inside the server's output code, under its locks: the process
    must never be suspended there (the reply to its eval waited for those
    locks for good), yet is still kept for the debugger."""
    client.sock.settimeout(10)
    for attempt in range(15):
        client.send({"id": attempt, "op": "eval", "debug": True,
                     "code": "[true] whileTrue: [Transcript showCr: 'tick']"})
        first = json.loads(client.file.readline())  # its output has begun
        assert first.get("event") == "output", first
        client.send({"id": "interrupt", "op": "interrupt"})
        replies = replies_within(client, {attempt, "interrupt"}, 10)
        assert replies[attempt]["error"].get("debug") is True, replies
        client.send({"id": "go", "op": "debug", "action": "abandon"})
        assert replies_within(client, {"go"}, 10)["go"]["abandoned"]
        client.events.clear()


@pytest.mark.parametrize(
    ("request_", "kind", "message"),
    [
        ({"action": "where"}, "not-found", "nothing to debug: no evaluation of this workspace is suspended"),
        ({"action": "jump"}, "malformed", "action must be"),
        ({"action": "frame", "frame": -1}, "malformed", "frame must be an integer, 0 or more"),
        ({"action": "eval"}, "malformed", "code must be a string"),
        ({"action": "return", "code": 3}, "malformed", "code must be a string"),
    ],
)
def test_bad_debug_requests(client, request_, kind, message):
    reply = client.request({"id": "bad", "op": "debug", **request_})
    assert reply["ok"] is False
    assert reply["error"]["kind"] == kind and reply["error"]["message"].startswith(message), reply


def test_a_frame_out_of_range_is_not_found(client):
    fail_in_deposit(client)
    reply = client.request({"id": 2, "op": "debug", "action": "frame", "frame": 99})
    assert reply["error"]["kind"] == "not-found" and reply["error"]["message"].startswith("no frame 99"), reply


def test_debug_field_must_be_a_boolean(client):
    reply = client.request({"id": 1, "op": "eval", "code": "3", "debug": "yes"})
    assert reply["error"] == {"kind": "malformed", "message": "debug must be true or false"}


def test_hello_lists_the_debug_op(client, shared_image):
    raw = RawClient(shared_image.port)
    assert "debug" in raw.hello(shared_image.token)["ops"]
    raw.close()


# -- at the prompt -------------------------------------------------------------------------


def at_prompt(child, line: str, *expected: str, prompt: str = PROMPT) -> None:
    """Enter a line, see what it prints (regular expressions, in order), then the prompt."""
    submit(child, line)
    for pattern in expected:
        child.screen.expect(pattern)
    child.screen.expect_exact(prompt)


def define_classes(child) -> None:
    at_prompt(child, CLASSES.strip(), "defined Account")
    at_prompt(child, "Object subclass: Fragile [ run [ ^self step + 1 ] step [ ^nil foo ] ]", "defined Fragile")


def test_where_frame_temps_and_code_in_a_frame(repl):
    define_classes(repl)
    at_prompt(repl, "a := Account new init. a deposit: 5. a deposit: nil",
              "nil does not understand #generality", r"\(:debug opens the debugger")
    at_prompt(repl, ":debug", "MessageNotUnderstood: nil does not understand #generality:",
              r"> *1   UndefinedObject\(Object\)>>doesNotUnderstand: #generality  \(SysExcept.st:\d+\)",
              r"3 \* Account>>deposit:", r"4 \* DoIt  \(line 1\)", prompt=DEBUG)
    at_prompt(repl, "frame 3", r"> +3 \* Account>>deposit:", r"-> 1  deposit: amount \[ \| before \|", prompt=DEBUG)
    at_prompt(repl, "temps", r"self\W+receiver\W+Account", r"amount\W+argument\W+UndefinedObject\W+nil",
              r"before\W+temporary\W+SmallInteger\W+5", prompt=DEBUG)
    at_prompt(repl, "before * 10 + balance", r"55\s+SmallInteger", prompt=DEBUG)
    at_prompt(repl, "frame 9", r"no frame 9 \(the frames are 1 to 4\)", prompt=DEBUG)
    at_prompt(repl, "abandon", "abandoned")
    at_prompt(repl, "a balance", r"5\s+SmallInteger")


def test_fixing_a_method_in_the_debugger_and_retrying_its_frame(repl):
    define_classes(repl)
    at_prompt(repl, "Fragile new run * 10", "nil does not understand #foo")
    at_prompt(repl, ":debug", r"2 \* Fragile>>step", prompt=DEBUG)
    at_prompt(repl, "Fragile compile: 'step [ ^41 ]'", r"Fragile>>step", prompt=DEBUG)
    at_prompt(repl, "frame 2", r"> +2 \* Fragile>>step", prompt=DEBUG)
    at_prompt(repl, "retry", r"420\s+SmallInteger")  # the evaluation's own value, back at st>
    at_prompt(repl, ":debug", "nothing to debug")


def test_the_session_keeps_what_the_evaluation_assigned_once_it_went_on(repl):
    define_classes(repl)
    at_prompt(repl, "total := Fragile new run * 10", "nil does not understand #foo")
    at_prompt(repl, ":debug", r"2 \* Fragile>>step", prompt=DEBUG)
    at_prompt(repl, "return 9", r"100\s+SmallInteger")  # from frame 1: nil foo answers 9
    at_prompt(repl, ":debug", "nothing to debug")
    at_prompt(repl, ":session save", "")
    from conftest import run_stui

    shown = run_stui("session", "show", "default")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"total\b.*100", shown.stdout), shown.stdout


def test_return_a_value_from_a_frame(repl):
    define_classes(repl)
    at_prompt(repl, "Fragile new run * 10", "nil does not understand #foo")
    at_prompt(repl, ":debug", r"2 \* Fragile>>step", prompt=DEBUG)
    at_prompt(repl, "frame 2", r"Fragile>>step", prompt=DEBUG)
    at_prompt(repl, "return 6 * 7", r"430\s+SmallInteger")


def test_ctrl_c_in_a_loop_offers_the_debugger_and_proceed_continues_it(repl):
    # One unit (its temporaries make it one), so Ctrl-C comes while it runs.
    submit(repl, "| t | stop := false. n := 0. 'started' displayNl. [stop] whileFalse: [n := n + 1]. n > 0")
    repl.screen.expect(r"\nstarted")
    repl.sendintr()
    repl.screen.expect("evaluation interrupted")
    repl.screen.expect(r"\(:debug opens the debugger")
    repl.screen.expect_exact(PROMPT)
    at_prompt(repl, ":debug", "interrupted here:", r"\* DoIt  \(line 1\)", prompt=DEBUG)
    at_prompt(repl, "stop := true", r"true\s+True", prompt=DEBUG)
    at_prompt(repl, "proceed", r"true\s+True")


def test_abandon_runs_the_ensure_blocks(repl):
    submit(repl, "[1/0] ensure: ['cleaned up' displayNl]")
    repl.screen.expect("ZeroDivide")
    repl.screen.expect_exact(PROMPT)
    assert "cleaned up" not in repl.screen.text.rsplit("ZeroDivide", 1)[1]
    at_prompt(repl, ":debug abandon", "cleaned up", "abandoned")
    at_prompt(repl, ":debug", "nothing to debug")


def test_ctrl_d_leaves_the_debugger_and_abandons(repl):
    at_prompt(repl, "[nil foo] ensure: ['unwound' displayNl]", "nil does not understand #foo")
    at_prompt(repl, ":debug", r"\* DoIt", prompt=DEBUG)
    repl.sendcontrol("d")
    repl.screen.expect("unwound")
    repl.screen.expect("abandoned")
    repl.screen.expect_exact(PROMPT)
    at_prompt(repl, "3 + 4", r"7\s+SmallInteger")


def test_the_next_evaluation_ends_the_kept_process(repl):
    at_prompt(repl, "[nil foo] ensure: ['unwound' displayNl]", "nil does not understand #foo")
    at_prompt(repl, "3 + 4", "unwound", r"7\s+SmallInteger")
    at_prompt(repl, ":debug", "nothing to debug")


def test_tab_completes_the_verbs_at_the_debug_prompt(repl):
    at_prompt(repl, "nil foo", "nil does not understand #foo")
    at_prompt(repl, ":debug", r"DoIt", prompt=DEBUG)
    repl.send("wh\t")
    repl.screen.expect_exact("where")
    submit(repl, "")
    repl.screen.expect(r"> +\d+ +UndefinedObject\(Object\)>>doesNotUnderstand: #foo")
    repl.screen.expect_exact(DEBUG)
    repl.send("\x1b[A")  # Up: the debugger's own history, not the prompt's
    submit(repl, "")
    repl.screen.expect(r"> +\d+ +UndefinedObject\(Object\)>>doesNotUnderstand: #foo")
    repl.screen.expect_exact(DEBUG)
    at_prompt(repl, "abandon", "abandoned")


def test_scripts_keep_no_process_and_say_nothing_of_the_debugger():
    from conftest import run_stui

    done = run_stui("-c", "[nil foo] ensure: ['unwound' displayNl]. 3")
    assert done.returncode == 1
    assert "unwound" in done.stdout
    assert ":debug" not in done.stderr


def test_a_kept_process_outlives_its_connection_for_the_lease(image):
    """A client whose connection broke gets its workspace back, and the
    failure it was debugging with it."""
    first, hello = connect(image)
    reply = first.request({"id": 1, "op": "eval", "code": "[nil foo] ensure: ['unwound' displayNl]", "debug": True})
    assert reply["error"]["debug"] is True
    watcher, _ = connect(image)
    first.close()
    wait_for(lambda: workspace_counts(watcher) == (1, 1), "the closed connection's workspace to be detached")
    again, reply = connect(image, resume_of(hello))
    assert reply["resumed"] is True
    assert again.request({"id": 2, "op": "debug", "action": "where"})["frames"][-1]["label"] == "DoIt"
    assert again.request({"id": 3, "op": "debug", "action": "abandon"})["abandoned"] is True
    assert again.output(3) == "unwound\n"
    again.close()
    watcher.close()


def test_a_released_workspace_unwinds_its_kept_process(gst_install, server_image):
    """As a client on another machine whose connection is gone: with a lease
    of 0 its workspace goes at once, and its kept process unwinds."""
    from stui_repl.image.launcher import launch

    running = launch(gst_install, lease=0)
    try:
        gone = RawClient(running.port)
        assert gone.hello(running.token)["ok"]
        reply = gone.request({"id": 1, "op": "eval", "debug": True,
                              "code": "[nil foo] ensure: [Smalltalk at: #StuiDebugReleased put: true]"})
        assert reply["error"]["debug"] is True
        gone.close()
        other = RawClient(running.port)
        assert other.hello(running.token)["ok"]
        # The release comes once the server sees the socket closed.
        wait_for(lambda: other.request({"id": "r", "op": "eval", "code": "Smalltalk at: #StuiDebugReleased ifAbsent: [false]"})["value"] == "true",
                 "the released workspace's process to unwind")
        other.close()
    finally:
        running.stop()


# -- how the debugger's answers read ----------------------------------------------------


def test_frame_lines_mark_the_selected_frame_and_the_persons_code():
    assert frame_line({"index": 3, "label": "Account>>deposit:", "user": True}, selected=True) == ">  3 * Account>>deposit:"
    assert frame_line({"index": 1, "label": "SmallInteger>>+", "file": "SmallInt.st", "line": 179}) == (
        "   1   SmallInteger>>+  (SmallInt.st:179)")
    assert frame_line({"index": 4, "label": "DoIt", "line": 2, "user": True}) == "   4 * DoIt  (line 2)"


def test_source_lines_number_as_the_file_does_and_mark_the_current_one():
    assert source_lines("a [\n  ^1/0\n]", 2, 9) == ["    9  a [", "-> 10    ^1/0", "   11  ]"]
    assert source_lines(None, 1, 1) == ["  (the image has no source for this method)"]
