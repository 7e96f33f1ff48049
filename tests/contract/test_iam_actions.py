"""Each function's policy grants exactly the AWS actions its code calls (issue 13).

The calls are read from the code, not listed by hand: from the handler the template names, the
modules it imports (first-party only: `shared`, `services`, `reviews_model`, relative imports,
followed transitively) are parsed, and a name-based call graph is walked from the handler. A call
on a boto3 client (a name annotated `S3Client`, `DynamoDBClient`, …) is an API call, mapped to its
IAM action by `API_ACTIONS`; a call on a first-party object (`store.move(…)`, `ledger.get(…)`,
`publisher.publish(…)`) is followed into that method, so the wrappers in `shared/` count only for
the methods a function really uses. What libraries call on the code's behalf is `LIBRARY_ACTIONS`.
An action granted that the code never calls fails; so does a call without its permission.

The walk over-approximates where it cannot tell (a callback's arguments, a receiver of unknown type
whose method name no builtin container has): a surplus shows as a call without its permission, so
it is seen, never silently granted. Which prefixes each action applies to is test_templates.py's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from tests.contract.test_templates import (
    HANDLERS,
    S3_BUCKET_ACTIONS,
    S3_OBJECT_ACCESS,
    as_list,
    function_resource,
    function_statements,
)

REPO = Path(__file__).resolve().parents[2]
# Packages of this repository whose modules a function's code may import (its image ships them).
FIRST_PARTY = ("shared", "services", "reviews_model")

# boto3 client method → the IAM actions it needs. HeadObject is authorised by s3:GetObject; the
# multipart calls that write parts by s3:PutObject; a paginator ("list_objects_v2", "scan", …) needs
# what its operation needs. A read of a key that may be missing (GET, HEAD, a copy's source) needs
# s3:ListBucket on its prefix too: without it S3 answers 403, not the 404 the code tells apart.
API_ACTIONS: dict[str, dict[str, frozenset[str]]] = {
    "s3": {
        "get_object": frozenset({"s3:GetObject", "s3:ListBucket"}),
        "head_object": frozenset({"s3:GetObject", "s3:ListBucket"}),
        "put_object": frozenset({"s3:PutObject"}),
        "copy_object": frozenset({"s3:GetObject", "s3:ListBucket", "s3:PutObject"}),  # read the source
        "delete_object": frozenset({"s3:DeleteObject"}),
        "list_objects_v2": frozenset({"s3:ListBucket"}),
        "create_multipart_upload": frozenset({"s3:PutObject"}),
        "upload_part": frozenset({"s3:PutObject"}),
        "complete_multipart_upload": frozenset({"s3:PutObject"}),
        "abort_multipart_upload": frozenset({"s3:AbortMultipartUpload"}),
        "list_parts": frozenset({"s3:ListMultipartUploadParts"}),
        "list_multipart_uploads": frozenset({"s3:ListBucketMultipartUploads"}),
        # boto3's managed transfers: a multipart upload (aborted on failure), ranged GETs after a HEAD.
        "upload_fileobj": frozenset({"s3:PutObject", "s3:AbortMultipartUpload"}),
        "upload_file": frozenset({"s3:PutObject", "s3:AbortMultipartUpload"}),
        "download_fileobj": frozenset({"s3:GetObject", "s3:ListBucket"}),
        "download_file": frozenset({"s3:GetObject", "s3:ListBucket"}),
    },
    "dynamodb": {
        "get_item": frozenset({"dynamodb:GetItem"}),
        "put_item": frozenset({"dynamodb:PutItem"}),  # conditional or not: the same action
        "update_item": frozenset({"dynamodb:UpdateItem"}),
        "delete_item": frozenset({"dynamodb:DeleteItem"}),
        "query": frozenset({"dynamodb:Query"}),
        "scan": frozenset({"dynamodb:Scan"}),
        "batch_get_item": frozenset({"dynamodb:BatchGetItem"}),
        "batch_write_item": frozenset({"dynamodb:BatchWriteItem"}),
    },
    "events": {"put_events": frozenset({"events:PutEvents"})},
    "sns": {"publish": frozenset({"sns:Publish"})},
    # A job runs as the RoleArn it is given, which the caller must be allowed to pass (the request
    # always names one). Tags on a create call need sagemaker:AddTags too (TAGGING_ACTIONS).
    "sagemaker": {
        "create_training_job": frozenset({"sagemaker:CreateTrainingJob", "iam:PassRole"}),
        "create_hyper_parameter_tuning_job": frozenset({"sagemaker:CreateHyperParameterTuningJob", "iam:PassRole"}),
        "describe_training_job": frozenset({"sagemaker:DescribeTrainingJob"}),
        "describe_hyper_parameter_tuning_job": frozenset({"sagemaker:DescribeHyperParameterTuningJob"}),
        "list_training_jobs_for_hyper_parameter_tuning_job": frozenset(
            {"sagemaker:ListTrainingJobsForHyperParameterTuningJob"}
        ),
        "stop_training_job": frozenset({"sagemaker:StopTrainingJob"}),
        "stop_hyper_parameter_tuning_job": frozenset({"sagemaker:StopHyperParameterTuningJob"}),
    },
}
# SageMaker authorises the tags of a create call as an AddTags on the new resource.
TAGGING_ACTIONS = {
    "create_training_job": "sagemaker:AddTags",
    "create_hyper_parameter_tuning_job": "sagemaker:AddTags",
}
# With a version id, reading or deleting an object version is a separate action.
VERSION_ACTIONS = {
    "get_object": "s3:GetObjectVersion",
    "head_object": "s3:GetObjectVersion",
    "copy_object": "s3:GetObjectVersion",  # a CopySource with a VersionId
    "delete_object": "s3:DeleteObjectVersion",
}
# Library names whose use makes calls on the code's behalf.
LIBRARY_ACTIONS: dict[str, frozenset[str]] = {
    # Powertools idempotency: a conditional PutItem claims the key, GetItem reads an existing record,
    # UpdateItem saves the result, DeleteItem drops the claim when the function raised.
    "DynamoDBPersistenceLayer": frozenset(
        {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    ),
}
# The mypy_boto3 annotation that marks a boto3 client, and its service.
CLIENT_TYPES = {
    "S3Client": "s3",
    "DynamoDBClient": "dynamodb",
    "EventBridgeClient": "events",
    "SNSClient": "sns",
    "SQSClient": "sqs",
    "SageMakerClient": "sagemaker",
}
# Client methods that are not API calls.
CLIENT_HELPERS = frozenset({"get_paginator", "get_waiter", "can_paginate", "close", "generate_presigned_url"})
# Methods Python or the io machinery calls on an object without naming them in our code.
IMPLICIT_METHODS = frozenset(
    {"__init__", "__post_init__", "__call__", "__iter__", "__next__", "__enter__", "__exit__", "readinto", "read"}
)
# A call `x.get(…)` on a receiver of unknown type is taken for the builtin's, not a first-party method.
BUILTIN_METHODS = frozenset(name for kind in (dict, list, set, str, bytes, tuple) for name in dir(kind))


# ---- the code of a function --------------------------------------------------------------------


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imported_modules: dict[str, str] = field(default_factory=dict)  # local alias → module name


@dataclass(frozen=True)
class Definition:
    module: str
    owner: str | None  # the class a method belongs to
    node: ast.FunctionDef | ast.AsyncFunctionDef

    @property
    def parameters(self) -> list[str]:
        names = [argument.arg for argument in self.node.args.posonlyargs + self.node.args.args]
        return names[1:] if self.is_method else names

    @property
    def is_method(self) -> bool:
        decorators = {ast.unparse(decorator) for decorator in self.node.decorator_list}
        return self.owner is not None and "staticmethod" not in decorators


def _module_path(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if module.path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


@cache
def _parse(name: str) -> Module | None:
    path = _module_path(name)
    if path is None:
        return None
    return Module(name, path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))


def reachable_modules(entry: str) -> dict[str, Module]:
    """`entry` and every first-party module it imports, transitively."""
    found: dict[str, Module] = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found or (module := _parse(name)) is None:
            continue
        found[name] = module
        for node in ast.walk(module.tree):
            targets: list[tuple[str, str]] = []  # (module name, local alias)
            if isinstance(node, ast.Import):
                targets = [(alias.name, alias.asname or alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                targets = [(base, "")]
                # `from shared import layout`: a module; `from shared.x import name`: a name of shared.x.
                targets += [(f"{base}.{alias.name}", alias.asname or alias.name) for alias in node.names]
            for target, alias in targets:
                if target.split(".")[0] in FIRST_PARTY and _module_path(target) is not None:
                    pending.append(target)
                    if alias:
                        module.imported_modules[alias] = target
    return found


def _type_names(annotation: ast.expr | None) -> set[str]:
    """Every name an annotation mentions (`ObjectStore | None`, `"S3Client"`, `list[FileRecord]`)."""
    if annotation is None:
        return set()
    names: set[str] = set()
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                names |= _type_names(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                continue
    return names


@dataclass
class Code:
    """The definitions of a function's modules, and what type each name is annotated with."""

    modules: dict[str, Module]
    functions: dict[str, list[Definition]] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    name_types: dict[str, set[str]] = field(default_factory=dict)  # a variable, parameter or field name
    attribute_types: dict[str, set[str]] = field(default_factory=dict)  # "Class.attribute"
    returns: dict[str, set[str]] = field(default_factory=dict)  # a function name → its return types

    def methods(self, class_name: str, name: str) -> list[Definition]:
        """`name` on class `class_name` or its first-party bases."""
        found: list[Definition] = []
        pending, seen = [class_name], set()
        while pending:
            current = pending.pop()
            if current in seen or current not in self.classes:
                continue
            seen.add(current)
            found += [d for d in self.functions.get(name, []) if d.owner == current]
            pending += [ast.unparse(base).split(".")[-1] for base in self.classes[current].bases]
        return found


def index(modules: dict[str, Module]) -> Code:
    code = Code(modules)
    known = set(CLIENT_TYPES)  # the types worth knowing a name by: boto3 clients and our classes

    def note(table: dict[str, set[str]], name: str, types: set[str]) -> None:
        if types:
            table.setdefault(name, set()).update(types)

    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                code.classes[node.name] = node
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        code.functions.setdefault(item.name, []).append(Definition(module.name, node.name, item))
        methods = {id(d.node) for ds in code.functions.values() for d in ds}
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and id(node) not in methods:
                code.functions.setdefault(node.name, []).append(Definition(module.name, None, node))
    known |= set(code.classes)

    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for argument in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                    note(code.name_types, argument.arg, _type_names(argument.annotation) & known)
                note(code.returns, node.name, _type_names(node.returns) & known)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                note(code.name_types, node.target.id, _type_names(node.annotation) & known)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                made = {ast.unparse(node.value.func).split(".")[-1]} & known
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        note(code.name_types, target.id, made)
        for owner in (node for node in ast.walk(module.tree) if isinstance(node, ast.ClassDef)):
            for item in owner.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):  # a field
                    note(code.attribute_types, f"{owner.name}.{item.target.id}", _type_names(item.annotation) & known)
            # `self._store = store` gives the attribute the type of the method's parameter.
            for method in (item for item in owner.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)):
                arguments = method.args.posonlyargs + method.args.args + method.args.kwonlyargs
                annotated = {argument.arg: _type_names(argument.annotation) & known for argument in arguments}
                for node in ast.walk(method):
                    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute):
                        attribute, types = node.target.attr, _type_names(node.annotation) & known
                    elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                        [*_, target] = node.targets
                        if not isinstance(target, ast.Attribute):
                            continue
                        attribute = target.attr
                        types = annotated.get(node.value.id) or code.name_types.get(node.value.id, set())
                    else:
                        continue
                    note(code.attribute_types, f"{owner.name}.{attribute}", types)
    return code


@dataclass(frozen=True)
class Frame:
    definition: Definition
    # What is None in this call: parameters (`store`), and fields of the objects passed in that their
    # constructor left at None (`rejected.source_version_id`). A call on None is never made.
    none: frozenset[str]

    @property
    def may_carry_a_version(self) -> bool:
        names = self.definition.parameters + [a.arg for a in self.definition.node.args.kwonlyargs]
        return any("version" in name and name not in self.none for name in names)


def _is_none(value: ast.expr, frame: Frame | None) -> bool:
    if isinstance(value, ast.Constant) and value.value is None:
        return True
    return frame is not None and isinstance(value, ast.Name | ast.Attribute) and ast.unparse(value) in frame.none


def _none_fields(code: Code, value: ast.expr, frame: Frame | None) -> set[str]:
    """The fields of the object `value` makes that are None: those `ClassName(…)` leaves at their
    default None or passes None, also through a factory function that returns one (`rejected_file(…)`)."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)):
        return set()
    name = value.func.id
    if name in code.classes:
        if value.args or any(keyword.arg is None for keyword in value.keywords):
            return set()  # positional or unpacked arguments: which fields they set is not read here
        given = {keyword.arg: keyword.value for keyword in value.keywords}
        fields = [item for item in code.classes[name].body if isinstance(item, ast.AnnAssign)]
        return {
            item.target.id
            for item in fields
            if isinstance(item.target, ast.Name)
            if (item.target.id in given and _is_none(given[item.target.id], frame))
            or (item.target.id not in given and isinstance(item.value, ast.Constant) and item.value.value is None)
        }
    factories = [d for d in code.functions.get(name, []) if d.owner is None]
    if len(factories) != 1 or (factory := _bind(code, factories[0], value, frame)) is None:
        return set()
    returned = [node.value for node in ast.walk(factories[0].node) if isinstance(node, ast.Return) and node.value]
    if len(returned) != 1:
        return set()
    return _none_fields(code, returned[0], factory)


def _reassigned(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    targets = (n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return set(targets)


def _bind(code: Code, definition: Definition, call: ast.Call | None, caller: Frame | None) -> Frame | None:
    """The callee's frame for `call` (None when the arguments do not fit its signature)."""
    arguments = definition.node.args
    positional = definition.parameters
    keyword_only = [a.arg for a in arguments.kwonlyargs]
    if call is None:  # referenced, not called here: its arguments are unknown
        return Frame(definition, frozenset())
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return Frame(definition, frozenset())
    if len(call.args) > len(positional) and arguments.vararg is None:
        return None
    bound: dict[str, ast.expr] = dict(zip(positional, call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg not in positional + keyword_only and arguments.kwarg is None:
            return None
        bound[str(keyword.arg)] = keyword.value
    defaults: dict[str, ast.expr | None] = dict(zip(reversed(positional), reversed(arguments.defaults), strict=False))
    defaults |= {a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None}
    if not set(positional + keyword_only) <= set(bound) | set(defaults):
        return None
    none: set[str] = set()
    for name in positional + keyword_only:
        value = bound.get(name, defaults.get(name))
        if value is not None and _is_none(value, caller):
            none.add(name)
        elif value is not None:
            none |= {f"{name}.{field}" for field in _none_fields(code, value, caller)}
    reassigned = _reassigned(definition.node)
    return Frame(definition, frozenset(name for name in none if name.split(".")[0] not in reassigned))


def _api_actions(service: str, method: str, call: ast.Call, frame: Frame) -> set[str]:
    table = API_ACTIONS.get(service, {})
    assert method in table, f"{service}.{method} has no IAM mapping: add it to API_ACTIONS"
    version_keyword = next((k.value for k in call.keywords if k.arg == "VersionId"), None)
    if version_keyword is not None:
        # `head_object(…, VersionId=version_id)`: only with a version, and then the version's action.
        return set() if _is_none(version_keyword, frame) else {VERSION_ACTIONS[method]}
    actions = set(table[method])
    if method in TAGGING_ACTIONS and any(k.arg == "Tags" for k in call.keywords):
        actions.add(TAGGING_ACTIONS[method])
    carries = any(k.arg is None or k.arg == "CopySource" for k in call.keywords)
    if method in VERSION_ACTIONS and carries and frame.may_carry_a_version:
        actions.add(VERSION_ACTIONS[method])
    return actions


@cache
def called_actions(handler: str) -> dict[str, set[str]]:
    """The IAM actions the code behind `handler` (`package.module.function`) calls, each with where."""
    module_name, function_name = handler.rsplit(".", 1)
    code = index(reachable_modules(module_name))
    [entry] = [d for d in code.functions[function_name] if d.module == module_name and d.owner is None]
    actions: dict[str, set[str]] = {}
    seen: set[Frame] = set()
    pending: list[Frame] = [Frame(entry, frozenset())]

    def receiver_types(receiver: ast.expr, frame: Frame) -> set[str]:
        if isinstance(receiver, ast.Attribute) and ast.unparse(receiver.value) == "self" and frame.definition.owner:
            owned = code.attribute_types.get(f"{frame.definition.owner}.{receiver.attr}")
            if owned:
                return owned
        if isinstance(receiver, ast.Name):
            return code.name_types.get(receiver.id, set())
        if isinstance(receiver, ast.Attribute):
            return code.name_types.get(receiver.attr, set()) | code.returns.get(receiver.attr, set())
        if isinstance(receiver, ast.Call):
            return code.returns.get(ast.unparse(receiver.func).split(".")[-1], set())
        return set()

    def follow(definitions: Iterator[Definition] | list[Definition], call: ast.Call | None, frame: Frame) -> None:
        for definition in definitions:
            callee = _bind(code, definition, call, frame)
            if callee is not None and callee not in seen:
                caller.setdefault(callee, frame)
                pending.append(callee)

    def construct(class_name: str, call: ast.Call | None, frame: Frame) -> None:
        for method in IMPLICIT_METHODS:
            follow(code.methods(class_name, method), call if method == "__init__" else None, frame)

    caller: dict[Frame, Frame] = {}

    def record(found: set[str] | frozenset[str], frame: Frame, node: ast.AST) -> None:
        """Note `found` with the path of calls that led to it, from the handler."""
        path: list[str] = []
        current: Frame | None = frame
        while current is not None and len(path) < 12:
            path.append(f"{current.definition.module}.{current.definition.node.name}")
            current = caller.get(current)
        where = " ← ".join(path) + f" (line {getattr(node, 'lineno', '?')})"
        for action in found:
            actions.setdefault(action, set()).add(where)

    def visit(frame: Frame) -> None:
        module = code.modules[frame.definition.module]
        called = {id(node.func) for node in ast.walk(frame.definition.node) if isinstance(node, ast.Call)}
        for node in ast.walk(frame.definition.node):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name in LIBRARY_ACTIONS:
                record(LIBRARY_ACTIONS[name], frame, node)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                method, receiver = node.func.attr, node.func.value
                if _is_none(receiver, frame):
                    continue
                types = receiver_types(receiver, frame)
                services = {CLIENT_TYPES[t] for t in types if t in CLIENT_TYPES}
                if services:
                    for service in services:
                        if method == "get_paginator":
                            [operation] = [a.value for a in node.args if isinstance(a, ast.Constant)]
                            paginated = ast.Call(func=node.func, args=[], keywords=[])
                            record(_api_actions(service, str(operation), paginated, frame), frame, node)
                        elif method not in CLIENT_HELPERS:
                            record(_api_actions(service, method, node, frame), frame, node)
                elif ast.unparse(receiver) == "self" and frame.definition.owner:
                    follow(code.methods(frame.definition.owner, method), node, frame)
                elif classes := types & set(code.classes):
                    for class_name in classes:
                        follow(code.methods(class_name, method), node, frame)
                elif isinstance(receiver, ast.Name) and receiver.id in module.imported_modules:
                    target = module.imported_modules[receiver.id]
                    follow([d for d in code.functions.get(method, []) if d.module == target], node, frame)
                elif method not in BUILTIN_METHODS:
                    follow(code.functions.get(method, []), node, frame)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callee_name = node.func.id
                if callee_name in code.classes:
                    construct(callee_name, node, frame)
                follow([d for d in code.functions.get(callee_name, []) if d.owner is None], node, frame)
            elif id(node) in called:
                continue
            # A function, method or class passed on (a record handler, a decorator): called with unknown arguments.
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in code.classes:
                    construct(node.id, None, frame)
                follow([d for d in code.functions.get(node.id, []) if d.owner is None], None, frame)
            elif isinstance(node, ast.Attribute) and ast.unparse(node.value) == "self" and frame.definition.owner:
                follow(code.methods(frame.definition.owner, node.attr), None, frame)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                for class_name in receiver_types(node.value, frame) & set(code.classes):
                    follow(code.methods(class_name, node.attr), None, frame)

    while pending:
        frame = pending.pop()
        if frame in seen:
            continue
        seen.add(frame)
        visit(frame)
    return actions


# ---- the templates ------------------------------------------------------------------------------


def granted_actions(function_id: str) -> set[str]:
    statements = function_statements(function_resource(function_id))
    return {str(action) for statement in statements for action in as_list(statement["Action"])}


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_policy_grants_exactly_the_actions_the_code_calls(function_id: str) -> None:
    called = called_actions(HANDLERS[function_id][1])
    granted = granted_actions(function_id)
    assert not granted - set(called), f"{function_id} is granted {sorted(granted - set(called))}, never called"
    missing = {action: sorted(called[action]) for action in set(called) - granted}
    assert not missing, f"{function_id}'s code calls without the permission: {missing}"


@pytest.mark.parametrize("function_id", sorted(HANDLERS))
def test_the_prefix_table_names_only_actions_the_code_calls(function_id: str) -> None:
    """test_templates.py's per-prefix table, which the policies must match, holds no surplus action."""
    called = set(called_actions(HANDLERS[function_id][1]))
    listed = {action for actions in S3_OBJECT_ACCESS[function_id].values() for action in actions}
    listed |= S3_BUCKET_ACTIONS.get(function_id, set())
    assert listed <= called, f"{function_id}: {sorted(listed - called)} in S3_OBJECT_ACCESS, never called"


def test_the_walk_follows_calls_into_the_wrappers_and_past_dead_branches() -> None:
    """The analysis itself, on cases the issue named: the monitor's alerts go out by SNS and it
    publishes no event; only the predictor scans; the receiver, which never moves a file (its
    `reject_file(store=None)`), deletes nothing; the validator moves exact versions."""
    actions = {function_id: set(called_actions(handler)) for function_id, (_, handler) in HANDLERS.items()}
    assert "sns:Publish" in actions["MonitorFunction"] and "events:PutEvents" not in actions["MonitorFunction"]
    assert {"dynamodb:PutItem", "dynamodb:GetItem"} <= actions["MonitorFunction"]  # Powertools idempotency
    assert [f for f, called in actions.items() if "dynamodb:Scan" in called] == ["PredictorFunction"]
    assert not {"s3:DeleteObject", "s3:PutObject"} & actions["ReceiverFunction"]
    assert "s3:DeleteObjectVersion" in actions["ValidatorFunction"]
    assert "s3:DeleteObjectVersion" not in actions["EtlFunction"]
