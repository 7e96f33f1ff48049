"""The canonical review schema: every processed/ parquet file has exactly these columns.

The validator maps each recognised source layout onto it; the ETL reads it. Column names live here
so both agree; the Arrow schema is built on demand so that services without pyarrow can import the
names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

ROW_NUMBER = "row_number"
"""0-based position of the row among the data rows of the root file, counted across chunks."""
REVIEW_ID = "review_id"
TITLE = "title"
TEXT = "text"
RATING = "rating"
"""Star rating 1–5; null in inference files that carry none."""
LANGUAGE = "language"
"""ISO 639-1 code when the source says it (MARC), else null."""

CANONICAL_COLUMNS = (ROW_NUMBER, REVIEW_ID, TITLE, TEXT, RATING, LANGUAGE)


def canonical_arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(ROW_NUMBER, pa.int64(), nullable=False),
            pa.field(REVIEW_ID, pa.string()),
            pa.field(TITLE, pa.string()),
            pa.field(TEXT, pa.string(), nullable=False),
            pa.field(RATING, pa.int8()),
            pa.field(LANGUAGE, pa.string()),
        ]
    )
