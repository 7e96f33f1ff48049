"""ETL benchmark: clean + tokenise throughput on real reviews, on one core, against DuckDB doing the same in SQL.

Run from the repository root:  python bench/etl.py  [--rows 300000] [--runs 3]

Prints JSON lines, one per figure.

The input is built in a temporary folder (deleted afterwards) as one parquet file in the canonical
schema, in row groups of 64 Ki rows (read in batches of EtlSettings.batch_rows): every labelled
review with stars of ../shared/data in English (AWS Gift Card TSV, MARC English, the MARC reference
sample, McAuley 2014 and 2018 JSON lines, Alexa, Datafiniti, Fine Food: ~39k) and the 12,465 MARC
Spanish ones, repeated with fresh row numbers to at least --rows rows.

Each system runs in a fresh process, on one core (pyarrow: set_cpu_count(1) and
set_io_thread_count(1); DuckDB: SET threads = 1), reads the same parquet file and ends with the
cleaned rows as an Arrow table in memory; the figure is the best of --runs runs:
- amazon-reviews-nlp: services.etl.transform.transform_batch over the file's record batches, with
  the default settings (sentiment3 labels, title combined, stop words kept), and once more with
  stop-word removal (metric rows_per_s_stop_words).
- duckdb: one SQL query doing the same steps as far as DuckDB's functions go: regexp_replace for
  tags (the same RE2 pattern), nested replace() for the entities found in the data (DuckDB has no
  entity decoder), nfc_normalize (DuckDB has no NFKC), lower, regexp_replace for special
  characters, string_split_regex for tokens, apostrophes trimmed, empty rows filtered, the label
  from the stars.
- peak_rss_mb: the process's peak resident set (VmHWM), interpreter and imports included.
- same_tokens_fraction: on the first 20,000 input rows, the share of rows to which both systems
  give identical tokens (they differ where DuckDB's NFC, partial entity decoding and apostrophe
  trimming differ from the service's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from services.etl.transform import HTML_TAG, EtlSettings, transform_batch  # noqa: E402
from shared.canonical import canonical_arrow_schema  # noqa: E402

# The reference collection of real review files sits beside the repository (../shared/data).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEM = "amazon-reviews-nlp"
ROW_GROUP_ROWS = 65_536
COMPARED_ROWS = 20_000

Figure = dict[str, Any]

# The entities DuckDB is given to decode: every one found in ../shared/data more than a handful of times.
DUCKDB_ENTITIES = {
    "&#34;": '"',
    "&quot;": '"',
    "&#8217;": "'",
    "&#039;": "'",
    "&#39;": "'",
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&nbsp;": " ",
    "&#8211;": " ",
    "&#8212;": " ",
    "&#8220;": '"',
    "&#8221;": '"',
    "&#8230;": " ",
}


# -- the input --------------------------------------------------------------------------------------


def _frame(text: Any, rating: Any, title: Any = None, language: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": title if title is not None else None,
            "text": text,
            "rating": pd.to_numeric(rating, errors="coerce"),
            "language": language,
        }
    )


def _json_lines(path: Path) -> pd.DataFrame:
    frame = pd.read_json(path, lines=True)
    return _frame(frame["reviewText"], frame["overall"], frame["summary"])


def real_reviews() -> pd.DataFrame:
    """Every labelled review with stars in ../shared/data: title, text, rating, language."""
    marc = ["index", "text", "stars"]
    gift = pd.read_csv(
        DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv", sep="\t", quoting=3, dtype=str
    )
    marc_en = pd.read_csv(DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv", names=marc)
    marc_es = pd.read_csv(DATA / "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv", names=marc)
    reference = pd.read_csv(DATA / "marc-en-nannyml-reference/amazon_reviews_reference.csv")
    alexa = pd.read_csv(DATA / "amazon-alexa/amazon_alexa.tsv", sep="\t", encoding="utf-8-sig")
    datafiniti = pd.read_csv(
        DATA / "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv",
        encoding="utf-8-sig",
        low_memory=False,
    )
    food = pd.read_csv(DATA / "fine-food-reviews-first1000/Reviews.csv", encoding="utf-8-sig")
    frames = [
        _frame(gift["review_body"], gift["star_rating"], gift["review_headline"]),
        _frame(marc_en["text"], marc_en["stars"], language="en"),
        _frame(reference["text"], reference["stars"], reference["review_title"], "en"),
        *(_json_lines(path) for path in sorted((DATA / "mcauley-category-samples-keithgalli").glob("*.json"))),
        _json_lines(DATA / "mcauley2018-all-beauty-5core/All_Beauty_5.json"),
        _json_lines(DATA / "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json"),
        _frame(alexa["verified_reviews"], alexa["rating"]),
        _frame(datafiniti["reviews.text"], datafiniti["reviews.rating"], datafiniti["reviews.title"]),
        _frame(food["Text"], food["Score"], food["Summary"]),
        _frame(marc_es["text"], marc_es["stars"], language="es"),
    ]
    reviews = pd.concat(frames, ignore_index=True)
    return reviews[reviews["text"].notna() & reviews["rating"].between(1, 5)].reset_index(drop=True)


def write_input(path: Path, rows: int) -> tuple[int, int, int]:
    """The bench parquet: real reviews repeated to at least `rows` rows. Returns (rows, distinct, Spanish)."""
    reviews = real_reviews()
    table = pa.table(
        {
            "review_id": pa.nulls(len(reviews), pa.string()),
            "title": pa.array(reviews["title"].astype(object).where(reviews["title"].notna(), None), pa.string()),
            "text": pa.array(reviews["text"].astype(str), pa.string()),
            "rating": pa.array(reviews["rating"].astype(np.int8)),
            "language": pa.array(
                reviews["language"].astype(object).where(reviews["language"].notna(), None), pa.string()
            ),
        }
    )
    copies = -(-rows // table.num_rows)
    repeated = pa.concat_tables([table] * copies)
    repeated = repeated.add_column(0, "row_number", pa.array(np.arange(repeated.num_rows, dtype=np.int64)))
    pq.write_table(repeated.cast(canonical_arrow_schema()), path, row_group_size=ROW_GROUP_ROWS)
    spanish = int((reviews["language"] == "es").sum())
    return repeated.num_rows, table.num_rows, spanish


# -- the systems, each in its own process ----------------------------------------------------------


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_service(path: Path, settings: EtlSettings, limit: int | None = None) -> pa.Table:
    source = pq.ParquetFile(path)
    batches, seen = [], 0
    for batch in source.iter_batches(batch_size=settings.batch_rows):
        if limit is not None:
            batch = batch.slice(0, limit - seen)
        batches.append(transform_batch(batch, settings).batch)
        seen += batch.num_rows
        if limit is not None and seen >= limit:
            break
    return pa.Table.from_batches(batches)


def duckdb_query(path: Path, limit: int | None = None) -> str:
    text = "concat_ws(' ', title, text)"
    text = f"regexp_replace({text}, '{_sql(HTML_TAG)}', ' ', 'g')"
    for entity, character in DUCKDB_ENTITIES.items():
        text = f"replace({text}, '{entity}', '{_sql(character)}')"
    text = f"lower(nfc_normalize(regexp_replace({text}, '[\u2018\u2019\u00b4]', '''', 'g')))"
    text = (
        f"regexp_replace({text}, '(?:^|[^\\p{{L}}\\p{{M}}\\p{{N}}])\\p{{M}}+|[^\\p{{L}}\\p{{M}}\\p{{N}}'']+', ' ', 'g')"
    )
    tokens = f"list_filter(list_transform(string_split_regex({text}, ' '), lambda t: trim(t, '''')), lambda t: t <> '')"
    source = (
        f"(SELECT * FROM read_parquet('{path}') ORDER BY row_number LIMIT {limit})"
        if limit
        else f"read_parquet('{path}')"
    )
    return f"""
        SELECT row_number, review_id, language, rating,
               CASE WHEN rating <= 2 THEN 'negative' WHEN rating = 3 THEN 'neutral'
                    WHEN rating <= 5 THEN 'positive' END AS label,
               tokens, len(tokens)::INTEGER AS token_count,
               length(array_to_string(tokens, ' '))::INTEGER AS text_length
        FROM (SELECT *, {tokens} AS tokens FROM {source})
        WHERE len(tokens) > 0
    """


def _sql(literal: str) -> str:
    return literal.replace("'", "''")


def run_duckdb(path: Path, limit: int | None = None) -> pa.Table:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET threads = 1")
    return connection.sql(duckdb_query(path, limit)).to_arrow_table()


def measure(system: str, path: Path, runs: int) -> Figure:
    """Run in a fresh process: the best time of `runs`, the rows out, the peak RSS."""
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    settings = EtlSettings(remove_stop_words=system.endswith("stop-words"))
    best, rows_out = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        output = run_duckdb(path) if system == "duckdb" else run_service(path, settings)
        best = min(best, time.perf_counter() - started)
        rows_out = output.num_rows
        del output
    return {"seconds": best, "rows_out": rows_out, "peak_rss_mb": peak_rss_mb()}


def in_fresh_process(system: str, path: Path, runs: int) -> Figure:
    command = [sys.executable, __file__, "--measure", system, "--input", str(path), "--runs", str(runs)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    result: Figure = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def same_tokens_fraction(path: Path) -> float:
    pa.set_cpu_count(1)
    ours = run_service(path, EtlSettings(), COMPARED_ROWS)
    theirs = run_duckdb(path, COMPARED_ROWS)
    by_row = dict(zip(theirs["row_number"].to_pylist(), theirs["tokens"].to_pylist(), strict=True))
    same = sum(
        1 for row, tokens in zip(ours["row_number"].to_pylist(), ours["tokens"].to_pylist(), strict=True)
        if by_row.get(row) == tokens
    )  # fmt: skip
    return same / max(int(ours.num_rows), 1)


def figure(system: str, metric: str, value: float, unit: str, rows: int, **extra: Any) -> Figure:
    return {"bench": "etl", "system": system, "metric": metric, "value": value, "unit": unit, "rows": rows, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=300_000, help="rows in the bench input (at least)")
    parser.add_argument("--runs", type=int, default=3, help="runs per system; the best counts")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        print(json.dumps(measure(arguments.measure, arguments.input, arguments.runs)))
        return

    with tempfile.TemporaryDirectory(prefix="etl-bench-") as folder:
        path = Path(folder) / "reviews.parquet"
        rows, distinct, spanish = write_input(path, arguments.rows)
        input_mb = path.stat().st_size / 2**20
        results = {
            system: in_fresh_process(system, path, arguments.runs)
            for system in (SYSTEM, f"{SYSTEM}+stop-words", "duckdb")
        }
        agreement = same_tokens_fraction(path)

    context = {"distinct_reviews": distinct, "spanish_reviews": spanish, "input_mb": round(input_mb, 1), "cores": 1}
    ours, with_stop_words, duckdb = results[SYSTEM], results[f"{SYSTEM}+stop-words"], results["duckdb"]
    figures = [
        figure(SYSTEM, "rows_per_s", round(rows / ours["seconds"]), "rows/s", rows, **context),
        figure(SYSTEM, "rows_per_s_stop_words", round(rows / with_stop_words["seconds"]), "rows/s", rows, **context),
        figure("duckdb", "rows_per_s", round(rows / duckdb["seconds"]), "rows/s", rows, **context),
        figure(SYSTEM, "throughput_vs_duckdb", round(duckdb["seconds"] / ours["seconds"], 2), "ratio", rows),
        figure(SYSTEM, "peak_rss_mb", round(ours["peak_rss_mb"]), "MiB", rows),
        figure("duckdb", "peak_rss_mb", round(duckdb["peak_rss_mb"]), "MiB", rows),
        figure(SYSTEM, "rows_out", ours["rows_out"], "rows", rows),
        figure("duckdb", "rows_out", duckdb["rows_out"], "rows", rows),
        figure("duckdb", "same_tokens_fraction", round(agreement, 4), "fraction", COMPARED_ROWS),
    ]
    for each in figures:
        print(json.dumps(each))


if __name__ == "__main__":
    main()
