"""Where the tests find real review files."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
"""The reference collection of real Amazon review files, beside the repository (../shared/data)."""
SAMPLES = REPO / "samples"
"""The small real samples bundled with the repository (see samples/PROVENANCE.md)."""

ACCEPT = "accept"
REJECT = "reject"
# Every file in ../shared/data and what the validator makes of it as training data:
# (ACCEPT, layout, rows_in, rows_out, rows_dropped) or (REJECT, check, words of the reason).
REAL_FILES: dict[str, tuple[object, ...]] = {
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
    **{
        f"mcauley-category-samples-keithgalli/{name}.json": (ACCEPT, "mcauley-2014", 1000, 1000, {})
        for name in (
            "category__Books_small",
            "category__Clothing_small",
            "category__Electronics_small",
            "category__Grocery_small",
            "category__Patio_small",
            "sentiment__Books_small_10000",
        )
    },
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
    "README.md": (REJECT, "format", "delimiter cannot be determined"),
    "marc-train-en-uniprompt-kshot-union/SOURCE_FILES.txt": (REJECT, "format", "delimiter cannot be determined"),
    "marc-train-es-uniprompt-kshot-union/SOURCE_FILES.txt": (REJECT, "format", "delimiter cannot be determined"),
    "uci-sentiment-amazon-cells/ORIGINAL_readme.txt": (REJECT, "format", "delimiter cannot be determined"),
    **{
        f"{folder.name}/PROVENANCE.md": (REJECT, "format", "delimiter cannot be determined")
        for folder in SHARED_DATA.iterdir()
        if folder.is_dir()
    },
}
