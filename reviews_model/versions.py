"""A model's version number, `vMAJOR.MINOR`.

The major stands for one feature and label configuration, the minor for one training of it; the
registry that claims them (DynamoDB) is the trainer's (`services/trainer/versions.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^v(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a version vMAJOR.MINOR")
        return cls(int(match.group(1)), int(match.group(2)))
