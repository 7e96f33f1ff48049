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


ACCEPT = "accept"
REJECT = "reject"


# What the validator makes of each reference file as training data:
# (ACCEPT, layout, rows_in, rows_out, rows_dropped) or (REJECT, check, words of the reason).
# The row counts were established independently: each PROVENANCE.md states them (tests/unit/test_reading.py).
MCAULEY_2014_SAMPLES = tuple(
    f"mcauley-category-samples-keithgalli/{name}.json"
    for name in (
        "category__Books_small",
        "category__Clothing_small",
        "category__Electronics_small",
        "category__Grocery_small",
        "category__Patio_small",
        "sentiment__Books_small_10000",
    )
)
"""The six McAuley (2014) category samples, 1,000 JSON-lines reviews each."""


def reference_files(data_dir: Path) -> dict[str, tuple[object, ...]]:
    """Every file in the reference collection at `data_dir` and what the validator makes of it."""
    return {
        "amazon-alexa/amazon_alexa.tsv": (ACCEPT, "amazon-alexa", 3150, 3071, {"empty_text": 79}),
        "amazon-polarity-train-first5000/amazon_reviews.csv": (REJECT, "format", "delimiter cannot be determined"),
        "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv": (
            ACCEPT,
            "aws-customer-reviews",
            1452,
            1452,
            {},
        ),
        "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv": (
            ACCEPT,
            "datafiniti",
            5000,
            5000,
            {},
        ),
        "fine-food-reviews-first1000/Reviews.csv": (ACCEPT, "kaggle-fine-food", 1000, 1000, {}),
        "marc-en-nannyml-reference/amazon_reviews_reference.csv": (ACCEPT, "marc-text", 1381, 1381, {}),
        "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv": (
            ACCEPT,
            "marc-headerless-csv",
            12465,
            12465,
            {},
        ),
        "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv": (
            ACCEPT,
            "marc-headerless-csv",
            12465,
            12465,
            {},
        ),
        **{name: (ACCEPT, "mcauley-2014", 1000, 1000, {}) for name in MCAULEY_2014_SAMPLES},
        "mcauley2018-all-beauty-5core/All_Beauty_5.json": (ACCEPT, "mcauley-2018", 5269, 5264, {"empty_text": 5}),
        "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json": (
            ACCEPT,
            "mcauley-2018",
            3176,
            3160,
            {"empty_text": 16},
        ),
        "uci-sentiment-amazon-cells/amazon_cells_labelled.txt": (ACCEPT, "uci-sentiment-labelled", 1000, 1000, {}),
        # The documents beside the data are not review files.
        # README.md holds a Markdown table (pipe-delimited, headerless prose, no ratings); SOURCE_FILES.txt is a
        # space-separated listing with three columns, like the headerless MARC CSV, whose text column is empty.
        "README.md": (REJECT, "columns", "a training file needs a rating"),
        "marc-train-en-uniprompt-kshot-union/SOURCE_FILES.txt": (REJECT, "columns", "none of the file's 70 rows"),
        "marc-train-es-uniprompt-kshot-union/SOURCE_FILES.txt": (REJECT, "columns", "none of the file's 70 rows"),
        "uci-sentiment-amazon-cells/ORIGINAL_readme.txt": (REJECT, "format", "delimiter cannot be determined"),
        **{
            f"{folder.name}/PROVENANCE.md": (REJECT, "format", "delimiter cannot be determined")
            for folder in data_dir.iterdir()
            if folder.is_dir()
        },
    }


@dataclass(frozen=True)
class InputFile:
    """A file to upload: where it is, which dataset it goes to and how many rows it holds (None: not a review file)."""

    path: Path
    dataset: Dataset
    rows: int | None
    bad_because: str | None = None
    """For a bad input: what is wrong with it (it must be rejected with a report)."""


GIFT_CARD = "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
ALEXA = "amazon-alexa/amazon_alexa.tsv"
BEAUTY = "mcauley2018-all-beauty-5core/All_Beauty_5.json"
DATAFINITI = "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv"
ELECTRONICS = "mcauley-category-samples-keithgalli/category__Electronics_small.json"
# Held out of training and classified: two big enough to be chunked, in two layouts, and a small one.
INFERENCE_FILES = (BEAUTY, DATAFINITI, ELECTRONICS)


def real_file(data_dir: Path, name: str, dataset: Dataset) -> InputFile:
    """One file of the reference collection, with what it must become."""
    expected = reference_files(data_dir)[name]
    if expected[0] == ACCEPT:
        return InputFile(data_dir / name, dataset, int(str(expected[2])))
    return InputFile(data_dir / name, dataset, None, bad_because=f"{expected[1]} check: {expected[2]}")


def real_inputs(data_dir: Path) -> list[InputFile]:
    """The whole reference collection: three review files to classify, everything else to train on."""
    return [
        real_file(data_dir, name, "inference" if name in INFERENCE_FILES else "train")
        for name in sorted(reference_files(data_dir))
    ]


# JSON-lines files, one review per line: slices of them are valid review files of known size.
JSON_LINES_SOURCES = (
    *MCAULEY_2014_SAMPLES[:5],
    "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json",
    "mcauley2018-all-beauty-5core/All_Beauty_5.json",
)
OVERSIZE_SOURCE = "mcauley2018-all-beauty-5core/All_Beauty_5.json"


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines(keepends=True) if line.strip()]


def _dataset_of(index: int) -> Dataset:
    """One file in six is training data, the rest are classified: a burst of new files to classify is the
    common case, and every training file triggers a training over the whole corpus."""
    return "train" if index % 6 == 0 else "inference"


def json_lines_slices(data_dir: Path, out_dir: Path, count: int, rows_per_file: int, prefix: str) -> list[InputFile]:
    """`count` distinct valid files: consecutive windows of real JSON-lines reviews."""
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
        files.append(InputFile(path, _dataset_of(index), len(chosen)))
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
        files.append(InputFile(path, _dataset_of(index), len(chosen)))
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
