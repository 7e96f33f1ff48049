"""Check 4 — columns: which column holds which canonical field, and which layout the file is in.

Layouts configured by the user come first and are matched as configured (by the columns they name,
or, for a delimited file without a header row, by its column count), in this order:

1. layouts in the environment (`REVIEWS_VALIDATOR_LAYOUTS`, a JSON list);
2. layouts in the layouts file (`REVIEWS_VALIDATOR_LAYOUTS_FILE`, default `layouts.json` beside this
   module: the headerless MARC CSV and the UCI sentiment file).

Every other file with a header (or JSON keys, or Parquet columns) has its columns recognised by
role (`roles`): any subset or superset of a published layout's columns is accepted as long as the
roles a file needs are there — the text, and a rating for training files. The file's layout is
then named after the published layout (`KNOWN_LAYOUTS`) its columns agree with, or `by-role`.
Columns that no role takes are dropped and reported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import canonical
from shared.events import Dataset

from .checks import CheckFailedError
from .formats import ContainerFormat, ContentFormat
from .roles import COLUMN_ROLES_SETTING, assign_roles, infer_roles

MappedField = Literal["review_id", "title", "text", "rating", "language"]
BY_ROLE = "by-role"
"""Canonical columns a source column can be mapped to (row_number is the validator's own)."""

DEFAULT_LAYOUTS_FILE = Path(__file__).with_name("layouts.json")


class LayoutMatch(BaseModel):
    """How a layout is recognised: by columns that must all be present, or as a headerless file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: tuple[str, ...] = Field(
        default=(), description="Columns that must all be present (header names, JSON keys or Parquet columns)."
    )
    headerless_column_count: int | None = Field(
        default=None, ge=1, description="Matches delimited files without a header row that have this many columns."
    )
    formats: tuple[ContainerFormat, ...] = Field(
        default=(), description="Only files in these formats match (csv, tsv, jsonl, parquet); empty: any."
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if bool(self.columns) == (self.headerless_column_count is not None):
            raise ValueError("a match rule gives either `columns` or `headerless_column_count`, not both or neither")
        return self


class Layout(BaseModel):
    """A source layout: how to recognise it and which of its columns become which canonical column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Reported as the file's layout (FileValidated.layout).")
    description: str = Field(default="", description="Where files in this layout come from.")
    match: LayoutMatch
    column_names: tuple[str, ...] = Field(
        default=(), description="Names for the columns of a headerless file, in order; `mapping` refers to them."
    )
    mapping: dict[MappedField, str] = Field(
        description="Canonical column → source column. `text` is required; a mapped column the file lacks is null."
    )
    rating_map: dict[str, int] | None = Field(
        default=None,
        description='Source rating value → star rating 1-5, e.g. {"0": 1, "1": 5} for a 0/1 polarity label. '
        "Values not listed are out of range. Without it, the source value must be a whole number 1-5.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if "text" not in self.mapping:
            raise ValueError(f"layout {self.name!r} must map a source column to `text`")
        if self.match.headerless_column_count is not None:
            if len(self.column_names) != self.match.headerless_column_count:
                raise ValueError(
                    f"layout {self.name!r}: column_names must name all {self.match.headerless_column_count} columns"
                )
            unknown = sorted(set(self.mapping.values()) - set(self.column_names))
            if unknown:
                raise ValueError(f"layout {self.name!r} maps columns not in column_names: {unknown}")
        if self.rating_map is not None and any(not 1 <= stars <= 5 for stars in self.rating_map.values()):
            raise ValueError(f"layout {self.name!r}: rating_map values must be star ratings 1-5")
        return self

    @property
    def headerless(self) -> bool:
        return self.match.headerless_column_count is not None

    def matches(self, content: ContentFormat) -> bool:
        if self.match.formats and content.format not in self.match.formats:
            return False
        if self.headerless:
            return not content.has_header and content.column_count == self.match.headerless_column_count
        return content.has_header and set(self.match.columns) <= set(content.columns)


def _layout(name: str, description: str, match: tuple[str, ...], **mapping: str) -> Layout:
    return Layout(
        name=name,
        description=description,
        match=LayoutMatch(columns=match),
        mapping=mapping,
    )


KNOWN_LAYOUTS: tuple[Layout, ...] = (
    _layout(
        "aws-customer-reviews",
        "Amazon Customer Reviews Dataset (amazon-reviews-pds) TSV",
        ("review_id", "review_headline", "review_body"),
        review_id="review_id",
        title="review_headline",
        text="review_body",
        rating="star_rating",
    ),
    _layout(
        "marc",
        "Multilingual Amazon Reviews Corpus, JSON lines or CSV with the full record",
        ("review_id", "review_title", "review_body"),
        review_id="review_id",
        title="review_title",
        text="review_body",
        rating="stars",
        language="language",
    ),
    _layout(
        "marc-text",
        "MARC records with the body in `text`, as NannyML republishes them",
        ("review_id", "review_title", "text"),
        review_id="review_id",
        title="review_title",
        text="text",
        rating="stars",
        language="language",
    ),
    _layout(
        "mcauley-2018",
        "McAuley/UCSD Amazon review data 2018 (Ni, Li & McAuley), JSON lines",
        ("reviewerID", "asin", "reviewText", "verified"),
        title="summary",
        text="reviewText",
        rating="overall",
    ),
    _layout(
        "mcauley-2014",
        "McAuley/UCSD Amazon product data 2014 (and 2013 SNAP re-exports), JSON lines",
        ("reviewerID", "asin", "reviewText"),
        title="summary",
        text="reviewText",
        rating="overall",
    ),
    _layout(
        "mcauley-2023",
        "Amazon Reviews 2023 (McAuley Lab), JSON lines",
        ("title", "text", "parent_asin"),
        title="title",
        text="text",
        rating="rating",
    ),
    _layout(
        "kaggle-fine-food",
        "Amazon Fine Food Reviews (SNAP / Kaggle Reviews.csv)",
        ("ProductId", "Summary", "Text"),
        review_id="Id",
        title="Summary",
        text="Text",
        rating="Score",
    ),
    _layout(
        "datafiniti",
        "Datafiniti consumer reviews of Amazon products (dotted column names); `id` is the product's, not the review's",
        ("reviews.text",),
        review_id="reviews.id",
        title="reviews.title",
        text="reviews.text",
        rating="reviews.rating",
    ),
    _layout(
        "amazon-alexa",
        "Kaggle Amazon Alexa reviews TSV",
        ("verified_reviews",),
        text="verified_reviews",
        rating="rating",
    ),
    _layout(
        "canonical",
        "Columns already named as the canonical schema (review_id, title, text, rating, language)",
        ("text",),
        review_id="review_id",
        title="title",
        text="text",
        rating="rating",
        language="language",
    ),
)


class LayoutsFile(BaseModel):
    """The layouts file: `layouts` are active; `examples` document other configurations and are only checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str = ""
    layouts: tuple[Layout, ...] = ()
    examples: tuple[Layout, ...] = ()


@lru_cache(maxsize=8)
def load_layouts_file(path: Path) -> LayoutsFile:
    return LayoutsFile.model_validate(json.loads(path.read_text(encoding="utf-8")))


class LayoutSettings(BaseSettings):
    """Layouts beyond the known ones, from the environment and from a layouts file."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_VALIDATOR_", frozen=True, extra="ignore")

    layouts: tuple[Layout, ...] = Field(
        default=(),
        description="REVIEWS_VALIDATOR_LAYOUTS: a JSON list of layouts, tried before all others.",
    )
    column_roles: dict[MappedField, str] = Field(
        default_factory=dict,
        description="REVIEWS_VALIDATOR_COLUMN_ROLES: a JSON object naming the column of a role when a file has "
        'two candidates for it, e.g. {"title": "summary"}.',
    )
    layouts_file: Path | None = Field(
        default=DEFAULT_LAYOUTS_FILE,
        description="REVIEWS_VALIDATOR_LAYOUTS_FILE: a JSON file of layouts tried next (empty: none).",
    )
    _file_layouts: tuple[Layout, ...] = PrivateAttr(default=())

    @field_validator("layouts_file", mode="before")
    @classmethod
    def _empty_means_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def model_post_init(self, context: Any) -> None:
        # Read once, where the settings are built (the handler's edge), so a broken file fails loudly there.
        if self.layouts_file is not None:
            self._file_layouts = load_layouts_file(self.layouts_file).layouts

    def in_order(self) -> tuple[Layout, ...]:
        """Every configured layout, in the order they are tried."""
        return (*self.layouts, *self._file_layouts)


def known_column_names(layouts: Sequence[Layout]) -> frozenset[str]:
    """Every column name a layout recognises or maps: a first row made of these is a header."""
    names: set[str] = set()
    for layout in layouts:
        if not layout.headerless:
            names.update(layout.match.columns)
            names.update(layout.mapping.values())
    return frozenset(names)


@dataclass(frozen=True)
class ResolvedLayout:
    """A file's layout and the source columns it keeps, by canonical name."""

    layout: Layout
    source_columns: dict[MappedField, str]
    """Canonical name → source column, for the mapped columns this file has."""
    kept_columns: tuple[str, ...]
    dropped_columns: tuple[str, ...]
    column_names: tuple[str, ...]
    """All of the file's columns, in order (the layout's names for a headerless file)."""

    @property
    def name(self) -> str:
        return self.layout.name


def _is_textual(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        return _is_textual(data_type.value_type)
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_null(data_type))


def _is_scalar(data_type: pa.DataType) -> bool:
    return bool(_is_textual(data_type) or pa.types.is_integer(data_type) or pa.types.is_floating(data_type))


def _check_parquet_types(content: ContentFormat, source_columns: dict[MappedField, str]) -> None:
    """Parquet columns come typed: a review text that is not text means the mapping is wrong, so refuse it."""
    schema = content.parquet_schema
    if schema is None:
        return
    for name, column in source_columns.items():
        data_type = schema.field(column).type
        if name == canonical.TEXT and not _is_textual(data_type):
            raise CheckFailedError(
                "columns",
                f"column {column!r} should hold the review text but its Parquet type is {data_type}",
                column=column,
                parquet_type=str(data_type),
            )
        if not _is_scalar(data_type):
            raise CheckFailedError(
                "columns",
                f"column {column!r} (mapped to {name}) has Parquet type {data_type}; expected text or a number",
                column=column,
                parquet_type=str(data_type),
            )


def _layout_named_for(roles: dict[MappedField, str], columns: Sequence[str]) -> Layout:
    """The published layout whose mapping agrees with every role found, most of its columns present; else by-role."""
    present = set(columns)
    agreeing = [
        layout for layout in KNOWN_LAYOUTS if all(layout.mapping.get(role) == column for role, column in roles.items())
    ]
    if agreeing:

        def fit(layout: Layout) -> tuple[float, int]:
            found = sum(1 for column in layout.match.columns if column in present)
            return found / len(layout.match.columns), found

        best = max(agreeing, key=fit)
        if fit(best)[1] > 0:
            return best.model_copy(update={"mapping": dict(roles)})
    return Layout(
        name=BY_ROLE,
        description="Columns recognised by their role",
        match=LayoutMatch(columns=tuple(roles.values())),
        mapping=roles,
    )


INFERRED = "inferred-from-content"


def headerless_column_names(width: int) -> tuple[str, ...]:
    return tuple(f"column_{index}" for index in range(1, width + 1))


def _inferred(content: ContentFormat) -> Layout | None:
    """A layout for a headerless file whose columns' contents say which holds the text (and the rating)."""
    shape = content.shape
    if shape is None or not shape.sample_rows:
        return None
    positions = infer_roles(shape.sample_rows, shape.width)
    if "text" not in positions:
        return None
    names = headerless_column_names(shape.width)
    return Layout(
        name=INFERRED,
        description="A headerless file whose columns were recognised by what they hold",
        match=LayoutMatch(headerless_column_count=shape.width),
        column_names=names,
        mapping={role: names[position] for role, position in positions.items()},
    )


def _by_role(content: ContentFormat, column_roles: dict[MappedField, str]) -> Layout:
    if not content.has_header:
        inferred = _inferred(content)
        if inferred is not None:
            return inferred
        raise CheckFailedError(
            "columns",
            f"the file has no header row (its first row looks like data) and {content.column_count} columns, "
            "which matches no configured headerless layout, and no column holds prose to take for the review "
            "text: add a header row naming the columns (e.g. text,rating), or describe the layout in "
            "REVIEWS_VALIDATOR_LAYOUTS",
            column_count=content.column_count,
        )
    roles: dict[MappedField, str] = dict(assign_roles(content.columns, column_roles))
    if "text" not in roles:
        raise CheckFailedError(
            "columns",
            f"no column of {list(content.columns)} holds the review text: name it text, review_body, reviewText, "
            f"review, content or body (or pick it with {COLUMN_ROLES_SETTING}, "
            'e.g. {"text": "my_column"}), or describe the layout in REVIEWS_VALIDATOR_LAYOUTS',
            columns=list(content.columns),
        )
    return _layout_named_for(roles, content.columns)


def resolve_layout(
    content: ContentFormat,
    dataset: Dataset,
    layouts: Sequence[Layout],
    column_roles: dict[MappedField, str] | None = None,
) -> ResolvedLayout:
    """Check 4: a configured layout that matches, else the columns by role; CheckFailedError for unmet needs."""
    layout = next((candidate for candidate in layouts if candidate.matches(content)), None)
    if layout is None:
        layout = _by_role(content, column_roles or {})
    column_names = layout.column_names if layout.headerless else content.columns
    present = set(column_names)
    if content.format != "jsonl":
        duplicated = sorted(
            column for column in set(layout.mapping.values()) & present if column_names.count(column) > 1
        )
        if duplicated:
            raise CheckFailedError(
                "columns", f"columns {duplicated} appear more than once in the header", columns=duplicated
            )
    text_column = layout.mapping["text"]
    if text_column not in present:
        raise CheckFailedError(
            "columns",
            f"layout {layout.name!r} takes the review text from column {text_column!r}, which this file lacks",
            layout=layout.name,
        )
    rating_column = layout.mapping.get("rating")
    if dataset == "train" and (rating_column is None or rating_column not in present):
        missing = (
            f"column {rating_column!r} is missing"
            if rating_column
            else f"no column of {list(column_names)} holds a rating (stars, rating, overall, score, star_rating, …)"
        )
        raise CheckFailedError(
            "columns",
            f"a training file needs a rating: the file is in layout {layout.name!r}, but {missing} "
            "(the same file is accepted as inference data)",
            layout=layout.name,
        )
    source_columns = {name: column for name, column in layout.mapping.items() if column in present}
    _check_parquet_types(content, source_columns)
    kept = tuple(column for column in column_names if column in source_columns.values())
    kept = tuple(dict.fromkeys(kept))
    dropped = tuple(column for column in column_names if column not in kept)
    return ResolvedLayout(
        layout=layout,
        source_columns=source_columns,
        kept_columns=kept,
        dropped_columns=dropped,
        column_names=tuple(column_names),
    )
