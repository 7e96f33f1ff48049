"""The one gzip reader (shared/compression.py): bounded steps, members, padding, truncation and the bomb guard.

The chunker streams oversize files through it; the validator inflates heads and small files with it.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest

from shared.compression import BrokenGzipError, DecompressedTooLargeError, gunzip
from tests.data_paths import SHARED_DATA

MARC_EN = SHARED_DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"


def blocks_of(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def test_gunzip_streams_in_bounded_steps_across_members() -> None:
    # Given the real MARC CSV compressed as two gzip members (as `cat a.gz b.gz` makes)
    data = MARC_EN.read_bytes()
    compressed = gzip.compress(data[:1_000_000]) + gzip.compress(data[1_000_000:])

    outputs = list(gunzip(blocks_of(compressed, 50_000), step_bytes=64 * 1024, limit_bytes=10 << 20))

    assert b"".join(outputs) == data
    assert max(len(output) for output in outputs) <= 64 * 1024


def test_a_truncated_gzip_is_reported_as_truncated() -> None:
    compressed = gzip.compress(MARC_EN.read_bytes())[:-1000]

    with pytest.raises(BrokenGzipError, match="truncated"):
        list(gunzip(blocks_of(compressed, 65_536), step_bytes=65_536, limit_bytes=10 << 20))


def test_a_gzip_bomb_is_stopped_one_step_past_the_limit() -> None:
    # Given 50 MB of zeros in a gzip of about 50 KB
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(50)) + compressor.flush()
    assert len(bomb) < 100_000
    produced = 0

    with pytest.raises(DecompressedTooLargeError) as raised:
        for output in gunzip(blocks_of(bomb, 65_536), step_bytes=1 << 20, limit_bytes=10 << 20):
            produced += len(output)

    assert raised.value.limit == 10 << 20
    assert produced <= 10 << 20


def test_bytes_that_are_not_gzip_are_broken_gzip() -> None:
    with pytest.raises(BrokenGzipError):
        list(gunzip([MARC_EN.read_bytes()[:10_000]], step_bytes=65_536, limit_bytes=10 << 20))


def test_nul_padding_after_the_last_member_ends_the_stream() -> None:
    # Given the real MARC CSV as one gzip member followed by NUL padding, as some writers leave it
    data = MARC_EN.read_bytes()[:200_000]
    padded = gzip.compress(data) + bytes(4096)

    assert b"".join(gunzip(blocks_of(padded, 1000), step_bytes=65_536, limit_bytes=10 << 20)) == data


def test_junk_after_the_last_member_is_broken_gzip_at_its_offset() -> None:
    compressed = gzip.compress(MARC_EN.read_bytes()[:200_000])

    with pytest.raises(BrokenGzipError, match="not another gzip member") as raised:
        list(gunzip([compressed + b"trailing junk"], step_bytes=65_536, limit_bytes=10 << 20))

    assert raised.value.compressed_offset == len(compressed)


def test_a_head_read_ends_where_its_input_does() -> None:
    # Given only the first 20 KB of a real gzip file (a head sample), read as a head
    data = MARC_EN.read_bytes()
    head = gzip.compress(data)[:20_000]

    content = b"".join(gunzip([head], step_bytes=65_536, whole=False))

    assert content and data.startswith(content)
