"""One small interface in front of S3 for the pipeline bucket, so logic above it deals in keys and bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    version_id: str | None
    metadata: dict[str, str]


class ObjectStore:
    """The pipeline bucket. Every method takes keys built by `shared.layout`."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo | None:
        try:
            response = (
                self._client.head_object(Bucket=self.bucket, Key=key, VersionId=version_id)
                if version_id
                else self._client.head_object(Bucket=self.bucket, Key=key)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            etag=response["ETag"].strip('"'),
            version_id=response.get("VersionId"),
            metadata=dict(response.get("Metadata", {})),
        )

    def read_bytes(self, key: str, version_id: str | None = None, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's bytes; `byte_range` is inclusive, as in HTTP."""
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            arguments["VersionId"] = version_id
        if byte_range:
            arguments["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        return self._client.get_object(**arguments)["Body"].read()

    def write_bytes(
        self,
        key: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {}
        )

    def write_json(self, key: str, document: Any) -> None:
        self.write_bytes(key, json.dumps(document, indent=2, default=str).encode(), "application/json")

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def move(self, source_key: str, target_key: str, source_version_id: str | None = None) -> None:
        """Copy then delete, so repeating a half-done move finishes it instead of losing the object.

        With `source_version_id`, exactly that version is copied and deleted: a newer upload under the
        same key (a corrected file) is left alone.
        """
        copy_source: dict[str, str] = {"Bucket": self.bucket, "Key": source_key}
        if source_version_id:
            copy_source["VersionId"] = source_version_id
        try:
            self._client.copy_object(Bucket=self.bucket, Key=target_key, CopySource=copy_source)  # type: ignore[arg-type]
        except ClientError as error:
            # Already moved by an earlier attempt: the source is gone but the target is there.
            if error.response["Error"]["Code"] not in ("NoSuchKey", "NoSuchVersion", "404"):
                raise
            if self.head(target_key) is None:
                raise
        if source_version_id:
            self._client.delete_object(Bucket=self.bucket, Key=source_key, VersionId=source_version_id)
        else:
            self._client.delete_object(Bucket=self.bucket, Key=source_key)

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    # -- multipart uploads: an object written in pieces, invisible until completed -------------------

    def open_multipart(self, key: str, metadata: dict[str, str], content_type: str = "application/octet-stream") -> str:
        """Start a multipart upload; the user metadata is fixed now. Returns the upload id."""
        response = self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=metadata
        )
        return response["UploadId"]

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        """Upload piece `part_number` (1-based; every piece but an object's last must be ≥ 5 MiB). Returns its ETag."""
        response = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part_number, Body=body
        )
        return response["ETag"]

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> str | None:
        """Join the uploaded pieces, in order, into the object: only now does it exist (and S3 announce it).

        Returns the new object's version id.
        """
        response = self._client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, 1)]},
        )
        return response.get("VersionId")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an upload and its pieces; an upload already gone (aborted or completed) is not an error."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("NoSuchUpload", "404"):
                raise

    def open_multipart_uploads(self, prefix: str) -> list[tuple[str, str]]:
        """(key, upload id) of every upload under `prefix` that was started and neither completed nor aborted."""
        uploads: list[tuple[str, str]] = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            uploads.extend((upload["Key"], upload["UploadId"]) for upload in page.get("Uploads", []))
        return uploads
