"""Cleaning, normalising and tokenising reviews: pure functions over Arrow record batches.

The ETL Lambda calls `transform_parquet` on a processed/ parquet file's bytes, which runs
`transform_batch` on each of its record batches; a Glue (Spark) job can call `transform_batch` from
`mapInArrow`, batch by batch. Nothing here reads or
writes anything, looks at the environment or knows about Lambda: a batch in the canonical schema
(shared/canonical.py) and an `EtlSettings` go in, a batch in the etl schema (shared/etl_schema.py)
and the rows dropped by reason come out, with rows_in == rows_out + sum(rows_dropped).

The steps, in order; each is one kernel over the whole batch (pyarrow.compute, or numpy over the
Arrow buffers), never a Python loop per row, except for decoding HTML entities (step 4):

1. The review text: title and body joined by a space (`combine_title`), else the body.
2. `empty_text`: null, empty or whitespace-only text is dropped.
3. `corrupt_text`: text in which U+FFFD (the replacement character a failed decode leaves behind)
   makes up at least `corrupt_replacement_fraction` of the characters is dropped. Only rows that are
   not pure ASCII are looked at: U+FFFD is not ASCII.
   With `label_target = binary`, 3-star rows are dropped here as `neutral_dropped_for_binary`, so
   nothing is spent cleaning them.
4. Markup, only on the rows holding `<` or `&` (found by one pass over the bytes): HTML tags and
   comments become a space (an RE2 regex that wants a tag name and well-formed attributes, so
   "<3" or "<over 13>" are text, not tags); then entities (`&#34;`, `&quot;`, `&amp;`, `&#8217;`,
   `&eacute;` …) are decoded with `html.unescape`, row by row, on the rows that hold one. Arrow has
   no entity decoder and a table of literal replacements would miss the numeric ones; such rows are
   a few percent of real files (5 % of the AWS Gift Card sample, 4 % of the bench input). Tags go
   first: an encoded `&lt;b&gt;` is text the reviewer typed.
5. Normalising. Pure-ASCII rows (most English reviews) are only lower-cased (`ascii_lower`), which
   is all NFKC and lower-casing would do to them. In the other rows typographic apostrophes (’ ‘ ´)
   become "'"; NFKC turns fullwidth letters, ligatures and non-breaking spaces into their plain
   forms and accented letters into one code point each (`utf8_normalize`, which composes since
   pyarrow 26, the locked version every runtime installs); then `utf8_lower`; then every non-ASCII
   character that is not a letter, mark or digit (emoji, curly quotes, dashes …), and any mark with
   no letter before it, becomes a space (`replace_substring_regex`, RE2).
6. Tokenising, in numpy over the batch's UTF-8 bytes: a lookup table marks every ASCII byte that is
   not [a-z0-9'] as a separator (non-ASCII bytes left after step 5 belong to letters), so special
   characters are removed and whitespace collapsed in the same pass. An apostrophe stays only
   between two word characters ("don't", "it's", "o'clock"); quote marks around a word go. Tokens
   are the runs of remaining bytes, copied once into one Arrow string array; each row's tokens are
   a list (`tokens`). Letters include the accented Spanish ones (á é í ó ú ü ñ); digits are kept.
7. `empty_after_cleaning`: rows with no token left (only markup, punctuation or emoji).
8. Optional stop-word removal (`remove_stop_words`), per row by its `language`, or
   `default_language` when the source did not say, with the lists of the `stopwordsiso` package;
   `only_stop_words` drops the rows left with no token.
9. Derived columns: `token_count`, `text_length` (characters of the cleaned text, i.e. the tokens
   before stop-word removal joined by single spaces) and `label` from the rating (`label_target`).

Whitespace tokenising suits languages written with spaces (English and Spanish here); Chinese or
Japanese text would come out as one token per run of letters.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import stopwordsiso
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.canonical import CANONICAL_COLUMNS, LANGUAGE, RATING, REVIEW_ID, ROW_NUMBER, TEXT, TITLE
from shared.etl_schema import LabelTarget, etl_arrow_schema, labels_for

EMPTY_TEXT = "empty_text"
CORRUPT_TEXT = "corrupt_text"
NEUTRAL_DROPPED_FOR_BINARY = "neutral_dropped_for_binary"
EMPTY_AFTER_CLEANING = "empty_after_cleaning"
ONLY_STOP_WORDS = "only_stop_words"

# A tag wants a name and attributes that look like attributes, so "<3" and "<over 13>" stay text.
HTML_TAG = (
    r"<!--.*?-->"
    r"|</?[A-Za-z][A-Za-z0-9]*"
    r"(?:\s+[A-Za-z_:][-A-Za-z0-9_:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*\s*/?>"
)
_TYPOGRAPHIC_APOSTROPHES = "[\u2018\u2019\u00b4]"
# Marks left without a letter to sit on (NFKC turns a spacing diaeresis "¨" into a space and a combining
# one), and runs of non-ASCII characters that are not letters, marks or digits, with any marks after them.
_NON_ASCII_NON_WORD = r"(?:^|[^\p{L}\p{M}\p{N}])\p{M}+|[^\x00-\x7f\p{L}\p{M}\p{N}]+\p{M}*"
_REPLACEMENT_CHARACTER = "\ufffd"
_APOSTROPHE = ord("'")
_MARKUP_BYTES = (ord("<"), ord("&"))


def _separator_bytes() -> Any:
    """True for the ASCII bytes that end a token: everything but a-z, 0-9 and the apostrophe."""
    table = np.zeros(256, dtype=np.bool_)
    table[:128] = True
    for byte in b"abcdefghijklmnopqrstuvwxyz0123456789'":
        table[byte] = False
    return table


_SEPARATOR = _separator_bytes()


class EtlSettings(BaseSettings):
    """How reviews are cleaned, tokenised and labelled (env prefix REVIEWS_ETL_)."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_ETL_", frozen=True, extra="ignore")

    combine_title: bool = Field(default=True, description="Prefix the review body with its title.")
    remove_stop_words: bool = Field(
        default=False,
        description="Drop stop words from the tokens. Off by default: the lists hold negations and "
        "polarity words ('not', 'no', 'good', 'bien', 'mejor') that a sentiment model needs.",
    )
    stop_word_languages: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("en", "es"),
        description="ISO 639-1 codes whose stop words are removed, each from rows of that language "
        "(comma-separated in the environment).",
    )
    default_language: str | None = Field(
        default="en", description="Language assumed for rows whose source did not say; none: no stop words removed."
    )
    stop_word_exceptions: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Words kept even when the list names them, e.g. not,no,never (comma-separated in the environment).",
    )
    label_target: LabelTarget = Field(
        default="sentiment3",
        description="sentiment3: 1-2 negative, 3 neutral, 4-5 positive; stars: '1'..'5'; binary: 1-2 negative, "
        "4-5 positive, 3-star rows dropped; none: no label.",
    )
    corrupt_replacement_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A text whose characters are at least this fraction of U+FFFD is dropped as corrupt_text.",
    )
    batch_rows: int = Field(
        default=16_384, ge=1, description="Rows per record batch read from processed/ (bounds the working memory)."
    )

    @field_validator("stop_word_languages", "stop_word_exceptions", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("stop_word_languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if not stopwordsiso.has_lang(code)]
        if unknown:
            raise ValueError(f"no stop-word list for {unknown}")
        return tuple(code.lower() for code in value)


class NotCanonicalError(ValueError):
    """A batch that is not in the canonical review schema: a column is missing or cannot be read as its type."""


@dataclass(frozen=True)
class TransformedBatch:
    batch: pa.RecordBatch
    rows_in: int
    rows_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        return int(self.batch.num_rows)


_CANONICAL_TYPES = {
    ROW_NUMBER: pa.int64(),
    REVIEW_ID: pa.string(),
    TITLE: pa.string(),
    TEXT: pa.string(),
    RATING: pa.int8(),
    LANGUAGE: pa.string(),
}


def conform_to_canonical(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch's canonical columns, in order, cast to their canonical types (large_string → string, …).

    Raises NotCanonicalError naming every missing column and every column that cannot be cast.
    """
    missing = [name for name in CANONICAL_COLUMNS if name not in batch.schema.names]
    if missing:
        raise NotCanonicalError(f"missing canonical column(s) {missing}")
    columns, problems = [], []
    for name in CANONICAL_COLUMNS:
        column = batch.column(name)
        try:
            columns.append(column.cast(_CANONICAL_TYPES[name]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            problems.append(f"{name} ({column.type}): {error}")
    if problems:
        raise NotCanonicalError(f"column(s) not in their canonical type: {'; '.join(problems)}")
    return pa.RecordBatch.from_arrays(columns, names=list(CANONICAL_COLUMNS))


# -- the transform ---------------------------------------------------------------------------------


class _Drops:
    """Rows dropped so far, by reason; each dropped row is counted once, under the first reason that hit it."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def apply(self, batch: pa.RecordBatch, reasons: Iterable[tuple[str, Any]]) -> tuple[pa.RecordBatch, Any]:
        """Drop the rows of `batch` hit by the masks of `reasons`, in order; also return the kept-row mask."""
        keep = None
        for reason, mask in reasons:
            hit = pc.fill_null(mask, False)
            if keep is not None:
                hit = pc.and_(hit, keep)
            count = int(pc.sum(hit).as_py() or 0)
            if count:
                self.counts[reason] = self.counts.get(reason, 0) + count
                keep = pc.invert(hit) if keep is None else pc.and_not(keep, hit)
        if keep is None:
            return batch, None
        return batch.filter(keep), keep


def transform_batch(batch: pa.RecordBatch, settings: EtlSettings) -> TransformedBatch:
    """Clean, normalise and tokenise one batch of canonical reviews (see the module's docstring)."""
    batch = conform_to_canonical(batch)
    rows_in = batch.num_rows
    drops = _Drops()

    text = review_text(batch, combine_title=settings.combine_title)
    early: list[tuple[str, Any]] = [
        (EMPTY_TEXT, is_blank(text)),
        (CORRUPT_TEXT, is_corrupt(text, settings.corrupt_replacement_fraction)),
    ]
    if settings.label_target == "binary":
        early.append((NEUTRAL_DROPPED_FOR_BINARY, pc.equal(batch.column(RATING), 3)))
    batch, kept = drops.apply(batch, early)
    if kept is not None:
        text = text.filter(kept)

    tokens = tokenise(normalise(strip_markup(text)))
    token_count = pc.list_value_length(tokens)
    text_length = _joined_length(tokens)
    late: list[tuple[str, Any]] = [(EMPTY_AFTER_CLEANING, pc.equal(token_count, 0))]
    if settings.remove_stop_words:
        languages = batch.column(LANGUAGE)
        if settings.default_language is not None:
            languages = pc.fill_null(languages, settings.default_language)
        tokens = remove_stop_words(tokens, languages, settings.stop_word_languages, settings.stop_word_exceptions)
        token_count = pc.list_value_length(tokens)
        late.append((ONLY_STOP_WORDS, pc.equal(token_count, 0)))

    output = pa.RecordBatch.from_arrays(
        [
            batch.column(ROW_NUMBER),
            batch.column(REVIEW_ID),
            batch.column(LANGUAGE),
            batch.column(RATING),
            labels_for(batch.column(RATING), settings.label_target),
            tokens,
            token_count.cast(pa.int32()),
            text_length,
        ],
        schema=etl_arrow_schema(),
    )
    output, _ = drops.apply(output, late)
    transformed = TransformedBatch(batch=output, rows_in=rows_in, rows_dropped=drops.counts)
    if rows_in != transformed.rows_out + sum(transformed.rows_dropped.values()):
        raise AssertionError(f"rows do not reconcile: {rows_in} in, {transformed.rows_out} out, {drops.counts}")
    return transformed


def transform_table(table: pa.Table, settings: EtlSettings) -> tuple[pa.Table, dict[str, int]]:
    """`transform_batch` over every batch of `table`: the transformed table and the rows dropped by reason."""
    results = [transform_batch(batch, settings) for batch in table.to_batches(max_chunksize=settings.batch_rows)]
    output = pa.Table.from_batches([result.batch for result in results], schema=etl_arrow_schema())
    return output, merge_counts(result.rows_dropped for result in results)


@dataclass(frozen=True)
class EtlOutput:
    """An etl/ parquet file's bytes and its row accounting: rows_in == rows_out + sum(rows_dropped)."""

    body: bytes
    rows_in: int
    rows_out: int
    rows_dropped: dict[str, int]


# What a part with nothing to transform (rejected upstream, or here) counts towards its root file.
NOTHING_TRANSFORMED = EtlOutput(body=b"", rows_in=0, rows_out=0, rows_dropped={})


def transform_parquet(body: bytes, settings: EtlSettings) -> EtlOutput:
    """A processed/ parquet file's bytes → the etl/ parquet file's bytes, one record batch at a time."""
    source = pq.ParquetFile(io.BytesIO(body))
    sink = io.BytesIO()
    rows_in = rows_out = 0
    dropped: list[dict[str, int]] = []
    with pq.ParquetWriter(sink, etl_arrow_schema(), compression="zstd") as writer:
        for batch in source.iter_batches(batch_size=settings.batch_rows):
            result = transform_batch(batch, settings)
            writer.write_batch(result.batch)
            rows_in += result.rows_in
            rows_out += result.rows_out
            dropped.append(result.rows_dropped)
    return EtlOutput(body=sink.getvalue(), rows_in=rows_in, rows_out=rows_out, rows_dropped=merge_counts(dropped))


def merge_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for each in counts:
        for reason, count in each.items():
            merged[reason] = merged.get(reason, 0) + count
    return merged


# -- the steps ---------------------------------------------------------------------------------------


def review_text(batch: pa.RecordBatch, *, combine_title: bool) -> pa.Array:
    """The text to clean: "<title> <body>" when titles are combined (either may be missing), else the body."""
    body = batch.column(TEXT)
    if not combine_title:
        return body
    # Not null_handling="skip": pyarrow (26) then leaves out the rows where title and body are both null.
    joined = pc.binary_join_element_wise(batch.column(TITLE), body, " ")
    return pc.coalesce(joined, body, batch.column(TITLE))


def is_blank(text: pa.Array) -> pa.Array:
    """Null, empty or only whitespace."""
    return pc.or_(pc.fill_null(pc.equal(pc.binary_length(text), 0), True), pc.fill_null(pc.utf8_is_space(text), False))


def is_corrupt(text: pa.Array, replacement_fraction: float) -> pa.Array:
    """U+FFFD makes up at least `replacement_fraction` of the characters (looked for in non-ASCII rows only)."""
    corrupt = np.zeros(len(text), dtype=np.bool_)
    candidates = pc.indices_nonzero(pc.invert(pc.fill_null(pc.string_is_ascii(text), True)))
    if len(candidates):
        subset = text.take(candidates)
        replacements = pc.count_substring(subset, _REPLACEMENT_CHARACTER).to_numpy(zero_copy_only=False)
        characters = pc.utf8_length(subset).to_numpy(zero_copy_only=False)
        corrupt[candidates.to_numpy()] = replacements >= replacement_fraction * characters
    return pa.array(corrupt)


def strip_markup(text: pa.Array) -> pa.Array:
    """HTML tags and comments → a space, then entities decoded, on the rows that hold `<` or `&`."""
    return _on_rows(text, _rows_holding(text, _MARKUP_BYTES), _strip_markup_rows)


def _strip_markup_rows(text: pa.Array) -> pa.Array:
    without_tags = pc.replace_substring_regex(text, HTML_TAG, " ")
    # Arrow has no entity decoder; these rows are few, so html.unescape decodes them one by one.
    return pa.array(
        [None if value is None else html.unescape(value) for value in without_tags.to_pylist()], pa.string()
    )


def normalise(text: pa.Array) -> pa.Array:
    """Lower-cased; non-ASCII rows also NFKC-normalised, with non-ASCII non-word characters → a space."""
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(text), True))
    return pc.ascii_lower(_on_rows(text, non_ascii, _normalise_unicode_rows))


def _normalise_unicode_rows(text: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(text, _TYPOGRAPHIC_APOSTROPHES, "'")
    text = pc.utf8_lower(nfkc(text))
    return pc.replace_substring_regex(text, _NON_ASCII_NON_WORD, " ")


def nfkc(text: pa.Array) -> pa.Array:
    """Unicode NFKC, composed: "ñ" stays one code point (pyarrow < 26 decomposed it, apache/arrow#51225)."""
    return pc.utf8_normalize(text, "NFKC")


def tokenise(text: pa.Array) -> pa.Array:
    """A list of tokens per row of normalised text (step 6 of the module's docstring); nulls give no tokens."""
    text = pc.fill_null(text, "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not len(text):
        return pa.array([], pa.list_(pa.string()))
    offsets, data = _string_buffers(text)
    separator = _SEPARATOR[data]
    # An apostrophe stays only between two word bytes of the same row.
    apostrophes = np.flatnonzero(data == _APOSTROPHE)
    if len(apostrophes):
        word = ~separator
        word[apostrophes] = False
        before = apostrophes - 1
        after = apostrophes + 1
        inside = (before >= 0) & (after < len(data))
        inside[inside] &= word[before[inside]] & word[after[inside]]
        row = np.searchsorted(offsets, apostrophes, side="right") - 1
        at_row_edge = (offsets[row] == apostrophes) | (offsets[row + 1] == after)
        separator[apostrophes[~inside | at_row_edge]] = True
    kept = ~separator
    # Runs of kept bytes are tokens; a token also ends where its row does.
    edges = np.diff(kept.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    inner_row_starts = offsets[1:-1]
    # Offsets are sorted; empty rows repeat them.
    inner_row_starts = inner_row_starts[(inner_row_starts > 0) & (inner_row_starts < len(data))]
    inner_row_starts = inner_row_starts[np.diff(inner_row_starts, prepend=-1) != 0]
    spanning = inner_row_starts[kept[inner_row_starts] & kept[inner_row_starts - 1]]
    if len(spanning):
        starts = np.insert(starts, np.searchsorted(starts, spanning), spanning)
        ends = np.insert(ends, np.searchsorted(ends, spanning), spanning)
    token_offsets = np.zeros(len(starts) + 1, dtype=np.int32)
    np.cumsum(ends - starts, dtype=np.int32, out=token_offsets[1:])
    values = pa.StringArray.from_buffers(len(starts), pa.py_buffer(token_offsets), pa.py_buffer(data[kept]))
    row_offsets = np.searchsorted(starts, offsets).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(row_offsets), values)


def remove_stop_words(
    tokens: pa.Array, languages: pa.Array, stop_word_languages: Iterable[str], exceptions: frozenset[str] = frozenset()
) -> pa.Array:
    """Tokens without the stop words of their row's language (rows of other or unknown languages: unchanged)."""
    values = pc.list_flatten(tokens)
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    row_language = pc.ascii_lower(languages)
    present = set(pc.unique(row_language).to_pylist())
    token_language = None
    stop = pa.array(np.zeros(len(values), dtype=np.bool_))
    for language in stop_word_languages:
        if language not in present:
            continue
        listed = pc.is_in(values, value_set=stop_words_for(language, exceptions))
        if present != {language}:
            if token_language is None:
                token_language = row_language.take(pa.array(np.repeat(np.arange(len(tokens)), counts)))
            listed = pc.and_(listed, pc.fill_null(pc.equal(token_language, language), False))
        stop = pc.or_(stop, listed)
    return _keep_tokens(tokens, pc.invert(stop))


@lru_cache(maxsize=32)
def stop_words_for(language: str, exceptions: frozenset[str] = frozenset()) -> pa.Array:
    """The `stopwordsiso` list of a language, normalised and tokenised as review text is, less `exceptions`.

    stopwordsiso (MIT; the stopwords-iso collection, ISO 639-1 codes like the `language` column, one
    JSON file, no dependencies, typed) gives English and Spanish among 50+ languages. Entries that
    tokenise to more than one token ("et-al", "i.e.") could never match a token and are left out.
    """
    words = sorted(stopwordsiso.stopwords(language))
    tokenised = tokenise(normalise(pa.array(words, pa.string()))).to_pylist()
    excluded = {
        token for each in tokenise(normalise(pa.array(sorted(exceptions), pa.string()))).to_pylist() for token in each
    }
    single = {each[0] for each in tokenised if len(each) == 1} - excluded
    return pa.array(sorted(single), pa.string())


# -- Arrow helpers ---------------------------------------------------------------------------------


def _string_buffers(text: pa.Array) -> tuple[Any, Any]:
    """The offsets (rebased to 0) and UTF-8 bytes of a string array, without copying."""
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    if data_buffer is None:
        return offsets - offsets[0], np.zeros(0, dtype=np.uint8)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def _rows_holding(text: pa.Array, byte_values: Iterable[int]) -> pa.Array:
    """Rows whose UTF-8 bytes contain any of `byte_values` (ASCII), by one scan of the batch's bytes."""
    text = pc.fill_null(text, "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    offsets, data = _string_buffers(text)
    found = np.zeros(len(data), dtype=np.bool_)
    for value in byte_values:
        found |= data == value
    rows = np.zeros(len(text), dtype=np.bool_)
    rows[np.searchsorted(offsets, np.flatnonzero(found), side="right") - 1] = True
    return pa.array(rows)


def _on_rows(text: pa.Array, rows: pa.Array, step: Any) -> pa.Array:
    """`step` applied to the rows where `rows` is true; the other rows unchanged."""
    selected = pc.indices_nonzero(rows)
    if not len(selected):
        return text
    return pc.replace_with_mask(text, rows, step(text.take(selected)))


def _keep_tokens(tokens: pa.Array, keep: pa.Array) -> pa.Array:
    """`tokens` with only the values where `keep` (over the flattened values) is true."""
    keep_numpy = keep.to_numpy(zero_copy_only=False)
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    kept_before = np.zeros(len(keep_numpy) + 1, dtype=np.int64)
    np.cumsum(keep_numpy, out=kept_before[1:])
    row_ends = np.cumsum(counts)
    row_offsets = np.concatenate(([0], kept_before[row_ends])).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(row_offsets), pc.list_flatten(tokens).filter(keep))


def _joined_length(tokens: pa.Array) -> pa.Array:
    """Characters of each row's tokens joined by single spaces."""
    characters = pc.utf8_length(pc.list_flatten(tokens)).to_numpy(zero_copy_only=False)
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    before = np.zeros(len(characters) + 1, dtype=np.int64)
    np.cumsum(characters, out=before[1:])
    ends = np.cumsum(counts)
    starts = ends - counts
    return pa.array((before[ends] - before[starts] + np.maximum(counts - 1, 0)).astype(np.int32))
