"""Where the tests find real review files, and what each of them holds."""

from pathlib import Path

from reviews_pipeline.reliability.inputs import ACCEPT, REJECT, reference_files

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
"""The reference collection of real Amazon review files, beside the repository (../shared/data)."""
SAMPLES = REPO / "samples"
"""The small real samples bundled with the repository (see samples/PROVENANCE.md)."""

REAL_FILES = reference_files(SHARED_DATA)
"""Every file in ../shared/data and what the validator makes of it as training data."""

GIFT_CARD_DETECTED = {
    "format": "tsv",
    "compression": "none",
    "encoding": "utf-8",
    "delimiter": "\t",
    "quoting": False,
    "quote_char": '"',
    "escape_char": None,
    "skip_initial_space": False,
    "line_terminator": "lf",
    "preamble_lines": 0,
    "header_rows": 1,
    "has_header": True,
    "layout": "aws-customer-reviews",
}
"""How the validator reads the AWS Gift Card TSV (DetectedFormat): tab-delimited, its bare quotes taken as data."""

__all__ = ["ACCEPT", "GIFT_CARD_DETECTED", "REAL_FILES", "REJECT", "REPO", "SAMPLES", "SHARED_DATA"]
