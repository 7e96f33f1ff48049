"""The model registry: version numbers, claimed atomically, and the current-model marker, in DynamoDB.

Version numbers live in the ledger's DynamoDB table, under `pk = "MODEL"` (`shared.ledger.MODEL_PARTITION`):

- `sk = "MAJOR#000001"`: major 1 and the fingerprint of the feature + label configuration it stands
  for. A configuration never seen before claims the next major with a conditional put
  (attribute_not_exists), so two trainings of a new configuration agree on one major.
- `sk = "v1.3"`: version 1.3, claimed by a conditional put before anything is written under
  models/v1.3/; its status, metrics and promotion decision are set on it as training goes on.
  A claim that loses the race moves to the next minor: two trainings started together get two
  distinct, consecutive versions and never skip one.
- `sk = "RUN#<job name>"`: one SageMaker training or tuning job the trainer launched: the version it
  trains, what it covers (trigger root, the roots whose ETL was complete at launch, the current version
  it is compared with), its deadline, and its status: `running` until the finisher has finished it,
  then SageMaker's final status (Completed, Failed, Stopped). The events do not carry the job's
  arguments; this item does. Finishing is a conditional update from `running`, so of two deliveries
  of one state change, one finishes the job.
- `sk = "TRIAL#<tuning job>#<trial job>"`: a grid search trial's final state, parameters and objective,
  from the trial's own state-change event (the tuning job's event names only the best trial).
- `sk = "CURRENT"`: the promoted version. Promotion is a compare-and-swap on it (it must still name
  the version the new one was compared with), so of two trainings finishing together, the second
  is compared again with the first before it can replace it.

This module is the registry's data access (one small class in front of DynamoDB, as the ledger is);
the rules it serves (which configuration a major stands for, whether a version is promoted) are
plain functions in version_rules.py.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from reviews_model.versions import Version
from shared.ledger import MODEL_PARTITION, is_conditional_failure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

CURRENT = "CURRENT"
RUNNING = "running"
_MAJOR = "MAJOR#"
_RUN = "RUN#"
_TRIAL = "TRIAL#"
_MAX_CLAIM_ATTEMPTS = 100


class VersionClaimError(RuntimeError):
    """No version number could be claimed (the table kept changing under every attempt)."""


class ModelRegistry:
    """Version numbers and the current-model marker, in the ledger table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _items(self, sk_prefix: str) -> list[dict[str, AttributeValueTypeDef]]:
        paginator = self._client.get_paginator("query")
        items: list[dict[str, AttributeValueTypeDef]] = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": MODEL_PARTITION}, ":prefix": {"S": sk_prefix}},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
        return items

    def _put_new(self, item: dict[str, AttributeValueTypeDef]) -> bool:
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def major_for(self, fingerprint: str, configuration: dict[str, Any]) -> int:
        """The major version of this configuration, claiming the next one for a new configuration."""
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            majors: dict[int, str] = {
                int(item["sk"]["S"][len(_MAJOR) :]): item["fingerprint"]["S"] for item in self._items(_MAJOR)
            }
            for major, known in majors.items():
                if known == fingerprint:
                    return major
            candidate = max(majors, default=0) + 1
            if self._put_new(
                {
                    "pk": {"S": MODEL_PARTITION},
                    "sk": {"S": f"{_MAJOR}{candidate:06d}"},
                    "fingerprint": {"S": fingerprint},
                    "configuration": {"S": json.dumps(configuration, sort_keys=True)},
                    "created_at": {"N": str(time.time())},
                }
            ):
                return candidate
        raise VersionClaimError(f"could not claim a major version for configuration {fingerprint}")

    def claim_version(self, fingerprint: str, configuration: dict[str, Any], claimed_by: str) -> Version:
        """The next version of this configuration, claimed for this training alone.

        A version this claimant claimed earlier and never launched (its invocation died between the
        claim and the launch) is taken again, so a retried trigger skips no version number.
        """
        major = self.major_for(fingerprint, configuration)
        for item in self._items(f"v{major}."):
            if item.get("claimed_by", {}).get("S") == claimed_by and item["status"]["S"] == "claimed":
                return Version.parse(item["sk"]["S"])
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            minors = [Version.parse(item["sk"]["S"]).minor for item in self._items(f"v{major}.")]
            candidate = Version(major, max(minors) + 1 if minors else 0)
            if self._put_new(
                {
                    "pk": {"S": MODEL_PARTITION},
                    "sk": {"S": str(candidate)},
                    "status": {"S": "claimed"},
                    "fingerprint": {"S": fingerprint},
                    "claimed_by": {"S": claimed_by},
                    "claimed_at": {"N": str(time.time())},
                }
            ):
                return candidate
        raise VersionClaimError(f"could not claim a version of major {major}")

    def record(self, version: Version, *, status: str, details: dict[str, Any]) -> None:
        """Set a version's status and details (metrics, decision, keys) as JSON."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": MODEL_PARTITION}, "sk": {"S": str(version)}},
            UpdateExpression="SET #status = :status, details = :details, updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": {"S": status},
                ":details": {"S": json.dumps(details, default=str)},
                ":now": {"N": str(time.time())},
            },
        )

    def claimed_at(self, version: Version) -> float:
        """When the version was claimed (seconds since the epoch): it names the version's training job."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": MODEL_PARTITION}, "sk": {"S": str(version)}}, ConsistentRead=True
        )
        return float(response["Item"]["claimed_at"]["N"])

    # -- training jobs ------------------------------------------------------------------------------

    def record_run(
        self, job_name: str, version: Version, *, kind: str, deadline: float, details: dict[str, Any]
    ) -> None:
        """Record a launched job as running (again, harmlessly, when a retried launch records it twice)."""
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": MODEL_PARTITION},
                "sk": {"S": _RUN + job_name},
                "status": {"S": RUNNING},
                "version": {"S": str(version)},
                "kind": {"S": kind},
                "launched_at": {"N": str(time.time())},
                "deadline": {"N": str(deadline)},
                "details": {"S": json.dumps(details, default=str)},
            },
            ConditionExpression="attribute_not_exists(pk) OR #status = :running",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":running": {"S": RUNNING}},
        )

    def run(self, job_name: str) -> dict[str, Any] | None:
        """A launched job's record: job_name, status, version, kind, launched_at, deadline and its details."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": MODEL_PARTITION}, "sk": {"S": _RUN + job_name}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _run_of(item)

    def runs(self, *, running_only: bool = False) -> list[dict[str, Any]]:
        """Every launched job (or those still running), oldest first."""
        runs = [_run_of(item) for item in self._items(_RUN)]
        if running_only:
            runs = [run for run in runs if run["status"] == RUNNING]
        return sorted(runs, key=lambda run: run["launched_at"])

    def finish_run(self, job_name: str, status: str, outcome: dict[str, Any]) -> bool:
        """Mark a running job finished with SageMaker's final status; False if it was finished already."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": MODEL_PARTITION}, "sk": {"S": _RUN + job_name}},
                UpdateExpression="SET #status = :status, outcome = :outcome, finished_at = :now",
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":running": {"S": RUNNING},
                    ":outcome": {"S": json.dumps(outcome, default=str)},
                    ":now": {"N": str(time.time())},
                },
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def record_trial(self, tuning_job: str, trial: dict[str, Any]) -> None:
        """Keep a search trial's final state (its own state-change event): the tuning job's names only the best."""
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": MODEL_PARTITION},
                "sk": {"S": f"{_TRIAL}{tuning_job}#{trial['training_job']}"},
                "trial": {"S": json.dumps(trial, default=str)},
            },
        )

    def trials(self, tuning_job: str) -> list[dict[str, Any]]:
        """The trials of a tuning job whose final state has been seen."""
        return [json.loads(item["trial"]["S"]) for item in self._items(f"{_TRIAL}{tuning_job}#")]

    def versions(self) -> list[dict[str, Any]]:
        """Every claimed version, oldest first: version, status and recorded details."""
        entries = []
        for item in self._items("v"):
            entry: dict[str, Any] = {"version": item["sk"]["S"], "status": item["status"]["S"]}
            if "details" in item:
                entry.update(json.loads(item["details"]["S"]))
            entries.append(entry)
        return sorted(entries, key=lambda entry: Version.parse(entry["version"]))

    def current(self) -> Version | None:
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": MODEL_PARTITION}, "sk": {"S": CURRENT}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else Version.parse(item["version"]["S"])

    def swap_current(self, expected: Version | None, new: Version) -> bool:
        """Make `new` current if `expected` still is (None: no current yet); False when it no longer is."""
        condition = "attribute_not_exists(pk)" if expected is None else "version = :expected"
        values: dict[str, AttributeValueTypeDef] = {":new": {"S": str(new)}, ":now": {"N": str(time.time())}}
        if expected is not None:
            values[":expected"] = {"S": str(expected)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": MODEL_PARTITION}, "sk": {"S": CURRENT}},
                UpdateExpression="SET version = :new, promoted_at = :now",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True


def _run_of(item: dict[str, AttributeValueTypeDef]) -> dict[str, Any]:
    run: dict[str, Any] = {
        "job_name": str(item["sk"]["S"])[len(_RUN) :],
        "status": item["status"]["S"],
        "version": item["version"]["S"],
        "kind": item["kind"]["S"],
        "launched_at": float(item["launched_at"]["N"]),
        "deadline": float(item["deadline"]["N"]),
        **json.loads(item["details"]["S"]),
    }
    if "outcome" in item:
        run["outcome"] = json.loads(item["outcome"]["S"])
    return run
