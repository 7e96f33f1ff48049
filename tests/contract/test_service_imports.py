"""No service imports another: what services share lives in `shared/` or in `reviews_model/`.

Every module under services/<a>/ is read with `ast` (never imported, so a service whose dependencies
are not installed is still checked) and each of its imports is resolved to an absolute module name,
relative ones included. An import of `services.<b>` for another service `b` fails the test, naming
the file, the line and the import as written.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO / "services"
MODEL_DIR = REPO / "reviews_model"


@dataclass(frozen=True)
class CrossImport:
    path: Path
    line: int
    statement: str
    target: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(SERVICES_DIR.parent)}:{self.line}: {self.statement} (imports {self.target})"


def _package_of(path: Path) -> list[str]:
    """The package a module belongs to, as name parts: services/etl/app.py → ["services", "etl"]."""
    return ["services", *path.relative_to(SERVICES_DIR).parent.parts]


def _imported_modules(node: ast.Import | ast.ImportFrom, package: list[str]) -> Iterator[str]:
    """The absolute names of the modules an import statement may load."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level == 0:
        base = node.module or ""
    else:
        climbed = len(package) - (node.level - 1)
        if climbed <= 0:  # above the top of the tree: outside `services` altogether
            base = "." * node.level + (node.module or "")
        else:
            base = ".".join(package[:climbed] + ([node.module] if node.module else []))
    yield base
    # `from services import etl` or `from .. import etl` load a module through a name.
    yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def _owner(module: str) -> str | None:
    """The service a module name belongs to: services.etl.transform → etl; None outside services/<name>."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[0] == "services" else None


def cross_service_imports(path: Path, source: str | None = None) -> list[CrossImport]:
    """Imports in the module at `path` (under services/<a>/, read unless `source` is given) of another service."""
    package = _package_of(path)
    source = path.read_text(encoding="utf-8") if source is None else source
    found: list[CrossImport] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for module in _imported_modules(node, package):
            owner = _owner(module)
            if owner is not None and owner != package[1]:
                statement = ast.get_source_segment(source, node) or ast.unparse(node)
                found.append(CrossImport(path, node.lineno, " ".join(statement.split()), module))
                break
    return found


def _service_modules() -> list[Path]:
    return sorted(path for path in SERVICES_DIR.rglob("*.py") if path.parent != SERVICES_DIR)


def test_no_service_imports_another() -> None:
    modules = _service_modules()
    assert len(modules) > 20, "the walk found too few modules: is SERVICES_DIR right?"
    crossings = [crossing for path in modules for crossing in cross_service_imports(path)]
    assert not crossings, "a service imports another service:\n" + "\n".join(map(str, crossings))


def test_the_model_package_imports_no_service() -> None:
    """reviews_model is imported by services (and their engines), never the other way round."""
    imports = [
        f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}"
        for path in sorted(MODEL_DIR.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(_owner(module) or module == "services" for module in _imported_modules(node, ["reviews_model"]))
    ]
    assert not imports


def test_the_model_package_loads_neither_the_aws_sdk_nor_powertools() -> None:
    """A SageMaker training job or a Batch job imports the model package without Lambda plumbing."""
    modules = sorted(f"reviews_model.{path.stem}" for path in MODEL_DIR.glob("*.py") if path.stem != "__init__")
    probe = (
        f"import sys\nimport {', '.join(modules)}\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'boto3', 'botocore', 'aws_lambda_powertools'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert len(modules) >= 5
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("statement", "crosses"),
    [
        ("import services.trainer.artifacts", True),
        ("from services.etl.transform import TOKENS", True),
        ("from services import trainer", True),
        ("from ..trainer import artifacts", True),
        ("from ..trainer.model import StackedModel", True),
        ("from .. import etl", True),
        ("from ...services.etl import transform", False),  # climbs above services/: not a service import
        ("from .prediction import Classifier", False),
        ("from ..predictor import service", False),
        ("import services.predictor.models", False),
        ("from shared.canonical import RATING", False),
        ("from reviews_model.artifacts import load_model", False),
    ],
)
def test_the_walk_resolves_absolute_and_relative_imports(statement: str, crosses: bool) -> None:
    """Given a module of the predictor, an import of any other service's module is found, whatever its form."""
    found = cross_service_imports(SERVICES_DIR / "predictor" / "probe.py", f'"""A probe."""\n{statement}\n')
    assert bool(found) is crosses, found
    if crosses:
        assert found[0].line == 2
        assert found[0].statement == statement
