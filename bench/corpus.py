"""The labelled English reviews of ../shared/data, read the way the pipeline reads them (shared by the benches)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

# The reference collection of real review files sits beside the repository (../shared/data).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# English files with star ratings (or labels the validator maps to stars); the Spanish MARC file is left
# out, and the malformed polarity CSV is refused by the validator (the benches report it).
ENGLISH_FILES = (
    "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv",
    "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv",
    "marc-en-nannyml-reference/amazon_reviews_reference.csv",
    "mcauley-category-samples-keithgalli/category__Books_small.json",
    "mcauley-category-samples-keithgalli/category__Clothing_small.json",
    "mcauley-category-samples-keithgalli/category__Electronics_small.json",
    "mcauley-category-samples-keithgalli/category__Grocery_small.json",
    "mcauley-category-samples-keithgalli/category__Patio_small.json",
    "mcauley-category-samples-keithgalli/sentiment__Books_small_10000.json",
    "mcauley2018-all-beauty-5core/All_Beauty_5.json",
    "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json",
    "amazon-alexa/amazon_alexa.tsv",
    "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv",
    "fine-food-reviews-first1000/Reviews.csv",
    "amazon-polarity-train-first5000/amazon_reviews.csv",
    "uci-sentiment-amazon-cells/amazon_cells_labelled.txt",
)
SOURCE = "source"
"""The column `english_etl_table_by_source` adds: the file's top folder under ../shared/data."""


def source_of(name: str) -> str:
    """`amazon-alexa` for `amazon-alexa/amazon_alexa.tsv`: a source is a top folder of ../shared/data."""
    return name.split("/", 1)[0]


def _etl_tables(refused: list[str]) -> Iterator[tuple[str, pa.Table]]:
    """(file name, ETL table) of every English file the validator accepts; the refused ones, with why, to `refused`."""
    from services.etl.transform import EtlSettings, transform_table
    from services.validator.validation import Accepted, InMemoryBytes, ValidatorSettings, examine_file

    for name in ENGLISH_FILES:
        verdict = examine_file(InMemoryBytes((DATA / name).read_bytes()), dataset="train", limits=ValidatorSettings())
        if isinstance(verdict, Accepted):
            yield name, transform_table(verdict.rows.table, EtlSettings())[0]
        else:
            refused.append(f"{name}: {getattr(verdict, 'rejection', verdict)}")


def english_etl_table() -> tuple[pa.Table, list[str]]:
    """Every English file through the validator and the ETL transform; also the files refused, with why."""
    refused: list[str] = []
    tables = [table for _, table in _etl_tables(refused)]
    return pa.concat_tables(tables), refused


def english_etl_table_by_source() -> tuple[pa.Table, list[str]]:
    """`english_etl_table` (same files, same order, same rows) plus a `source` column: each file's top folder."""
    refused: list[str] = []
    tables = [
        table.append_column(SOURCE, pa.array([source_of(name)] * table.num_rows, pa.string()))
        for name, table in _etl_tables(refused)
    ]
    return pa.concat_tables(tables), refused
