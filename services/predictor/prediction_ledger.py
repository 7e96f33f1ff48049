"""The predictor's own items in the file ledger table, beside the root file's `META` record.

- `FILE#<root>` / `META`, attribute `pinned_model_version`: the one model version that predicts every
  part of the root file, set by the first part to be predicted (pinning).
- `FILE#<root>` / `PENDING#predictions#<index>`: a part that arrived before any model was promoted,
  holding its EtlCompleted detail; deleted once the part is counted. `lease_until` marks a worker
  predicting it, so two promotions in a row do not predict the same part twice at once.
- `FILE#<root>` / `PREDICTED#<index>`: what predicting a part wrote (keys, rows, checksums), read back
  for the manifest when the last part is done.

shared/ledger.py owns the files' records, the barrier and the key scheme (`file_key`, `record_key`);
these items are the predictor's business.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from shared.events import EtlCompleted
from shared.ledger import file_id_of, file_key, from_item, is_conditional_failure, record_key, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_PENDING = "PENDING#predictions#"
_PREDICTED = "PREDICTED#"
_STAGE = "predictions"


class PartOutput(BaseModel):
    """What predicting one part wrote; `key` is None for a part skipped upstream (nothing to predict)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    part_index: int
    key: str | None
    sha256: str | None
    csv_key: str | None = None
    csv_sha256: str | None = None
    rows: int
    model_version: str
    skipped_reason: str | None = None


class PredictionLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- pinning --------------------------------------------------------------------------------

    def pin_model_version(self, root_file_id: str, version: str) -> str:
        """The version pinned for the root file: `version` if none was yet, else the one pinned first.

        One atomic update: `if_not_exists` keeps an earlier pin, and the update returns what is stored,
        so the first part's version wins however many parts race.
        """
        response = self._client.update_item(
            TableName=self._table,
            Key=record_key(root_file_id),
            UpdateExpression="SET pinned_model_version = if_not_exists(pinned_model_version, :version)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":version": version}),
            ReturnValues="ALL_NEW",
        )
        return str(from_item(response["Attributes"])["pinned_model_version"])

    # -- parts waiting for a model --------------------------------------------------------------

    def park(self, detail: EtlCompleted) -> None:
        """Keep a part until a model is promoted (a redelivery overwrites it with the same detail)."""
        self._client.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "pk": file_key(detail.root_file_id),
                    "sk": f"{_PENDING}{detail.part_index or 0:05d}",
                    "detail": detail.model_dump_json(),
                    "parked_at": int(time.time()),
                }
            ),
        )

    def parked(self, root_file_id: str) -> list[EtlCompleted]:
        """The root file's parts waiting for a model, in part order."""
        return [EtlCompleted.model_validate_json(item["detail"]) for item in self._items(root_file_id, _PENDING)]

    def roots_with_parked_parts(self) -> list[str]:
        """Every root file with a part waiting for a model (a scan; at scale a sparse index on PENDING items)."""
        roots: set[str] = set()
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(sk, :pending)",
            ProjectionExpression="pk",
            ExpressionAttributeValues=to_item({":pending": _PENDING}),
            ConsistentRead=True,
        )
        for page in pages:
            roots.update(file_id_of(str(from_item(item)["pk"])) for item in page.get("Items", []))
        return sorted(roots)

    def take_lease(self, detail: EtlCompleted, seconds: int) -> bool:
        """Claim a waiting part for `seconds`; False when it is gone or another worker holds it."""
        now = int(time.time())
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._pending_key(detail),
                UpdateExpression="SET lease_until = :until",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeValues=to_item({":until": now + seconds, ":now": now}),
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def release(self, detail: EtlCompleted) -> None:
        """The part is counted: it waits no more."""
        self._client.delete_item(TableName=self._table, Key=self._pending_key(detail))

    def _pending_key(self, detail: EtlCompleted) -> dict[str, AttributeValueTypeDef]:
        return to_item({"pk": file_key(detail.root_file_id), "sk": f"{_PENDING}{detail.part_index or 0:05d}"})

    def mark_predicting_if_waiting(self, root_file_id: str) -> None:
        """Move the root's status off `waiting_for_model` once its waiting parts are predicted.

        Conditional, so that it never overwrites `completed` written meanwhile by the part that
        finished the file.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key=record_key(root_file_id),
                UpdateExpression="SET stages.#stage = :predicting, updated_at = :now",
                ConditionExpression="stages.#stage = :waiting",
                ExpressionAttributeNames={"#stage": _STAGE},
                ExpressionAttributeValues=to_item(
                    {":predicting": "predicting", ":waiting": "waiting_for_model", ":now": int(time.time())}
                ),
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    # -- what each part wrote -------------------------------------------------------------------

    def record_output(self, root_file_id: str, output: PartOutput) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "pk": file_key(root_file_id),
                    "sk": f"{_PREDICTED}{output.part_index:05d}",
                    "output": output.model_dump_json(),
                }
            ),
        )

    def outputs(self, root_file_id: str) -> list[PartOutput]:
        """Every part's output recorded for the root file, in part order."""
        return [PartOutput.model_validate_json(item["output"]) for item in self._items(root_file_id, _PREDICTED)]

    def _items(self, root_file_id: str, sort_key_prefix: str) -> Iterator[dict[str, Any]]:
        """The root file's items whose sort key starts with `sort_key_prefix`, in sort-key (part) order."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=to_item({":pk": file_key(root_file_id), ":prefix": sort_key_prefix}),
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield from_item(item)
