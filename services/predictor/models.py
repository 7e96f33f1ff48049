"""Which model version is current, and loaded models kept across invocations.

A warm Lambda container predicts many parts: loading a model (reading its files, checking their
hashes, building the booster) is done once per version. `models/current.json` is re-checked with
one HEAD per invocation and re-read only when its ETag changes, so a promotion is picked up by the
next message without reloading anything on the others.

Every model is read through the model package's loader (`reviews_model.artifacts.load_model`), which
refuses anything that is not plain data; a pointer that is not a JSON document naming a version's
own prefix is refused here, before anything under it is read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from botocore.exceptions import ClientError

from reviews_model.artifacts import load_model, read_current_pointer
from reviews_model.prediction import Classifier
from shared import layout
from shared.storage import ObjectStore

# Without s3:ListBucket on the key, S3 answers 403 where the object is missing: both mean "no model yet".
_ABSENT = frozenset({"403", "404", "AccessDenied", "Forbidden", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class CurrentPointer:
    etag: str
    version: str


class ModelCache:
    """The current version's pointer (by ETag) and up to `capacity` loaded versions, most recent kept."""

    def __init__(self, capacity: int = 3) -> None:
        self._capacity = capacity
        self._pointer: CurrentPointer | None = None
        self._classifiers: OrderedDict[str, Classifier] = OrderedDict()

    def current_version(self, store: ObjectStore) -> str | None:
        """The version models/current.json names, or None before any promotion."""
        key = layout.current_model_pointer_key()
        try:
            head = store.head(key)
        except ClientError as error:
            if error.response["Error"]["Code"] not in _ABSENT:
                raise
            head = None
        if head is None:
            return None
        if self._pointer is None or self._pointer.etag != head.etag:
            self._pointer = CurrentPointer(etag=head.etag, version=read_current_pointer(store.read_bytes(key)))
        return self._pointer.version

    def classifier(self, store: ObjectStore, version: str, threads: int | None = None) -> Classifier:
        """The model of `version`, from models/vX.Y/ (immutable), loaded once; raises UnsafeModelError."""
        cached = self._classifiers.get(version)
        if cached is not None:
            self._classifiers.move_to_end(version)
            return cached
        classifier = Classifier.of(version, load_model(store, layout.model_prefix(version)), threads)
        self._classifiers[version] = classifier
        while len(self._classifiers) > self._capacity:
            self._classifiers.popitem(last=False)
        return classifier
