"""The `--config` file: the runtime's own settings and the services' settings, checked whole before anything starts.

A service's settings are checked by that service's own settings classes (their fields, types and
constraints), from the values in the file alone: the user's environment neither fills in nor spoils
a value. They then reach the service as the environment variables those classes read
(`services: {validator: {max_size_bytes: 1048576}}` → `REVIEWS_VALIDATOR_MAX_SIZE_BYTES=1048576`).
"""

from __future__ import annotations

import importlib
import json
import types
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from .faults import Fault

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

# The settings classes each service reads, imported only when a config sets that service: their
# modules pull in pyarrow, scikit-learn and XGBoost. The receiver and the monitor have none beyond
# the shared PipelineSettings, which the runtime sets itself. A class that another holds as a field
# (the validator's LayoutSettings) comes before it.
SERVICE_SETTINGS: dict[str, tuple[str, ...]] = {
    "chunker": ("services.chunker.splitting.ChunkerSettings",),
    "etl": ("services.etl.transform.EtlSettings",),
    "predictor": ("services.predictor.prediction.PredictorSettings",),
    "trainer": ("services.trainer.training.TrainerSettings", "services.trainer.jobs.TrainingJobSettings"),
    "validator": ("services.validator.layouts.LayoutSettings", "services.validator.validation.ValidatorSettings"),
}
# Error types whose message already says what was given.
_INPUT_NAMED = frozenset({"missing", "extra_forbidden", "unknown_service", "unknown_setting", "null_setting"})


class ConfigError(ValueError):
    """What is wrong with a `--config` file: one line per problem, each starting with the file's path."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


class LocalSageMakerConfig(BaseModel):
    """The local SageMaker engine (reviews_pipeline.sagemaker_engine), with the faults it can play."""

    model_config = ConfigDict(extra="forbid")

    lost_state_changes: int = Field(
        default=0,
        ge=0,
        description="The first N final state-change events of training jobs (not tuning trials) and tuning "
        "jobs are not put on the bus: SageMaker's events are best effort, and the pipeline must recover them.",
    )
    repeated_state_changes: int = Field(
        default=1,
        ge=1,
        description="Each state-change event is put this many times (SageMaker may send several per change).",
    )
    max_parallel_trials: int = Field(
        default=2,
        ge=1,
        description="At most this many trials of a tuning job run at once (and never more than the job's "
        "MaxParallelTrainingJobs): each is a training process on this machine.",
    )


class RuntimeConfig(BaseModel):
    """The `--config` file (YAML or JSON). Service settings become the services' environment variables."""

    model_config = ConfigDict(extra="forbid")

    visibility_timeout_seconds: int | None = Field(
        default=20,
        ge=1,
        description="Queue visibility timeout for local runs (a failed message returns after it); "
        "null uses the templates' values, sized for Lambda's timeouts.",
    )
    settle_timeout_seconds: float = Field(default=900, gt=0, description="How long `run` waits for files to settle.")
    aws_max_attempts: int | None = Field(
        default=None,
        ge=1,
        description="Attempts per AWS call in every service (null: the services' default of 10).",
    )
    faults: list[Fault] = Field(
        default_factory=list,
        description="Faults to inject between services and the emulator (see reviews_pipeline.faults).",
    )
    schedule_interval_seconds: float = Field(
        default=30,
        gt=0,
        description="How often the runtime fires the templates' scheduled rules (ScheduleExpression), "
        "whatever rate they declare: a local run lasts minutes, not the quarter hours of a deployed sweeper.",
    )
    sagemaker: LocalSageMakerConfig = Field(
        default_factory=LocalSageMakerConfig, description="The local SageMaker engine and its faults."
    )
    services: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per service settings, checked by the service's own settings classes, e.g. "
        "{validator: {max_size_bytes: 1048576}} → REVIEWS_VALIDATOR_MAX_SIZE_BYTES=1048576.",
    )

    @field_validator("services")
    @classmethod
    def _valid_for_each_service(cls, services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return validated_service_settings(services) if services else services

    @classmethod
    def from_file(cls, path: Path | None) -> RuntimeConfig:
        """The config in `path` (defaults without one); ConfigError for whatever is wrong with the file."""
        if path is None:
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise ConfigError(path, ["no such file"]) from error
        except UnicodeDecodeError as error:
            raise ConfigError(path, [f"not UTF-8 text (byte {error.start}: {error.reason})"]) from error
        except OSError as error:
            raise ConfigError(path, [f"cannot be read ({error.strerror or error})"]) from error
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(path, [f"not valid YAML ({_yaml_problem(error)})"]) from error
        if document is None:
            document = {}
        if not isinstance(document, dict):
            kind = type(document).__name__
            raise ConfigError(path, [f"the top level is a {kind}, not a mapping; valid keys: {_keys_of(cls)}"])
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise ConfigError(path, [_describe(problem) for problem in error.errors()]) from error

    def service_environment(self) -> dict[str, str]:
        """The environment variables the services read these settings from."""
        environment = {
            name: value
            for service, given in self.services.items()
            for settings in settings_classes(service)
            for name, value in _environment_of(settings, given)
        }
        if self.aws_max_attempts is not None:
            environment["REVIEWS_AWS_MAX_ATTEMPTS"] = str(self.aws_max_attempts)
        return environment


# -- the services' settings ------------------------------------------------------------------------


@cache
def settings_classes(service: str) -> tuple[type[BaseSettings], ...]:
    """The settings classes `service` reads (importing their modules: a second or two for the trainer)."""
    classes = []
    for dotted in SERVICE_SETTINGS[service]:
        module, _, name = dotted.rpartition(".")
        classes.append(getattr(importlib.import_module(module), name))
    return tuple(classes)


def settable_fields(settings: type[BaseSettings]) -> dict[str, FieldInfo]:
    """The fields a config may set: all but those holding another settings object, which reads its own."""
    from pydantic_settings import BaseSettings

    return {name: field for name, field in settings.model_fields.items() if not _is_model(field, BaseSettings)}


def validated_service_settings(services: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """Each service's settings as its own settings classes read them; ValidationError naming every problem."""
    problems: list[InitErrorDetails] = []
    validated: dict[str, dict[str, Any]] = {}
    for service, given in services.items():
        if service in SERVICE_SETTINGS:
            validated[service] = _validated_settings(service, given, problems)
        else:
            names = ", ".join(sorted(SERVICE_SETTINGS))
            problems.append(_problem("unknown_service", f"unknown service; valid services: {names}", (service,), given))
    if problems:
        raise ValidationError.from_exception_data("services", problems)
    return validated


def _validated_settings(service: str, given: Mapping[str, Any], problems: list[InitErrorDetails]) -> dict[str, Any]:
    classes = settings_classes(service)
    fields = {name: field for settings in classes for name, field in settable_fields(settings).items()}
    known = _known_settings(service, fields, given, (service,), problems)
    instances: dict[type[BaseSettings], BaseSettings] = {}
    values: dict[str, Any] = {}
    for settings in classes:
        own = {name: known[name] for name in settable_fields(settings) if name in known}
        try:
            instance = _given_values_only(settings)(**own, **_held_settings(settings, instances))
        except ValidationError as error:
            problems.extend(_read_problem(service, settings, error))
            continue
        except (OSError, ValueError) as error:  # from what the settings read themselves (a layouts file)
            problems.append(_problem("value_error", str(error), (service,), given))
            continue
        instances[settings] = instance
        dumped = instance.model_dump(mode="json")
        values |= {name: _given_part(dumped[name], value) for name, value in own.items()}
    return values


def _known_settings(
    where: str,
    fields: Mapping[str, FieldInfo],
    given: Mapping[str, Any],
    loc: tuple[Any, ...],
    problems: list[InitErrorDetails],
) -> dict[str, Any]:
    """`given` without the settings `fields` does not have (each one a problem), down into nested models."""
    known: dict[str, Any] = {}
    for name, value in given.items():
        field = fields.get(name)
        if field is None:
            valid = ", ".join(sorted(fields))
            message = f"unknown setting; valid settings of {where}: {valid}"
            problems.append(_problem("unknown_setting", message, (*loc, name), value))
        elif value is None and field.default is not None:
            # A service reads its settings from the environment, which has no null: its default would win.
            default = field.get_default(call_default_factory=True)
            message = f"null cannot reach the service; leave the setting out for its default ({default!r})"
            problems.append(_problem("null_setting", message, (*loc, name), value))
        elif _is_model(field, BaseModel) and isinstance(value, Mapping):
            model = cast(type[BaseModel], field.annotation)
            known[name] = _known_settings(f"{where}.{name}", model.model_fields, value, (*loc, name), problems)
        else:
            known[name] = value
    return known


@cache
def _given_values_only(settings: type[BaseSettings]) -> type[BaseSettings]:
    """`settings` reading only the values it is given: no environment, dotenv or secrets file."""

    def init_values_only(
        cls: type[BaseSettings],
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(__module__=__name__, settings_customise_sources=classmethod(init_values_only))

    return cast(type["BaseSettings"], types.new_class(settings.__name__, (settings,), exec_body=body))


def _held_settings(settings: type[BaseSettings], instances: Mapping[type, BaseSettings]) -> dict[str, Any]:
    """For each field of `settings` holding another settings object, that object as read from the config
    (from nothing when it had problems), so that it does not read the environment by default."""
    from pydantic_settings import BaseSettings

    held = {}
    for name, field in settings.model_fields.items():
        if _is_model(field, BaseSettings):
            kind = cast(type[BaseSettings], field.annotation)
            held[name] = instances[kind] if kind in instances else _given_values_only(kind)()
    return held


def _read_problem(service: str, settings: type[BaseSettings], error: ValidationError) -> Iterator[InitErrorDetails]:
    for problem in error.errors():
        if error.title == settings.__name__:
            loc, message = (service, *problem["loc"]), problem["msg"]
        else:  # a model the settings validate on their own, e.g. the layouts file's
            where = ".".join(str(part) for part in problem["loc"])
            loc, message = (service,), f"{error.title} {where}: {problem['msg']}"
        yield _problem(problem["type"], message, loc, problem["input"])


def _given_part(value: Any, given: Any) -> Any:
    """Of a validated value, the part the config gave: the nested settings it named, not their defaults."""
    if isinstance(value, dict) and isinstance(given, Mapping):
        return {name: _given_part(value[name], part) for name, part in given.items() if name in value}
    # A value the settings read as null from something else ("" for no layouts file) is passed as given.
    return given if value is None else value


def _environment_of(settings: type[BaseSettings], given: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    prefix = settings.model_config.get("env_prefix", "")
    delimiter = settings.model_config.get("env_nested_delimiter")
    for name, field in settable_fields(settings).items():
        if name in given:
            yield from _environment_entries(f"{prefix}{name}", given[name], field, delimiter)


def _environment_entries(name: str, value: Any, field: FieldInfo, delimiter: str | None) -> Iterator[tuple[str, str]]:
    from pydantic_settings import NoDecode

    if delimiter and isinstance(value, dict) and _is_model(field, BaseModel):
        model = cast(type[BaseModel], field.annotation)
        for key, part in value.items():
            yield from _environment_entries(f"{name}{delimiter}{key}", part, model.model_fields[key], delimiter)
    elif value is None:
        return  # the default is null too (the only null let through)
    elif NoDecode in field.metadata and isinstance(value, list):
        yield name.upper(), ",".join(str(item) for item in value)  # read as text, split on commas by the service
    elif isinstance(value, str):
        yield name.upper(), value
    else:
        # What pydantic-settings decodes: JSON for booleans, lists and mappings; numbers as written.
        yield name.upper(), json.dumps(value) if isinstance(value, bool | list | dict) else str(value)


def _is_model(field: FieldInfo, base: type[BaseModel]) -> bool:
    return isinstance(field.annotation, type) and issubclass(field.annotation, base)


# -- messages ------------------------------------------------------------------------------------


def _problem(kind: str, message: str, loc: tuple[Any, ...], given: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=given)


def _describe(problem: ErrorDetails) -> str:
    loc = tuple(problem["loc"])
    message = " ".join(problem["msg"].splitlines())
    if problem["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        message = "unknown key" if model is None else f"unknown key; valid keys{_of(loc[:-1])}: {_keys_of(model)}"
    elif problem["type"] not in _INPUT_NAMED and isinstance(problem["input"], str | int | float | bool | None):
        message += f", got {problem['input']!r}"
    return f"{_dotted(loc)}: {message}" if loc else message


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _of(loc: tuple[Any, ...]) -> str:
    return f" of {_dotted(loc)}" if loc else ""


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The runtime's model of the mapping at `loc` (Fault for ("faults", 0)); None inside a service's settings."""
    model: Any = RuntimeConfig
    for part in loc:
        if isinstance(part, int):
            continue  # an item of the list whose item type was taken below
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = next(iter(get_args(annotation)), annotation)  # list[Fault] → Fault
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> str:
    return ", ".join(sorted(model.model_fields))


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(error).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
