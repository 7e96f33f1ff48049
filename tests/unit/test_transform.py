"""The ETL transform on real review text: what each cleaning step does, how rows are counted, labels, stop words.

The files are read here with pyarrow directly and mapped onto the canonical schema by hand (the
validator's reader is not what is under test).
"""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pytest
import stopwordsiso

from services.etl.transform import (
    CORRUPT_TEXT,
    EMPTY_AFTER_CLEANING,
    EMPTY_TEXT,
    HTML_TAG,
    NEUTRAL_DROPPED_FOR_BINARY,
    ONLY_STOP_WORDS,
    EtlSettings,
    NotCanonicalError,
    nfkc,
    stop_words_for,
    transform_batch,
    transform_table,
)
from shared.canonical import canonical_arrow_schema
from shared.etl_schema import LabelTarget, etl_arrow_schema
from tests.data_paths import SHARED_DATA

DATA = SHARED_DATA
GIFT_CARD = DATA / "aws-pds-us-gift-card-sample/amazon_reviews_us_Gift_Card_v1_00.tsv"
MARC_ES = DATA / "marc-train-es-uniprompt-kshot-union/marc_es_train_kshot_union.csv"
MARC_EN = DATA / "marc-train-en-uniprompt-kshot-union/marc_en_train_kshot_union.csv"
BOOKS = DATA / "mcauley-category-samples-keithgalli/category__Books_small.json"


def canonical(
    text: Any, rating: Any, *, title: Any = None, review_id: Any = None, language: str | None = None
) -> pa.RecordBatch:
    rows = len(text)
    columns = {
        "row_number": pa.array(np.arange(rows, dtype=np.int64)),
        "review_id": review_id if review_id is not None else pa.nulls(rows, pa.string()),
        "title": title if title is not None else pa.nulls(rows, pa.string()),
        "text": text,
        "rating": pc.cast(rating, pa.int8()),
        "language": pa.array([language] * rows, pa.string()),
    }
    schema = canonical_arrow_schema()
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[field.name]).cast(field.type) for field in schema], schema=schema
    )


@pytest.fixture(scope="module")
def gift_card() -> pa.RecordBatch:
    """The AWS customer-reviews TSV: no quoting, `<br />` and `&#34;` in bodies."""
    table = pacsv.read_csv(
        GIFT_CARD,
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types={"review_body": pa.string(), "review_headline": pa.string()}),
    )
    return canonical(
        table["review_body"].combine_chunks(),
        table["star_rating"].combine_chunks(),
        title=table["review_headline"].combine_chunks(),
        review_id=table["review_id"].combine_chunks(),
    )


def read_marc(path: Path, language: str) -> pa.RecordBatch:
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=["index", "review_body", "stars"]))
    return canonical(table["review_body"].combine_chunks(), table["stars"].combine_chunks(), language=language)


@pytest.fixture(scope="module")
def marc_es() -> pa.RecordBatch:
    return read_marc(MARC_ES, "es")


@pytest.fixture(scope="module")
def marc_en() -> pa.RecordBatch:
    return read_marc(MARC_EN, "en")


@pytest.fixture(scope="module")
def books() -> pa.RecordBatch:
    """McAuley 2014 JSON lines: reviewText, summary, overall (a float)."""
    table = pajson.read_json(BOOKS)
    return canonical(
        table["reviewText"].combine_chunks(),
        pc.cast(table["overall"].combine_chunks(), pa.int64()),
        title=table["summary"].combine_chunks(),
    )


def tokens_of(batch: pa.RecordBatch, settings: EtlSettings | None = None) -> dict[int, list[str]]:
    """Tokens by row number of the rows that were kept."""
    result = transform_batch(batch, settings or EtlSettings())
    return dict(zip(result.batch["row_number"].to_pylist(), result.batch["tokens"].to_pylist(), strict=True))


def row_with(batch: pa.RecordBatch, fragment: str) -> int:
    """The row number of the first review whose text holds `fragment`."""
    texts = batch["text"].to_pylist()
    return next(index for index, text in enumerate(texts) if text is not None and fragment in text)


# -- a plain-Python statement of the cleaning, one character at a time ------------------------------


def reference_tokens(text: str) -> list[str]:
    """What the transform should produce for one text, computed without Arrow, numpy or regex classes."""
    text = html.unescape(re.sub(HTML_TAG, " ", text))
    text = re.sub("[\u2018\u2019\u00b4]", "'", text)
    text = unicodedata.normalize("NFKC", text).lower()
    characters: list[str] = []
    after_word = False  # a mark stays only on a letter, digit or kept mark
    for character in text:
        category = unicodedata.category(character)[0]
        keep = category in "LN" or (category == "M" and after_word)
        characters.append(character if keep or character == "'" else " ")
        after_word = keep
    word = [character not in (" ", "'") for character in characters]
    for index, character in enumerate(characters):
        inside = 0 < index < len(characters) - 1 and word[index - 1] and word[index + 1]
        if character == "'" and not inside:
            characters[index] = " "
    return "".join(characters).split()


def test_tokens_match_the_plain_python_statement_on_every_real_review(
    gift_card: pa.RecordBatch, marc_es: pa.RecordBatch, books: pa.RecordBatch
) -> None:
    # Given three real files: HTML and entities (Gift Card), Spanish accents and emoji (MARC), long English (McAuley)
    for batch in (gift_card, marc_es.slice(0, 4000), books):
        settings = EtlSettings(combine_title=False)

        # When they are transformed
        tokens = tokens_of(batch, settings)

        # Then every row's tokens are exactly what the character-by-character statement gives
        expected = {index: reference_tokens(text) for index, text in enumerate(batch["text"].to_pylist())}
        assert tokens == {index: words for index, words in expected.items() if words}


# -- each step on real reviews ----------------------------------------------------------------------


def test_line_breaks_and_entities_of_the_aws_tsv_are_gone(gift_card: pa.RecordBatch) -> None:
    # Given the real review with `<br /><br />` between sentences and `&#34;` around a word
    row = row_with(gift_card, "&#34;sorry&#34;")
    assert "<br /><br />I may just miss" in gift_card["text"][row].as_py()

    tokens = tokens_of(gift_card, EtlSettings(combine_title=False))[row]

    assert tokens[:16] == [
        "this", "was", "the", "best", "belated", "birthday", "card", "ever",
        "it", "made", "such", "a", "nice", "sorry", "to", "the",
    ]  # fmt: skip
    assert tokens[-7:] == ["able", "to", "send", "this", "ecard", "thank", "you"]
    assert "everyone's" in tokens
    assert not {"br", "34", "quot", "amp"} & set(tokens)


def test_no_markup_is_left_in_any_gift_card_review(gift_card: pa.RecordBatch) -> None:
    with_markup = sum(1 for text in gift_card["text"].to_pylist() if "<br" in text or "&#" in text)
    assert with_markup > 40

    tokens = [token for row in tokens_of(gift_card).values() for token in row]

    assert "br" not in tokens and "34" not in tokens and "39" not in tokens


def test_spanish_accents_and_enye_are_letters_and_emoji_are_not(marc_es: pa.RecordBatch) -> None:
    engano = row_with(marc_es, "Un engaño con las medidas")
    poop = row_with(marc_es, "Son una 💩 no las recomiendo")
    diaeresis = row_with(marc_es, "destiñe un poco ¨(lo usé")

    tokens = tokens_of(marc_es)

    assert tokens[engano] == [
        "un", "engaño", "con", "las", "medidas", "mide", "15", "centímetros", "menos", "de", "los", "que", "pone",
    ]  # fmt: skip
    assert tokens[poop][:5] == ["son", "una", "no", "las", "recomiendo"]
    assert "muchísimo" in tokens[poop] and "pestañas" in tokens[poop] and "línea" in tokens[poop]
    # NFKC turns the lone "¨" into a space and a combining mark with nothing to sit on: neither is a token.
    assert tokens[diaeresis][-9:] == ["destiñe", "un", "poco", "lo", "usé", "para", "forrar", "una", "diadema"]


def test_nfkc_folds_compatibility_characters_seen_in_real_reviews(marc_es: pa.RecordBatch) -> None:
    # "1ª", "nº" (Spanish ordinals), "…" and fullwidth commas occur in the real files.
    row = row_with(marc_es, "ª")
    original = marc_es["text"][row].as_py()
    variant = original.replace("a", "\uff41")  # the same review typed with fullwidth "ａ"
    batch = canonical(pa.array([original, variant]), pa.array([3, 3]), language="es")

    tokens = tokens_of(batch)

    assert tokens[0] == tokens[1]
    assert not any("ª" in token for token in tokens[0])


def test_nfkc_composes_accented_letters(marc_es: pa.RecordBatch) -> None:
    # pyarrow < 26 decomposed in utf8_normalize(NFKC): "ñ" would have become "n" + U+0303.
    spanish = marc_es["text"].slice(0, 2000)
    expected = [unicodedata.normalize("NFKC", text) for text in spanish.to_pylist()]

    assert nfkc(spanish).to_pylist() == expected


def test_text_is_lowercased_and_the_title_leads_when_combined(gift_card: pa.RecordBatch) -> None:
    combined = tokens_of(gift_card)
    body_only = tokens_of(gift_card, EtlSettings(combine_title=False))

    assert gift_card["title"][0].as_py() == "Five Stars"
    assert combined[0] == ["five", "stars", *body_only[0]]
    assert all(token == token.lower() for row in combined.values() for token in row)


def test_token_count_and_text_length_describe_the_cleaned_text(books: pa.RecordBatch) -> None:
    result = transform_batch(books, EtlSettings()).batch

    for tokens, count, length in zip(
        result["tokens"].to_pylist(), result["token_count"].to_pylist(), result["text_length"].to_pylist(), strict=True
    ):
        assert count == len(tokens)
        assert length == len(" ".join(tokens))
    assert result.schema == etl_arrow_schema()
    assert result.schema.field("tokens").type == pa.list_(pa.string())


# -- rows dropped, and counted ---------------------------------------------------------------------


def test_empty_markup_only_and_corrupt_texts_are_dropped_and_counted_by_reason(marc_es: pa.RecordBatch) -> None:
    # Given real Spanish reviews, some replaced by what broken exports contain
    texts = marc_es["text"].slice(0, 12).to_pylist()
    real = texts[2]
    broken = {
        0: None,
        1: "",
        3: "   \t ",
        4: "<br /><br />",
        5: "&#34; !!! 😀 ",
        6: "\ufffd" * 30,
        7: real.encode("utf-8").decode("ascii", errors="replace"),  # UTF-8 read as ASCII: mostly letters, still text
        8: "\ufffd\ufffd\ufffd ok",
    }
    for index, value in broken.items():
        texts[index] = value
    batch = canonical(pa.array(texts, pa.string()), marc_es["rating"].slice(0, 12), language="es")

    result = transform_batch(batch, EtlSettings())

    assert result.rows_dropped == {EMPTY_TEXT: 3, CORRUPT_TEXT: 2, EMPTY_AFTER_CLEANING: 2}
    assert result.rows_in == 12 == result.rows_out + sum(result.rows_dropped.values())
    assert result.batch["row_number"].to_pylist() == [2, 7, 9, 10, 11]


def test_counts_reconcile_on_every_real_file(
    gift_card: pa.RecordBatch, marc_es: pa.RecordBatch, marc_en: pa.RecordBatch, books: pa.RecordBatch
) -> None:
    for batch in (gift_card, marc_es, marc_en, books):
        for settings in (EtlSettings(), EtlSettings(label_target="binary", remove_stop_words=True)):
            result = transform_batch(batch, settings)
            assert result.rows_in == batch.num_rows == result.rows_out + sum(result.rows_dropped.values())


# -- labels --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "labels", "dropped"),
    [
        ("sentiment3", {"negative": 68, "neutral": 33, "positive": 1350}, {}),
        ("stars", {"1": 54, "2": 14, "3": 33, "4": 85, "5": 1265}, {}),
        ("binary", {"negative": 68, "positive": 1350}, {NEUTRAL_DROPPED_FOR_BINARY: 33}),
        ("none", {None: 1451}, {}),
    ],
)
def test_labels_follow_the_star_rating_of_the_gift_card_file(
    gift_card: pa.RecordBatch, target: LabelTarget, labels: dict[str | None, int], dropped: dict[str, int]
) -> None:
    # The file's star_rating distribution (PROVENANCE.md): 1: 54, 2: 14, 3: 33, 4: 85, 5: 1266; one 5-star
    # review is "=)" in title and body, which leaves no token.
    result = transform_batch(gift_card, EtlSettings(label_target=target))

    found = pc.value_counts(result.batch["label"]).to_pylist()
    assert {entry["values"]: entry["counts"] for entry in found} == labels
    assert result.rows_dropped == {**dropped, EMPTY_AFTER_CLEANING: 1}
    by_rating = dict(zip(result.batch["rating"].to_pylist(), result.batch["label"].to_pylist(), strict=True))
    if target == "sentiment3":
        assert by_rating == {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}


def test_a_row_without_a_rating_keeps_a_null_label(marc_en: pa.RecordBatch) -> None:
    batch = canonical(marc_en["text"].slice(0, 3), pa.array([None, 3, 9], pa.int64()), language="en")

    result = transform_batch(batch, EtlSettings(label_target="binary"))

    assert result.batch["label"].to_pylist() == [None, None]
    assert result.rows_dropped == {NEUTRAL_DROPPED_FOR_BINARY: 1}


# -- stop words --------------------------------------------------------------------------------------


def test_stop_words_are_removed_by_each_row_language(marc_es: pa.RecordBatch, marc_en: pa.RecordBatch) -> None:
    # Given Spanish and English reviews in one batch
    spanish, english = marc_es.slice(0, 500), marc_en.slice(0, 500)
    batch = pa.concat_batches([spanish, english])  # row numbers repeat; rows stay in order
    settings = EtlSettings(remove_stop_words=True)

    result = transform_batch(batch, settings).batch

    languages = result["language"].to_pylist()
    tokens = result["tokens"].to_pylist()
    spanish_tokens = {
        token for language, row in zip(languages, tokens, strict=True) if language == "es" for token in row
    }
    english_tokens = {
        token for language, row in zip(languages, tokens, strict=True) if language == "en" for token in row
    }
    assert not spanish_tokens & set(stop_words_for("es").to_pylist())
    assert not english_tokens & set(stop_words_for("en").to_pylist())
    assert {"calidad", "producto", "pequeño"} <= spanish_tokens
    assert {"quality", "product"} <= english_tokens


def test_a_row_is_cleaned_with_the_stop_words_of_its_own_language(marc_es: pa.RecordBatch) -> None:
    # The same Spanish review, labelled Spanish, English, and unknown (falls back to default_language=en)
    text = marc_es["text"][row_with(marc_es, "Un engaño con las medidas")].as_py()
    batch = pa.concat_batches(
        [canonical(pa.array([text]), pa.array([1]), language=language) for language in ("es", "en", None)]
    )

    by_language = transform_batch(batch, EtlSettings(remove_stop_words=True)).batch["tokens"].to_pylist()

    assert by_language[0] == ["engaño", "medidas", "mide", "15", "centímetros", "pone"]
    # English lists "un", "con", "de" and "que"; the Spanish articles and "menos" stay
    assert by_language[1] == ["engaño", "las", "medidas", "mide", "15", "centímetros", "menos", "los", "pone"]
    assert by_language[2] == by_language[1]


def test_stop_words_come_from_stopwordsiso_normalised_like_the_reviews() -> None:
    english, spanish = set(stop_words_for("en").to_pylist()), set(stop_words_for("es").to_pylist())

    assert {"the", "and", "it's", "don't"} <= english
    assert {"el", "la", "que", "también", "está"} <= spanish
    assert len(english) > 0.95 * len(stopwordsiso.stopwords("en"))
    assert all(word == word.lower() and " " not in word for word in english | spanish)


def test_exceptions_keep_words_a_sentiment_model_needs(marc_en: pa.RecordBatch) -> None:
    row = row_with(marc_en, " not ")
    batch = marc_en.slice(row, 1)

    without = tokens_of(batch, EtlSettings(remove_stop_words=True))
    kept = tokens_of(batch, EtlSettings(remove_stop_words=True, stop_word_exceptions=frozenset({"not", "no"})))

    assert "not" not in without[row] and "not" in kept[row]


def test_a_review_of_only_stop_words_is_dropped_as_such(marc_en: pa.RecordBatch) -> None:
    text = "It is what it is."
    batch = canonical(pa.array([text, marc_en["text"][0].as_py()]), pa.array([3, 4]), language="en")

    result = transform_batch(batch, EtlSettings(remove_stop_words=True))

    assert result.rows_dropped == {ONLY_STOP_WORDS: 1}
    assert result.rows_out == 1


# -- batch by batch -----------------------------------------------------------------------------------


@pytest.mark.parametrize("remove_stop_words", [False, True])
def test_two_halves_give_what_the_whole_gives(
    gift_card: pa.RecordBatch, marc_es: pa.RecordBatch, remove_stop_words: bool
) -> None:
    # Given a table of two real files, transformed whole and in two uneven halves (sliced, so offsets are not 0)
    table = pa.Table.from_batches([gift_card, marc_es.slice(0, 3000)])
    whole_settings = EtlSettings(remove_stop_words=remove_stop_words, label_target="binary", batch_rows=10**6)
    halves_settings = whole_settings.model_copy(update={"batch_rows": 1111})

    whole, whole_dropped = transform_table(table, whole_settings)
    halves, halves_dropped = transform_table(table, halves_settings)

    assert len(halves.to_batches()) > 2
    assert halves.combine_chunks().equals(whole.combine_chunks())
    assert halves_dropped == whole_dropped
    assert whole.num_rows + sum(whole_dropped.values()) == table.num_rows


# -- configuration and input checks ---------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWS_ETL_REMOVE_STOP_WORDS", "true")
    monkeypatch.setenv("REVIEWS_ETL_STOP_WORD_LANGUAGES", "es, en")
    monkeypatch.setenv("REVIEWS_ETL_STOP_WORD_EXCEPTIONS", "not,no")
    monkeypatch.setenv("REVIEWS_ETL_LABEL_TARGET", "binary")

    settings = EtlSettings()

    assert settings.remove_stop_words and settings.label_target == "binary"
    assert settings.stop_word_languages == ("es", "en")
    assert settings.stop_word_exceptions == frozenset({"not", "no"})
    assert EtlSettings(_env_file=None).combine_title is True


def test_a_language_without_a_stop_word_list_is_refused() -> None:
    with pytest.raises(ValueError, match="no stop-word list"):
        EtlSettings(stop_word_languages=("en", "tlh"))


def test_a_batch_missing_canonical_columns_is_refused(marc_en: pa.RecordBatch) -> None:
    with pytest.raises(NotCanonicalError, match="rating"):
        transform_batch(marc_en.drop_columns(["rating"]), EtlSettings())


def test_wider_source_types_are_accepted(marc_en: pa.RecordBatch) -> None:
    wide = marc_en.slice(0, 50)
    wide = wide.set_column(3, "text", wide["text"].cast(pa.large_string()))
    wide = wide.set_column(4, "rating", wide["rating"].cast(pa.int64()))

    assert transform_batch(wide, EtlSettings()).batch.equals(transform_batch(marc_en.slice(0, 50), EtlSettings()).batch)
