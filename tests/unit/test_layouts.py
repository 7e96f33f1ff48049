"""Check 4: columns are recognised by their role, whatever subset of a published layout a file keeps."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from pydantic import ValidationError

from reviews_pipeline.reliability.inputs import MCAULEY_2014_SAMPLES
from services.validator.checks import CheckFailedError
from services.validator.formats import ContentFormat, inspect_head, read_head
from services.validator.layouts import (
    DEFAULT_LAYOUTS_FILE,
    KNOWN_LAYOUTS,
    Layout,
    LayoutSettings,
    LayoutsFile,
    ResolvedLayout,
    known_column_names,
    load_layouts_file,
    resolve_layout,
)
from shared.events import Dataset
from tests.data_paths import SHARED_DATA

DATA = SHARED_DATA
GIFT_CARD = DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
NANNYML = DATA / "marc-en-nannyml-reference/amazon_reviews_reference.csv"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
UCI = DATA / "uci-sentiment-amazon-cells/amazon_cells_labelled.txt"


@pytest.fixture(autouse=True)
def no_layouts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVIEWS_VALIDATOR_LAYOUTS", raising=False)
    monkeypatch.delenv("REVIEWS_VALIDATOR_LAYOUTS_FILE", raising=False)


def content_format_of(data: bytes, layouts: tuple[Layout, ...]) -> ContentFormat:
    found = inspect_head(
        read_head(data, whole=True, sample_bytes=len(data) + 1), known_columns=known_column_names(layouts)
    )
    assert found is not None
    return found


def resolve(data: bytes, dataset: Dataset = "train", settings: LayoutSettings | None = None) -> ResolvedLayout:
    settings = settings or LayoutSettings()
    layouts = settings.in_order()
    return resolve_layout(content_format_of(data, layouts), dataset, layouts, settings.column_roles)


def refusal(data: bytes, dataset: Dataset = "train", settings: LayoutSettings | None = None) -> CheckFailedError:
    with pytest.raises(CheckFailedError) as raised:
        resolve(data, dataset, settings)
    assert raised.value.check == "columns"
    return raised.value


# Every review file in ../shared/data that can be read: its layout and the source columns kept.
REAL_LAYOUTS = {
    "amazon-alexa/amazon_alexa.tsv": ("amazon-alexa", ("rating", "verified_reviews")),
    "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv": (
        "aws-customer-reviews",
        ("review_id", "star_rating", "review_headline", "review_body"),
    ),
    "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv": (
        "datafiniti",
        ("reviews.rating", "reviews.text", "reviews.title"),
    ),
    "fine-food-reviews-first1000/Reviews.csv": ("kaggle-fine-food", ("Id", "Score", "Summary", "Text")),
    "marc-en-nannyml-reference/amazon_reviews_reference.csv": (
        "marc-text",
        ("review_id", "stars", "text", "review_title", "language"),
    ),
    "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv": (
        "marc-headerless-csv",
        ("index", "review_body", "stars"),
    ),
    "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv": (
        "marc-headerless-csv",
        ("index", "review_body", "stars"),
    ),
    **{name: ("mcauley-2014", ("reviewText", "overall", "summary")) for name in MCAULEY_2014_SAMPLES},
    "mcauley2018-all-beauty-5core/All_Beauty_5.json": ("mcauley-2018", ("overall", "reviewText", "summary")),
    "mcauley2018-amazon-fashion-5core/AMAZON_FASHION_5.json": ("mcauley-2018", ("overall", "reviewText", "summary")),
    "uci-sentiment-amazon-cells/amazon_cells_labelled.txt": ("uci-sentiment-labelled", ("sentence", "label")),
}


@pytest.mark.parametrize("name", sorted(REAL_LAYOUTS))
def test_every_readable_real_file_is_in_a_known_or_configured_layout(name: str) -> None:
    # Given a real file as published, When its columns are checked as training data
    resolved = resolve((DATA / name).read_bytes())

    # Then its layout is recognised, the columns it needs are kept and the rest dropped
    layout_name, kept = REAL_LAYOUTS[name]
    assert resolved.name == layout_name
    assert resolved.kept_columns == kept
    assert set(resolved.kept_columns) | set(resolved.dropped_columns) == set(resolved.column_names)
    assert {"text", "rating"} <= set(resolved.source_columns)


def test_the_marc_reference_file_keeps_the_review_and_drops_the_model_outputs() -> None:
    resolved = resolve(NANNYML.read_bytes())

    assert resolved.source_columns == {
        "review_id": "review_id",
        "title": "review_title",
        "text": "text",
        "rating": "stars",
        "language": "language",
    }
    assert resolved.dropped_columns == (
        "product_id",
        "reviewer_id",
        "product_category",
        "real_sentiment",
        "negative_sentiment_pred_proba",
        "neutral_sentiment_pred_proba",
        "positive_sentiment_pred_proba",
        "predicted_sentiment",
        "timestamp",
    )


def _without_column(data: bytes, column: str) -> bytes:
    rows = [line.split(b"\t") for line in data.split(b"\n") if line]
    index = rows[0].index(column.encode())
    return b"\n".join(b"\t".join(row[:index] + row[index + 1 :]) for row in rows) + b"\n"


def test_a_training_file_without_its_rating_column_is_refused() -> None:
    problem = refusal(_without_column(GIFT_CARD.read_bytes(), "star_rating"), "train")

    assert "a training file needs a rating" in problem.reason
    assert "holds a rating" in problem.reason and "inference" in problem.reason


def test_the_same_file_without_ratings_is_accepted_as_inference_data() -> None:
    resolved = resolve(_without_column(GIFT_CARD.read_bytes(), "star_rating"), "inference")

    assert resolved.name == "aws-customer-reviews"
    assert "rating" not in resolved.source_columns


def test_columns_without_a_text_role_are_refused_with_the_columns_named() -> None:
    data = b"remark\tvalue\nGreat birthday gift for a young adult.\t5\nWorks as advertised.\t4\n"

    problem = refusal(data)

    assert problem.details["columns"] == ["remark", "value"]
    assert "holds the review text" in problem.reason and "REVIEWS_VALIDATOR_COLUMN_ROLES" in problem.reason


def test_a_headerless_file_in_no_configured_layout_has_its_columns_recognised_by_what_they_hold() -> None:
    # Given the real MARC rows with two more columns (a language code and a constant), no header
    lines = [line.split(b",", 1) for line in MARC_EN.read_bytes().splitlines()[::60]]  # all five star values
    five_columns = b"\n".join(b"en," + index + b",x," + rest for index, rest in lines)

    resolved = resolve(five_columns)

    # Then the review bodies (the prose) are the text and the 1-5 stars the rating
    assert resolved.name == "inferred-from-content"
    assert resolved.source_columns == {"text": "column_4", "rating": "column_5"}


def test_a_headerless_file_whose_columns_hold_no_prose_is_refused() -> None:
    numbers = b"\n".join(b"%d,%d,%d,x" % (index, index * 7 % 5 + 1, index % 3) for index in range(200))

    problem = refusal(numbers)

    assert "no header row" in problem.reason and problem.details["column_count"] == 4


def test_a_two_valued_label_is_not_taken_for_a_star_rating() -> None:
    # Polarity labels 1/2 (negative/positive) would become 1 and 2 stars: no rating is guessed.
    polarity = b"".join(
        b'"%d","%s"\n' % (index % 2 + 1, b"this is a long enough review sentence number %d" % index)
        for index in range(200)
    )

    resolved = resolve(polarity, "inference", settings=LayoutSettings(layouts_file=None))

    assert resolved.source_columns == {"text": "column_2"}


def test_a_layout_configured_in_the_environment_is_tried_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the Zhang et al. polarity layout (an example in layouts.json) configured in the environment
    example = next(layout for layout in load_layouts_file(DEFAULT_LAYOUTS_FILE).examples if "polarity" in layout.name)
    monkeypatch.setenv("REVIEWS_VALIDATOR_LAYOUTS", json.dumps([example.model_dump(mode="json")]))
    polarity = b'"2","Stuning even for the non-gamer","This sound track was beautiful!"\n' * 20

    resolved = resolve(polarity, settings=LayoutSettings())

    # Then a headerless 3-column CSV is read as polarity, not as the MARC default
    assert resolved.name == "amazon-polarity-csv"
    assert resolved.layout.rating_map == {"1": 1, "2": 5}


def test_without_the_layouts_file_headerless_files_are_not_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWS_VALIDATOR_LAYOUTS_FILE", "")
    settings = LayoutSettings()

    assert settings.in_order() == ()
    refusal(UCI.read_bytes(), settings=settings)


def test_the_layouts_file_configures_the_headerless_real_files_and_its_examples_are_valid() -> None:
    shipped = LayoutsFile.model_validate(json.loads(DEFAULT_LAYOUTS_FILE.read_text(encoding="utf-8")))

    assert [layout.name for layout in shipped.layouts] == ["marc-headerless-csv", "uci-sentiment-labelled"]
    assert shipped.examples and "amazon-polarity" in shipped.about


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ({"name": "x", "match": {"columns": ["body"]}, "mapping": {"title": "body"}}, "must map a source column to"),
        (
            {"name": "x", "match": {"headerless_column_count": 2}, "mapping": {"text": "a"}},
            "column_names must name all 2",
        ),
        ({"name": "x", "match": {}, "mapping": {"text": "a"}}, "either `columns` or `headerless_column_count`"),
        (
            {"name": "x", "match": {"columns": ["a"]}, "mapping": {"text": "a"}, "rating_map": {"0": 0}},
            "star ratings 1-5",
        ),
        ({"name": "x", "match": {"columns": ["a"]}, "mapping": {"body": "a"}}, "mapping.body"),
    ],
)
def test_a_malformed_layout_configuration_fails_loudly(layout: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Layout.model_validate(layout)


def _parquet_format(schema: pa.Schema) -> ContentFormat:
    return ContentFormat(format="parquet", columns=tuple(schema.names), parquet_schema=schema)


def test_a_parquet_file_whose_text_column_is_not_text_is_refused() -> None:
    schema = pa.schema([("text", pa.int64()), ("rating", pa.int64())])

    with pytest.raises(CheckFailedError) as raised:
        resolve_layout(_parquet_format(schema), "train", KNOWN_LAYOUTS)

    assert raised.value.check == "columns"
    assert "should hold the review text but its Parquet type is int64" in raised.value.reason


def test_a_parquet_rating_of_strings_is_accepted_for_coercion_but_one_of_lists_is_not() -> None:
    strings = pa.schema([("text", pa.string()), ("rating", pa.string())])
    lists = pa.schema([("text", pa.string()), ("rating", pa.list_(pa.int64()))])

    assert resolve_layout(_parquet_format(strings), "train", KNOWN_LAYOUTS).name == "canonical"
    with pytest.raises(CheckFailedError, match="expected text or a number"):
        resolve_layout(_parquet_format(lists), "train", KNOWN_LAYOUTS)


# -- columns by role ----------------------------------------------------------------------------


def _fine_food_with(columns: list[str], rename: dict[str, str] | None = None) -> bytes:
    """The real Fine Food CSV, keeping only `columns` (renamed by `rename`), written back as CSV."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO((DATA / "fine-food-reviews-first1000/Reviews.csv").read_text("utf-8-sig")))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([(rename or {}).get(column, column) for column in columns])
    for row in list(reader)[:100]:
        writer.writerow([row[column] for column in columns])
    return out.getvalue().encode()


def test_a_subset_of_a_published_layout_is_accepted_and_named_after_it() -> None:
    # The Kaggle Fine Food export without six of its ten columns (it was refused before).
    resolved = resolve(_fine_food_with(["Id", "Summary", "Text", "Score"]))

    assert resolved.name == "kaggle-fine-food"
    assert resolved.source_columns == {"review_id": "Id", "title": "Summary", "text": "Text", "rating": "Score"}


def test_mcauley_json_lines_with_only_text_rating_and_summary_are_accepted() -> None:
    lines = (DATA / "mcauley2018-all-beauty-5core/All_Beauty_5.json").read_text("utf-8").splitlines()[:50]
    kept = [{key: json.loads(line).get(key) for key in ("reviewText", "overall", "summary")} for line in lines]

    resolved = resolve("\n".join(json.dumps(record) for record in kept).encode())

    assert resolved.name == "mcauley-2014"
    assert resolved.source_columns == {"title": "summary", "text": "reviewText", "rating": "overall"}


@pytest.mark.parametrize(
    ("text", "rating", "title"),
    [
        ("review_body", "star_rating", "review_headline"),
        ("Review Text", "Stars", "Review Title"),
        ("reviews.text", "reviews.rating", "reviews.title"),
        ("content", "score", "headline"),
        ("REVIEW-TEXT", "Overall", "summary"),
        ("body", "rating", "subject"),
    ],
)
def test_renamed_columns_are_recognised_by_the_names_real_datasets_use(text: str, rating: str, title: str) -> None:
    rename = {"Text": text, "Score": rating, "Summary": title}

    resolved = resolve(_fine_food_with(["Summary", "Text", "Score", "ProfileName", "Time"], rename))

    assert resolved.source_columns == {"title": title, "text": text, "rating": rating}
    assert set(resolved.dropped_columns) == {"ProfileName", "Time"}


def test_two_candidates_for_one_role_are_refused_naming_both_and_the_setting() -> None:
    problem = refusal(_fine_food_with(["Summary", "Text", "Score"], {"Summary": "review_body"}))

    assert problem.details["candidates"] == ["review_body", "Text"]
    assert "REVIEWS_VALIDATOR_COLUMN_ROLES" in problem.reason


def test_the_column_roles_setting_picks_between_two_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWS_VALIDATOR_COLUMN_ROLES", json.dumps({"text": "Text"}))

    resolved = resolve(
        _fine_food_with(["Summary", "Text", "Score"], {"Summary": "review_body"}), settings=LayoutSettings()
    )

    assert resolved.source_columns["text"] == "Text" and "review_body" in resolved.dropped_columns


def test_a_generic_name_gives_way_to_a_specific_one_for_the_same_role() -> None:
    # `content` (generic) and `review_text` (specific) both name a text: the specific one holds it.
    resolved = resolve(_fine_food_with(["Summary", "Text", "Score"], {"Summary": "content", "Text": "review_text"}))

    assert resolved.source_columns == {"text": "review_text", "rating": "Score"}


def test_a_bare_id_beside_namespaced_review_fields_is_not_the_review_id() -> None:
    # Datafiniti's `id` is the product's: the review's own fields are all under `reviews.`.
    resolved = resolve((DATA / REAL_DATAFINITI).read_bytes())

    assert "review_id" not in resolved.source_columns and "id" in resolved.dropped_columns


REAL_DATAFINITI = "datafiniti-amazon-consumer-reviews/Datafiniti_Amazon_Consumer_Reviews_of_Amazon_Products.csv"


def test_a_column_name_repeated_for_one_role_is_refused_naming_it() -> None:
    problem = refusal(_fine_food_with(["Summary", "Text", "Score", "ProfileName"], {"ProfileName": "Text"}))

    assert problem.details["columns"] == ["Text"] and "appears 2 times" in problem.reason


def test_spanish_column_names_are_recognised_for_the_spanish_marc_reviews() -> None:
    lines = (DATA / "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv").read_bytes().splitlines()
    data = "índice,Reseña,Estrellas\n".encode() + b"\n".join(lines[::50])

    resolved = resolve(data)

    assert resolved.source_columns == {"text": "Reseña", "rating": "Estrellas"}
