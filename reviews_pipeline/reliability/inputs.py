"""The files the scenarios drop in: real review files, slices of them, and bad inputs with what must happen to them."""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from pathlib import Path

from shared.events import Dataset

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
"""The reference collection of real Amazon review files, beside the repository."""


@dataclass(frozen=True)
class InputFile:
    """A file to upload: where it is, which dataset it goes to and how many rows it holds (None: not a review file)."""

    path: Path
    dataset: Dataset
    rows: int | None
    bad_because: str | None = None
    """For a bad input: what is wrong with it (it must be rejected with a report)."""


@dataclass(frozen=True)
class RealFile:
    relative_path: str
    rows: int
    """Rows in the file, as published (counted independently of the pipeline, see tests/data_paths.py)."""


# Real files in six layouts to train on, and three more to classify (two of them big enough to chunk).
TRAIN_FILES = (
    RealFile("aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv", 1452),
    RealFile("amazon-alexa/amazon_alexa.tsv", 3150),
    RealFile("fine-food-reviews-first1000/Reviews.csv", 1000),
    RealFile("marc-en-nannyml-reference/amazon_reviews_reference.csv", 1381),
    RealFile("mcauley-category-samples-keithgalli/category__Books_small.json", 1000),
    RealFile("uci-sentiment-amazon-cells/amazon_cells_labelled.txt", 1000),
)
INFERENCE_FILES = (
    RealFile("mcauley2018-all-beauty-5core/All_Beauty_5.json", 5269),
    RealFile("datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv", 5000),
    RealFile("mcauley-category-samples-keithgalli/category__Electronics_small.json", 1000),
)
# JSON-lines files, one review per line: slices of them are valid review files of known size.
JSON_LINES_SOURCES = (
    "mcauley-category-samples-keithgalli/category__Books_small.json",
    "mcauley-category-samples-keithgalli/category__Clothing_small.json",
    "mcauley-category-samples-keithgalli/category__Electronics_small.json",
    "mcauley-category-samples-keithgalli/category__Grocery_small.json",
    "mcauley-category-samples-keithgalli/category__Patio_small.json",
    "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json",
    "mcauley2018-all-beauty-5core/All_Beauty_5.json",
)
OVERSIZE_SOURCE = "mcauley2018-all-beauty-5core/All_Beauty_5.json"


def real_inputs(data_dir: Path) -> list[InputFile]:
    files = [InputFile(data_dir / f.relative_path, "train", f.rows) for f in TRAIN_FILES]
    files += [InputFile(data_dir / f.relative_path, "inference", f.rows) for f in INFERENCE_FILES]
    return files


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines(keepends=True) if line.strip()]


def json_lines_slices(data_dir: Path, out_dir: Path, count: int, rows_per_file: int, prefix: str) -> list[InputFile]:
    """`count` distinct valid files: consecutive windows of real JSON-lines reviews, alternately train and inference."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [_lines(data_dir / name) for name in JSON_LINES_SOURCES]
    files = []
    for index in range(count):
        lines = sources[index % len(sources)]
        windows = len(lines) // rows_per_file
        window = (index // len(sources)) % windows
        chosen = lines[window * rows_per_file : (window + 1) * rows_per_file]
        path = out_dir / f"{prefix}-{index:03d}.json"
        path.write_bytes(b"".join(chosen))
        files.append(InputFile(path, "train" if index % 2 == 0 else "inference", len(chosen)))
    return files


def oversize_slices(data_dir: Path, out_dir: Path, count: int, rows_per_file: int) -> list[InputFile]:
    """`count` distinct files big enough to be chunked (under a small `max_size_bytes`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = _lines(data_dir / OVERSIZE_SOURCE)
    files = []
    for index in range(count):
        start = (index * rows_per_file // 3) % (len(lines) - rows_per_file)  # overlapping, never identical
        chosen = lines[start : start + rows_per_file]
        path = out_dir / f"oversize-{index:03d}.json"
        path.write_bytes(b"".join(chosen))
        files.append(InputFile(path, "train" if index % 2 == 0 else "inference", len(chosen)))
    return files


def bad_inputs(data_dir: Path, out_dir: Path, count: int) -> list[InputFile]:
    """`count` bad files, cycling through the ways a review file can be wrong."""
    out_dir.mkdir(parents=True, exist_ok=True)
    noise = random.Random(7)
    beauty = b"".join(_lines(data_dir / OVERSIZE_SOURCE)[:200])
    kinds: list[tuple[str, str, bytes]] = [
        ("empty.csv", "an empty file", b""),
        ("noise.bin", "random bytes", bytes(noise.getrandbits(8) for _ in range(4096))),
        ("readme.csv", "a Markdown document, not reviews", (data_dir / "README.md").read_bytes()),
        (
            "polarity.csv",
            "a CSV without a header whose delimiter cannot be determined",
            b"".join(
                (data_dir / "amazon-polarity-train-first5000/amazon_reviews.csv").read_bytes().splitlines(True)[:300]
            ),
        ),
        ("truncated.json.gz", "a gzip stream cut off in the middle", gzip.compress(beauty)[:5000]),
        (
            "numbers.csv",
            "a table with no review text column",
            b"a,b,c\n" + b"".join(b"%d,%d,%d\n" % (i, i, i) for i in range(200)),
        ),
        ("header-only.tsv", "a header and no rows", b"marketplace\tcustomer_id\treview_id\treview_body\tstar_rating\n"),
    ]
    files = []
    for index in range(count):
        name, because, body = kinds[index % len(kinds)]
        stem, _, suffix = name.partition(".")
        path = out_dir / f"bad-{index:03d}-{stem}.{suffix}"
        path.write_bytes(body)
        files.append(InputFile(path, "train" if index % 2 == 0 else "inference", None, bad_because=because))
    return files
