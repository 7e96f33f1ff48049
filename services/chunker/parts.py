"""Parts written as S3 multipart uploads, held invisible until every part of the file is written.

Each part is its own multipart upload, opened with its user metadata (the part information the
receiver reads back) and fed in pieces of at least `upload_part_bytes` (S3's minimum is 5 MiB for
every piece but an object's last), so memory holds one piece, never a whole part. No upload is
completed until `complete_all`: the caller first records in the ledger how many parts there are,
and only then do the parts become visible and announce themselves. On any failure the caller calls
`abort_all`, and nothing of the attempt remains.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class MultipartTarget(Protocol):
    """What the parts are written to: `shared.storage.ObjectStore`, or a stand-in for benchmarks."""

    def open_multipart(self, key: str, metadata: dict[str, str], content_type: str = ...) -> str: ...

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str: ...

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> str | None: ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...


@dataclass
class WrittenPart:
    """One part: where it goes, and what has been written to it so far."""

    index: int
    key: str
    upload_id: str
    first_row_number: int
    rows: int = 0
    size: int = 0
    etags: list[str] = field(default_factory=list)
    state: Literal["open", "completed", "aborted"] = "open"


class PartUploads:
    """The open uploads of one file's parts; bytes go to the most recently begun part."""

    def __init__(self, target: MultipartTarget, *, upload_part_bytes: int, content_type: str) -> None:
        self._target = target
        self._upload_part_bytes = upload_part_bytes
        self._content_type = content_type
        # Pieces waiting to be uploaded, joined only at upload time (one copy at most, none for a single piece).
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.parts: list[WrittenPart] = []

    def begin(self, index: int, key: str, first_row_number: int, metadata: dict[str, str]) -> None:
        """Start part `index`; what is still buffered for the previous part is uploaded as its last piece."""
        self._flush()
        upload_id = self._target.open_multipart(key, metadata, self._content_type)
        self.parts.append(WrittenPart(index=index, key=key, upload_id=upload_id, first_row_number=first_row_number))

    @property
    def current(self) -> WrittenPart:
        return self.parts[-1]

    def write(self, data: bytes, rows: int = 0) -> None:
        """Append `data`, holding `rows` data rows, to the current part."""
        current = self.current
        current.size += len(data)
        current.rows += rows
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._upload_part_bytes:
            self._flush()

    def finish_writing(self) -> None:
        """Upload the last piece of the last part. The parts stay invisible until `complete_all`."""
        self._flush()

    def complete_all(self) -> None:
        """Make every part visible, in order (each completion fires the S3 "Object Created" event)."""
        for part in self.parts:
            if part.state == "open":
                self._target.complete_multipart(part.key, part.upload_id, part.etags)
                part.state = "completed"

    def abort_all(self) -> None:
        """Drop every upload not completed; safe to call more than once."""
        self._pending.clear()
        self._pending_bytes = 0
        for part in self.parts:
            if part.state == "open":
                self._target.abort_multipart(part.key, part.upload_id)
                part.state = "aborted"

    def _flush(self) -> None:
        if not self._pending_bytes:
            return
        current = self.current
        body = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        current.etags.append(self._target.upload_part(current.key, current.upload_id, len(current.etags) + 1, body))


class PartStream(io.RawIOBase):
    """The current part as a writable file, for writers that want one (pyarrow's ParquetWriter)."""

    def __init__(self, uploads: PartUploads) -> None:
        super().__init__()
        self._uploads = uploads
        self._position = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._uploads.write(chunk)
        self._position += len(chunk)
        return len(chunk)
