"""Reading the SAM templates: the topology the local runtime builds is taken from them, never copied."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOT_TEMPLATE = REPO_ROOT / "template.yaml"


class CloudFormationLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short tags (`!Ref X`, `!GetAtt A.B`, `!Sub …`) as their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CloudFormationLoader)
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def substitute_refs(value: Any, parameters: dict[str, str]) -> Any:
    """Replace `{"Ref": name}` by the parameter's value wherever `name` is a known parameter, and a
    `!Sub` string whose every `${name}` is a known parameter by the string it makes."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            names = _SUB_VARIABLE.findall(value["Fn::Sub"])
            if all(name in parameters for name in names):
                return _SUB_VARIABLE.sub(lambda match: parameters[match.group(1)], value["Fn::Sub"])
        return {key: substitute_refs(inner, parameters) for key, inner in value.items()}
    if isinstance(value, list):
        return [substitute_refs(inner, parameters) for inner in value]
    return value
