"""A file's content as the text its parts are made of: UTF-8 without a byte order mark, LF or CRLF line
ends, the preamble left out. Stream to stream, block by block, so memory stays a few blocks.

Pure functions over bytes: no I/O, no AWS. Each step is one C-level pass per block (a codec,
`bytes.replace`, `bytes.count`), and the order matters: the encoding first (a UTF-16 CR is two
bytes), then the byte order mark (a UTF-16 one is U+FEFF once decoded, so it is the UTF-8 one by
then), then CR line ends, then the preamble, whose lines end at LF.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator

UTF8_BOM = b"\xef\xbb\xbf"
NEWLINE = b"\n"
# The bytes that end records and enclose fields. An encoding that writes them as UTF-8 does (UTF-8, and
# the legacy encodings the validator falls back to, e.g. cp1252) is copied as it is: records are found
# in it as in UTF-8, and the validator decodes each part when it comes back, with the same fallback
# applied per undecodable sequence — so a UTF-8 file with a few cp1252 bytes pasted in keeps its UTF-8.
_STRUCTURE = "\n\r\"',;|\t \\"


class UndecodableError(ValueError):
    """Bytes of the content are not valid in the encoding the validator detected."""

    def __init__(self, encoding: str, offset: int, bad_bytes: bytes, why: str) -> None:
        super().__init__(f"byte {offset} (0x{bad_bytes.hex()}) is not valid {encoding}: {why}")
        self.encoding = encoding
        self.offset = offset


def codec_name(encoding: str) -> str:
    """The codec's own name for `encoding` ("UTF8" → "utf-8"); LookupError when Python has no such codec."""
    return codecs.lookup(encoding).name


def copied_as_is(encoding: str) -> bool:
    """Whether content in `encoding` is split as it is (its record and field marks are UTF-8's bytes)."""
    try:
        return _STRUCTURE.encode(encoding) == _STRUCTURE.encode("utf-8")
    except (UnicodeError, LookupError):
        return False


def as_utf8(blocks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """The content transcoded from `encoding` to UTF-8 on the fly; UTF-8 and ASCII-compatible content passes through.

    An incremental decoder holds the few bytes of a character cut by a block boundary until the next
    block. `UndecodableError` names the offset of the first bad byte in the content as given.
    """
    name = codec_name(encoding)
    if copied_as_is(name):
        yield from blocks
        return
    decoder = codecs.getincrementaldecoder(name)("strict")
    consumed = 0
    for block in blocks:
        yield _decoded(decoder, name, block, consumed, final=False).encode("utf-8")
        consumed += len(block)
    if tail := _decoded(decoder, name, b"", consumed, final=True):
        yield tail.encode("utf-8")


def _decoded(decoder: codecs.IncrementalDecoder, encoding: str, block: bytes, consumed: int, *, final: bool) -> str:
    # The decoder reports positions in what it held back from the last block followed by this one.
    held = len(decoder.getstate()[0])
    try:
        return decoder.decode(block, final)
    except UnicodeDecodeError as error:
        bad_bytes = error.object[error.start : error.end]
        raise UndecodableError(encoding, consumed - held + error.start, bad_bytes, error.reason) from error


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


def cr_as_lf(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Old Mac text (CR alone ends a line, no LF anywhere) with LF line ends, so records can be found."""
    return (block.replace(b"\r", NEWLINE) for block in blocks)


def without_first_lines(blocks: Iterable[bytes], lines: int) -> Iterator[bytes]:
    """The stream less its first `lines` lines (each ending at LF): a preamble above the table."""
    iterator = iter(blocks)
    remaining = lines
    for block in iterator:
        newlines = block.count(NEWLINE)
        if newlines < remaining:
            remaining -= newlines
            continue
        end = -1
        for _ in range(remaining):
            end = block.index(NEWLINE, end + 1)
        yield block[end + 1 :]
        break
    yield from iterator


def plain_utf8(blocks: Iterable[bytes], *, encoding: str, cr_line_ends: bool, preamble_lines: int) -> Iterator[bytes]:
    """The content as parts hold it: UTF-8 without BOM, LF or CRLF line ends, the preamble left out."""
    text = without_bom(as_utf8(blocks, encoding))
    if cr_line_ends:
        text = cr_as_lf(text)
    if preamble_lines:
        text = without_first_lines(text, preamble_lines)
    return text
