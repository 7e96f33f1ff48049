"""The file ledger: one DynamoDB table recording every file's life (DESIGN §4).

Items, in one table keyed by (`pk`, `sk`):

- `FILE#<file_id>` / `META`: the file's record (where it is, its status, counts, report and outputs;
  for a root file, `parts_done_<stage>`: the set of part indexes that finished each stage, and the
  barrier's counters `<stage>_expected`, `<stage>_done`, `<stage>_complete`, `<stage>_completed_by`);
- `FILE#<file_id>` / other sort keys: a service's own items about a file (the predictor's, in
  services/predictor/prediction_ledger.py), under the partition `file_key` names;
- `MODEL` / …: the trainer's model-version registry (services/trainer/versions.py);
- `idempotency#<stage>` / `<hash>`: Powertools idempotency records, one per object version and stage.

The key scheme, the counter names and the test for a failed condition are spelled here only: the
other modules keeping items in this table import them.

The chunk barrier uses atomic counters: each part's completion is one conditional update of the root
record that adds the part's index to the stage's set of done parts (only if absent) together with
its counts, so a part can never be counted twice and parts may finish before the chunker has said
how many there are; whichever update makes `done == expected` true wins the conditional completion,
once. (One item, not a transaction over a marker item and the record: half the writes, and no
transaction conflicts between parts of the same file finishing together.)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from .events import Dataset, Origin

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

FileStatus = Literal["received", "validating", "chunking", "validated", "chunked", "rejected"]
FINAL_STATUSES: frozenset[str] = frozenset({"validated", "chunked", "rejected"})
BarrierStage = Literal["validation", "etl", "predictions"]

# Object versions are immutable, so an idempotency record may live as long as the data does.
_IDEMPOTENCY_TTL_SECONDS = 90 * 24 * 3600

FILE_PARTITION_PREFIX = "FILE#"
META_SORT_KEY = "META"
"""The sort key of a file's own record, beside the items services keep under the same partition."""
MODEL_PARTITION = "MODEL"
"""The partition of the model-version registry."""

BarrierCounter = Literal["expected", "done", "complete", "completed_by"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def file_id_for(bucket: str, key: str, version: str | None) -> str:
    """A stable id for one version of one object: the same delivery twice maps to the same id.

    `version` is the S3 version id, or the ETag where the bucket is not versioned, so a corrected
    re-upload under the same key is a new file.
    """
    digest = hashlib.sha256(f"{bucket}\x00{key}\x00{version or ''}".encode()).hexdigest()
    return digest[:32]


def file_key(file_id: str) -> str:
    """The partition key of a file's items: its record and whatever services keep about it."""
    return f"{FILE_PARTITION_PREFIX}{file_id}"


def file_id_of(partition_key: str) -> str:
    """The file id a partition key names (the inverse of `file_key`)."""
    return partition_key.removeprefix(FILE_PARTITION_PREFIX)


def record_key(file_id: str) -> dict[str, AttributeValueTypeDef]:
    """The key of a file's record."""
    return to_item({"pk": file_key(file_id), "sk": META_SORT_KEY})


def barrier_counter(stage: BarrierStage, counter: BarrierCounter) -> str:
    """The name, in a root record's `counters`, of one of a stage's barrier counters (e.g. `etl_complete`)."""
    return f"{stage}_{counter}"


def is_conditional_failure(error: ClientError) -> bool:
    """Whether a DynamoDB write was refused because its condition did not hold (not a fault: an answer)."""
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class FileRecord(BaseModel):
    """A file's entry in the ledger."""

    model_config = ConfigDict(extra="ignore")

    file_id: str
    root_file_id: str
    parent_file_id: str | None = None
    correlation_id: str
    bucket: str
    key: str
    version_id: str | None = None
    etag: str = ""
    size: int = 0
    dataset: Dataset | None
    origin: Origin
    part_index: int | None = None
    status: FileStatus = "received"
    stage: str = "receiver"
    reason: str | None = None
    check: str | None = None
    error_key: str | None = None
    report_key: str | None = None
    processed_key: str | None = None
    layout: str | None = None
    detected: dict[str, Any] | None = None
    """The format the validator found (DetectedFormat): the dialect a chunk's parts are read in."""
    rows_in: int = 0
    rows_out: int = 0
    rows_dropped: dict[str, int] = Field(default_factory=dict)
    first_dropped_rows: dict[str, list[int]] = Field(default_factory=dict)
    stages: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)
    received_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_root(self) -> bool:
        return self.file_id == self.root_file_id


_COMPLETED_BY_COUNT = -1
"""`completed_by` when the barrier completed as its part count was set (every part was already done)."""


class BarrierState(BaseModel):
    """Where a root file stands in one stage's part barrier."""

    expected: int | None
    done: int
    completed_now: bool = Field(description="True for exactly one caller: the one whose write completed it.")
    completed_by: int | None = Field(
        default=None,
        description="The part whose delivery completed the barrier (-1: setting the part count did), once complete.",
    )

    def completed_by_part(self, part_index: int) -> bool:
        """Whether this part completed the barrier, in this delivery or in an earlier one.

        A delivery that completed the barrier and then crashed before announcing it is delivered
        again; the retry must announce it (`completed_now` is False for it), or nobody ever will.
        Consumers of the announcement are idempotent, so announcing twice is safe; never is not.
        """
        return self.completed_by == part_index


def _storable(value: Any) -> Any:
    """DynamoDB takes numbers as Decimal, never float."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _storable(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_storable(inner) for inner in value]
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """Plain values → DynamoDB attribute values (for services keeping their own items in the ledger table)."""
    return {name: _serializer.serialize(_storable(value)) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → plain values (ints and floats, not Decimals)."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the records hold ints and floats."""
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    return value


class FileLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- records --------------------------------------------------------------------------------

    def register(self, record: FileRecord) -> bool:
        """Add a file's record unless one exists; True when this call created it."""
        item = to_item({"pk": file_key(record.file_id), "sk": META_SORT_KEY, **record.model_dump()})
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def get(self, file_id: str) -> FileRecord | None:
        response = self._client.get_item(TableName=self._table, Key=record_key(file_id), ConsistentRead=True)
        if "Item" not in response:
            return None
        return FileRecord.model_validate(from_item(response["Item"]))

    def update(self, file_id: str, **fields: Any) -> None:
        """Set top-level fields of a record (status, stage, reason, keys, …)."""
        fields["updated_at"] = time.time()
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        self._client.update_item(
            TableName=self._table,
            Key=record_key(file_id),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )

    def set_stage_status(self, file_id: str, stage: str, status: str) -> None:
        """Record a downstream stage's status for a file (e.g. etl=completed, predictions=waiting_for_model)."""
        self._client.update_item(
            TableName=self._table,
            Key=record_key(file_id),
            UpdateExpression="SET stages.#stage = :status, updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#stage": stage},
            ExpressionAttributeValues=to_item({":status": status, ":now": time.time()}),
        )

    def files(self, *, roots_only: bool = False) -> Iterator[FileRecord]:
        """Every file record (a scan: the ledger holds files, not rows)."""
        paginator = self._client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :meta",
            ExpressionAttributeValues={":meta": {"S": META_SORT_KEY}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                record = FileRecord.model_validate(from_item(item))
                if record.is_root or not roots_only:
                    yield record

    # -- the part barrier -----------------------------------------------------------------------

    def parts_expected(self, root_file_id: str, stage: BarrierStage = "validation") -> int | None:
        """How many parts a root file was split into, once the chunker has said (before any part is visible)."""
        record = self.get(root_file_id)
        return None if record is None else record.counters.get(barrier_counter(stage, "expected"))

    def set_parts_expected(
        self, root_file_id: str, stage: BarrierStage, expected: int, *, part_index: int | None = None
    ) -> BarrierState:
        """Record how many parts `stage` waits for; `part_index`: the part whose delivery sets it, if any."""
        response = self._client.update_item(
            TableName=self._table,
            Key=record_key(root_file_id),
            UpdateExpression="SET counters.#expected = :expected",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#expected": barrier_counter(stage, "expected")},
            ExpressionAttributeValues=to_item({":expected": expected}),
            ReturnValues="ALL_NEW",
        )
        return self._try_complete(root_file_id, stage, from_item(response["Attributes"]), part_index)

    def record_part_done(
        self, root_file_id: str, stage: BarrierStage, part_index: int, adds: Mapping[str, int] | None = None
    ) -> BarrierState:
        """Count part `part_index` of a root file as done with `stage`, once, adding `adds` to its counters.

        `adds` are extra counters summed on the root's `counters` map (rows in/out, rows dropped by
        reason, …); they are added in the same conditional update that records the part as done, so
        a redelivered part adds nothing.
        """
        increments = {barrier_counter(stage, "done"): 1, **(adds or {})}
        names = {f"#c{i}": name for i, name in enumerate(increments)} | {"#parts": f"parts_done_{stage}"}
        values = to_item({f":c{i}": amount for i, amount in enumerate(increments.values())})
        values |= {":part": {"NS": [str(part_index)]}, ":index": {"N": str(part_index)}}
        additions = [f"counters.#c{i} :c{i}" for i in range(len(increments))] + ["#parts :part"]
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=record_key(root_file_id),
                UpdateExpression="ADD " + ", ".join(additions),
                ConditionExpression="attribute_exists(pk) AND NOT contains(#parts, :index)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            # This part was already counted by an earlier delivery (or the root is unknown).
            record = self.get(root_file_id)
            if record is None:
                raise LookupError(f"root file {root_file_id} is not in the ledger") from error
            return self._try_complete(root_file_id, stage, record.model_dump(), part_index)
        return self._try_complete(root_file_id, stage, from_item(response["Attributes"]), part_index)

    def _try_complete(
        self, root_file_id: str, stage: BarrierStage, root: Mapping[str, Any], part_index: int | None
    ) -> BarrierState:
        counters = root.get("counters", {})
        expected = counters.get(barrier_counter(stage, "expected"))
        done = int(counters.get(barrier_counter(stage, "done"), 0))
        if expected is None or done < expected:
            return BarrierState(expected=expected, done=done, completed_now=False)
        completer = _COMPLETED_BY_COUNT if part_index is None else part_index
        if barrier_counter(stage, "complete") in counters:
            return BarrierState(
                expected=expected,
                done=done,
                completed_now=False,
                completed_by=counters.get(barrier_counter(stage, "completed_by")),
            )
        try:
            self._client.update_item(
                TableName=self._table,
                Key=record_key(root_file_id),
                UpdateExpression="SET counters.#complete = :one, counters.#completer = :completer",
                ConditionExpression="attribute_not_exists(counters.#complete)",
                ExpressionAttributeNames={
                    "#complete": barrier_counter(stage, "complete"),
                    "#completer": barrier_counter(stage, "completed_by"),
                },
                ExpressionAttributeValues=to_item({":one": 1, ":completer": completer}),
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            # Another delivery completed it between our read and our write: read who did.
            record = self.get(root_file_id)
            winner = record.counters.get(barrier_counter(stage, "completed_by")) if record else None
            return BarrierState(expected=expected, done=done, completed_now=False, completed_by=winner)
        return BarrierState(expected=expected, done=done, completed_now=True, completed_by=completer)

    # -- idempotency ----------------------------------------------------------------------------

    def once_per_version(
        self, stage: str, key_jmespath: str, context: LambdaContext
    ) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
        """Decorate a function of `detail=` so it runs once per object version and stage.

        `key_jmespath` picks the fields of the detail that identify the version (Powertools
        idempotency, with its records in this table). A second delivery returns the first result
        without side effects; one arriving while the first is still running fails and is retried.
        """
        config = idempotency_config(key_jmespath)
        config.register_lambda_context(context)
        return idempotent_function(  # type: ignore[no-any-return]
            data_keyword_argument="detail", persistence_store=self.idempotency_store(stage), config=config
        )

    def idempotency_store(self, stage: str) -> DynamoDBPersistenceLayer:
        """Powertools' idempotency records for one stage, kept in this table beside the files."""
        return DynamoDBPersistenceLayer(
            table_name=self._table,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=f"idempotency#{stage}",
            boto3_client=self._client,
        )


def idempotency_config(key_jmespath: str) -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=key_jmespath,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=_IDEMPOTENCY_TTL_SECONDS,
    )


def create_ledger_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the ledger table with the keys and billing template.yaml declares for LedgerTable.

    `pk` (HASH) and `sk` (RANGE), both strings, billed per request; the template's TTL, point-in-time
    recovery and encryption are settings of the deployed table, not set here.
    """
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
