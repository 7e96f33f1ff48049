"""What a failed check says: the one exception every check raises, turned into the rejection report."""

from __future__ import annotations

from typing import Any

from shared.rejection import Rejection


class CheckFailedError(Exception):
    """A file fails one of the validator's checks; carries what the rejection report says."""

    def __init__(self, check: str, reason: str, **details: Any) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason
        self.details = details

    @property
    def rejection(self) -> Rejection:
        rows_in = self.details.get("rows_in")
        return Rejection(
            check=self.check,
            reason=self.reason,
            details=self.details,
            rows_in=rows_in if isinstance(rows_in, int) else None,
            rows_dropped=self.details.get("rows_dropped") or {},
        )
