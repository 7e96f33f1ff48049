"""The report's note on what the default configuration was chosen on: the recorded benchmark run, with its date."""

from __future__ import annotations

from reviews_model.model import STACK_DESIGN
from services.trainer.report import chosen_on, chosen_on_section


def test_the_recorded_benchmark_run_is_shipped_with_the_trainer() -> None:
    # The file `python bench/train.py --record` writes, beside the report code (the images copy that folder)
    recorded = chosen_on()
    assert recorded is not None
    assert recorded["loso"]["sources"] and set(recorded["loso"]["mean"]) == set(recorded["systems"])


def test_the_recorded_run_is_of_the_design_the_trainer_ships() -> None:
    # A change of design must be re-recorded, or every report would show another model's figures.
    recorded = chosen_on()
    assert recorded is not None
    assert recorded["model_design"] == STACK_DESIGN, "run `python bench/train.py --record`"


def test_the_note_shows_the_date_the_sources_and_every_systems_figures() -> None:
    recorded = {
        "date": "2026-12-01",
        "command": "python bench/train.py --record",
        "model_design": "design/2",
        "target": "sentiment3",
        "systems": ["amazon-reviews-nlp", "tfidf-logreg"],
        "loso": {
            "sources": {
                "amazon-alexa": {"rows_test": 2235, "macro_f1": {"amazon-reviews-nlp": 0.63, "tfidf-logreg": 0.6}}
            },
            "mean": {"amazon-reviews-nlp": 0.67, "tfidf-logreg": 0.64},
        },
    }
    page = chosen_on_section(recorded)
    assert "2026-12-01" in page and "design/2" in page
    assert "<td>amazon-alexa</td><td>2235</td><td>0.6300</td><td>0.6000</td>" in page
    assert "<th>mean</th><td></td><td>0.6700</td><td>0.6400</td>" in page
    assert chosen_on_section(None) == ""
