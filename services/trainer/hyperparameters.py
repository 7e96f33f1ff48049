"""Training settings as SageMaker hyperparameters, and back; the grid search's space.

SageMaker hands a training container its settings only as `/opt/ml/input/config/hyperparameters.json`,
a flat object of strings (moto drops `Environment`, and a tuning job varies hyperparameters, not
environment variables). So every `TrainerSettings` field travels as one hyperparameter, nested fields
joined by dots (`model.max_depth`, `features.min_df`), and the container rebuilds the same settings
from them, with the same validation: a value the settings refuse fails the job with the field named.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .training import TrainerSettings

VERSION = "version"
"""The hyperparameter naming the version the job trains (claimed by the launcher)."""

SearchSpace = Mapping[str, list[str]]

DEFAULT_GRID: dict[str, list[str]] = {
    "features.min_df": ["2", "3"],
    "model.svm_c": ["0.1", "0.3", "1.0"],
    "model.max_depth": ["4", "6"],
}
"""12 combinations: how rare an n-gram may be, the linear SVM head's regularisation, the booster's depth.
Chosen because they moved validation macro-F1 most on the bench data; n-gram length and the learning rate
mattered less (early stopping absorbs most of the learning rate)."""


class HyperparameterError(ValueError):
    """Hyperparameters that do not make valid training settings; the message names each bad one."""


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _as_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def setting_names() -> list[str]:
    """Every hyperparameter a training setting travels as."""
    return sorted(_flatten(TrainerSettings.model_construct().model_dump(mode="json")))


def to_hyperparameters(settings: TrainerSettings, version: str) -> dict[str, str]:
    """Every training setting, flattened and as strings, plus the version the job trains."""
    flat = _flatten(settings.model_dump(mode="json"))
    return {**{name: _as_string(value) for name, value in sorted(flat.items())}, VERSION: version}


def from_hyperparameters(values: Mapping[str, str]) -> tuple[TrainerSettings, str]:
    """(the training settings, the version) from a job's hyperparameters; HyperparameterError if they are not valid.

    Built from these values and the defaults only, never from the container's environment.
    """
    known = set(setting_names())
    unknown = sorted(set(values) - known - {VERSION})
    problems = [f"unknown hyperparameter {name!r}" for name in unknown]
    if VERSION not in values:
        problems.append(f"no {VERSION!r} hyperparameter: the launcher names the version a job trains")
    nested: dict[str, Any] = {}
    for name, value in values.items():
        if name in known:
            *parents, leaf = name.split(".")
            level = nested
            for parent in parents:
                level = level.setdefault(parent, {})
            level[leaf] = value
    try:
        # model_validate, not the constructor: BaseSettings' constructor would also read the environment.
        settings = TrainerSettings.model_validate(nested)
    except ValidationError as error:
        problems += [
            f"hyperparameter {'.'.join(str(part) for part in issue['loc'])}={_given(values, issue['loc'])}: "
            f"{issue['msg']}"
            for issue in error.errors()
        ]
        settings = None
    if problems or settings is None:
        raise HyperparameterError("; ".join(problems))
    return settings, values[VERSION]


def _given(values: Mapping[str, str], location: tuple[int | str, ...]) -> str:
    return repr(values.get(".".join(str(part) for part in location), "(missing)"))


# -- the grid ------------------------------------------------------------------------------------------


def check_search_space(space: SearchSpace, max_trials: int) -> None:
    """Refuse a space naming no setting, a value the settings refuse, or more trials than allowed."""
    known = set(setting_names())
    problems = [f"{name!r} is not a training setting" for name in space if name not in known]
    problems += [f"{name!r} has no values" for name, values in space.items() if not values]
    trials = grid_size(space)
    if trials > max_trials:
        problems.append(f"{trials} combinations, more than the {max_trials} allowed (search_max_trials)")
    if not problems:
        defaults = to_hyperparameters(TrainerSettings.model_validate({}), "v0.0")
        for combination in grid(space):
            try:
                from_hyperparameters({**defaults, **combination})
            except HyperparameterError as error:
                problems.append(f"the combination {combination} is not valid: {error}")
                break
    if problems:
        raise HyperparameterError("search space: " + "; ".join(problems))


def grid_size(space: SearchSpace) -> int:
    size = 1
    for values in space.values():
        size *= len(values)
    return size


def grid(space: SearchSpace) -> list[dict[str, str]]:
    """Every combination, in the order a grid search tries them (the last setting varies fastest)."""
    names = list(space)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(space[name] for name in names))]
