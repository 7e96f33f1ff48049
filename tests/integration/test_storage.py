"""shared.storage.ObjectStore against a versioned S3 bucket (moto, in-process)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from shared import layout
from shared.storage import ObjectStore
from tests.data_paths import SHARED_DATA
from tests.integration.conftest import AwsClients

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GIFT_CARD = SHARED_DATA / "aws-pds-us-gift-card-sample" / "amazon_reviews_us_Gift_Card_v1_00.tsv"
RAW_KEY = "raw/train/amazon_reviews_us_Gift_Card_v1_00.tsv"


@pytest.fixture(scope="module")
def s3(aws: AwsClients) -> S3Client:
    return aws.s3


@pytest.fixture
def store(s3: S3Client) -> ObjectStore:
    """A new versioned bucket of its own for each test, in the module's in-process AWS."""
    bucket = f"pipeline-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return ObjectStore(s3, bucket)


@pytest.fixture(scope="module")
def gift_card() -> bytes:
    return GIFT_CARD.read_bytes()


def versions(s3: S3Client, bucket: str, key: str) -> tuple[list[str], list[str]]:
    """(object version ids, delete marker version ids) of one key."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    objects = [item["VersionId"] for item in listing.get("Versions", []) if item["Key"] == key]
    markers = [item["VersionId"] for item in listing.get("DeleteMarkers", []) if item["Key"] == key]
    return objects, markers


def test_head_of_a_missing_key_is_none(store: ObjectStore) -> None:
    assert store.head("raw/train/missing.tsv") is None


def test_head_of_a_deleted_key_is_none(store: ObjectStore, s3: S3Client) -> None:
    store.write_bytes(RAW_KEY, b"x")
    s3.delete_object(Bucket=store.bucket, Key=RAW_KEY)

    assert store.head(RAW_KEY) is None


def test_head_reports_size_unquoted_etag_version_and_metadata(store: ObjectStore, gift_card: bytes) -> None:
    store.write_bytes(RAW_KEY, gift_card, metadata={"part-index": "3", "correlation-id": "c-1"})

    info = store.head(RAW_KEY)

    assert info is not None
    assert info.size == len(gift_card) == 301983
    assert info.etag and '"' not in info.etag
    assert info.version_id
    assert info.metadata == {"part-index": "3", "correlation-id": "c-1"}


def test_head_and_read_of_an_older_version_see_that_version(store: ObjectStore, s3: S3Client) -> None:
    store.write_bytes(RAW_KEY, b"first upload\n")
    first_version = store.head(RAW_KEY)
    store.write_bytes(RAW_KEY, b"corrected upload, longer\n")
    assert first_version is not None and first_version.version_id

    old = store.head(RAW_KEY, first_version.version_id)

    assert old is not None and old.size == len(b"first upload\n")
    assert store.read_bytes(RAW_KEY, first_version.version_id) == b"first upload\n"
    assert store.read_bytes(RAW_KEY) == b"corrected upload, longer\n"


def test_read_bytes_with_an_inclusive_byte_range(store: ObjectStore, gift_card: bytes) -> None:
    store.write_bytes(RAW_KEY, gift_card)

    header = store.read_bytes(RAW_KEY, byte_range=(0, 10))
    middle = store.read_bytes(RAW_KEY, byte_range=(1000, 1999))
    tail = store.read_bytes(RAW_KEY, byte_range=(len(gift_card) - 5, len(gift_card) - 1))

    assert header == gift_card[:11] == b"marketplace"
    assert middle == gift_card[1000:2000]
    assert tail == gift_card[-5:]


def test_json_round_trip(store: ObjectStore) -> None:
    report = {"check": "size", "reason": "0 bytes is below the minimum of 1", "details": {"line": 3}}

    store.write_json("errors/train/raw/x.tsv.report.json", report)

    assert store.read_json("errors/train/raw/x.tsv.report.json") == report


def test_move_is_copy_then_delete(store: ObjectStore, s3: S3Client, gift_card: bytes) -> None:
    store.write_bytes(RAW_KEY, gift_card)
    target = layout.error_key("train", RAW_KEY)

    store.move(RAW_KEY, target)

    assert store.head(RAW_KEY) is None
    assert store.read_bytes(target) == gift_card
    source_objects, source_markers = versions(s3, store.bucket, RAW_KEY)
    assert len(source_objects) == 1  # versioning keeps the original, behind a delete marker
    assert len(source_markers) == 1


def test_repeating_a_completed_move_neither_raises_nor_loses_the_object(store: ObjectStore, gift_card: bytes) -> None:
    # Given a move that completed, but whose message is redelivered (the worker died before acking)
    store.write_bytes(RAW_KEY, gift_card)
    target = layout.error_key("train", RAW_KEY)
    store.move(RAW_KEY, target)

    # When the same move runs again
    store.move(RAW_KEY, target)

    # Then the file is still where it was moved to
    assert store.read_bytes(target) == gift_card
    assert store.head(RAW_KEY) is None


def test_repeating_a_completed_move_of_a_named_version(store: ObjectStore, gift_card: bytes) -> None:
    store.write_bytes(RAW_KEY, gift_card)
    info = store.head(RAW_KEY)
    assert info is not None
    target = layout.error_key("train", RAW_KEY)
    store.move(RAW_KEY, target, info.version_id)

    store.move(RAW_KEY, target, info.version_id)

    assert store.read_bytes(target) == gift_card
    assert store.head(RAW_KEY) is None


def test_moving_an_older_version_leaves_a_newer_upload_in_place(store: ObjectStore) -> None:
    # Given a rejected upload, then a corrected one under the same key before the rejection is carried out
    store.write_bytes(RAW_KEY, b"")
    rejected = store.head(RAW_KEY)
    assert rejected is not None
    store.write_bytes(RAW_KEY, b"corrected\n")
    target = layout.error_key("train", RAW_KEY)

    # When the rejected version is moved to errors/
    store.move(RAW_KEY, target, rejected.version_id)

    # Then errors/ holds the rejected version and raw/ still shows the corrected upload
    assert store.read_bytes(target) == b""
    assert store.read_bytes(RAW_KEY) == b"corrected\n"


def test_finishing_a_move_interrupted_after_the_copy(store: ObjectStore, s3: S3Client, gift_card: bytes) -> None:
    store.write_bytes(RAW_KEY, gift_card)
    target = layout.error_key("train", RAW_KEY)
    s3.copy_object(Bucket=store.bucket, Key=target, CopySource={"Bucket": store.bucket, "Key": RAW_KEY})

    store.move(RAW_KEY, target)

    assert store.head(RAW_KEY) is None
    assert store.read_bytes(target) == gift_card


def test_moving_a_key_that_never_existed_raises(store: ObjectStore) -> None:
    # Nothing was moved before, so there is nothing to finish: the caller must hear about it.
    with pytest.raises(ClientError):
        store.move("raw/train/never-there.tsv", "errors/train/raw/never-there.tsv")


def test_keys_lists_only_the_prefix(store: ObjectStore) -> None:
    for key in ("raw/train/a.tsv", "raw/train/b.tsv", "raw/inference/c.tsv", "raw/trainer.txt"):
        store.write_bytes(key, b"x")

    assert sorted(store.keys("raw/train/")) == ["raw/train/a.tsv", "raw/train/b.tsv"]
    assert list(store.keys("processed/")) == []


def test_keys_follows_pagination_past_1000_objects(store: ObjectStore) -> None:
    # 1,005 keys: one more page than list_objects_v2 returns at once. They are put straight into
    # moto's backend (1,005 PutObject calls through boto3 take seconds).
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    started = time.monotonic()
    keys = [f"chunks/train/root/part-{index:05d}.csv" for index in range(1005)]
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(store.bucket, key, b"")
    store.write_bytes("chunks/train/rooted/other.csv", b"")
    if time.monotonic() - started > 3:
        pytest.skip("creating 1,005 objects in moto took more than 3 s")

    listed = list(store.keys("chunks/train/root/"))

    assert listed == keys
