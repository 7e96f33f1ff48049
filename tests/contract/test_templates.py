"""The SAM templates keep the deployment contract of DESIGN §5.

Every consumer is rule → its own queue (with a DLQ) → function reporting partial batch failures;
every function reads and writes only its own bucket prefixes; the bucket is private, encrypted,
versioned and TLS-only; each service template deploys on its own; the zip functions build, and
every image function builds from services/Dockerfile with the repository root as a whitelisted
context. Which rule routes which event is proven separately, by putting events on a bus built from
these templates (test_event_routing.py).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from reviews_pipeline.templates import load_template
from shared import layout
from shared.sagemaker_events import (
    FINAL_TRAINING_STATUSES,
    SAGEMAKER_SOURCE,
    TRAINING_JOB_STATE_CHANGE,
    TUNING_JOB_STATE_CHANGE,
)

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("receiver", "validator", "chunker", "etl", "trainer", "predictor", "monitor")
TEMPLATES = {"root": REPO / "template.yaml"} | {name: REPO / "services" / name / "template.yaml" for name in SERVICES}
SERVICE_PARAMETERS = {"BucketName", "EventBusName", "LedgerTableName", "AlertTopicArn"}
# What a service takes beyond the shared four: the trainer's SageMaker settings, each set on its
# functions as the environment variable its settings read (services/trainer/jobs.py).
SERVICE_SETTINGS: dict[str, dict[str, str]] = {
    "trainer": {
        "JobNamePrefix": "REVIEWS_TRAINER_JOB_PREFIX",
        "TrainingImageUri": "REVIEWS_TRAINER_TRAINING_IMAGE",
        "TrainingInstanceType": "REVIEWS_TRAINER_INSTANCE_TYPE",
        "TrainingMaxRuntimeSeconds": "REVIEWS_TRAINER_MAX_RUNTIME_SECONDS",
        "TrainingSearch": "REVIEWS_TRAINER_SEARCH",
    }
}
# Settings that name a resource of the service's own template rather than a parameter.
SERVICE_RESOURCE_SETTINGS: dict[str, dict[str, Any]] = {
    "trainer": {"REVIEWS_TRAINER_SAGEMAKER_ROLE_ARN": {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}}
}

# Every function of the pipeline: the service whose template defines it, and its handler.
HANDLERS = {
    "ReceiverFunction": ("receiver", "services.receiver.app.lambda_handler"),
    "ValidatorFunction": ("validator", "services.validator.app.lambda_handler"),
    "ChunkerFunction": ("chunker", "services.chunker.app.lambda_handler"),
    "EtlFunction": ("etl", "services.etl.app.lambda_handler"),
    "TrainerFunction": ("trainer", "services.trainer.app.lambda_handler"),
    "TrainingFinisherFunction": ("trainer", "services.trainer.app.finisher_handler"),
    "PredictorFunction": ("predictor", "services.predictor.app.lambda_handler"),
    "MonitorFunction": ("monitor", "services.monitor.app.lambda_handler"),
}
# Light functions are zip packages with SharedLayer; those needing pyarrow, pandas or XGBoost are
# container images (DESIGN §5): pyarrow and numpy alone are ~195 MB unzipped, and with the shared
# layer would pass Lambda's 250 MB limit for a zip.
ZIP_FUNCTIONS = frozenset({"ReceiverFunction", "MonitorFunction"})
IMAGE_FUNCTIONS = frozenset(HANDLERS) - ZIP_FUNCTIONS
DOCKERFILE = REPO / "services" / "Dockerfile"
# SageMaker's container contract, not Lambda's: its own image (services/trainer/Dockerfile.training).
TRAINING_DOCKERFILE = REPO / "services" / "trainer" / "Dockerfile.training"

READ = frozenset({"s3:GetObject"})
READ_VERSIONS = frozenset({"s3:GetObject", "s3:GetObjectVersion"})
WRITE = frozenset({"s3:PutObject"})
DELETE = frozenset({"s3:DeleteObject"})
DELETE_VERSIONS = frozenset({"s3:DeleteObject", "s3:DeleteObjectVersion"})
MULTIPART = frozenset({"s3:AbortMultipartUpload"})

# What each function may do to the objects under each prefix (DESIGN §3), and nothing else; that it
# calls each of these actions somewhere is test_iam_actions.py's, read from its code.
S3_OBJECT_ACCESS: dict[str, dict[str, frozenset[str]]] = {
    "ReceiverFunction": {"raw/": READ_VERSIONS, "chunks/": READ_VERSIONS},
    # A rejected file is moved to errors/ (ObjectStore.move): that version copied there, then deleted
    # from where it arrived; a repeated move heads the copy in errors/.
    "ValidatorFunction": {
        "raw/": READ_VERSIONS | DELETE_VERSIONS,
        "chunks/": READ_VERSIONS | DELETE_VERSIONS,
        "processed/": WRITE,
        "errors/": READ | WRITE,
    },
    # Parts go out as multipart uploads (an abandoned one aborted); a file that cannot be split is
    # moved to errors/ as above.
    "ChunkerFunction": {
        "raw/": READ_VERSIONS | DELETE_VERSIONS,
        "chunks/": READ_VERSIONS | DELETE_VERSIONS | WRITE | MULTIPART,
        "errors/": READ | WRITE,
    },
    # A processed file the ETL cannot transform is moved to errors/ as above, by key (no version id).
    "EtlFunction": {"processed/": READ | DELETE, "etl/": WRITE, "errors/": READ | WRITE},
    # The launcher reads the corpus's ratings and the current pointer; SageMaker trains; the finisher
    # reads the job's model.tar.gz (models/training-jobs/) and writes the version, pointer and report.
    "TrainerFunction": {"etl/train/": READ, "models/": READ},
    "TrainingFinisherFunction": {"models/": READ | WRITE, "monitoring/metrics/": WRITE},
    "PredictorFunction": {"etl/inference/": READ, "models/": READ, "predictions/": WRITE},
    "MonitorFunction": {"monitoring/logs/": WRITE, "monitoring/alerts/": WRITE},
}
# The s3:prefix values each function may list the bucket with (none for the others). Those that head
# or get keys that may be missing need it too: without s3:ListBucket S3 answers 403, not 404.
S3_LIST_PREFIXES: dict[str, set[str]] = {
    "ReceiverFunction": {"raw/*", "chunks/*"},
    "ValidatorFunction": {"raw/*", "chunks/*", "errors/*"},
    "ChunkerFunction": {"raw/*", "chunks/*", "errors/*"},
    "EtlFunction": {"etl/*", "processed/*", "errors/*"},
    "TrainerFunction": {"etl/train/*", "models/*"},
    "TrainingFinisherFunction": {"models/*"},
    "PredictorFunction": {"etl/inference/*", "models/*", "predictions/*"},
}

# Other actions on the bucket itself, which take no s3:prefix condition (none for the others). The
# chunker lists the multipart uploads a dead attempt left open under its parts' prefix, to abort them.
S3_BUCKET_ACTIONS: dict[str, set[str]] = {"ChunkerFunction": {"s3:ListBucketMultipartUploads"}}

BUCKET_ARN = "arn:${AWS::Partition}:s3:::${BucketName}"
TABLE_ARN = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${LedgerTableName}"
BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"
# This stack's SageMaker jobs: their ARNs hold the job name in lower case.
TRAINING_JOB_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/${JobNamePrefix}-v*"
TUNING_JOB_ARN = (
    "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:hyper-parameter-tuning-job/${JobNamePrefix}-v*"
)
SCOPED_SERVICES = ("s3", "dynamodb", "events", "sns", "sqs", "sagemaker", "iam", "logs", "ecr")
# Actions IAM authorises on no resource: a statement of these alone says "*".
RESOURCELESS_ACTIONS = frozenset({"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"})

# ---- reading templates -------------------------------------------------------------------------


@cache
def load(name: str) -> dict[str, Any]:
    return load_template(TEMPLATES[name])


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def referenced_id(value: Any) -> str | None:
    """`{"Fn::GetAtt": ["Queue", "Arn"]}` or `{"Ref": "Queue"}` → "Queue"; anything else → None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def sub_text(value: Any) -> str | None:
    """The string of a `!Sub`, in either of its forms; None for anything else."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub if isinstance(sub, str) else sub[0])
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_property(template: dict[str, Any], function: dict[str, Any], name: str, default: Any = None) -> Any:
    """A function property, falling back on the template's Globals as SAM does."""
    properties = function.get("Properties", {})
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name, default)


@dataclass(frozen=True)
class Consumer:
    """One function and the queue it consumes."""

    service: str
    function_id: str
    function: dict[str, Any]
    queue_id: str
    queue: dict[str, Any]


def consumers(service: str) -> list[Consumer]:
    template = load(service)
    queues = resources_of_type(template, "AWS::SQS::Queue")
    found = []
    for function_id, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue_id = referenced_id(event["Properties"]["Queue"])
            assert queue_id in queues, f"{function_id} consumes {queue_id}, which is not a queue of {service}"
            found.append(Consumer(service, function_id, function, queue_id, queues[queue_id]))
    return found


def all_consumers() -> Iterator[Consumer]:
    for service in SERVICES:
        yield from consumers(service)


def function_statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for policy in function["Properties"].get("Policies", []) for statement in policy["Statement"]]


def functions() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for service in SERVICES:
        for function_id, function in resources_of_type(load(service), "AWS::Serverless::Function").items():
            yield service, function_id, function


def function_resource(function_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = load(HANDLERS[function_id][0])["Resources"][function_id]
    return resource


# ---- every template -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_cfn_lint_finds_nothing(name: str) -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATES[name])
    assert not matches, "\n".join(str(match) for match in matches)


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_policy_on_data_services_grants_every_resource(name: str) -> None:
    template = load(name)
    documents: list[tuple[str, dict[str, Any]]] = [
        (logical_id, {"Statement": function_statements(function)})
        for logical_id, function in resources_of_type(template, "AWS::Serverless::Function").items()
    ]
    for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
        for logical_id, resource in resources_of_type(template, policy_type).items():
            properties = resource["Properties"]
            documents += [(logical_id, policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
            if "PolicyDocument" in properties:
                documents.append((logical_id, properties["PolicyDocument"]))
    for logical_id, document in documents:
        for statement in as_list(document["Statement"]):
            actions = [str(action) for action in as_list(statement.get("Action", []))]
            if not any(action == "*" or action.split(":")[0] in SCOPED_SERVICES for action in actions):
                continue
            if set(actions) <= RESOURCELESS_ACTIONS:
                continue
            assert "NotResource" not in statement and "NotAction" not in statement, (logical_id, statement)
            assert "*" not in as_list(statement["Resource"]), f"{logical_id}: {actions} on every resource"


# ---- service templates --------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_service_deploys_on_its_own(service: str) -> None:
    """Its parameters are the four the root passes (and its own settings), and it refers to nothing
    outside itself."""
    template = load(service)
    parameters = template.get("Parameters", {})
    assert set(parameters) == SERVICE_PARAMETERS | set(SERVICE_SETTINGS.get(service, {}))
    assert all(parameters[name]["Type"] == "String" for name in SERVICE_PARAMETERS)
    known = set(parameters) | set(template["Resources"]) | set(template.get("Conditions", {}))

    def names_used(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            assert "Fn::ImportValue" not in node, f"{service} imports a value from another stack"
            if "Ref" in node and len(node) == 1:
                yield str(node["Ref"])
            elif "Fn::GetAtt" in node and len(node) == 1:
                yield str(node["Fn::GetAtt"][0])
            elif (text := sub_text(node)) is not None:
                explicit = node["Fn::Sub"][1] if isinstance(node["Fn::Sub"], list) else {}
                for variable in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if variable not in explicit:
                        yield variable.split(".")[0]
            for value in node.values():
                yield from names_used(value)
        elif isinstance(node, list):
            for value in node:
                yield from names_used(value)

    used = set(names_used(template["Resources"])) | set(names_used(template.get("Globals", {})))
    for resource in template["Resources"].values():
        used |= set(as_list(resource.get("DependsOn", [])))
    unknown = {name for name in used if not name.startswith("AWS::")} - known
    assert not unknown, f"{service} refers to {sorted(unknown)}, which it does not define"


@pytest.mark.parametrize("service", SERVICES)
def test_functions_get_the_pipeline_settings_from_the_environment(service: str) -> None:
    variables = load(service)["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == {
        "REVIEWS_BUCKET": {"Ref": "BucketName"},
        "REVIEWS_EVENT_BUS": {"Ref": "EventBusName"},
        "REVIEWS_LEDGER_TABLE": {"Ref": "LedgerTableName"},
        "REVIEWS_ALERT_TOPIC_ARN": {"Ref": "AlertTopicArn"},
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": "AmazonReviewsNLP",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    } | {variable: {"Ref": parameter} for parameter, variable in SERVICE_SETTINGS.get(service, {}).items()} | (
        SERVICE_RESOURCE_SETTINGS.get(service, {})
    )


def test_every_function_has_its_handler_in_its_service() -> None:
    found = {function_id: service for service, function_id, _ in functions()}
    assert found == {function_id: service for function_id, (service, _) in HANDLERS.items()}


def test_light_functions_are_zips_and_heavy_ones_images() -> None:
    found = {function_id: function["Properties"].get("PackageType", "Zip") for _, function_id, function in functions()}
    assert {function_id for function_id, package in found.items() if package == "Zip"} == ZIP_FUNCTIONS
    assert {function_id for function_id, package in found.items() if package == "Image"} == IMAGE_FUNCTIONS


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_handler_is_a_function_of_its_service_in_the_repository(function_id: str) -> None:
    """The module the template names is a file of the service's package, defining the handler."""
    service, handler = HANDLERS[function_id]
    function = function_resource(function_id)
    properties = function["Properties"]
    named = properties["ImageConfig"]["Command"] if function_id in IMAGE_FUNCTIONS else [properties["Handler"]]
    assert named == [handler]
    *package, name = handler.split(".")
    assert package[:2] == ["services", service]
    module = REPO.joinpath(*package).with_suffix(".py")
    assert module.is_file(), f"{handler}: no {module.relative_to(REPO)}"
    # Read, not imported: an image function's module needs dependencies this environment may lack.
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert name in defined, f"{module.relative_to(REPO)} defines no function {name}"


@pytest.mark.parametrize("function_id", sorted(ZIP_FUNCTIONS))
def test_zip_function_builds_with_its_services_makefile_and_gets_shared_from_the_layer(function_id: str) -> None:
    service, handler = HANDLERS[function_id]
    template = load(service)
    function = template["Resources"][function_id]
    properties = function["Properties"]
    service_dir = TEMPLATES[service].parent
    assert properties["Handler"] == handler
    assert function_property(template, function, "Runtime") == "python3.11"
    assert (service_dir / properties["CodeUri"]).resolve() == service_dir
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert properties["Layers"] == [{"Ref": "SharedLayer"}]


@pytest.mark.parametrize("function_id", sorted(IMAGE_FUNCTIONS))
def test_image_function_builds_from_the_one_dockerfile_for_its_service(function_id: str) -> None:
    service, _ = HANDLERS[function_id]
    function = function_resource(function_id)
    properties = function["Properties"]
    assert not {"Handler", "Runtime", "CodeUri", "Layers"} & set(properties), function_id
    metadata = function["Metadata"]
    service_dir = TEMPLATES[service].parent
    assert metadata["DockerContext"] == "../.."
    context = (service_dir / metadata["DockerContext"]).resolve()
    assert context == REPO
    # SAM reads Dockerfile relative to DockerContext.
    assert metadata["Dockerfile"] == "services/Dockerfile"
    assert context / metadata["Dockerfile"] == DOCKERFILE and DOCKERFILE.is_file()
    assert metadata["DockerBuildArgs"] == {"SERVICE": service}
    assert metadata["DockerTag"]
    assert (service_dir / "requirements.txt").is_file()


def _makefile_targets(makefile: Path) -> set[str]:
    targets: set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([^\s#][^:=]*):(?!=)", line)
        if match:
            targets |= set(match.group(1).split())
    return targets


@pytest.mark.parametrize("service", SERVICES)
def test_service_has_a_makefile_and_the_shared_layer_exactly_for_its_zip_functions(service: str) -> None:
    template = load(service)
    service_dir = TEMPLATES[service].parent
    zip_ids = set(resources_of_type(template, "AWS::Serverless::Function")) & ZIP_FUNCTIONS
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")
    makefile = service_dir / "Makefile"
    if not zip_ids:
        assert not layers, f"{service} has no zip function for {sorted(layers)}"
        assert not makefile.exists(), f"{service} has no zip function for {makefile.relative_to(REPO)} to build"
        return
    assert set(layers) == {"SharedLayer"}
    layer = layers["SharedLayer"]
    assert (service_dir / layer["Properties"]["ContentUri"]).resolve() == REPO / "shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert "build-SharedLayer" in _makefile_targets(REPO / "shared" / "Makefile")
    builds = {target for target in _makefile_targets(makefile) if target.startswith("build-")}
    assert builds == {f"build-{function_id}" for function_id in zip_ids}


def _instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[str] = []
    pending = ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        instructions.append(" ".join(pending.split()))
        pending = ""
    return instructions


def test_the_dockerfile_installs_the_services_wheels_before_its_code() -> None:
    """One Dockerfile for every function's image: the service is a build argument, dependencies come first."""
    dockerfiles = [path.relative_to(REPO) for path in REPO.glob("services/**/Dockerfile")]
    assert dockerfiles == [Path("services/Dockerfile")]
    instructions = _instructions(DOCKERFILE)
    assert instructions[0] == "FROM public.ecr.aws/lambda/python:3.12"
    assert "ARG SERVICE" in instructions

    def position(prefix: str) -> int:
        found = [index for index, instruction in enumerate(instructions) if instruction.startswith(prefix)]
        assert len(found) == 1, f"{prefix!r}: {len(found)} instructions"
        return found[0]

    install = position("RUN pip install")
    assert "--only-binary=:all:" in instructions[install]
    assert "--require-hashes" in instructions[install]
    assert '--target "${LAMBDA_TASK_ROOT}"' in instructions[install]
    assert position("COPY shared/requirements.txt ") < install
    assert position("COPY services/${SERVICE}/requirements.txt ") < install
    assert position("ARG SERVICE") < position("COPY services/${SERVICE}/requirements.txt ")
    # Only SERVICE's own code goes in (no service imports another), with shared/ and reviews_model/,
    # after its dependencies.
    for code in (
        "COPY shared/*.py ${LAMBDA_TASK_ROOT}/shared/",
        "COPY reviews_model/*.py ${LAMBDA_TASK_ROOT}/reviews_model/",
        "COPY services/__init__.py ${LAMBDA_TASK_ROOT}/services/",
        "COPY services/${SERVICE}/ ${LAMBDA_TASK_ROOT}/services/${SERVICE}/",
    ):
        assert position(code) > install, code


def _build_context(root: Path, dockerfile: str = "services/Dockerfile") -> set[str]:
    """The files `sam build` sends as an image's context from `root`, by its default builder (docker-py)."""
    build = pytest.importorskip("docker.utils.build")
    lines = (line.strip() for line in (root / ".dockerignore").read_text(encoding="utf-8").splitlines())
    patterns = [line for line in lines if line and not line.startswith("#")]
    paths = build.exclude_paths(str(root), patterns, dockerfile=dockerfile)
    return {str(path) for path in paths if (root / path).is_file()}


def test_the_build_context_is_only_what_the_images_copy(tmp_path: Path) -> None:
    """The whitelist lets through each image service's modules, configuration and requirements, and
    `shared`: never a virtualenv, tests, templates or bytecode."""
    image_services = sorted({HANDLERS[function_id][0] for function_id in IMAGE_FUNCTIONS})
    wanted = {".dockerignore", "services/Dockerfile", "services/__init__.py", "shared/__init__.py"}
    wanted |= {"shared/events.py", "shared/requirements.txt"}
    shipped = ("__init__.py", "app.py", "requirements.txt", "layouts.json")
    for service in image_services:
        wanted |= {f"services/{service}/{name}" for name in shipped}
    unwanted = {".venv/lib/python3.11/site-packages/pandas/__init__.py", ".git/HEAD", ".tools/sam/bin/sam"}
    unwanted |= {"tests/unit/test_x.py", "samples/reviews.csv", "template.yaml", "pyproject.toml", "README.md"}
    unwanted |= {"shared/Makefile", "shared/__pycache__/events.cpython-311.pyc", "services/__pycache__/x.pyc"}
    unwanted |= {"services/monitor/app.py", "services/monitor/requirements.txt"}
    for service in image_services:
        unwanted |= {f"services/{service}/{name}" for name in ("template.yaml", "Makefile", "__pycache__/app.pyc")}
    for relative in wanted | unwanted:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")
    shutil.copyfile(REPO / ".dockerignore", tmp_path / ".dockerignore")
    assert _build_context(tmp_path) == wanted


def test_the_build_context_holds_every_image_services_code() -> None:
    context = _build_context(REPO)
    assert {"services/Dockerfile", "services/__init__.py", "shared/requirements.txt"} <= context
    assert {str(path.relative_to(REPO)) for path in (REPO / "shared").glob("*.py")} <= context
    for service in sorted({HANDLERS[function_id][0] for function_id in IMAGE_FUNCTIONS}):
        service_dir = REPO / "services" / service
        files = [*service_dir.glob("*.py"), *service_dir.glob("*.json"), service_dir / "requirements.txt"]
        assert {str(path.relative_to(REPO)) for path in files} <= context, service
    assert not any(path.startswith((".venv/", ".tools/", ".git/", "tests/")) for path in context)


@pytest.mark.parametrize("service", SERVICES)
def test_every_function_consumes_one_queue_and_reports_partial_batch_failures(service: str) -> None:
    for function_id, function in resources_of_type(load(service), "AWS::Serverless::Function").items():
        events = list(function["Properties"].get("Events", {}).values())
        assert [event["Type"] for event in events] == ["SQS"], function_id
        assert events[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function_id


@pytest.mark.parametrize("service", SERVICES)
def test_every_queue_is_a_consumer_queue_or_its_dead_letter_queue(service: str) -> None:
    template = load(service)
    queues = set(resources_of_type(template, "AWS::SQS::Queue"))
    consumed = {consumer.queue_id for consumer in consumers(service)}
    dead_letter = {
        referenced_id(consumer.queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for consumer in consumers(service)
    }
    assert queues == consumed | dead_letter
    assert not consumed & dead_letter


@pytest.mark.parametrize("consumer", list(all_consumers()), ids=lambda consumer: consumer.queue_id)
def test_consumer_queue_redrives_to_a_dlq_and_outlasts_its_function(consumer: Consumer) -> None:
    template = load(consumer.service)
    properties = consumer.queue["Properties"]
    redrive = properties["RedrivePolicy"]
    dlq_id = referenced_id(redrive["deadLetterTargetArn"])
    assert dlq_id == consumer.queue_id.removesuffix("Queue") + "DLQ"
    dlq = template["Resources"][dlq_id]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert "RedrivePolicy" not in dlq["Properties"]
    assert 1 <= int(redrive["maxReceiveCount"]) <= 5
    # A DLQ keeps what failed as long as SQS can: 14 days.
    assert dlq["Properties"]["MessageRetentionPeriod"] == 1209600
    # AWS's rule for SQS event sources: a batch must never become visible again while being processed.
    timeout = int(function_property(template, consumer.function, "Timeout", 3))
    assert int(properties["VisibilityTimeout"]) >= 6 * timeout
    for queue in (properties, dlq["Properties"]):
        assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue


@pytest.mark.parametrize("consumer", list(all_consumers()), ids=lambda consumer: consumer.queue_id)
def test_consumer_has_alarms_on_its_dlq_and_its_errors(consumer: Consumer) -> None:
    template = load(consumer.service)
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    name = consumer.queue_id.removesuffix("Queue")
    dlq_alarm = alarms[f"{name}DLQDepthAlarm"]["Properties"]
    assert (dlq_alarm["Namespace"], dlq_alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq_alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{name}DLQ", "QueueName"]}}]
    errors_alarm = alarms[f"{name}ErrorsAlarm"]["Properties"]
    assert (errors_alarm["Namespace"], errors_alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors_alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": consumer.function_id}}]
    for alarm in (dlq_alarm, errors_alarm):
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopicArn"}]


@pytest.mark.parametrize("service", SERVICES)
def test_rules_deliver_to_their_own_services_queues_with_retries_and_a_dlq(service: str) -> None:
    template = load(service)
    dlq_of = {
        consumer.queue_id: referenced_id(consumer.queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for consumer in consumers(service)
    }
    rules = resources_of_type(template, "AWS::Events::Rule")
    assert rules, f"{service} has no rule"
    for rule_id, rule in rules.items():
        properties = rule["Properties"]
        # AWS services (S3's notifications, SageMaker's job state changes) and schedules use the
        # default bus; the pipeline's own events travel on the pipeline bus.
        if "ScheduleExpression" in properties:
            assert "EventPattern" not in properties and "EventBusName" not in properties, rule_id
        elif (sources := properties["EventPattern"].get("source")) and all(
            str(source).startswith("aws.") for source in sources
        ):
            assert "EventBusName" not in properties, rule_id
        else:
            assert properties["EventBusName"] == {"Ref": "EventBusName"}, rule_id
        assert properties["Targets"], rule_id
        for target in properties["Targets"]:
            queue_id = referenced_id(target["Arn"])
            assert queue_id in dlq_of, f"{rule_id} targets {queue_id}, not a consumer queue of {service}"
            assert referenced_id(target["DeadLetterConfig"]["Arn"]) == dlq_of[queue_id], rule_id
            retry = target["RetryPolicy"]
            assert retry["MaximumRetryAttempts"] > 0 and retry["MaximumEventAgeInSeconds"] > 0, rule_id


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_queues_own_rules_may_send_to_it(service: str) -> None:
    template = load(service)
    rules_by_queue: dict[str, set[str]] = {}
    for rule_id, rule in resources_of_type(template, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            rules_by_queue.setdefault(str(referenced_id(target["Arn"])), set()).add(rule_id)
    senders: dict[str, set[str]] = {}
    for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values():
        properties = policy["Properties"]
        for statement in properties["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert as_list(statement["Action"]) == ["sqs:SendMessage"]
            source_arns = as_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
            rule_ids = {referenced_id(arn) for arn in source_arns}
            assert {referenced_id(queue) for queue in properties["Queues"]} == {
                referenced_id(resource) for resource in as_list(statement["Resource"])
            }
            for queue in as_list(statement["Resource"]):
                senders.setdefault(str(referenced_id(queue)), set()).update(str(rule) for rule in rule_ids)
    for consumer in consumers(service):
        dlq_id = str(referenced_id(consumer.queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]))
        # EventBridge writes to the DLQ what it could not deliver to the queue.
        for queue_id in (consumer.queue_id, dlq_id):
            assert senders.get(queue_id) == rules_by_queue[consumer.queue_id], queue_id


def test_trainings_run_at_most_two_at_once() -> None:
    """Parallel trainings race for the corpus and waste their coalescing: the trainer's event source
    is capped at the least concurrency SQS allows, and no reserved concurrency throttles its poller."""
    [trainer] = [consumer for consumer in consumers("trainer") if consumer.function_id == "TrainerFunction"]
    [event] = trainer.function["Properties"]["Events"].values()
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert "ReservedConcurrentExecutions" not in trainer.function["Properties"]


# ---- least privilege ----------------------------------------------------------------------------


def test_every_function_has_an_s3_access_entry() -> None:
    assert {function_id for _, function_id, _ in functions()} == set(S3_OBJECT_ACCESS)


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_function_policy_is_inline_statements_only(function_id: str) -> None:
    """No managed policy or SAM policy template: every permission is visible to the checks below."""
    function = function_resource(function_id)
    properties = function["Properties"]
    assert "Role" not in properties
    for policy in properties["Policies"]:
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, (function_id, policy)
    for statement in function_statements(function):
        assert statement["Effect"] == "Allow"
        assert not any("*" in str(action) for action in as_list(statement["Action"])), (function_id, statement)


@pytest.mark.parametrize("function_id", sorted(S3_OBJECT_ACCESS))
def test_function_touches_only_its_own_prefixes(function_id: str) -> None:
    function = function_resource(function_id)
    granted: dict[str, set[str]] = {}
    listed: set[str] = set()
    on_bucket: set[str] = set()
    for statement in function_statements(function):
        actions = {str(action) for action in as_list(statement["Action"])}
        s3_actions = {action for action in actions if action.startswith("s3:")}
        if not s3_actions:
            continue
        assert s3_actions == actions, f"{function_id}: one statement mixes S3 with other services"
        for resource in as_list(statement["Resource"]):
            arn = sub_text(resource)
            if arn == BUCKET_ARN and s3_actions == {"s3:ListBucket"}:
                prefixes = as_list(statement["Condition"]["StringLike"]["s3:prefix"])
                listed |= {str(prefix) for prefix in prefixes}
                continue
            if arn == BUCKET_ARN:
                assert "s3:ListBucket" not in s3_actions, f"{function_id}: s3:ListBucket beside {s3_actions}"
                on_bucket |= s3_actions
                continue
            match = re.fullmatch(re.escape(BUCKET_ARN) + r"/((?:[a-z0-9_-]+/)+)\*", arn or "")
            assert match, f"{function_id}: {resource!r} is not an object prefix of the pipeline bucket"
            granted.setdefault(match.group(1), set()).update(s3_actions)
    assert granted == S3_OBJECT_ACCESS[function_id]
    assert listed == S3_LIST_PREFIXES.get(function_id, set())
    assert on_bucket == S3_BUCKET_ACTIONS.get(function_id, set())


@pytest.mark.parametrize("function_id", sorted(S3_OBJECT_ACCESS))
def test_function_reaches_only_the_ledger_the_bus_the_alert_topic_and_its_stacks_jobs(function_id: str) -> None:
    function = function_resource(function_id)
    allowed_resources = {
        "dynamodb": [TABLE_ARN],
        "events": [BUS_ARN],
        "sns": [{"Ref": "AlertTopicArn"}],
        "sagemaker": [TRAINING_JOB_ARN, TUNING_JOB_ARN],
        "iam": [{"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}],
    }
    for statement in function_statements(function):
        for action in as_list(statement["Action"]):
            prefix = str(action).split(":")[0]
            if prefix == "s3":
                continue
            assert prefix in allowed_resources, f"{function_id} may {action}"
            resources = [sub_text(resource) or resource for resource in as_list(statement["Resource"])]
            assert resources == allowed_resources[prefix], f"{function_id}: {action} on {resources}"


# ---- SageMaker training (the trainer's launcher, its jobs and its finisher) --------------------


def _execution_role_statements() -> list[dict[str, Any]]:
    role = load("trainer")["Resources"]["SageMakerExecutionRole"]["Properties"]
    return [statement for policy in role["Policies"] for statement in as_list(policy["PolicyDocument"]["Statement"])]


def test_the_job_state_rules_take_this_stacks_ended_jobs_from_the_default_bus() -> None:
    rules = resources_of_type(load("trainer"), "AWS::Events::Rule")
    this_stack = [{"prefix": {"Fn::Sub": "${JobNamePrefix}-v"}}]
    expected = {
        "TrainingJobStateRule": (TRAINING_JOB_STATE_CHANGE, "TrainingJobStatus", "TrainingJobName"),
        "TuningJobStateRule": (TUNING_JOB_STATE_CHANGE, "HyperParameterTuningJobStatus", "HyperParameterTuningJobName"),
    }
    for rule_id, (detail_type, status, name) in expected.items():
        properties = rules[rule_id]["Properties"]
        pattern = properties["EventPattern"]
        assert "EventBusName" not in properties, rule_id  # SageMaker publishes on the default bus
        assert pattern["source"] == [SAGEMAKER_SOURCE] and pattern["detail-type"] == [detail_type], rule_id
        assert set(pattern["detail"]) == {status, name}, rule_id
        # Only final states: the finisher never sees InProgress or Stopping.
        assert set(pattern["detail"][status]) == FINAL_TRAINING_STATUSES, rule_id
        assert pattern["detail"][name] == this_stack, rule_id
        assert [referenced_id(target["Arn"]) for target in properties["Targets"]] == ["TrainingFinisherQueue"]


def test_a_sweep_every_15_minutes_finds_the_runs_whose_end_event_was_lost() -> None:
    properties = load("trainer")["Resources"]["TrainingSweepSchedule"]["Properties"]
    assert properties["ScheduleExpression"] == "rate(15 minutes)"
    assert properties["State"] == "ENABLED"
    [target] = properties["Targets"]
    assert referenced_id(target["Arn"]) == "TrainingFinisherQueue"
    # A sweep older than the next one is worth nothing.
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 15 * 60


def test_the_trainer_functions_share_the_job_settings_with_the_trainers_code() -> None:
    """Each REVIEWS_TRAINER_* variable the template sets is a field of the launcher's settings, and each
    parameter's default is that field's default: a stack deployed with defaults runs as the code does."""
    from services.trainer.jobs import TrainingJobSettings

    template = load("trainer")
    fields = TrainingJobSettings.model_fields
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for variable in (name for name in variables if name.startswith("REVIEWS_TRAINER_")):
        assert variable.removeprefix("REVIEWS_TRAINER_").lower() in fields, variable
    for parameter, variable in SERVICE_SETTINGS["trainer"].items():
        field = fields[variable.removeprefix("REVIEWS_TRAINER_").lower()]
        default = template["Parameters"][parameter].get("Default")
        if default is not None:
            assert str(default) == str(field.default), parameter


def test_job_names_from_the_prefix_are_lower_case_and_leave_room_for_the_version() -> None:
    """SageMaker writes job names in lower case in ARNs, which the policies match by prefix."""
    parameter = load("trainer")["Parameters"]["JobNamePrefix"]
    assert parameter["MaxLength"] <= 16
    pattern = parameter["AllowedPattern"]
    assert re.fullmatch(pattern, parameter["Default"])
    assert re.fullmatch(pattern, "reviews-1a2b3c4d")  # the local runtime's stack prefix
    for refused in ("Reviews", "reviews_1", "-reviews", "reviews-", ""):
        assert not re.fullmatch(pattern, refused), refused


def test_only_the_launcher_passes_the_execution_role_and_only_to_sagemaker() -> None:
    for _, function_id, function in functions():
        passes = [st for st in function_statements(function) if "iam:PassRole" in as_list(st["Action"])]
        if function_id != "TrainerFunction":
            assert not passes, function_id
            continue
        [statement] = passes
        assert as_list(statement["Action"]) == ["iam:PassRole"]
        assert as_list(statement["Resource"]) == [{"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}]
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_the_execution_role_is_sagemakers_alone() -> None:
    role = load("trainer")["Resources"]["SageMakerExecutionRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert "ManagedPolicyArns" not in role  # every permission is in the statements checked below
    assert all(statement["Effect"] == "Allow" for statement in _execution_role_statements())


def test_the_execution_role_reads_the_channels_and_writes_only_the_jobs_output() -> None:
    objects: dict[str, set[str]] = {}
    listed: set[str] = set()
    for statement in _execution_role_statements():
        actions = {str(action) for action in as_list(statement["Action"])}
        if not any(action.startswith("s3:") for action in actions):
            continue
        assert all(action.startswith("s3:") for action in actions), actions
        for resource in as_list(statement["Resource"]):
            arn = str(sub_text(resource))
            if arn == BUCKET_ARN:
                assert actions == {"s3:ListBucket"}
                listed |= {str(prefix) for prefix in as_list(statement["Condition"]["StringLike"]["s3:prefix"])}
                continue
            assert arn.startswith(f"{BUCKET_ARN}/"), arn
            objects.setdefault(arn.removeprefix(f"{BUCKET_ARN}/"), set()).update(actions)
    output = f"{layout.training_output_prefix()}*"
    assert objects == {"etl/train/*": READ, "models/v*": READ, output: WRITE}
    assert listed == {"etl/train/*", "models/v*"}
    # The channels the launcher gives a job (the corpus, the current version's folder) and the
    # artifact SageMaker writes fall under these; the pointer, the index and other jobs' outputs
    # are out of the role's reach for reading.
    assert fnmatchcase(f"{layout.etl_prefix('train')}root.parquet", "etl/train/*")
    assert fnmatchcase(f"{layout.model_prefix('v1.2')}model.json", "models/v*")
    assert fnmatchcase(layout.training_artifact_key("reviews-v1-2-0abc12"), output)
    for unread in (layout.current_model_pointer_key(), layout.model_index_key(), f"{layout.training_output_prefix()}x"):
        assert not fnmatchcase(unread, "models/v*"), unread


def test_the_execution_role_logs_and_publishes_metrics_only_for_training_jobs() -> None:
    by_action = {
        str(action): statement
        for statement in _execution_role_statements()
        for action in as_list(statement["Action"])
        if not str(action).startswith(("s3:", "ecr:"))
    }
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/TrainingJobs"
    expected_logs = {
        "logs:CreateLogGroup": [group, f"{group}:*"],
        "logs:CreateLogStream": [group, f"{group}:*"],
        "logs:DescribeLogStreams": [group, f"{group}:*"],
        "logs:PutLogEvents": [f"{group}:log-stream:${{JobNamePrefix}}-v*"],
    }
    assert set(by_action) == set(expected_logs) | {"cloudwatch:PutMetricData"}
    for action, resources in expected_logs.items():
        assert [sub_text(resource) for resource in as_list(by_action[action]["Resource"])] == resources, action
    metrics = by_action["cloudwatch:PutMetricData"]
    assert as_list(metrics["Action"]) == ["cloudwatch:PutMetricData"] and metrics["Resource"] == "*"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}


def _evaluate(node: Any, parameters: dict[str, str]) -> Any:
    """The value of the `Ref` / `Fn::Split` / `Fn::Select` expressions a template derives a name with."""
    if isinstance(node, str):
        return node
    [(function, argument)] = node.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::Split":
        delimiter, source = argument
        return str(_evaluate(source, parameters)).split(delimiter)
    if function == "Fn::Select":
        index, values = argument
        return _evaluate(values, parameters)[int(index)]
    raise ValueError(f"cannot evaluate {function}")


def _substitute(text: str, values: dict[str, str]) -> str:
    """A `Fn::Sub` string with its variables replaced."""
    return re.sub(r"\$\{([^}]+)\}", lambda match: values[match.group(1)], text)


@pytest.mark.parametrize(
    ("image_uri", "repository_arn"),
    [
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/reviews-training:v1.2",
            "arn:aws:ecr:eu-west-1:123456789012:repository/reviews-training",
        ),
        (
            "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/reviews.training@sha256:" + "0f" * 32,
            "arn:aws-cn:ecr:cn-north-1:210987654321:repository/reviews.training",
        ),
    ],
)
def test_the_execution_role_pulls_only_from_the_image_uris_repository(image_uri: str, repository_arn: str) -> None:
    parameter = load("trainer")["Parameters"]["TrainingImageUri"]
    assert re.fullmatch(parameter["AllowedPattern"], image_uri)
    statements = {
        str(action): statement
        for statement in _execution_role_statements()
        for action in as_list(statement["Action"])
        if str(action).startswith("ecr:")
    }
    assert set(statements) == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    }
    login = statements.pop("ecr:GetAuthorizationToken")
    assert as_list(login["Action"]) == ["ecr:GetAuthorizationToken"] and login["Resource"] == "*"
    for action, statement in statements.items():
        text, variables = statement["Resource"]["Fn::Sub"]
        partition = "aws-cn" if image_uri.split("/")[0].endswith(".cn") else "aws"
        values = {"AWS::Partition": partition}
        values |= {name: str(_evaluate(value, {"TrainingImageUri": image_uri})) for name, value in variables.items()}
        assert _substitute(text, values) == repository_arn, action


def test_the_image_uri_refuses_what_the_repository_cannot_be_read_from() -> None:
    """No tag (a moving `latest`), a namespaced repository (its name has a `/`) or another registry."""
    pattern = load("trainer")["Parameters"]["TrainingImageUri"]["AllowedPattern"]
    for refused in (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/reviews-training",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/reviews-training:v1",
        "docker.io/library/python:3.12",
    ):
        assert not re.fullmatch(pattern, refused), refused


def test_the_training_image_runs_the_entry_point_the_local_engine_runs() -> None:
    """SageMaker runs `ENTRYPOINT train`; the local SageMaker engine runs the same module with `train`."""
    from reviews_pipeline.sagemaker_engine import ENTRY_POINT

    instructions = _instructions(TRAINING_DOCKERFILE)
    [entrypoint] = [instruction for instruction in instructions if instruction.startswith("ENTRYPOINT ")]
    command = json.loads(entrypoint.removeprefix("ENTRYPOINT "))
    assert command == ["python", "-m", "services.trainer.sagemaker_entry"]
    assert [*command[1:], "train"] == list(ENTRY_POINT[1:])
    assert not any(instruction.startswith("CMD ") for instruction in instructions)
    module = REPO / "services" / "trainer" / "sagemaker_entry.py"
    assert module.is_file()


def test_the_training_image_installs_the_trainers_locked_wheels_before_its_code() -> None:
    instructions = _instructions(TRAINING_DOCKERFILE)
    [base] = [instruction for instruction in instructions if instruction.startswith("FROM ")]
    # Python 3.12 as the Lambda images, patch release and distribution pinned.
    assert re.fullmatch(r"FROM python:3\.12\.\d+-slim-[a-z]+", base), base

    def position(prefix: str) -> int:
        found = [index for index, instruction in enumerate(instructions) if instruction.startswith(prefix)]
        assert len(found) == 1, f"{prefix!r}: {len(found)} instructions"
        return found[0]

    install = position("RUN pip install")
    assert "--only-binary=:all:" in instructions[install] and "--require-hashes" in instructions[install]
    assert position("COPY shared/requirements.txt ") < install
    assert position("COPY services/trainer/requirements.txt ") < install
    workdir = instructions[position("WORKDIR ")].split()[1]
    assert f"ENV PYTHONPATH={workdir}" in instructions
    for code in ("shared/", "reviews_model/", "services/"):
        assert any(
            instruction.startswith(f"COPY {code}") and index > install for index, instruction in enumerate(instructions)
        ), code
    assert position("COPY services/trainer/ services/trainer/") > position("WORKDIR ")


def test_the_build_context_holds_the_training_images_code() -> None:
    context = _build_context(REPO, dockerfile=str(TRAINING_DOCKERFILE.relative_to(REPO)))
    wanted = [
        *(REPO / "shared").glob("*.py"),
        *(REPO / "reviews_model").glob("*.py"),
        *(REPO / "services" / "trainer").glob("*.py"),
        REPO / "services" / "__init__.py",
        REPO / "shared" / "requirements.txt",
        REPO / "services" / "trainer" / "requirements.txt",
    ]
    assert {str(path.relative_to(REPO)) for path in wanted} <= context
    assert not any(path.startswith((".venv/", ".tools/", ".git/", "tests/")) for path in context)


# ---- root template ------------------------------------------------------------------------------


def test_bucket_is_private_encrypted_versioned_and_notifies_eventbridge() -> None:
    template = load("root")
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    assert set(buckets) == {"PipelineBucket"}
    bucket = buckets["PipelineBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    [encryption] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_refuses_requests_without_tls() -> None:
    template = load("root")
    policies = [
        policy["Properties"]
        for policy in resources_of_type(template, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "PipelineBucket"}
    ]
    denials = [
        statement
        for policy in policies
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert len(denials) == 1
    [denial] = denials
    assert denial["Principal"] == "*"
    assert as_list(denial["Action"]) == ["s3:*"]
    resources = as_list(denial["Resource"])
    assert len(resources) == 2
    assert {"Fn::GetAtt": ["PipelineBucket", "Arn"]} in resources
    assert "${PipelineBucket.Arn}/*" in [sub_text(resource) for resource in resources]


def test_ledger_table_has_the_keys_and_ttl_the_ledger_uses() -> None:
    table = load("root")["Resources"]["LedgerTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_root_nests_every_service_with_the_shared_resources() -> None:
    applications = resources_of_type(load("root"), "AWS::Serverless::Application")
    locations = {logical_id: application["Properties"]["Location"] for logical_id, application in applications.items()}
    assert locations == {f"{service.capitalize()}Service": f"services/{service}/template.yaml" for service in SERVICES}
    for service in SERVICES:
        application = applications[f"{service.capitalize()}Service"]
        assert application["Properties"]["Parameters"] == {
            "BucketName": {"Ref": "PipelineBucket"},
            "EventBusName": {"Ref": "EventBus"},  # Ref of an AWS::Events::EventBus is its name
            "LedgerTableName": {"Ref": "LedgerTable"},
            "AlertTopicArn": {"Ref": "AlertTopic"},
        } | {parameter: {"Ref": parameter} for parameter in SERVICE_SETTINGS.get(service, {})}


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_root_passes_a_services_settings_through_with_the_services_defaults(service: str) -> None:
    """A deploy of the whole stack and of the service alone start from the same settings; the
    service's template holds their constraints (the root's are never looser where it repeats them)."""
    root = load("root")["Parameters"]
    own = load(service)["Parameters"]
    for name in SERVICE_SETTINGS[service]:
        assert root[name]["Type"] == own[name]["Type"], name
        assert root[name].get("Default") == own[name].get("Default"), name
        if "AllowedValues" in root[name]:
            assert root[name]["AllowedValues"] == own[name]["AllowedValues"], name


def test_root_outputs_what_a_standalone_service_deploy_needs() -> None:
    assert set(load("root")["Outputs"]) >= SERVICE_PARAMETERS


# ---- building -----------------------------------------------------------------------------------


def _tool(name: str, bundled: Path | None = None) -> str:
    found = shutil.which(name) or (str(bundled) if bundled and bundled.is_file() else None)
    if found is None:
        message = f"{name} is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


# Lambda's limit for a zip function with its layers, unzipped.
ZIP_LIMIT_BYTES = 250 * 1024 * 1024


def _size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("service", ["receiver", "monitor"])
def test_sam_builds_the_zip_functions_and_the_shared_layer(service: str, tmp_path: Path) -> None:
    sam = _tool("sam", REPO / ".tools" / "sam" / "bin" / "sam")
    _tool("make")
    build_dir = tmp_path / "build"
    # The Makefiles install wheels with $(PYTHON): use this interpreter, which has pip.
    environment = os.environ | {"SAM_CLI_TELEMETRY": "0", "PYTHON": sys.executable}
    result = subprocess.run(
        [sam, "build", "--template-file", str(TEMPLATES[service]), "--build-dir", str(build_dir)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    layer = build_dir / "SharedLayer" / "python"
    assert (layer / "shared" / "events.py").is_file()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert (layer / "pydantic_core").is_dir()
    function_ids = sorted(set(resources_of_type(load(service), "AWS::Serverless::Function")) & ZIP_FUNCTIONS)
    assert function_ids
    for function_id in function_ids:
        artifact = build_dir / function_id
        assert (artifact / "services" / "__init__.py").is_file()
        assert (artifact / "services" / service / "app.py").is_file()
        assert _size(artifact) + _size(build_dir / "SharedLayer") < ZIP_LIMIT_BYTES, function_id
        # The handler imports from its artifact and the layer alone, as on Lambda (-I -S: no
        # site-packages, so nothing of this environment, such as pyarrow or pandas, stands in).
        module, name = HANDLERS[function_id][1].rsplit(".", 1)
        script = (
            "import importlib, sys\n"
            f"sys.path[:0] = [{str(artifact)!r}, {str(layer)!r}]\n"
            f"assert callable(getattr(importlib.import_module({module!r}), {name!r}))\n"
        )
        imported = subprocess.run(
            [sys.executable, "-I", "-S", "-c", script],
            cwd=tmp_path,
            env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert imported.returncode == 0, f"{function_id}: {imported.stderr[-4000:]}"
