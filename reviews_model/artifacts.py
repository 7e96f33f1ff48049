"""A model version as plain data files, and the loader that refuses anything else.

Files of a version (all under one prefix, e.g. models/v1.3/):

    manifest.json       format, version, label target, classes, the classes the heads score, feature
                        configuration, heads, stacked feature names, the sha256 of every other file;
                        written LAST
    vocabulary.json     the n-gram terms, in TF-IDF column order
    idf.npy             float32 (terms,)
    lexicon.npy         float32 (2, terms): each term's positive and negative lexicon valence
    heads/<name>.weights.npy   float32 (classes, terms)
    heads/<name>.bias.npy      float32 (classes,)
    booster.ubj         the XGBoost booster, UBJSON model format

No pickle anywhere: `.npy` files are read with allow_pickle=False, the booster with XGBoost's own
model loader, JSON with json. `load_model` refuses a prefix holding any file outside that list of
kinds (a pickle, a joblib dump, …) and any file whose bytes differ from the manifest's hash, so a
reader never runs code from storage nor mixes files of two versions.

The trainer writes versions with `model_files` and `write_model`; the predictor reads them with `load_model`.
It also reads the previous format (`.../stacked-model/1`: whole-review TF-IDF only, heads on the target's
classes, no lexicon), so a deployment keeps predicting with its current model until the new trainer
promotes one.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost as xgb

from .features import FeatureConfig, FloatArray, Vocabulary
from .model import LinearHead, StackedModel

if TYPE_CHECKING:
    # Only a type: importing shared.storage would bring botocore into a SageMaker or Batch job.
    from shared.storage import ObjectStore

FORMAT = "amazon-reviews-nlp/stacked-model/2"
FORMAT_1 = "amazon-reviews-nlp/stacked-model/1"
FORMAT_1_FEATURES = {"head_window": 0, "tail_window": 0, "lexicon": False}
"""What format 1 computed, in today's terms."""
MANIFEST = "manifest.json"
VOCABULARY = "vocabulary.json"
IDF = "idf.npy"
LEXICON = "lexicon.npy"
BOOSTER = "booster.ubj"
DATA_SUFFIXES = (".json", ".npy", ".ubj")
_PICKLE_PROTOCOL_MARK = b"\x80"


class UnsafeModelError(ValueError):
    """A model location holding something that is not plain model data, or files that do not match."""


def _npy(array: FloatArray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _read_npy(name: str, data: bytes) -> FloatArray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as error:
        raise UnsafeModelError(f"{name} is not a plain numeric array: {error}") from error
    if not isinstance(array, np.ndarray) or array.dtype != np.float32:
        raise UnsafeModelError(f"{name} is not a float32 array")
    return array


def model_files(model: StackedModel, version: str, extra: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Every file of a version, by name relative to its prefix; the manifest is the last entry."""
    files: dict[str, bytes] = {
        VOCABULARY: json.dumps(model.vocabulary.terms, ensure_ascii=False).encode(),
        IDF: _npy(model.vocabulary.idf),
    }
    if model.vocabulary.lexicon is not None:
        files[LEXICON] = _npy(model.vocabulary.lexicon)
    for head in model.heads:
        files[f"heads/{head.name}.weights.npy"] = _npy(head.weights)
        files[f"heads/{head.name}.bias.npy"] = _npy(head.bias)
    files[BOOSTER] = bytes(model.booster.save_raw(raw_format="ubj"))
    manifest = {
        "format": FORMAT,
        "version": version,
        "label_target": model.label_target,
        "classes": list(model.classes),
        "head_classes": None if model.head_classes is None else list(model.head_classes),
        "features": model.vocabulary.config.model_dump(),
        "heads": [{"name": head.name, "centred": head.centred} for head in model.heads],
        "feature_names": model.feature_names,
        "xgboost_version": xgb.__version__,
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in files.items()},
        **(extra or {}),
    }
    files[MANIFEST] = json.dumps(manifest, indent=2).encode()
    return files


def refuse_unsafe_names(names: list[str]) -> None:
    unsafe = sorted(name for name in names if not name.endswith(DATA_SUFFIXES))
    if unsafe:
        raise UnsafeModelError(
            f"refusing to load a model next to files that are not plain data ({', '.join(unsafe)}): "
            f"a model is only {', '.join(DATA_SUFFIXES)} files"
        )


def model_from_files(files: Mapping[str, bytes]) -> StackedModel:
    """The model from its files (as written by `model_files`), checking kinds and hashes first."""
    refuse_unsafe_names(list(files))
    for name, body in files.items():
        if body.startswith(_PICKLE_PROTOCOL_MARK):
            raise UnsafeModelError(f"{name} is a pickle; refusing to load it")
    if MANIFEST not in files:
        raise UnsafeModelError(f"no {MANIFEST}: not a model location, or a version still being written")
    manifest = json.loads(files[MANIFEST])
    if manifest.get("format") not in (FORMAT, FORMAT_1):
        raise UnsafeModelError(f"unknown model format {manifest.get('format')!r}; expected {FORMAT!r}")
    expected: dict[str, str] = manifest["files"]
    extra = sorted(set(files) - set(expected) - {MANIFEST})
    if extra:
        raise UnsafeModelError(f"files not listed in the manifest: {extra}")
    for name, digest in expected.items():
        if name not in files:
            raise UnsafeModelError(f"{name} is listed in the manifest but missing")
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise UnsafeModelError(f"{name} does not match the manifest's hash (a mix of two versions?)")
    booster = xgb.Booster()
    booster.load_model(bytearray(files[BOOSTER]))
    features = dict(manifest["features"])
    if manifest["format"] == FORMAT_1:
        features.update(FORMAT_1_FEATURES)
    config = FeatureConfig.model_validate(features)
    terms = [str(term) for term in json.loads(files[VOCABULARY])]
    lexicon = _read_npy(LEXICON, files[LEXICON]) if LEXICON in files else None
    if config.lexicon and (lexicon is None or lexicon.shape != (2, len(terms))):
        raise UnsafeModelError(f"{LEXICON} is missing or does not have one column per term")
    vocabulary = Vocabulary(config=config, terms=terms, idf=_read_npy(IDF, files[IDF]), lexicon=lexicon)
    heads = tuple(
        LinearHead(
            name=head["name"],
            weights=_read_npy(head["name"], files[f"heads/{head['name']}.weights.npy"]),
            bias=_read_npy(head["name"], files[f"heads/{head['name']}.bias.npy"]),
            centred=bool(head["centred"]),
        )
        for head in manifest["heads"]
    )
    return StackedModel(
        label_target=manifest["label_target"],
        classes=tuple(manifest["classes"]),
        vocabulary=vocabulary,
        heads=heads,
        booster=booster,
        head_classes=None if manifest.get("head_classes") is None else tuple(manifest["head_classes"]),
    )


def write_model(store: ObjectStore, prefix: str, files: Mapping[str, bytes]) -> None:
    """Write a version's files under `prefix`, the manifest last (a reader wants the manifest first)."""
    for name, body in files.items():
        if name != MANIFEST:
            store.write_bytes(prefix + name, body, _content_type(name))
    store.write_bytes(prefix + MANIFEST, files[MANIFEST], "application/json")


def read_model_files(store: ObjectStore, prefix: str) -> dict[str, bytes]:
    names = [key[len(prefix) :] for key in store.keys(prefix)]
    refuse_unsafe_names(names)  # before reading a byte of them
    return {name: store.read_bytes(prefix + name) for name in names}


def load_model(store: ObjectStore, prefix: str) -> StackedModel:
    """The model stored under `prefix` (models/vX.Y/ or models/current/); raises UnsafeModelError."""
    return model_from_files(read_model_files(store, prefix))


def read_current_pointer(body: bytes) -> str:
    """The version a models/current.json body names, checked before anything is loaded from it.

    The one reader of the pointer: refuses (UnsafeModelError) what is not a JSON document, names no
    version, names something that is not a version, or names a prefix other than that version's own.
    """
    from shared import layout  # here, not at the top: shared.layout imports the event models (Powertools)

    from .versions import Version

    pointer_key = layout.current_model_pointer_key()
    try:
        pointer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnsafeModelError(f"{pointer_key} is not a JSON document; refusing to read it as a model") from error
    if not isinstance(pointer, dict) or not isinstance(pointer.get("version"), str):
        raise UnsafeModelError(f"{pointer_key} does not name a model version")
    version: str = pointer["version"]
    try:
        Version.parse(version)
    except ValueError as error:
        raise UnsafeModelError(f"{pointer_key} names {version!r}, which is not a model version") from error
    prefix = pointer.get("model_prefix")
    if prefix != layout.model_prefix(version):
        raise UnsafeModelError(f"{pointer_key} names {prefix!r}, which is not the prefix of {version!r}")
    return version


def _content_type(name: str) -> str:
    return "application/json" if name.endswith(".json") else "application/octet-stream"
