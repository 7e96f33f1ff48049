"""The versions tested are the versions shipped: one lock, /requirements.lock, for all of them.

`make install` installs the lock into the dev venv (CI's too); `make requirements` writes each
image's and SharedLayer's requirements.txt from the lock and the requirements.in beside it (the
distributions that code imports). These tests fail when any of them has drifted from the lock: a
version or a wheel hash that differs, a package the lock does not hold, a requirements.in line that
`make requirements` has not yet written out, a requirements file that misses a dependency of what it
pins, a project dependency that `make lock` has not resolved, an installed version that is not the
locked one, or an image that installs what its service never imports (or misses what it does).

Read, never installed: the images run Python 3.12 on Amazon Linux 2023 (x86_64), so requirements
files are checked with markers evaluated there, against the dependency metadata of the dev venv's
packages, whose versions the last test pins to the lock's.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
REQUIREMENTS_DIRS = sorted([REPO / "shared", *(path.parent for path in REPO.glob("services/*/requirements.txt"))])
FIRST_PARTY = {"shared", "services", "reviews_model", "reviews_pipeline", "tests", "bench"}
# Where the images run (services/Dockerfile: public.ecr.aws/lambda/python:3.12), for markers.
IMAGE_ENVIRONMENT = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: str
    marker: Marker | None
    hashes: frozenset[str]


def _pins(path: Path) -> dict[NormalizedName, Pin]:
    """The `name==version ; marker --hash=…` entries of a pip requirements file written by uv."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pins: dict[NormalizedName, Pin] = {}
    for line in (line.split("#", 1)[0].strip() for line in text.splitlines()):
        if not line:
            continue
        hashes = frozenset(re.findall(r"--hash=(\S+)", line))
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", line).strip())
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{path.name}: {line} is not an exact pin"
        assert hashes, f"{path.relative_to(REPO)}: {requirement.name} has no hashes"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.relative_to(REPO)}: {name} twice"
        pins[name] = Pin(name, specifiers[0].version, requirement.marker, hashes)
    return pins


@cache
def _lock() -> dict[NormalizedName, Pin]:
    return _pins(LOCK)


def _wanted(path: Path) -> list[Requirement]:
    """The requirements of a requirements.in (or of pyproject's lists): names with extras, no versions."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def _closure(requirements: list[Requirement]) -> set[NormalizedName]:
    """Every distribution those requirements install in the image, by the dev venv's metadata."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    names: set[NormalizedName] = set()
    pending = [(canonicalize_name(r.name), frozenset(r.extras)) for r in requirements]
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(
                requirement.marker.evaluate(IMAGE_ENVIRONMENT | {"extra": extra}) for extra in {"", *extras}
            ):
                pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return names


def _label(directory: Path) -> str:
    return str(directory.relative_to(REPO))


@pytest.mark.parametrize("directory", REQUIREMENTS_DIRS, ids=_label)
def test_requirements_pin_exactly_the_locks_versions_and_wheels(directory: Path) -> None:
    lock = _lock()
    for name, pin in _pins(directory / "requirements.txt").items():
        assert name in lock, f"{_label(directory)}/requirements.txt: {name} is not in the lock (`make lock`)"
        assert pin.version == lock[name].version, (
            f"{_label(directory)}: {name}=={pin.version}, lock {lock[name].version}"
        )
        assert pin.hashes <= lock[name].hashes, f"{_label(directory)}: {name} has wheels the lock does not"


@pytest.mark.parametrize("directory", REQUIREMENTS_DIRS, ids=_label)
def test_requirements_are_what_make_requirements_writes_from_the_in_file(directory: Path) -> None:
    source = directory / "requirements.in"
    assert source.is_file(), f"{_label(directory)}/requirements.txt is written from a requirements.in beside it"
    pinned = set(_pins(directory / "requirements.txt"))
    # Exactly what the listed distributions install there: none missing, none left over.
    assert pinned == _closure(_wanted(source)), f"{_label(directory)}: run `make requirements`"


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = [*project["dependencies"], *(line for extra in project["optional-dependencies"].values() for line in extra)]
    return [Requirement(line) for line in lines]


def test_every_project_dependency_is_locked_at_a_version_it_allows() -> None:
    lock = _lock()
    for requirement in _project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"pyproject.toml: {requirement} is not in the lock (`make lock`)"
        assert requirement.specifier.contains(lock[name].version, prereleases=True), (
            f"pyproject.toml: {requirement}, lock {name}=={lock[name].version} (`make lock`)"
        )


def test_the_dev_venv_runs_the_locked_versions() -> None:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name, pin in _lock().items():
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        assert installed.get(name) == pin.version, f"{name}: {installed.get(name)} installed, {pin.version} locked"


# -- Each image installs what its service imports ---------------------------------------------------


def _image_services() -> list[str]:
    templates = sorted(REPO.glob("services/*/template.yaml"))
    return [path.parent.name for path in templates if "Dockerfile: services/Dockerfile" in path.read_text("utf-8")]


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_imports(path: Path) -> Iterator[str]:
    """The absolute names a module imports at run time (anywhere in it, not under `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    guarded = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _third_party_imports(service: str) -> dict[str, Path]:
    """The top-level third-party names the service's modules import, following first-party imports."""
    pending = sorted((REPO / "services" / service).glob("*.py"))
    visited: set[Path] = set()
    found: dict[str, Path] = {}
    while pending:
        path = pending.pop()
        if path in visited:
            continue
        visited.add(path)
        for module in _runtime_imports(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY:
                target = _module_file(module)
                if target is not None:
                    pending.append(target)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, path)
    return found


@pytest.mark.parametrize("service", _image_services())
def test_each_image_installs_what_its_service_imports_and_nothing_it_does_not(service: str) -> None:
    distributions = metadata.packages_distributions()
    imported: dict[NormalizedName, Path] = {}
    for top, path in _third_party_imports(service).items():
        assert top in distributions, f"{path.relative_to(REPO)} imports {top}, which no installed distribution provides"
        for distribution in distributions[top]:
            imported.setdefault(canonicalize_name(distribution), path)
    installed = set(_pins(REPO / "shared" / "requirements.txt")) | set(
        _pins(REPO / "services" / service / "requirements.txt")
    )
    for name, path in imported.items():
        assert name in installed, (
            f"{path.relative_to(REPO)} imports {name}: add it to services/{service}/requirements.in"
        )
    listed = {canonicalize_name(r.name) for r in _wanted(REPO / "services" / service / "requirements.in")}
    unused = sorted(listed - set(imported))
    assert not unused, f"services/{service}/requirements.in lists {unused}, which nothing in the service imports"
