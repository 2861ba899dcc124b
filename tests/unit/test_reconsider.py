"""Which regions a supply change reconsiders: the outermost ones (a region inside another
adds nothing; the whole country covers all)."""

from __future__ import annotations

from services.matching.reconsider import _outermost


def test_regions_inside_another_are_dropped() -> None:
    assert _outermost(["220102", "2201", "330100", "220102003", "2201"]) == ["2201", "330100"]


def test_the_whole_country_covers_everything() -> None:
    assert _outermost(["220102", "", "46"]) == [""]


def test_no_regions_reconsider_nothing() -> None:
    assert _outermost([]) == []
