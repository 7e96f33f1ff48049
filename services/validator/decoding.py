"""Check 2 for text — readability: which encoding the bytes are in, and the content as UTF-8.

Text arrives as UTF-8 (with or without a BOM), as UTF-16 or UTF-32 (with a BOM, or recognised by the
pattern of NUL bytes that ASCII text takes in them), or, when a fallback encoding is configured (e.g.
cp1252), as bytes that are not UTF-8. Everything after this module reads UTF-8 only: the content is
transcoded once, and a file that is neither text in a known encoding is refused with the offset and
line of its first bad byte.

A fallback is applied per undecodable sequence, not to the whole file, because the commonest damage
is a UTF-8 file with a few cp1252 bytes pasted in: decoding all of it as cp1252 would garble every
accented letter that was right.
"""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass

import pyarrow as pa

from .checks import CheckFailedError

UTF8 = "utf-8"
UTF8_SIG = "utf-8-sig"
# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, UTF8_SIG),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Bytes looked at to tell text from binary, and to see UTF-16/32 without a BOM.
PROBE_BYTES = 64 * 1024
# Text has almost no C0 control characters besides TAB, LF and CR; binary data is full of them.
MAX_CONTROL_SHARE = 0.01
_CONTROL_CHARACTERS = "".join(chr(code) for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)))
_STRIP_CONTROLS = str.maketrans("", "", _CONTROL_CHARACTERS)
# ASCII text in UTF-16 has a NUL in (nearly) every other byte; this share of them tells it apart.
_NUL_PATTERN_SHARE = 0.9


@dataclass(frozen=True)
class TextEncoding:
    """How a file's bytes become text."""

    name: str
    """What is reported: utf-8, utf-8-sig, utf-16-le, …, or the fallback encoding's name."""
    codec: str
    """The codec that decodes the content after `bom_bytes`."""
    bom_bytes: int = 0
    fallback: str | None = None
    """Encoding of the byte sequences that are not UTF-8, when a fallback was needed."""


def _line_of(content: bytes | memoryview, offset: int) -> int:
    return bytes(content[:offset]).count(b"\n") + 1


def _nul_pattern(probe: bytes) -> str | None:
    """UTF-16/32 without a BOM, recognised by where the NULs of ASCII characters fall."""
    usable = len(probe) - len(probe) % 4
    if usable < 8:
        return None
    probe = probe[:usable]
    quads = len(probe) // 4
    if probe[1::4].count(0) + probe[2::4].count(0) + probe[3::4].count(0) >= 3 * _NUL_PATTERN_SHARE * quads:
        return "utf-32-le"
    if probe[0::4].count(0) + probe[1::4].count(0) + probe[2::4].count(0) >= 3 * _NUL_PATTERN_SHARE * quads:
        return "utf-32-be"
    pairs = len(probe) // 2
    if probe[1::2].count(0) >= _NUL_PATTERN_SHARE * pairs and probe[0::2].count(0) < pairs / 10:
        return "utf-16-le"
    if probe[0::2].count(0) >= _NUL_PATTERN_SHARE * pairs and probe[1::2].count(0) < pairs / 10:
        return "utf-16-be"
    return None


def _fallback_handler_name(fallback: str) -> str:
    """A codecs error handler that decodes what is not UTF-8 with `fallback` (registered once per name)."""
    name = f"reviews-fallback-{fallback}"
    try:
        codecs.lookup_error(name)
    except LookupError:

        def decode_with_fallback(error: UnicodeError) -> tuple[str, int]:
            if not isinstance(error, UnicodeDecodeError):
                raise error
            bad = error.object[error.start : error.end]
            return bytes(bad).decode(fallback, errors="replace"), error.end

        codecs.register_error(name, decode_with_fallback)
    return name


def _not_utf8(content: bytes | memoryview, error: UnicodeDecodeError, base: int) -> CheckFailedError:
    offset = base + error.start
    bad = bytes(content[offset : offset + min(4, error.end - error.start)])
    line = _line_of(content, offset)
    return CheckFailedError(
        "readability",
        f"not UTF-8: undecodable byte(s) 0x{bad.hex()} at byte offset {offset} (line {line}); convert the file "
        "to UTF-8, or set REVIEWS_VALIDATOR_FALLBACK_ENCODING (e.g. cp1252) if it is in a legacy encoding (a "
        "mix of UTF-8 and cp1252/latin-1 is a common cause)",
        offset=offset,
        line=line,
    )


def _damaged(encoding: TextEncoding, offset: int) -> CheckFailedError:
    return CheckFailedError(
        "readability",
        f"not valid {encoding.name}: undecodable bytes at byte offset {offset} "
        f"(the file starts like {encoding.name} but is damaged or mixes encodings)",
        offset=offset,
    )


def _refuse_binary(text: str, probe_bytes: int) -> None:
    """Text has almost no control characters; bytes read as latin-1 (one character each) are judged alike."""
    probe = text[:probe_bytes]
    control = len(probe) - len(probe.translate(_STRIP_CONTROLS))
    if control > MAX_CONTROL_SHARE * len(probe) or "\x00" in probe:
        offset = next(index for index, character in enumerate(probe) if character in _CONTROL_CHARACTERS)
        raise CheckFailedError(
            "readability",
            f"binary content, not text: {control} control characters in the first {len(probe)} characters "
            f"(the first, 0x{ord(probe[offset]):02x}, at character {offset})",
            offset=offset,
            control_bytes=control,
        )


def detect_encoding(head: bytes, *, fallback: str | None) -> TextEncoding:
    """The encoding of content starting with `head`: from its BOM, its NUL pattern, or UTF-8 (then the fallback)."""
    for mark, name in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            codec = UTF8 if name == UTF8_SIG else name
            return TextEncoding(name=name, codec=codec, bom_bytes=len(mark))
    if b"\x00" in head[:PROBE_BYTES]:
        pattern = _nul_pattern(head[:PROBE_BYTES])
        if pattern is not None:
            return TextEncoding(name=pattern, codec=pattern)
    return TextEncoding(name=UTF8, codec=UTF8, fallback=fallback)


def decode_head(head: bytes, encoding: TextEncoding, *, complete: bool) -> tuple[TextEncoding, str]:
    """The head sample as text (whole lines only unless `complete`), and the encoding as found in it.

    Refuses binary content and, without a fallback, bytes that are not UTF-8.
    """
    body = head[encoding.bom_bytes :]
    if encoding.codec != UTF8:
        try:
            text = codecs.getincrementaldecoder(encoding.codec)(errors="strict").decode(body, final=complete)
        except UnicodeDecodeError as error:
            raise _damaged(encoding, error.start + encoding.bom_bytes) from None
        _refuse_binary(text, PROBE_BYTES)
    else:
        # Judged on the bytes (as latin-1, one character each), before undecodable bytes hide that they are binary.
        _refuse_binary(body[:PROBE_BYTES].decode("latin-1"), PROBE_BYTES)
        try:
            text = codecs.getincrementaldecoder(UTF8)().decode(body, final=complete)
        except UnicodeDecodeError as error:
            if encoding.fallback is None:
                raise _not_utf8(head, error, encoding.bom_bytes) from None
            handler = _fallback_handler_name(encoding.fallback)
            text = codecs.getincrementaldecoder(UTF8)(errors=handler).decode(body, final=complete)
            encoding = TextEncoding(name=encoding.fallback, codec=UTF8, fallback=encoding.fallback)
    if not complete:
        text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1]  # the sample was cut: whole lines only
    return encoding, text


def _utf8_array(content: pa.Buffer) -> pa.Array:
    offsets = pa.py_buffer(struct.pack("<qq", 0, content.size))
    return pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, content])


def content_as_utf8(content: pa.Buffer, encoding: TextEncoding) -> tuple[pa.Buffer, TextEncoding]:
    """The whole content as UTF-8 without a BOM, and the encoding as it turned out to be.

    UTF-8 is checked without a copy (Arrow validates it in one vectorised pass); only when that fails
    is the content decoded in Python, to find where, or to decode what is not UTF-8 with the
    fallback encoding — which the returned encoding then names. Other encodings are transcoded.
    """
    body = content.slice(encoding.bom_bytes)
    if encoding.codec == UTF8:
        try:
            _utf8_array(body).validate(full=True)
            return body, encoding
        except pa.ArrowInvalid:
            pass
        raw = body.to_pybytes()
        try:
            raw.decode(UTF8)
        except UnicodeDecodeError as error:
            if encoding.fallback is None:
                raise _not_utf8(raw, error, 0) from None
        fallback = encoding.fallback or UTF8
        decoded = raw.decode(UTF8, errors=_fallback_handler_name(fallback))
        return pa.py_buffer(decoded.encode(UTF8)), TextEncoding(name=fallback, codec=UTF8, fallback=fallback)
    raw = body.to_pybytes()
    try:
        text = raw.decode(encoding.codec)
    except UnicodeDecodeError as error:
        raise _damaged(encoding, error.start + encoding.bom_bytes) from None
    return pa.py_buffer(text.encode(UTF8)), encoding
