"""Readability: the encodings review files arrive in are recognised and read as UTF-8; the rest is refused clearly."""

from __future__ import annotations

import codecs

import pyarrow as pa
import pytest

from services.validator.checks import CheckFailedError
from services.validator.decoding import content_as_utf8, decode_head, detect_encoding
from tests.data_paths import SHARED_DATA

MARC_EN = SHARED_DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
MARC_ES = SHARED_DATA / "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv"
SPANISH = MARC_ES.read_text(encoding="utf-8")[:200_000]
# The same reviews less the few characters cp1252 has no byte for (emoji).
SPANISH_CP1252 = SPANISH.encode("cp1252", errors="ignore").decode("cp1252")


def read_back(data: bytes, fallback: str | None = None) -> tuple[str, str]:
    """(encoding name, the whole content as text), as the validator reads them."""
    encoding, _ = decode_head(data[:100_000], detect_encoding(data, fallback=fallback), complete=False)
    content, encoding = content_as_utf8(pa.py_buffer(data), encoding)
    return encoding.name, content.to_pybytes().decode("utf-8")


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16-le"),  # Python writes the little-endian BOM
        ("utf-16-be", "utf-16-be"),
        ("utf-32", "utf-32-le"),
    ],
)
def test_spanish_reviews_with_a_byte_order_mark_are_decoded(codec: str, name: str) -> None:
    data = SPANISH.encode(codec)
    if codec == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data

    assert read_back(data) == (name, SPANISH)


def test_utf16_without_a_byte_order_mark_is_recognised_by_its_nul_bytes() -> None:
    assert read_back(SPANISH.encode("utf-16-le")) == ("utf-16-le", SPANISH)


def test_cp1252_is_refused_by_default_with_the_setting_to_use() -> None:
    data = SPANISH_CP1252.encode("cp1252")

    with pytest.raises(CheckFailedError) as raised:
        read_back(data)

    assert raised.value.check == "readability"
    assert "not UTF-8" in raised.value.reason and "REVIEWS_VALIDATOR_FALLBACK_ENCODING" in raised.value.reason


def test_cp1252_is_read_with_the_fallback_encoding_and_reported() -> None:
    assert read_back(SPANISH_CP1252.encode("cp1252"), fallback="cp1252") == ("cp1252", SPANISH_CP1252)


def test_a_utf8_file_with_a_few_cp1252_bytes_keeps_its_utf8_and_mends_the_rest() -> None:
    # Given Spanish UTF-8 text with one review pasted in from a cp1252 source, beyond the head sample
    pasted = "Muy bueno, café €5"
    data = SPANISH.encode("utf-8") * 6 + pasted.encode("cp1252")

    encoding, text = read_back(data, fallback="cp1252")

    # Then the UTF-8 accents stay right, only the cp1252 bytes are decoded as cp1252, and that is reported
    assert text == SPANISH * 6 + pasted
    assert encoding == "cp1252"


def test_binary_content_is_refused_as_binary() -> None:
    data = bytes(range(256)) * 400

    with pytest.raises(CheckFailedError) as raised:
        read_back(data)

    assert "binary content" in raised.value.reason


def test_damaged_utf16_is_refused_with_its_offset() -> None:
    data = codecs.BOM_UTF16_LE + SPANISH.encode("utf-16-le")[:1000] + b"\x00\xd8" + b"a\x00" * 10

    with pytest.raises(CheckFailedError) as raised:
        read_back(data)

    assert "not valid utf-16-le" in raised.value.reason and raised.value.details["offset"] == 1002
