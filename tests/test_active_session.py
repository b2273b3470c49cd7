"""The live session's pure parts: masking secrets in what stui shows and keeps."""

from __future__ import annotations

from stui_repl.session.active import MASK, Masker


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
