"""Star ratings as people write them, read into 1–5 — or the precise reason a value is not one.

`4`, `4.0`, `"4"`, `4 stars`, `4/5`, `4 out of 5`, `4.0 out of 5 stars` (Amazon's own wording),
`four` and `Four Stars` are all 4. A number that is not whole (`4.5`) is `rating_not_whole`, or is
rounded half up when the setting asks for it; a whole number outside 1–5 is `rating_out_of_range`;
anything else is `unparseable_rating`; a blank is `missing_rating`. Every decision is a vectorised
Arrow compute over the whole column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

Column: TypeAlias = pa.Array | pa.ChunkedArray

_NUMBER = r"[-+]?(?:\d+(?:[.,]\d+)?|[.,]\d+)"
_OUT_OF_FIVE = r"(?:/\s*5(?:[.,]0+)?|(?:out\s+)?of\s+5(?:[.,]0+)?)"
_RATING = rf"^(?P<number>{_NUMBER})\s*(?:stars?|{_OUT_OF_FIVE}(?:\s*stars?)?)?$"
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}
_QUOTES_AND_SPACE = "\"' \t\u00a0“”‘’"


@dataclass(frozen=True)
class Ratings:
    """Per row: the star rating (null when there is none), and why there is none."""

    stars: Column
    missing: Column
    unparseable: Column
    not_whole: Column
    out_of_range: Column


def _numbers_from_text(values: Column) -> tuple[Column, Column, Column]:
    """(number or null, missing, unparseable) from ratings written as text."""
    text = pc.utf8_lower(pc.utf8_trim(values.cast(pa.string()), characters=_QUOTES_AND_SPACE))
    missing = pc.fill_null(pc.equal(text, ""), True)
    if pc.any(pc.invert(pc.fill_null(pc.match_substring_regex(text, _RATING), True))).as_py():
        # Some values are not plain numbers: spell the number words as digits ("four stars" → "4 stars").
        for word, digit in _NUMBER_WORDS.items():
            text = pc.replace_substring_regex(text, rf"^{word}\b", digit)
    number_text = pc.struct_field(pc.extract_regex(text, _RATING), "number")
    numbers = pc.replace_substring(number_text, ",", ".").cast(pa.float64())
    unparseable = pc.and_not(pc.is_null(numbers), missing)
    return numbers, missing, unparseable


def parse_ratings(values: Column, *, round_half_up: bool = False) -> Ratings:
    """Star ratings 1–5 from source values (text or numbers)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type):
        numbers = values.cast(pa.float64())
        numbers = pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)
        missing = pc.is_null(numbers)
        unparseable = pc.and_not(missing, missing)  # all false, same shape
        if pa.types.is_boolean(values.type):
            unparseable, numbers = pc.invert(missing), pc.if_else(missing, numbers, pa.scalar(None, pa.float64()))
    else:
        numbers, missing, unparseable = _numbers_from_text(values)
    if round_half_up:
        numbers = pc.floor(pc.add(numbers, 0.5))
    whole = pc.fill_null(pc.equal(pc.floor(numbers), numbers), False)
    not_whole = pc.and_not(pc.invert(pc.is_null(numbers)), whole)
    in_range = pc.and_(whole, pc.and_(pc.greater_equal(numbers, 1), pc.less_equal(numbers, 5)))
    in_range = pc.fill_null(in_range, False)
    out_of_range = pc.and_not(whole, in_range)
    stars = pc.if_else(in_range, numbers, pa.scalar(None, pa.float64())).cast(pa.int8())
    return Ratings(
        stars=stars,
        missing=pc.fill_null(missing, True),
        unparseable=pc.fill_null(unparseable, False),
        not_whole=pc.fill_null(not_whole, False),
        out_of_range=pc.fill_null(out_of_range, False),
    )


def _label_text(values: Column) -> Column:
    """Labels as text to look up in a rating map, whole numbers in one spelling (1.0 as "1")."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = values.cast(pa.float64())
        whole = pc.and_(pc.equal(pc.floor(numbers), numbers), pc.less(pc.abs(numbers), 1e15))
        as_int = pc.if_else(whole, numbers, pa.scalar(None, pa.float64())).cast(pa.int64()).cast(pa.string())
        return pc.coalesce(as_int, numbers.cast(pa.string()))
    text = pc.utf8_trim(values.cast(pa.string()), characters=_QUOTES_AND_SPACE)
    numeric = pc.fill_null(pc.match_substring_regex(text, rf"^{_NUMBER}$"), False)
    numbers = pc.if_else(numeric, pc.replace_substring(text, ",", "."), pa.scalar(None, pa.string()))
    return pc.coalesce(_label_text(numbers.cast(pa.float64())), text)


def map_ratings(values: Column, rating_map: dict[str, int]) -> Ratings:
    """Star ratings from labels a layout maps (e.g. 0/1 polarity labels); a label it does not list is unparseable."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    labels = _label_text(values)
    missing = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(labels), ""), True)
    found = pc.index_in(labels, value_set=pa.array(list(rating_map), pa.string()))
    stars = pa.array(list(rating_map.values()), pa.int8()).take(found)
    unparseable = pc.and_not(pc.is_null(stars), missing)
    nothing = pc.and_not(missing, missing)
    return Ratings(
        stars=stars,
        missing=missing,
        unparseable=unparseable,
        not_whole=nothing,
        out_of_range=pc.fill_null(nothing, False),
    )
