"""Where records end in delimited text and JSON lines, found in a stream of byte blocks at C speed.

Pure functions over bytes: no I/O, no AWS. The splitting service feeds blocks read from S3 (or
decompressed from gzip) and receives back which bytes go to which part.

A record ends at a newline. With quoting (RFC 4180 CSV/TSV), a newline ends a record only when the
number of `"` since the record's start is even: a quoted field may hold newlines, and a doubled `""`
inside it adds two quotes, keeping the parity. Because every record boundary sits at even parity,
the parity since the start of the stream is the same test, so it is carried across blocks as one
bit. Without quoting (JSON lines, whose strings cannot hold a raw newline, and TSV whose fields
hold bare quotes as data) every newline ends a record.

Every scan is a `bytes.find` / `rfind` / `count` / `split` / `translate`: the Python-level loops run
once per candidate cut or per block, never per byte or per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

UTF8_BOM = b"\xef\xbb\xbf"
NEWLINE = b"\n"
QUOTE = b'"'
# translate() with this deletes every byte but `"` and `\n`: what is left says where quoted newlines are.
_ALL_BUT_QUOTE_AND_NEWLINE = bytes(value for value in range(256) if value not in (ord(QUOTE), ord(NEWLINE)))


@dataclass(frozen=True)
class RecordRules:
    """How records are delimited in one file."""

    quoting: bool
    """Double quotes enclose fields that may contain newlines."""
    has_header: bool
    """The first record is a header, repeated at the top of every part and not counted as a row."""


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
    """No record boundary within the configured limit: a runaway quoted field or a giant line."""

    def __init__(self, offset: int, limit: int, quoting: bool) -> None:
        why = (
            "a quote opened there is probably never closed, or a record is far longer than any review"
            if quoting
            else "a line is far longer than any review"
        )
        super().__init__(f"no record ends within {limit} bytes of the record starting at byte {offset}: {why}")
        self.offset = offset
        self.limit = limit


def last_record_end(block: bytes, quoted_at_start: bool, quoting: bool) -> int:
    """Index just past the last record-ending newline in `block`, or -1 when the block has none.

    `quoted_at_start` is the quote parity carried in from the stream before the block.
    """
    newline = block.rfind(NEWLINE)
    if not quoting or newline < 0:
        return newline + 1 if newline >= 0 else -1
    odd_in_block = bool(block.count(QUOTE) & 1) != quoted_at_start
    quotes_after = 0
    end = len(block)
    while newline >= 0:
        quotes_after += block.count(QUOTE, newline + 1, end)
        # Parity before this newline = parity over the whole block, less the quotes after it.
        if odd_in_block == bool(quotes_after & 1):
            return newline + 1
        end = newline
        newline = block.rfind(NEWLINE, 0, newline)
    return -1


def record_end_at_or_after(records: bytes, start: int, at_least: int, quoting: bool) -> int:
    """The first record end `e` with `e >= at_least` in `records[start:]`, which starts on a record boundary.

    Returns `len(records)` when no boundary is found (the last record runs to the end of `records`).
    """
    newline = records.find(NEWLINE, max(at_least - 1, start))
    if newline < 0:
        return len(records)
    if not quoting:
        return newline + 1
    quotes = records.count(QUOTE, start, newline)
    while quotes & 1:
        following = records.find(NEWLINE, newline + 1)
        if following < 0:
            return len(records)
        quotes += records.count(QUOTE, newline + 1, following)
        newline = following
    return newline + 1


def count_records(records: bytes, quoting: bool) -> int:
    """Data records in `records`: whole records, starting on a boundary and ending with a record end.

    Blank lines (empty, or a lone CR) between records are not records: CSV readers skip them.
    """
    quoted_fields = quoting and QUOTE in records
    if quoted_fields:
        # Only quotes and newlines matter for where records end; the rest is dropped in one C pass.
        skeleton = records.translate(None, _ALL_BUT_QUOTE_AND_NEWLINE)
        ends = b"".join(skeleton.split(QUOTE)[0::2]).count(NEWLINE)
    else:
        ends = records.count(NEWLINE)
    if not _may_hold_blank_lines(records):
        return ends
    if quoted_fields:
        # Quoted contents are removed, their place kept by a quote: a blank line inside a field (a
        # paragraph break in a review) is not a blank record. Usually none is left.
        records = QUOTE.join(records.split(QUOTE)[0::2])
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


def without_bom(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream less a leading UTF-8 byte order mark: parts are plain UTF-8, none carries a BOM."""
    head = b""
    iterator = iter(blocks)
    for block in iterator:
        head += block
        if len(head) >= len(UTF8_BOM):
            break
    yield head.removeprefix(UTF8_BOM)
    yield from iterator


class _PartPlacer:
    """Deals whole records into parts of about `part_size` bytes, header first in each."""

    def __init__(self, rules: RecordRules, part_size: int) -> None:
        self._quoting = rules.quoting
        self._part_size = part_size
        self.header: bytes | None = None if rules.has_header else b""
        self._index = -1
        self._open = False
        self._part_bytes = 0
        self._rows_before = 0

    def place(self, records: bytes, *, unterminated: bool = False) -> Iterator[PartOpened | PartBytes]:
        """Place `records`, whole records starting on a boundary; `unterminated` for the file's last record."""
        position = 0
        if self.header is None:
            position = len(records) if unterminated else record_end_at_or_after(records, 0, 1, self._quoting)
            self.header = records[:position]
        header = self.header
        while position < len(records):
            used = self._part_bytes if self._open else len(header)
            room = max(self._part_size - used, 1)
            if unterminated or len(records) - position <= room:
                cut = len(records)
            else:
                cut = record_end_at_or_after(records, position, position + room, self._quoting)
            piece = records[position:cut]
            position = cut
            rows = (0 if is_blank(piece) else 1) if unterminated else count_records(piece, self._quoting)
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
            yield PartBytes(piece, rows)
            self._part_bytes += len(piece)
            self._rows_before += rows
            if self._part_bytes >= self._part_size:
                self._open = False


def split_records(
    blocks: Iterable[bytes], rules: RecordRules, *, part_size: int, max_record_bytes: int
) -> Iterator[PartOpened | PartBytes]:
    """Split a stream of blocks into parts of about `part_size` bytes, each cut at a record boundary.

    A part closes at the first record end at or past `part_size` bytes (header included), so a part is
    never cut inside a record, and a record longer than a part makes its part longer. Memory is one
    block plus the unfinished record carried into the next block, at most `max_record_bytes`, beyond
    which `RecordTooLongError` is raised.
    """
    placer = _PartPlacer(rules, part_size)
    carry: list[bytes] = []
    carry_bytes = 0
    quoted = False
    offset = 0
    for block in without_bom(blocks):
        if not block:
            continue
        end = last_record_end(block, quoted, rules.quoting)
        if end < 0:
            carry.append(block)
            carry_bytes += len(block)
            quoted ^= rules.quoting and bool(block.count(QUOTE) & 1)
            if carry_bytes > max_record_bytes:
                raise RecordTooLongError(offset, max_record_bytes, rules.quoting)
            continue
        records = b"".join([*carry, block[:end]]) if carry else block[:end]
        yield from placer.place(records)
        offset += len(records)
        tail = block[end:]
        carry = [tail] if tail else []
        carry_bytes = len(tail)
        quoted = rules.quoting and bool(tail.count(QUOTE) & 1)
    if carry:
        yield from placer.place(b"".join(carry), unterminated=True)


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
