"""Seekable, read-only files over bytes that live elsewhere: what a Parquet or CSV reader is handed.

Kept apart from `storage` (which loads botocore) so that pure cores taking such a file as input load no
AWS SDK; `RangedReader` names the ObjectStore it reads from only as a type.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .storage import ObjectStore


class SeekableReader(io.RawIOBase):
    """A read-only, seekable file of a known size; subclasses say where the bytes come from (`readinto`)."""

    def __init__(self, size: int, name: str) -> None:
        super().__init__()
        self._size = size
        self._name = name
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if origin + offset < 0:
            raise ValueError(f"seek before the start of {self._name}")
        self._position = origin + offset
        return self._position


class RangedReader(SeekableReader):
    """A read-only, seekable file over one object version that fetches only the byte ranges asked for.

    For readers that seek (a Parquet footer, then its row groups): nothing is read until asked, and each
    read is one ranged GET of exactly the bytes requested.
    """

    def __init__(self, store: ObjectStore, key: str, version_id: str | None, size: int) -> None:
        super().__init__(size, key)
        self._store = store
        self._key = key
        self._version_id = version_id

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        data = self._store.read_bytes(self._key, self._version_id, (self._position, self._position + wanted - 1))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
