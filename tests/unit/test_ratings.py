"""Ratings: star ratings read as people write them, and each value that is not one named for why."""

from __future__ import annotations

import pyarrow as pa
import pytest

from services.validator.ratings import map_ratings, parse_ratings


def verdicts(values: list[object], **options: bool) -> list[object]:
    """Per value: its star rating, or the name of the reason it has none."""
    ratings = parse_ratings(pa.array(values), **options)
    reasons = ("missing", "unparseable", "not_whole", "out_of_range")
    masks = {reason: getattr(ratings, reason).to_pylist() for reason in reasons}
    stars = ratings.stars.to_pylist()
    return [stars[index] or next(reason for reason in reasons if masks[reason][index]) for index in range(len(values))]


@pytest.mark.parametrize(
    "written",
    [
        "4",
        "4.0",
        '"4"',
        "'4'",
        "4 stars",
        "4 Stars",
        "4/5",
        "4 out of 5",
        "4.0 out of 5 stars",
        "four",
        "Four Stars",
        " 4 ",
        "4,0",
    ],
)
def test_four_stars_however_written(written: str) -> None:
    assert verdicts([written]) == [4]


def test_each_kind_of_bad_rating_has_its_own_reason() -> None:
    assert verdicts(["4.5", "0", "6", "10", "-1", "great", "4/10", "", None, "  "]) == [
        "not_whole",
        "out_of_range",
        "out_of_range",
        "out_of_range",
        "out_of_range",
        "unparseable",
        "unparseable",
        "missing",
        "missing",
        "missing",
    ]


def test_numbers_read_as_numbers_follow_the_same_rules() -> None:
    assert verdicts([5.0, 4.5, 7, None, float("nan")]) == [5, "not_whole", "out_of_range", "missing", "missing"]


def test_ratings_that_are_not_whole_can_be_rounded_half_up() -> None:
    assert verdicts(["4.5", "3.49", "1.5"], round_half_up=True) == [5, 3, 2]


def test_a_rating_map_reads_labels_and_refuses_the_ones_it_does_not_list() -> None:
    ratings = map_ratings(pa.array(["0", "1", "1.0", "2", ""]), {"0": 1, "1": 5})

    assert ratings.stars.to_pylist() == [1, 5, 5, None, None]
    assert ratings.unparseable.to_pylist() == [False, False, False, True, False]
    assert ratings.missing.to_pylist() == [False, False, False, False, True]
