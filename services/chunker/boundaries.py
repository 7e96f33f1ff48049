"""Where records end in delimited text and JSON lines, found in a stream of byte blocks at C speed.

Pure functions over bytes: no I/O, no AWS. The splitting service feeds blocks read from S3 (or
decompressed from gzip) and receives back which bytes go to which part; `text` first turns the
content into the UTF-8, LF-ended text parts are made of.

A record ends at a newline. With quoting (RFC 4180 CSV/TSV), a newline ends a record only when the
number of quote characters since the record's start is even: a quoted field may hold newlines, and
a doubled quote inside it adds two, keeping the parity. While every record boundary sits at even
parity, the parity since the last boundary is the same test, so it is carried across blocks as one
bit. Without quoting (JSON lines, whose strings cannot hold a raw newline, and TSV whose fields hold
bare quotes as data) every newline ends a record.

An escape character (a backslash) makes the quote after it data: parity is computed on a copy of
the text of the same length in which every escaped backslash and escaped quote is blanked, so every
offset found in the copy holds in the text. A block never ends inside a run of backslashes of odd
length (the last one waits for the next block), so no escape is cut from what it escapes.

A stray quote (one that is data, in a file that quotes) would make every newline after it look
quoted, and the rest of the file one record. So a record may span lines only up to a resync limit:
a record with no record end within that many bytes of its start is taken to hold a stray quote, and
ends at its first newline instead; parity starts again, even, after it. The broken line is one
record, which the validator drops as malformed. A single line is never cut; one longer than
`max_record_bytes` is refused.

Every scan is a `bytes.find` / `rfind` / `count` / `split` / `translate` / `replace`: the Python-level
loops run once per candidate cut or per block, never per byte or per row. Only inside a long quoted
stretch (after a stray quote, or in a record longer than half the resync limit) do they step from
line to line, over at most a block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from .text import plain_utf8

NEWLINE = b"\n"
QUOTE = b'"'
# Blank lines (empty, or a lone CR) before a header record are not part of the header.
_BLANK_LINES = re.compile(rb"(?:\r?\n)*")


@dataclass(frozen=True)
class RecordRules:
    """How one file's content is read as records."""

    quoting: bool
    """Quote characters enclose fields that may contain newlines."""
    header_rows: int
    """Records forming the header (0, 1 or 2), repeated at the top of every part and not counted as rows."""
    quote: bytes = QUOTE
    """The quote character, one byte (meaningful only with `quoting`)."""
    escape: bytes | None = None
    """A byte that makes the quote (or the escape) after it data, or None (meaningful only with `quoting`)."""
    encoding: str = "utf-8"
    """The content's encoding; anything but UTF-8 is transcoded to UTF-8."""
    cr_line_ends: bool = False
    """Lines end with CR alone (no LF anywhere): each CR becomes LF."""
    preamble_lines: int = 0
    """Lines before the table (a banner), copied into no part."""


@dataclass(frozen=True)
class PartOpened:
    """A new part starts; the bytes that follow belong to it until the next PartOpened."""

    index: int
    first_row_number: int
    """Data rows before this part in the whole file (header excluded)."""


@dataclass(frozen=True)
class PartBytes:
    """Whole records (or the header) appended to the current part."""

    data: bytes
    rows: int


class RecordTooLongError(ValueError):
    """A line longer than the configured limit: not review data, and it would be held whole in memory."""

    def __init__(self, offset: int, limit: int) -> None:
        super().__init__(
            f"no line ends within {limit} bytes of the record starting at byte {offset}: "
            "a line is far longer than any review"
        )
        self.offset = offset
        self.limit = limit


def last_record_end(block: bytes, quoted_at_start: bool, quoting: bool, quote: bytes = QUOTE) -> int:
    """Index just past the last record-ending newline in `block`, or -1 when the block has none.

    `quoted_at_start` is the quote parity carried in from the record boundary before the block.
    """
    newline = block.rfind(NEWLINE)
    if not quoting or newline < 0:
        return newline + 1 if newline >= 0 else -1
    odd_in_block = bool(block.count(quote) & 1) != quoted_at_start
    quotes_after = 0
    end = len(block)
    while newline >= 0:
        quotes_after += block.count(quote, newline + 1, end)
        # Parity before this newline = parity over the whole block, less the quotes after it.
        if odd_in_block == bool(quotes_after & 1):
            return newline + 1
        end = newline
        newline = block.rfind(NEWLINE, 0, newline)
    return -1


def record_end_at_or_after(records: bytes, start: int, at_least: int, quoting: bool, quote: bytes = QUOTE) -> int:
    """The first record end `e` with `e >= at_least` in `records[start:]`, which starts on a record boundary.

    Returns `len(records)` when no boundary is found (the last record runs to the end of `records`).
    """
    if not quoting:
        newline = records.find(NEWLINE, max(at_least - 1, start))
        return newline + 1 if newline >= 0 else len(records)
    end = _record_end_within(records, start, at_least, len(records), quote)
    return end if end >= 0 else len(records)


def _record_end_within(records: bytes, start: int, at_least: int, stop: int, quote: bytes) -> int:
    """The first record end `e` with `at_least <= e <= stop` in `records[start:]` (quoting), or -1."""
    newline = records.find(NEWLINE, max(at_least - 1, start), stop)
    if newline < 0:
        return -1
    quotes = records.count(quote, start, newline)
    while quotes & 1:
        following = records.find(NEWLINE, newline + 1, stop)
        if following < 0:
            return -1
        quotes += records.count(quote, newline + 1, following)
        newline = following
    return newline + 1


def first_overlong_record(records: bytes, limit: int, quote: bytes = QUOTE) -> int:
    """Where the first record of `records` that spans lines over more than `limit` bytes starts, or -1.

    `records` are whole quoted records from a boundary. Boundaries are visited at least `limit / 2`
    apart, and at most `limit`: the records between two such are short enough. A record longer than
    `limit` covers a stretch of `limit / 2` without a record end, which is where it is looked for.
    """
    half = max(limit // 2, 1)
    boundary = 0
    while len(records) - boundary > limit:
        end = _record_end_within(records, boundary, boundary + half, boundary + limit, quote)
        if end < 0:
            # Nothing ends in the second half: the record over the middle starts at the first half's last end.
            start = boundary + max(last_record_end(records[boundary : boundary + half], False, True, quote), 0)
            end = _record_end_within(records, start, start + 1, start + limit, quote)
            if end < 0:
                first_newline = records.index(NEWLINE, start)
                if records.count(quote, start, first_newline) & 1:
                    return start
                # One line longer than the limit: it ends where a resync would end it.
                end = first_newline + 1
        boundary = end
    return -1


@cache
def _all_but(quote: bytes) -> bytes:
    """translate() with this deletes every byte but the quote and `\\n`: what is left says where quoted newlines are."""
    return bytes(value for value in range(256) if value not in (quote[0], NEWLINE[0]))


def count_records(records: bytes, quoting: bool, quote: bytes = QUOTE) -> int:
    """Data records in `records`: whole records, starting on a boundary and ending with a record end.

    Blank lines (empty, or a lone CR) between records are not records: CSV readers skip them.
    """
    quoted_fields = quoting and quote in records
    if quoted_fields:
        # Only quotes and newlines matter for where records end; the rest is dropped in one C pass.
        skeleton = records.translate(None, _all_but(quote))
        ends = b"".join(skeleton.split(quote)[0::2]).count(NEWLINE)
    else:
        ends = records.count(NEWLINE)
    if not _may_hold_blank_lines(records):
        return ends
    if quoted_fields:
        # Quoted contents are removed, their place kept by a quote: a blank line inside a field (a
        # paragraph break in a review) is not a blank record. Usually none is left.
        records = quote.join(records.split(quote)[0::2])
        if not _may_hold_blank_lines(records):
            return ends
    return ends - _blank_lines(records)


def _blank_lines(text: bytes) -> int:
    """Line ends that end an empty line: the one at the start, and every one right after another.

    Halving every run of line ends until none is left counts them in C, in log2(longest run) passes.
    """
    text = text.replace(b"\r\n", NEWLINE)
    blank = 1 if text.startswith(NEWLINE) else 0
    while b"\n\n" in text:
        shorter = text.replace(b"\n\n", NEWLINE)
        blank += len(text) - len(shorter)
        text = shorter
    return blank


def _may_hold_blank_lines(records: bytes) -> bool:
    return records.startswith((b"\n", b"\r\n")) or b"\n\n" in records or b"\n\r\n" in records


def is_blank(record: bytes) -> bool:
    return record.rstrip(b"\r\n") == b""


def masked_escapes(text: bytes, quote: bytes, escape: bytes) -> bytes:
    """`text` of the same length with every escaped escape and escaped quote blanked, for quote parity."""
    return text.replace(escape + escape, b"  ").replace(escape + quote, b"  ")


def _whole_escapes(blocks: Iterable[bytes], escape: bytes) -> Iterator[bytes]:
    """The stream in blocks none of which ends in an odd run of escapes: its last one escapes what follows."""
    held = b""
    for block in blocks:
        if held:
            block = held + block
        run = len(block) - len(block.rstrip(escape))
        held, block = (block[-1:], block[:-1]) if run & 1 else (b"", block)
        if block:
            yield block
    if held:
        yield held


class _Text:
    """Text from a record boundary, with the copy its quote parity is computed on (itself, unless masking)."""

    __slots__ = ("data", "scan")

    def __init__(self, data: bytes, scan: bytes) -> None:
        self.data = data
        self.scan = scan

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, span: slice) -> _Text:
        data = self.data[span]
        return _Text(data, data if self.scan is self.data else self.scan[span])

    @staticmethod
    def joined(pieces: list[_Text]) -> _Text:
        data = b"".join(piece.data for piece in pieces)
        if all(piece.scan is piece.data for piece in pieces):
            return _Text(data, data)
        return _Text(data, b"".join(piece.scan for piece in pieces))


class _PartPlacer:
    """Deals whole records into parts of about `part_size` bytes, header first in each."""

    def __init__(self, rules: RecordRules, part_size: int) -> None:
        self._quoting = rules.quoting
        self._quote = rules.quote
        self._part_size = part_size
        self._header_missing = rules.header_rows
        self._header_records: list[bytes] = []
        self._header = b""
        self._index = -1
        self._open = False
        self._part_bytes = 0
        self._rows_before = 0

    def place(self, records: _Text, *, single: bool = False) -> Iterator[PartOpened | PartBytes]:
        """Place `records`, whole records starting on a boundary; `single` when they are one record."""
        position = self._take_header(records, single) if self._header_missing else 0
        header = self._header
        while position < len(records):
            used = self._part_bytes if self._open else len(header)
            room = max(self._part_size - used, 1)
            if single or len(records) - position <= room:
                cut = len(records)
            else:
                cut = record_end_at_or_after(records.scan, position, position + room, self._quoting, self._quote)
            piece = records[position:cut]
            position = cut
            if single:
                rows = 0 if is_blank(piece.data) else 1
            else:
                rows = count_records(piece.scan, self._quoting, self._quote)
            if not self._open:
                if rows == 0:
                    # Only blank lines: no part is opened for them, so no part is ever empty.
                    continue
                self._index += 1
                self._open = True
                self._part_bytes = len(header)
                yield PartOpened(index=self._index, first_row_number=self._rows_before)
                if header:
                    yield PartBytes(header, 0)
            yield PartBytes(piece.data, rows)
            self._part_bytes += len(piece)
            self._rows_before += rows
            if self._part_bytes >= self._part_size:
                self._open = False

    def _take_header(self, records: _Text, single: bool) -> int:
        """Take the header's records from the start of `records` (less blank lines); where the rest starts."""
        position = 0
        while self._header_missing and position < len(records):
            match = _BLANK_LINES.match(records.data, position)
            position = match.end() if match else position
            if position == len(records):
                break
            if single:
                end = len(records)
            else:
                end = record_end_at_or_after(records.scan, position, position + 1, self._quoting, self._quote)
            if not is_blank(records.data[position:end]):
                self._header_records.append(records.data[position:end])
                self._header_missing -= 1
            position = end
        if not self._header_missing:
            self._header = b"".join(self._header_records)
        return position


class _RecordSplitter:
    """Cuts the text into runs of whole records for the placer, carrying an unfinished record between blocks."""

    def __init__(self, rules: RecordRules, placer: _PartPlacer, max_record_bytes: int, resync_bytes: int) -> None:
        self._quoting = rules.quoting
        self._quote = rules.quote
        self._placer = placer
        self._max_record_bytes = max_record_bytes
        self._resync_bytes = resync_bytes
        self._pending: list[_Text] = []
        """Text already read, to be scanned again from a boundary after a resync."""
        self._carry: list[_Text] = []
        self._carry_bytes = 0
        self._carry_has_newline = False
        self._quoted = False
        self._offset = 0
        """Where the carried record starts in the text."""

    def split(self, texts: Iterator[_Text]) -> Iterator[PartOpened | PartBytes]:
        while True:
            text = self._pending.pop() if self._pending else next(texts, None)
            if text is None:
                break
            if not len(text):
                continue
            end = last_record_end(text.scan, self._quoted, self._quoting, self._quote)
            if end < 0:
                self._add_to_carry(text)
            else:
                records = _Text.joined([*self._carry, text[:end]])
                self._clear_carry()
                yield from self._place_records(records, text[end:])
            yield from self._resync_carry_if_overlong()
        if self._carry:
            yield from self._placer.place(_Text.joined(self._carry), single=True)

    def _place_records(self, records: _Text, tail: _Text) -> Iterator[PartOpened | PartBytes]:
        """Place whole records, then carry the unfinished one after them; or resync at a record too long."""
        overlong = first_overlong_record(records.scan, self._resync_bytes, self._quote) if self._quoting else -1
        if overlong < 0:
            yield from self._placer.place(records)
            self._offset += len(records)
            self._add_to_carry(tail)
            return
        yield from self._placer.place(records[:overlong])
        self._offset += overlong
        yield from self._resync(_Text.joined([records[overlong:], tail]))

    def _resync_carry_if_overlong(self) -> Iterator[PartOpened | PartBytes]:
        """The carried record has no record end in it: past the resync limit, it holds a stray quote."""
        if self._quoting and self._carry_has_newline and self._carry_bytes > self._resync_bytes:
            unfinished = _Text.joined(self._carry)
            self._clear_carry()
            yield from self._resync(unfinished)
        elif self._carry_bytes > self._max_record_bytes:
            raise RecordTooLongError(self._offset, self._max_record_bytes)

    def _resync(self, text: _Text) -> Iterator[PartOpened | PartBytes]:
        """`text` starts with a record holding a stray quote: its first line is the record, the rest is read again."""
        line_end = text.data.index(NEWLINE) + 1
        if line_end > self._max_record_bytes:
            raise RecordTooLongError(self._offset, self._max_record_bytes)
        yield from self._placer.place(text[:line_end], single=True)
        self._offset += line_end
        self._pending.append(text[line_end:])

    def _add_to_carry(self, text: _Text) -> None:
        if not len(text):
            return
        self._carry.append(text)
        self._carry_bytes += len(text)
        self._carry_has_newline = self._carry_has_newline or NEWLINE in text.data
        self._quoted ^= self._quoting and bool(text.scan.count(self._quote) & 1)

    def _clear_carry(self) -> None:
        self._carry = []
        self._carry_bytes = 0
        self._carry_has_newline = False
        self._quoted = False


def _scanned(texts: Iterable[bytes], rules: RecordRules) -> Iterator[_Text]:
    escape = rules.escape if rules.quoting else None
    if escape is None:
        return (_Text(text, text) for text in texts)
    return (_Text(text, masked_escapes(text, rules.quote, escape)) for text in _whole_escapes(texts, escape))


def split_records(
    blocks: Iterable[bytes],
    rules: RecordRules,
    *,
    part_size: int,
    max_record_bytes: int,
    max_quoted_record_bytes: int | None = None,
) -> Iterator[PartOpened | PartBytes]:
    """Split the content, given in blocks, into parts of about `part_size` bytes, each cut at a record boundary.

    A part closes at the first record end at or past `part_size` bytes (header included), so a part is
    never cut inside a record, and a record longer than a part makes its part longer. A record spans
    lines over at most `max_quoted_record_bytes` (default `max_record_bytes`), past which it is taken
    to hold a stray quote and ends at its first newline. Memory is one block plus the unfinished
    record carried into the next block, at most `max_record_bytes` (a line longer raises
    `RecordTooLongError`). Offsets count the text as parts hold it (UTF-8, after any preamble).
    """
    resync_bytes = min(max_quoted_record_bytes or max_record_bytes, max_record_bytes)
    texts = plain_utf8(
        blocks, encoding=rules.encoding, cr_line_ends=rules.cr_line_ends, preamble_lines=rules.preamble_lines
    )
    splitter = _RecordSplitter(rules, _PartPlacer(rules, part_size), max_record_bytes, resync_bytes)
    return splitter.split(_scanned(texts, rules))


@dataclass(frozen=True)
class RowGroupSpan:
    """A run of consecutive Parquet row groups written as one part."""

    row_groups: tuple[int, ...]
    rows: int


def group_row_groups(sizes: Iterable[tuple[int, int]], part_size: int) -> list[RowGroupSpan]:
    """Consecutive row groups, given as (bytes, rows), gathered into parts of at most `part_size` bytes.

    A row group is never divided: one larger than `part_size` is a part by itself. Empty row groups
    are left out, so no part is empty.
    """
    spans: list[RowGroupSpan] = []
    current: list[int] = []
    current_bytes = current_rows = 0
    for index, (size, rows) in enumerate(sizes):
        if rows == 0:
            continue
        if current and current_bytes + size > part_size:
            spans.append(RowGroupSpan(tuple(current), current_rows))
            current, current_bytes, current_rows = [], 0, 0
        current.append(index)
        current_bytes += size
        current_rows += rows
    if current:
        spans.append(RowGroupSpan(tuple(current), current_rows))
    return spans
