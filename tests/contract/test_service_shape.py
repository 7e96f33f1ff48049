"""Every service has one shape: a thin `app.py`, a `service.py`, and pure cores an engine can import.

Read from the code (with `ast`, never imported) for every folder under services/:

- `template.yaml` names each function's handler as `services.<name>.app.<function>`, and `app.py`
  defines that function;
- `app.py` is the handler only (parse the event, one call into `service.py`, map the result back,
  observability decorators): it defines no class, no module-level function but the handlers and
  adapters of a few lines, stays within a line budget, and imports its `service.py`;
- every other module except `service.py` and the named data-access modules loads neither the AWS
  SDK nor Powertools, not even through the first-party modules it imports, so a Glue, SageMaker or
  Batch entry point can import it. Imports under `if TYPE_CHECKING:` load nothing and are allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from reviews_pipeline.templates import load_template
from tests.contract.test_service_imports import _imported_modules

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO / "services"
FIRST_PARTY = ("services", "shared", "reviews_model", "reviews_pipeline")
AWS_SDK = frozenset({"boto3", "botocore"})
AWS_PACKAGES = AWS_SDK | {"aws_lambda_powertools"}

# Modules whose role is to be the storage layer (the cookbook's `dal/`): one small class in front of
# a DynamoDB table, as `shared.ledger` is. They may import botocore for its errors; nothing pure
# imports them (the walk below follows imports, so a pure module importing one fails).
DATA_ACCESS = {
    "trainer": frozenset({"versions.py"}),  # ModelRegistry: version numbers and the current marker
    "predictor": frozenset({"prediction_ledger.py"}),  # per-file prediction leases and waiting files
}
EDGE_MODULES = frozenset({"app.py", "service.py"})

# app.py: what "the handler only" allows. The budget holds a handler with two routes and their
# idempotency wrappers (the predictor's, 87 lines); the ETL's handler that also held the service
# (246 lines) and the trainer's that held the coalescing policy (112) are over it.
APP_LINE_BUDGET = 100
ADAPTER_LINE_BUDGET = 12


def service_names() -> list[str]:
    return sorted(
        path.name for path in SERVICES_DIR.iterdir() if path.is_dir() and any(path.glob("*.py")) and path.name[0] != "_"
    )


SERVICES = service_names()


def template_handlers(service: str) -> dict[str, str]:
    """Each function of the service's template → its handler (`Handler`, or an image's `Command`)."""
    resources = load_template(SERVICES_DIR / service / "template.yaml").get("Resources", {})
    handlers = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        handler = properties.get("Handler") or properties.get("ImageConfig", {}).get("Command", [None])[0]
        handlers[logical_id] = handler
    return handlers


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _defined_functions(module: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {node.name: node for node in module.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


# -- the AWS-free walk -------------------------------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under `node` that run: those in an `if TYPE_CHECKING:` body never do."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for statement in node.orelse:
            yield from runtime_imports(statement)
        return
    for child in ast.iter_child_nodes(node):
        yield from runtime_imports(child)


def module_path(module: str) -> Path | None:
    """The first-party file a module name is, if it is one."""
    parts = module.split(".")
    if parts[0] not in FIRST_PARTY:
        return None
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_parts(path: Path) -> list[str]:
    relative = path.relative_to(REPO)
    return list(relative.parent.parts)


@cache
def _imports_of(path: Path) -> tuple[str, ...]:
    package = _package_parts(path)
    names: list[str] = []
    for node in runtime_imports(_parse(path)):
        for module in _imported_modules(node, package):
            parts = module.split(".")
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
            names.extend(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return tuple(dict.fromkeys(names))


def aws_import_chain(path: Path, packages: frozenset[str], *, follow: bool) -> list[str] | None:
    """The first chain of runtime imports from `path` that reaches one of `packages`, if any.

    With `follow`, through the first-party modules imported; without, `path`'s own imports only.
    """
    seen: set[Path] = set()

    def walk(current: Path, chain: list[str]) -> list[str] | None:
        seen.add(current)
        for module in _imports_of(current):
            if module.split(".")[0] in packages:
                return [*chain, module]
            target = module_path(module)
            if follow and target is not None and target not in seen:
                found = walk(target, [*chain, module])
                if found is not None:
                    return found
        return None

    return walk(path, [str(path.relative_to(REPO))])


def core_modules(service: str) -> list[Path]:
    """The service's modules that must stay importable without AWS: all but the edge and data access."""
    allowed = EDGE_MODULES | DATA_ACCESS.get(service, frozenset())
    return sorted(path for path in (SERVICES_DIR / service).glob("*.py") if path.name not in allowed)


# -- the checks --------------------------------------------------------------------------------------


def test_every_service_folder_is_found() -> None:
    names = service_names()
    assert {"validator", "chunker", "etl", "trainer", "predictor", "monitor"} <= set(names), names
    for name in DATA_ACCESS:
        assert name in names, f"DATA_ACCESS names {name}, which is not a service folder"
        for module in DATA_ACCESS[name]:
            assert (SERVICES_DIR / name / module).is_file(), f"DATA_ACCESS names services/{name}/{module}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_template_names_handlers_that_app_py_defines(service: str) -> None:
    app = SERVICES_DIR / service / "app.py"
    assert app.is_file(), f"services/{service}/ has no app.py"
    handlers = template_handlers(service)
    assert handlers, f"services/{service}/template.yaml defines no function"
    defined = _defined_functions(_parse(app))
    for logical_id, handler in handlers.items():
        module, _, function = handler.rpartition(".")
        assert module == f"services.{service}.app", (
            f"{logical_id}'s handler {handler} is not in services/{service}/app.py"
        )
        assert function in defined, f"{logical_id}'s handler {function} is not defined in services/{service}/app.py"


@dataclass(frozen=True)
class AppShape:
    lines: int
    classes: list[str]
    long_helpers: list[str]
    imports_service: bool


def app_shape(service: str, source: str, handlers: set[str]) -> AppShape:
    """The shape of an app.py's `source`, whose functions named in `handlers` are the template's."""
    module = ast.parse(source)
    helpers = [node for name, node in _defined_functions(module).items() if name not in handlers]
    return AppShape(
        lines=len(source.splitlines()),
        classes=[node.name for node in module.body if isinstance(node, ast.ClassDef)],
        long_helpers=[
            f"{node.name} ({(node.end_lineno or node.lineno) - node.lineno + 1} lines)"
            for node in helpers
            if (node.end_lineno or node.lineno) - node.lineno + 1 > ADAPTER_LINE_BUDGET
        ],
        imports_service=any(
            isinstance(node, ast.ImportFrom)
            and ((node.level == 1 and node.module == "service") or node.module == f"services.{service}.service")
            for node in module.body
        ),
    )


@pytest.mark.parametrize("service", SERVICES)
def test_app_py_is_the_handler_only(service: str) -> None:
    assert (SERVICES_DIR / service / "service.py").is_file(), f"services/{service}/ has no service.py"
    handlers = {handler.rpartition(".")[2] for handler in template_handlers(service).values()}
    shape = app_shape(service, (SERVICES_DIR / service / "app.py").read_text(encoding="utf-8"), handlers)
    assert shape.lines <= APP_LINE_BUDGET, f"services/{service}/app.py has {shape.lines} lines"
    assert not shape.classes, f"services/{service}/app.py defines classes {shape.classes}: they belong in service.py"
    assert not shape.long_helpers, f"services/{service}/app.py holds more than adapters: {shape.long_helpers}"
    assert shape.imports_service, f"services/{service}/app.py does not call into its service.py"


def _chains(service: str, packages: frozenset[str], *, follow: bool) -> str:
    chains = [chain for path in core_modules(service) if (chain := aws_import_chain(path, packages, follow=follow))]
    return "\n".join(" → ".join(chain) for chain in chains)


@pytest.mark.parametrize("service", SERVICES)
def test_core_modules_import_neither_the_aws_sdk_nor_powertools(service: str) -> None:
    found = _chains(service, AWS_PACKAGES, follow=False)
    assert not found, f"a core module of {service} imports AWS or Powertools:\n{found}"


@pytest.mark.parametrize("service", SERVICES)
def test_core_modules_load_no_aws_sdk_through_what_they_import(service: str) -> None:
    """boto3 stays out even through shared/: an engine runs the core with no AWS client in the process.

    Powertools is not followed: shared.events specialises its EventBridge model (the typed-events
    way), so the schema package loads its parser models, and nothing from Lambda, at import.
    """
    found = _chains(service, AWS_SDK, follow=True)
    assert not found, f"a core module of {service} loads the AWS SDK:\n{found}"


# -- the rules themselves ----------------------------------------------------------------------------


def _runtime_modules(source: str) -> list[str]:
    return [ast.unparse(node) for node in runtime_imports(ast.parse(source))]


def test_imports_under_type_checking_are_not_runtime_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n    import boto3\nelse:\n    import json\n"
        "if typing.TYPE_CHECKING:\n    from botocore.client import BaseClient\n"
        "def f():\n    import botocore\n"
    )
    assert _runtime_modules(source) == [
        "from typing import TYPE_CHECKING",
        "import typing",
        "import json",
        "import botocore",
    ]


def test_the_walk_follows_first_party_imports_to_the_aws_sdk() -> None:
    # shared.ledger imports boto3 itself; shared.resources reaches it only through shared.aws.
    assert aws_import_chain(REPO / "shared" / "ledger.py", AWS_SDK, follow=False) == ["shared/ledger.py", "boto3"]
    assert aws_import_chain(REPO / "shared" / "resources.py", AWS_SDK, follow=False) is None
    chain = aws_import_chain(REPO / "shared" / "resources.py", AWS_SDK, follow=True)
    assert chain is not None and "shared.aws" in chain and chain[-1] in AWS_SDK
    # A module that names the ledger only as a type (under TYPE_CHECKING) does not load it.
    assert aws_import_chain(REPO / "shared" / "rejection.py", AWS_SDK, follow=True) is None


def test_a_handler_module_holding_its_service_breaks_the_app_rules() -> None:
    """Given an app.py shaped like the ETL's before the split: a class and the service's work beside the handler."""
    work = "".join(f"    step_{index} = {index}\n" for index in range(ADAPTER_LINE_BUDGET))
    source = (
        "from shared.consumer import consume_events\n"
        "class EtlOutput:\n    body: bytes\n"
        "def lambda_handler(event, context):\n    return transform_file(event)\n"
        f"def transform_file(detail):\n{work}    return {{}}\n"
        "def tiny(detail):\n    return detail\n"
    )
    shape = app_shape("etl", source, {"lambda_handler"})
    assert shape.classes == ["EtlOutput"]
    assert shape.long_helpers == [f"transform_file ({ADAPTER_LINE_BUDGET + 2} lines)"]
    assert shape.imports_service is False
    thin = "from .service import EtlService\ndef lambda_handler(event, context):\n    return EtlService().run(event)\n"
    assert app_shape("etl", thin, {"lambda_handler"}) == AppShape(
        lines=3, classes=[], long_helpers=[], imports_service=True
    )
