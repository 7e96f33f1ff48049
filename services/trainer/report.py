"""A version's evaluation report: metrics.json, three PNG plots and a one-page HTML page.

Written under monitoring/metrics/{version}/ by the service; built here as bytes from plain values.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in Lambda or a training job

import matplotlib.pyplot as plt
import numpy as np

from reviews_model.model import StackedModel

from .evaluation import Evaluation

TOP_NGRAMS = 12
CONFUSION_PNG = "confusion_matrix.png"
F1_PNG = "f1_per_class.png"
NGRAMS_PNG = "top_ngrams.png"
METRICS_JSON = "metrics.json"
REPORT_HTML = "report.html"
CHOSEN_ON = Path(__file__).with_name("chosen_on.json")
"""Written by `python bench/train.py --record`; shipped with the trainer's code (its images copy this folder)."""


def telling_ngrams(model: StackedModel, top: int = TOP_NGRAMS) -> dict[str, list[tuple[str, float]]]:
    """Per class the logistic head scores (the star grades when it learnt them), its heaviest n-grams."""
    head = next(head for head in model.heads if head.name == "logistic")
    terms = model.vocabulary.terms
    telling: dict[str, list[tuple[str, float]]] = {}
    for index, grade in enumerate(model.scored_classes):
        label = grade if model.head_classes is None else f"{grade} stars"
        weights = head.weights[index]
        best = np.argsort(weights)[::-1][:top]
        telling[label] = [(terms[column], float(weights[column])) for column in best]
    return telling


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def confusion_png(evaluation: Evaluation) -> bytes:
    matrix = np.array(evaluation.confusion)
    figure, axes = plt.subplots(figsize=(1.2 * len(evaluation.classes) + 2.5, 1.2 * len(evaluation.classes) + 2))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(evaluation.classes)), evaluation.classes)
    axes.set_yticks(range(len(evaluation.classes)), evaluation.classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            dark = matrix[row, column] > matrix.max() / 2
            axes.text(
                column, row, str(matrix[row, column]), ha="center", va="center", color="white" if dark else "black"
            )
    axes.set_title("Confusion matrix (test split)")
    return _png(figure)


def f1_png(evaluation: Evaluation) -> bytes:
    figure, axes = plt.subplots(figsize=(1.2 * len(evaluation.classes) + 2.5, 3.5))
    scores = [evaluation.per_class[label].f1 for label in evaluation.classes]
    axes.bar(evaluation.classes, scores, color="#4c72b0")
    axes.axhline(evaluation.macro_f1, color="#c44e52", linestyle="--", label=f"macro-F1 {evaluation.macro_f1:.3f}")
    axes.set_ylim(0, 1)
    axes.set_ylabel("F1")
    axes.legend(loc="lower right")
    axes.set_title("F1 per class (test split)")
    return _png(figure)


def ngrams_png(telling: Mapping[str, list[tuple[str, float]]]) -> bytes:
    figure, all_axes = plt.subplots(1, len(telling), figsize=(3.2 * len(telling), 4.2))
    for axes, (label, terms) in zip(np.atleast_1d(all_axes), telling.items(), strict=True):
        names = [term for term, _ in terms][::-1]
        axes.barh(names, [weight for _, weight in terms][::-1], color="#55a868")
        axes.set_title(label)
        axes.tick_params(axis="y", labelsize=8)
    figure.suptitle("Most telling n-grams per class (logistic head weights)")
    figure.tight_layout()
    return _png(figure)


def metrics_document(evaluation: Evaluation, version: str, details: Mapping[str, Any]) -> dict[str, Any]:
    return {"version": version, **evaluation.model_dump(), **details}


def html_page(evaluation: Evaluation, version: str, details: Mapping[str, Any], images: Mapping[str, bytes]) -> bytes:
    """One self-contained page (images inlined), so it can be opened straight from the bucket or a download."""
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{metrics.precision:.3f}</td><td>{metrics.recall:.3f}</td>"
        f"<td>{metrics.f1:.3f}</td><td>{metrics.support}</td></tr>"
        for label, metrics in evaluation.per_class.items()
    )
    facts = "".join(
        f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td></tr>"
        for name, value in details.items()
        if name != "search"
    )
    search = search_section(details.get("search"))
    chosen = chosen_on_section(chosen_on())
    pictures = "".join(
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(body).decode()}">'
        for name, body in images.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model {html.escape(version)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}}table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}img{{max-width:100%;margin:.5em 0}}</style></head>
<body><h1>Review classifier {html.escape(version)}</h1>
<p>Test split: {evaluation.rows} reviews. Accuracy <b>{evaluation.accuracy:.3f}</b>,
macro-F1 <b>{evaluation.macro_f1:.3f}</b>, weighted F1 {evaluation.weighted_f1:.3f}.</p>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>
<table>{facts}</table>
{chosen}
{search}
{pictures}
</body></html>"""
    return page.encode()


def chosen_on() -> dict[str, Any] | None:
    """The benchmark run the default configuration was chosen on (`python bench/train.py --record`), if any."""
    try:
        document: dict[str, Any] = json.loads(CHOSEN_ON.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document


def chosen_on_section(chosen: Mapping[str, Any] | None) -> str:
    """A note: how the default configuration did on sources it never saw, against the peers, on that date."""
    if not chosen:
        return ""
    systems = list(chosen.get("systems", []))
    loso = chosen.get("loso", {})
    header = "".join(f"<th>{html.escape(system)}</th>" for system in systems)

    def cells(figures: Mapping[str, Any]) -> str:
        return "".join(f"<td>{_objective(figures.get(system))}</td>" for system in systems)

    rows = "".join(
        f"<tr><td>{html.escape(source)}</td><td>{held_out.get('rows_test', '')}</td>{cells(held_out['macro_f1'])}</tr>"
        for source, held_out in loso.get("sources", {}).items()
    )
    mean = f"<tr><th>mean</th><td></td>{cells(loso.get('mean', {}))}</tr>"
    return (
        "<h2>Note: how the default configuration was chosen</h2>"
        f"<p>On {html.escape(str(chosen.get('date')))}, <code>{html.escape(str(chosen.get('command')))}</code> "
        f"(model design {html.escape(str(chosen.get('model_design')))}) trained each system on every English "
        "source of the reference data but one and scored it on that one "
        f"(macro-F1, {html.escape(str(chosen.get('target')))}; the same rows and labels for every system). These "
        "are the figures of that run, not of this version: this version's own figures are its test split's above.</p>"
        f"<table><tr><th>held-out source</th><th>reviews</th>{header}</tr>{rows}{mean}</table>"
    )


def search_section(search: Mapping[str, Any] | None) -> str:
    """The grid search's trials, best first, when the version came out of one."""
    if not search:
        return ""
    best = (search.get("best") or {}).get("training_job")
    trials = sorted(search.get("results", []), key=lambda trial: -(trial.get("objective") or -1.0))
    rows = "".join(
        f"<tr><td>{'&#9733;' if trial['training_job'] == best else ''}</td>"
        f"<td>{html.escape(', '.join(f'{name}={value}' for name, value in trial['parameters'].items()))}</td>"
        f"<td>{_objective(trial.get('objective'))}</td>"
        f"<td>{html.escape(trial['status'])}</td><td>{html.escape(trial['training_job'])}</td></tr>"
        for trial in trials
    )
    return (
        f"<h2>Grid search: {search['trials']} trials ({html.escape(str(search.get('tuning_job')))})</h2>"
        f"<p>Ranked by {html.escape(str(search.get('objective_metric')))}, on validation rows carved out of the "
        "training split; the test split above decided promotion only.</p>"
        "<table><tr><th></th><th>parameters</th><th>objective</th><th>status</th><th>training job</th></tr>"
        f"{rows}</table>"
    )


def _objective(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def report_files(
    evaluation: Evaluation, model: StackedModel, version: str, details: Mapping[str, Any]
) -> dict[str, bytes]:
    """Every file of the report, by name under monitoring/metrics/{version}/."""
    telling = telling_ngrams(model)
    images = {CONFUSION_PNG: confusion_png(evaluation), F1_PNG: f1_png(evaluation), NGRAMS_PNG: ngrams_png(telling)}
    document = metrics_document(evaluation, version, {**details, "telling_ngrams": telling})
    return {
        METRICS_JSON: json.dumps(document, indent=2, default=str).encode(),
        **images,
        REPORT_HTML: html_page(evaluation, version, details, images),
    }
