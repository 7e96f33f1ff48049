"""Reading gzip in bounded steps, with a cap on what it may decompress to: the one gzip reader.

The validator inflates a head sample and, once the size check has passed, a whole small file; the
chunker streams an oversize file through it block by block. Both need the same guarantees:

- each step produces at most `step_bytes`, and the running total is checked against `limit_bytes`
  after every step, so a gzip bomb is refused at most one step past the limit instead of filling
  memory;
- concatenated gzip members (as `cat a.gz b.gz` or bgzip write them) are one stream, and NUL bytes
  after the last member (padding some writers leave) end it; anything else there is not gzip;
- a stream that stops inside a member is truncated, unless the caller said it reads only a head.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from itertools import chain

GZIP_MAGIC = b"\x1f\x8b"
# zlib's window bits for "gzip header and trailer expected".
_GZIP_WBITS = 16 + zlib.MAX_WBITS

Bytes = bytes | memoryview


class BrokenGzipError(ValueError):
    """The gzip stream is not valid gzip, or ends before its end-of-stream marker."""

    def __init__(self, message: str, compressed_offset: int) -> None:
        super().__init__(message)
        self.compressed_offset = compressed_offset


class DecompressedTooLargeError(ValueError):
    """The gzip stream decompresses to more than the configured limit."""

    def __init__(self, limit: int, compressed_offset: int) -> None:
        super().__init__(
            f"decompresses to more than the limit of {limit} bytes (reached after {compressed_offset} compressed bytes)"
        )
        self.limit = limit
        self.compressed_offset = compressed_offset


def gunzip(
    blocks: Iterable[Bytes], *, step_bytes: int, limit_bytes: int | None = None, whole: bool = True
) -> Iterator[bytes]:
    """Decompress a gzip stream given in blocks, in outputs of at most `step_bytes`.

    `whole` says the blocks are the entire stream, so one that stops inside a member is truncated;
    otherwise (a head read) the output simply ends where the input does. `limit_bytes`: the most
    the stream may decompress to (None: no limit, for a caller that bounds what it reads itself).
    """
    source = iter(blocks)
    pending: Bytes = b""
    offset = 0  # the compressed offset of pending's first byte
    exhausted = False
    produced = 0
    inflater: zlib._Decompress | None = None
    while True:
        if inflater is None:
            # Between members: the next one starts here, or the stream ends (with NUL padding at most).
            while len(pending) < len(GZIP_MAGIC) and not exhausted:
                block = next(source, None)
                if block is None:
                    exhausted = True
                else:
                    pending = bytes(pending) + bytes(block) if pending else block
            if not pending:
                return
            if pending[: len(GZIP_MAGIC)] != GZIP_MAGIC:
                if exhausted and not whole and GZIP_MAGIC.startswith(bytes(pending)):
                    return  # a head read that ends inside the next member's magic bytes
                _refuse_unless_padding(pending, source, offset)
                return
            inflater = zlib.decompressobj(_GZIP_WBITS)
        if not pending and not exhausted:
            block = next(source, None)
            if block is None:
                exhausted = True
            else:
                pending = block
        fed = len(pending)
        try:
            output = inflater.decompress(pending, step_bytes)
        except zlib.error as error:
            raise BrokenGzipError(
                f"the gzip stream is corrupt near compressed offset {offset}: {error}", offset
            ) from error
        pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        offset += fed - len(pending)
        if output:
            produced += len(output)
            if limit_bytes is not None and produced > limit_bytes:
                raise DecompressedTooLargeError(limit_bytes, offset)
            yield output
        if inflater.eof:
            inflater = None
        elif exhausted and not pending and not output:
            # The input is used up and zlib holds no more output: the member never ended.
            if whole:
                raise BrokenGzipError(
                    f"the gzip stream is truncated: it ends after {offset} compressed bytes, before its end marker",
                    offset,
                )
            return


def _refuse_unless_padding(rest: Bytes, source: Iterator[Bytes], offset: int) -> None:
    """Accept NUL bytes to the end of the stream after the last member; anything else is not gzip."""
    if any(any(block) for block in chain([rest], source)):
        raise BrokenGzipError(
            f"the bytes after the end of the gzip stream, at compressed offset {offset}, are not another gzip member",
            offset,
        )
