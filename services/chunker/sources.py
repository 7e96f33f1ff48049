"""The bytes of a source file as a stream of bounded blocks, by ranged reads.

One ranged GET per block, with the next block already being fetched while the current one is
split, so network and splitting overlap; memory is `1 + read_ahead` blocks. Gzip content is
decompressed from these blocks by shared/compression.py's `gunzip`, under its bomb guard.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor


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
