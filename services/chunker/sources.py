"""The bytes of a source file as a stream of bounded blocks: ranged reads, then gzip decompression.

Reading: one ranged GET per block, with the next block already being fetched while the current one
is split, so network and splitting overlap; memory is `1 + read_ahead` blocks.

Decompression: each step produces at most `step_bytes`, and the running total is checked against a
limit after every step, so a gzip bomb is refused after at most one step past the limit instead of
filling memory. Concatenated gzip members (as `cat a.gz b.gz` or bgzip write them) are one stream.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

GZIP_MAGIC = b"\x1f\x8b"
# zlib's window bits for "gzip header and trailer expected".
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class BrokenGzipError(ValueError):
    """The gzip stream is not valid gzip, or ends before its end-of-stream marker."""


class DecompressedTooLargeError(ValueError):
    """The gzip stream decompresses to more than the configured limit."""

    def __init__(self, limit: int, compressed_offset: int) -> None:
        super().__init__(
            f"decompresses to more than the limit of {limit} bytes (reached after {compressed_offset} compressed bytes)"
        )
        self.limit = limit
        self.compressed_offset = compressed_offset


class ShortReadError(RuntimeError):
    """A ranged read returned fewer bytes than asked for: the object changed or the read was cut."""


def ranged_blocks(
    read_range: Callable[[int, int], bytes], size: int, block_bytes: int, *, read_ahead: int = 1
) -> Iterator[bytes]:
    """The object's bytes in blocks of `block_bytes`; `read_range(first, last)` is inclusive, as in HTTP."""
    ranges = iter([(start, min(start + block_bytes, size) - 1) for start in range(0, size, block_bytes)])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ranged-read") as reader:
        in_flight: deque[tuple[int, Future[bytes]]] = deque()

        def fetch_next() -> None:
            span = next(ranges, None)
            if span is not None:
                in_flight.append((span[1] - span[0] + 1, reader.submit(read_range, *span)))

        for _ in range(1 + read_ahead):
            fetch_next()
        while in_flight:
            expected, pending = in_flight.popleft()
            block = pending.result()
            if len(block) != expected:
                raise ShortReadError(f"asked for {expected} bytes, got {len(block)}")
            fetch_next()
            yield block


def gunzip(blocks: Iterable[bytes], *, step_bytes: int, limit_bytes: int) -> Iterator[bytes]:
    """Decompress a gzip stream given in blocks, in outputs of at most `step_bytes`."""
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    member_started = False
    produced = 0
    consumed = 0

    def take(output: bytes) -> bytes:
        nonlocal produced
        produced += len(output)
        if produced > limit_bytes:
            raise DecompressedTooLargeError(limit_bytes, consumed)
        return output

    for block in blocks:
        consumed += len(block)
        pending = block
        while pending:
            member_started = True
            try:
                output = decompressor.decompress(pending, step_bytes)
            except zlib.error as error:
                raise BrokenGzipError(f"not a valid gzip stream near compressed byte {consumed}: {error}") from error
            if output:
                yield take(output)
            if decompressor.eof:
                # What follows the end of a member is the next member (or junk, which it will reject).
                pending = decompressor.unused_data
                decompressor = zlib.decompressobj(_GZIP_WBITS)
                member_started = False
            else:
                pending = decompressor.unconsumed_tail
        # With the input used up, zlib may still hold output that did not fit in the last step.
        while member_started and not decompressor.eof:
            output = decompressor.decompress(b"", step_bytes)
            if not output:
                break
            yield take(output)
    if member_started and not decompressor.eof:
        raise BrokenGzipError(
            f"the gzip stream ends after {consumed} compressed bytes without its end marker: the file is truncated"
        )
