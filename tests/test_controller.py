"""The session controller's branches, without images: attaching, healing,
connecting and switching, with the attachment opener replaced by a fake.

The fakes answer the few requests restoring and saving make (a script
request, a bindings list); everything else about images is tested with real
ones elsewhere (test_faults, test_sessions).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from stui_repl.client import wire
from stui_repl.errors import ImageUnreachable, StuiError
from stui_repl.image.attachment import Attachment
from stui_repl.image.supervisor import CONNECTED, Supervisor
from stui_repl.session.controller import SessionController
from stui_repl.session.store import SessionStore
from stui_repl.session.vault import open_vault


def info(image_id: str = "img1", *, workspace: str = "w1", resumed: bool = False, lease: float = 300) -> wire.ServerInfo:
    return wire.ServerInfo.from_reply({
        "dialect": "gst", "version": "GNU Smalltalk 3.2.5", "server": "0.1.0", "imageId": image_id,
        "workspace": workspace, "resumeToken": f"token-of-{workspace}", "resumed": resumed, "lease": lease,
    })


@dataclass
class FakeConnection:
    address: str
    info: wire.ServerInfo | None
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    lock: Any = field(default_factory=threading.RLock)
    on_event: Any = None
    events: list[wire.Event] = field(default_factory=list)

    def request(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        return self.wait(self.send(message))

    def send(self, message: dict[str, Any]) -> int:
        self.sent.append(message)
        return len(self.sent)

    def wait(self, request_id: int, *, timeout: float | None = None, deadline: float | None = None) -> dict[str, Any]:
        message = self.sent[request_id - 1]
        if message["op"] == "script":  # one compile ran them all: one result, as an event
            self.on_event(wire.Event("result", request_id, result={"ok": True, "statements": len(message["units"])}))
            return {"ok": True, "results": 1}
        if message["op"] == "bindings":
            return {"ok": True, "bindings": []}
        return {"ok": True}

    def discard(self, request_id: int) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def closed_by_peer(self) -> bool:
        return self.closed

    def ping(self, timeout: float) -> bool:
        return not self.closed


class FakeProcess:
    def __init__(self, alive: bool = True) -> None:
        self.alive = alive

    def poll(self) -> int | None:
        return None if self.alive else 1


@dataclass
class FakeImage:
    process: FakeProcess = field(default_factory=FakeProcess)
    stopped_with: float | None = None
    scrub: Any = None

    def stop(self, timeout: float = 3.0) -> None:
        self.stopped_with = timeout
        self.process.alive = False

    def mask_log(self, scrub: Any) -> None:
        self.scrub = scrub


class Opener:
    """Stands in for Attachment.open: hands out the attachments a test queues, records every call."""

    def __init__(self, *results: Attachment | Exception) -> None:
        self.results = list(results)
        self.calls: list[tuple[str | None, str | None, dict[str, Any]]] = []

    def __call__(self, address: str | None, token: str | None = None, **options: Any) -> Attachment:
        self.calls.append((address, token, options))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def embedded(image_id: str = "img1") -> Attachment:
    return Attachment(FakeConnection("127.0.0.1:1", info(image_id)), FakeImage())  # type: ignore[arg-type]


def remote(address: str = "10.0.0.5:7777", image_id: str = "img1", **options: Any) -> Attachment:
    return Attachment(FakeConnection(address, info(image_id, **options)))  # type: ignore[arg-type]


def controller_with(opener: Opener, **options: Any) -> SessionController:
    return SessionController(open_attachment=opener, vault_factory=open_vault, **options)


def session_with_variable(controller: SessionController, name: str = "work") -> None:
    controller.use_session(controller.load_session(name))
    assert controller.active is not None
    controller.active.session.record_variable("x", "2026-01-01T00:00:00.000Z", value_class="SmallInteger", value="7", store="7")


# -- attaching ---------------------------------------------------------------------


def test_without_a_session_attaching_opens_an_embedded_image_and_restores_nothing() -> None:
    opener = Opener(embedded())
    controller = controller_with(opener)
    assert controller.attach() is None
    assert opener.calls == [(None, None, {"progress": None})]
    assert controller.attachment is not None and controller.evaluator is not None


def test_a_session_comes_back_into_the_image_it_attaches_to() -> None:
    attachment = embedded()
    controller = controller_with(Opener(attachment))
    session_with_variable(controller)
    report = controller.attach()
    assert report is not None and report.restored == ["x"]
    sent = attachment.connection.sent  # type: ignore[attr-defined]
    assert sent[0] == {"op": "changes", "action": "record"}, "the image notes what the session's code defines"
    assert sent[1]["op"] == "script" and sent[1]["units"][0]["code"] == "x := 7"


def test_the_embedded_images_log_masks_the_secrets_of_whichever_session_is_open() -> None:
    attachment = embedded()
    controller = controller_with(Opener(attachment))
    controller.attach()
    scrub = attachment.image.scrub  # type: ignore[union-attr]
    assert scrub("pw hunter2") == "pw hunter2"
    controller.use_session(controller.load_session("work"))
    assert controller.active is not None
    controller.active.masker.add("hunter2")
    assert scrub("pw hunter2") == "pw ********"


def test_an_address_from_the_command_line_is_remembered_with_its_token_sealed() -> None:
    opener = Opener(remote(), remote())
    controller = controller_with(opener)
    controller.use_session(controller.load_session("work"))
    controller.attach(address="10.0.0.5:7777", token="sekrit-token-0123456789")
    assert controller.active is not None
    spec = controller.active.session.connection
    assert spec.address == "10.0.0.5:7777" and spec.token and "sekrit" not in spec.token
    # Next time the session alone is enough: the token is opened again.
    controller.attachment = None
    controller.attach()
    assert opener.calls[-1][:2] == ("10.0.0.5:7777", "sekrit-token-0123456789")


def test_embedded_rebinds_a_remote_session_to_an_image_of_its_own() -> None:
    opener = Opener(remote(), embedded())
    controller = controller_with(opener)
    controller.use_session(controller.load_session("work"))
    controller.attach(address="10.0.0.5:7777", token="sekrit-token-0123456789")
    controller.attach(embedded=True)
    assert controller.active is not None and controller.active.session.connection.embedded
    assert opener.calls[-1][:2] == (None, None)


# -- healing -----------------------------------------------------------------------


def test_a_hung_embedded_image_is_killed_and_replaced() -> None:
    old, new = embedded("img1"), embedded("img2")
    controller = controller_with(Opener(old, new))
    session_with_variable(controller)
    controller.attach()
    message = controller.heal()
    assert message.startswith("the image hung: stopped it and started a new one")
    assert "restored 1 variable" in message
    assert old.image.stopped_with == 0.5  # type: ignore[union-attr]  # killed, not waited for
    assert controller.attachment is new and controller.image_restarted


def test_a_dead_embedded_image_is_replaced() -> None:
    old = embedded("img1")
    controller = controller_with(Opener(old, embedded("img2")))
    controller.attach()
    old.image.process.alive = False  # type: ignore[union-attr]
    assert controller.heal() == "the image died; started a new one"


def test_a_server_that_kept_the_workspace_gives_it_back() -> None:
    opener = Opener(remote(workspace="w3"), remote(workspace="w3", resumed=True))
    controller = controller_with(opener)
    session_with_variable(controller)
    controller.attach(address="10.0.0.5:7777", token="sekrit-token-0123456789")
    assert controller.heal() == "reconnected to 10.0.0.5:7777: your workspace was still there"
    assert opener.calls[-1][2]["resume"] == ("w3", "token-of-w3")
    assert not controller.image_restarted
    assert controller.attachment is not None
    assert controller.attachment.connection.sent == []  # nothing restored: the objects are still there


def test_a_server_that_let_the_workspace_go_gets_it_back_from_the_session() -> None:
    controller = controller_with(Opener(remote(image_id="img1"), remote(image_id="img1", workspace="w9")))
    session_with_variable(controller)
    controller.attach(address="10.0.0.5:7777", token="sekrit-token-0123456789")
    message = controller.heal()
    assert message == "reconnected to 10.0.0.5:7777, which had let your workspace go; restored 1 variable"


def test_a_restarted_server_is_told_apart_by_its_image_id() -> None:
    controller = controller_with(Opener(remote(image_id="img1"), remote(image_id="img2")))
    controller.attach(address="10.0.0.5:7777", token="sekrit-token-0123456789")
    assert controller.heal() == "reconnected to 10.0.0.5:7777, a restarted image"


def test_a_failed_healing_remembers_where_to_try_again() -> None:
    opener = Opener(remote(workspace="w3"), ImageUnreachable("down"), remote(workspace="w3", resumed=True))
    controller = controller_with(opener)
    controller.attach(address="10.0.0.5:7777", token="sekrit-token-0123456789")
    with pytest.raises(ImageUnreachable):
        controller.heal()
    assert controller.attachment is None
    assert controller.heal().endswith("your workspace was still there")
    address, token, options = opener.calls[-1]
    assert (address, token, options["resume"]) == ("10.0.0.5:7777", "sekrit-token-0123456789", ("w3", "token-of-w3"))


def test_a_deliberate_reconnect_says_so() -> None:
    controller = controller_with(Opener(embedded("img1"), embedded("img2")))
    controller.attach()
    assert controller.reconnect() == "started a new embedded image"


# -- moving between images and sessions --------------------------------------------------


def test_connect_keeps_the_old_image_when_the_new_one_cannot_be_reached() -> None:
    old = embedded()
    controller = controller_with(Opener(old, ImageUnreachable("no")))
    session_with_variable(controller)
    controller.attach()
    with pytest.raises(ImageUnreachable):
        controller.connect("10.0.0.9:7777", "sekrit-token-0123456789")
    assert controller.attachment is old and not old.connection.closed  # type: ignore[attr-defined]
    assert controller.evaluator is not None and controller.evaluator.connection is old.connection
    assert controller.active is not None and controller.active.session.connection.embedded


def test_connect_moves_the_workspace_and_lets_the_old_image_go() -> None:
    old, new = embedded(), remote("10.0.0.9:7777")
    controller = controller_with(Opener(old, new))
    session_with_variable(controller)
    controller.attach()
    report = controller.connect("10.0.0.9:7777", "sekrit-token-0123456789")
    assert report is not None and report.restored == ["x"]
    assert old.image.stopped_with is not None  # type: ignore[union-attr]
    assert controller.attachment is new


def test_switching_to_an_unreachable_session_stays_where_it_was(home) -> None:
    store = SessionStore()
    first = controller_with(Opener(remote("10.0.0.9:7777")), store=store)
    first.use_session(first.load_session("far"))
    first.attach(address="10.0.0.9:7777", token="sekrit-token-0123456789")
    first.close()

    old = embedded()
    controller = controller_with(Opener(old, ImageUnreachable("no")), store=store)
    session_with_variable(controller, "near")
    controller.attach()
    with pytest.raises(ImageUnreachable):
        controller.switch("far")
    assert controller.active is not None and controller.active.name == "near"
    assert controller.attachment is old


# -- saving ---------------------------------------------------------------------------


def failing_save(controller: SessionController, monkeypatch: pytest.MonkeyPatch) -> None:
    assert controller.active is not None

    def full(*args: Any, **kwargs: Any) -> Any:
        raise StuiError("cannot save session work: No space left on device")

    monkeypatch.setattr(controller.active.file, "save", full)


def test_a_save_that_fails_on_closing_lets_the_image_go_and_then_says_so(home, monkeypatch) -> None:
    image = embedded()
    controller = controller_with(Opener(image))
    session_with_variable(controller)
    controller.attach()
    failing_save(controller, monkeypatch)
    with pytest.raises(StuiError, match="^cannot save session work: No space left on device$"):
        controller.close()
    assert image.image.stopped_with is not None and controller.attachment is None  # type: ignore[union-attr]


def test_an_autosave_that_fails_is_told_and_tried_again_after_the_interval(home, monkeypatch) -> None:
    heard: list[str] = []
    controller = controller_with(Opener(embedded()), notify=heard.append)
    session_with_variable(controller)
    controller.attach()
    active = controller.active
    assert active is not None
    active.settings.session["autosave"] = 30
    active.dirty, active.last_save = True, 0.0
    failing_save(controller, monkeypatch)
    controller.autosave()
    controller.autosave()  # not due again yet: one notice, not one per input
    assert heard == ["cannot save session work: No space left on device; trying again in 30 s"]
    assert active.dirty


# -- the supervisor ------------------------------------------------------------------


def test_the_supervisor_notices_a_dead_embedded_image_and_heals_it() -> None:
    attachment = embedded()
    heard: list[str] = []
    healed = threading.Event()

    def heal() -> str:
        healed.set()
        return "the image died; started a new one"

    supervisor = Supervisor(
        attachment=lambda: attachment, heal=heal, settings=lambda: {"heartbeat": 5, "heartbeat_timeout": 10,
                                                                     "reconnect_give_up": 5},
        notify=heard.append,
    )
    supervisor.idle = True
    supervisor.start()
    try:
        attachment.image.process.alive = False  # type: ignore[union-attr]
        assert healed.wait(5)
        assert supervisor.wait_until_settled() == CONNECTED
    finally:
        supervisor.stop()
    assert heard == ["the embedded image exited; reconnecting…", "the image died; started a new one"]
