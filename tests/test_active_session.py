"""The live session's pure parts: masking secrets in what stui shows and keeps,
and how a restore is cut into requests and timed (against a fake image)."""

from __future__ import annotations

from typing import Any

import pytest

from stui_repl.client import wire
from stui_repl.errors import StuiError
from stui_repl.session.active import MASK, ActiveSession, Masker, Recipe, RestoreReport
from stui_repl.settings import Settings


def test_a_secret_is_masked_as_typed_and_as_a_smalltalk_literal_shows_it():
    masker = Masker()
    masker.add("pa'ss-XYZ")
    assert masker("'Bearer pa''ss-XYZ'") == f"'Bearer {MASK}'"
    assert masker("Bearer pa'ss-XYZ") == f"Bearer {MASK}"
    assert masker.reveals("x := 'pa''ss-XYZ'") and not masker.reveals("x := 'pass'")


def test_forgetting_a_secret_stops_masking_it_in_every_spelling():
    masker = Masker()
    masker.add("it's")
    masker.discard("it's")
    assert masker("'it''s'") == "'it''s'" and not masker.reveals("it's")


def test_the_longest_secret_is_masked_first():
    masker = Masker()
    masker.add("abc")
    masker.add("abcdef")
    assert masker("xabcdefx abc") == f"x{MASK}x {MASK}"


# -- restoring: pieces that fit, time limits (against a fake image) -------------------------


class FakeImage:
    """Answers replays as the server does: a run compiled as one answers once;
    under keepGoing each statement answers alone. Code holding HANG runs until
    stopped (the fake says at once that it was), FAIL fails."""

    def __init__(self, room: int = 1 << 20) -> None:
        self.room = room
        self.requests: list[tuple[list[str], bool]] = []
        self.secrets: list[str] = []

    def request_room(self) -> int:
        return self.room

    def fits(self, request: dict[str, Any]) -> bool:
        return len(wire.encode(request)) <= self.room

    def bind_secret(self, name: str, plaintext: str) -> None:
        self.secrets.append(name)

    def replay(self, units, *, keep_going=False, limit=None, patience=10.0):
        codes = [unit["code"] for unit in units]
        size = len(wire.encode(wire.script_request(units, print_value=False, keep_going=keep_going)))
        assert size <= self.room + 64, "a request longer than the image's line"
        self.requests.append((codes, keep_going))
        if keep_going:
            return {"ok": True}, [self._one(code) for code in codes]
        for index, code in enumerate(codes):
            if "HANG" in code:  # the whole run is stopped: which statement, nobody can tell
                return {"ok": True}, [{"ok": False, "timedOut": True, "error": {"kind": "interrupted"}}]
            if "FAIL" in code:
                before = [{"ok": True, "statements": index}] if index else []
                return {"ok": True}, [*before, self._one(code)]
        return {"ok": True}, [{"ok": True, "statements": len(codes)}]

    @staticmethod
    def _one(code: str) -> dict[str, Any]:
        if "HANG" in code:
            return {"ok": False, "timedOut": True, "error": {"kind": "interrupted", "message": "evaluation interrupted"}}
        if "FAIL" in code:
            return {"ok": False, "error": {"kind": "exception", "class": "Error", "message": "it failed"}}
        return {"ok": True}


def replay(recipes: list[Recipe], image: FakeImage) -> RestoreReport:
    active = ActiveSession.__new__(ActiveSession)  # only what restoring reads
    active.settings = Settings({"restore_timeout": 3})
    active.masker = Masker()
    report = RestoreReport()
    active._replay(image, recipes, report)
    return report


def recipe(name: str, code: str | None = None) -> Recipe:
    return Recipe(name, code or f"{name} := 1", [name])


def test_a_restore_goes_in_requests_that_fit_the_line_and_skips_a_statement_too_large_for_any():
    image = FakeImage(room=4000)
    recipes = [recipe(f"v{i}", f"v{i} := '{'x' * 900}' size") for i in range(10)]
    recipes.insert(5, recipe("huge", "huge := '" + "y" * 5000 + "'"))
    report = replay(recipes, image)
    assert report.restored == [f"v{i}" for i in range(10)]
    assert [name for name, _ in report.failed] == ["huge"]
    assert "too large to send to the image" in report.failed[0][1]
    assert len(image.requests) > 2  # several pieces, none too long (the fake checks)


def test_a_run_that_overruns_is_sent_again_one_by_one_and_only_the_slow_statement_is_skipped():
    image = FakeImage()
    recipes = [recipe("a"), recipe("spin", "spin := HANG"), recipe("b"), recipe("c", "c := FAIL"), recipe("d")]
    report = replay(recipes, image)
    assert report.restored == ["a", "b", "d"]
    assert report.failed == [("spin", "took longer than 3 s (restore_timeout); stopped"), ("c", "Error: it failed")]
    assert [keep_going for _, keep_going in image.requests] == [False, True]


def test_after_a_slow_statement_the_rest_go_back_to_runs_compiled_as_one():
    image = FakeImage()
    recipes = [recipe("spin", "spin := HANG"), *(recipe(f"v{i}") for i in range(250))]
    report = replay(recipes, image)
    assert report.failed == [("spin", "took longer than 3 s (restore_timeout); stopped")]
    assert len(report.restored) == 250
    assert [(len(codes), keep_going) for codes, keep_going in image.requests] == [(251, False), (200, True), (51, False)]


def test_a_failure_in_a_run_names_its_statement_and_the_rest_are_sent_again():
    image = FakeImage()
    report = replay([recipe("a"), recipe("b", "b := FAIL"), recipe("c")], image)
    assert report.restored == ["a", "c"] and report.failed == [("b", "Error: it failed")]


def test_a_secret_too_large_for_the_line_is_reported_not_sent():
    image = FakeImage(room=1000)
    with pytest.raises(StuiError, match="too large to send to the image"):
        ActiveSession._bind_secret(image, "big", "s" * 2000)
    ActiveSession._bind_secret(image, "small", "s" * 10)
    assert image.secrets == ["small"]
