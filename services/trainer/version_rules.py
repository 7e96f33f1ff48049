"""The rules of model versions, as plain functions: which major a configuration stands for, and promotion.

The registry that stores versions (DynamoDB) is versions.py; nothing here reads or writes anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reviews_model.features import FeatureConfig
from reviews_model.model import HEADS, STACK_DESIGN
from reviews_model.versions import Version


def configuration_identity(
    label_target: str, features: FeatureConfig, search_space: Mapping[str, list[str]] | None = None
) -> tuple[str, dict[str, Any]]:
    """(fingerprint, document) of what the model's inputs and outputs are: a change means a new major.

    A grid search may choose the features (e.g. `features.min_df`), so its space is part of what its
    versions stand for: a searched version is never a minor of a plain one.
    """
    document: dict[str, Any] = {
        "label_target": label_target,
        "features": features.model_dump(),
        "design": STACK_DESIGN,
        "heads": list(HEADS),
    }
    if search_space is not None:
        document["search_space"] = {name: list(values) for name, values in sorted(search_space.items())}
    fingerprint = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]
    return fingerprint, document


# -- the promotion rule -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str | None
    """Why not, when not promoted; a note when promoted without a comparison."""


def decide_promotion(
    macro_f1: float,
    floor: float,
    current: Version | None,
    current_macro_f1: float | None,
    current_note: str | None = None,
) -> PromotionDecision:
    """Promote when macro-F1 is above the floor and at least the current model's on the same test split.

    `current_macro_f1` is None when there is no current model or it cannot be scored on this split
    (another label set, or unreadable; `current_note` says which): the floor alone decides then.
    """
    if macro_f1 <= floor:
        return PromotionDecision(False, f"macro-F1 {macro_f1:.4f} is not above the floor {floor:.4f}")
    if current is not None and current_macro_f1 is not None and macro_f1 < current_macro_f1:
        return PromotionDecision(
            False,
            f"macro-F1 {macro_f1:.4f} is below the current model {current}'s {current_macro_f1:.4f} "
            "on the same test split",
        )
    return PromotionDecision(True, current_note)


def superseded(
    version: Version, claimed_at: float, current: Version | None, current_claimed_at: float | None
) -> PromotionDecision | None:
    """Not promoted: the current version was launched after this one, so it read every file this one did.

    Training jobs run side by side and finish in any order; an earlier launch that finishes last is
    measured on its own, older test split and could otherwise replace a model trained on more data.
    """
    if current is None or current_claimed_at is None or current_claimed_at <= claimed_at:
        return None
    return PromotionDecision(
        False, f"{current}, launched after {version} on a corpus that holds all of its files, is already current"
    )
