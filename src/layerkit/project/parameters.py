"""A template's Parameters and their values per stage; the template as one stage sees it.

A parameter's value for a stage comes from, the later winning:

1. its ``Default`` in the template;
2. for a parameter called ``Stage`` only: the stage's name, when its AllowedValues (if any)
   include it (layerkit's convention: ``LayerName: !Sub ${Stage}-common`` deploys per stage);
3. samconfig.toml's ``parameter_overrides`` (SAM's convention), from ``[<stage>.global.parameters]``
   or ``[<stage>.deploy.parameters]`` — ``[default...]`` when the file has no table for the stage;
4. the ``parameters`` table of the stage's entry in stages.toml;
5. ``--parameter-overrides Key=Value ...`` on the command line.

Every value is checked against the parameter's Type (String, Number, CommaDelimitedList),
AllowedValues and AllowedPattern. :func:`stage_template` then resolves what layerkit reads
through :mod:`layerkit.project.intrinsics`: function and layer names, each function's
Environment, for the direct deploy, ``invoke`` and ``validate``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from layerkit.errors import SpecError
from layerkit.project.intrinsics import (
    NO_VALUE,
    IntrinsicError,
    Symbols,
    Unresolvable,
    condition,
    resolve,
)

if TYPE_CHECKING:
    from layerkit.project.spec import Project
    from layerkit.project.stages import Stage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SAMCONFIG_FILE = "samconfig.toml"
#: The samconfig files SAM reads, in its order (the first that exists is read).
SAMCONFIG_FILES = (SAMCONFIG_FILE, "samconfig.yaml", "samconfig.yml")
STAGE_PARAMETER = "Stage"
DEFAULT_SAMCONFIG_ENV = "default"
#: The event a function gets as its health check when its resource names none.
DEFAULT_HEALTH_PAYLOAD = b'{"layerkit": "health-check"}'
#: The event file a function's folder may hold for its health check (the older convention).
HEALTH_EVENT_FILE = "events/health.json"
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


class ParameterType(str, Enum):
    """The parameter types layerkit checks values against (others are read as strings)."""

    STRING = "String"
    NUMBER = "Number"
    LIST = "CommaDelimitedList"
    NUMBER_LIST = "List<Number>"
    OTHER = "other"


@dataclass(frozen=True)
class Parameter:
    """One entry of the template's ``Parameters``."""

    name: str
    type: ParameterType
    type_name: str  # as written (AWS::EC2::VPC::Id ...)
    default: str | None
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None

    def check(self, value: str, where: str) -> None:
        """Refuse ``value`` outside this parameter's Type, AllowedValues or AllowedPattern."""
        items = [v.strip() for v in value.split(",")] if self.is_list else [value]
        for item in items:
            number = self.type in (ParameterType.NUMBER, ParameterType.NUMBER_LIST)
            if number and not _NUMBER.match(item):
                raise SpecError(
                    f"{where}: parameter {self.name} is a {self.type_name}, but its value is "
                    f"{item!r}; give it a number."
                )
            if self.allowed_values and item not in self.allowed_values:
                raise SpecError(
                    f"{where}: parameter {self.name} is {item!r}, which its AllowedValues do "
                    f"not include ({', '.join(self.allowed_values)}); set one of those for this "
                    "stage (stages.toml `parameters`, samconfig.toml `parameter_overrides` or "
                    "--parameter-overrides), or add the value to AllowedValues."
                )
            if self.allowed_pattern is not None and not re.fullmatch(self.allowed_pattern, item):
                raise SpecError(
                    f"{where}: parameter {self.name} is {item!r}, which does not match its "
                    f"AllowedPattern {self.allowed_pattern!r}; give it a value that does."
                )

    @property
    def is_list(self) -> bool:
        """Whether ``Ref`` of this parameter is a list (CommaDelimitedList, List<...>)."""
        return self.type in (ParameterType.LIST, ParameterType.NUMBER_LIST) or (
            self.type_name.startswith("List<")
        )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def read_parameters(doc: Mapping[str, Any], where: str) -> tuple[Parameter, ...]:
    """The template's ``Parameters`` (``where`` names the template in errors)."""
    raw = doc.get("Parameters") or {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: `Parameters` must be a mapping of parameter names.")
    params = []
    for name, spec in raw.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("Type"), str):
            raise SpecError(
                f"{where}: parameter {name} needs a Type (String, Number, CommaDelimitedList ...)."
            )
        type_name = spec["Type"]
        try:
            kind = ParameterType(type_name)
        except ValueError:
            kind = ParameterType.OTHER
        allowed = spec.get("AllowedValues") or ()
        if not isinstance(allowed, (list, tuple)):
            raise SpecError(f"{where}: parameter {name}: AllowedValues must be a list.")
        default = spec.get("Default")
        if isinstance(default, list):
            default = ",".join(_scalar(v) for v in default)
        pattern = spec.get("AllowedPattern")
        params.append(
            Parameter(
                name=str(name),
                type=kind,
                type_name=type_name,
                default=None if default is None else _scalar(default),
                allowed_values=tuple(_scalar(v) for v in allowed),
                allowed_pattern=pattern if isinstance(pattern, str) else None,
            )
        )
    return tuple(params)


def parse_overrides(value: str | Sequence[str], where: str) -> dict[str, str]:
    """``Key=Value Key2="a b"`` (or SAM's ``ParameterKey=K,ParameterValue=V``) as a mapping.

    ``value`` is one string or a list of them (samconfig.toml accepts both).
    """
    texts = [value] if isinstance(value, str) else list(value)
    out: dict[str, str] = {}
    for text in texts:
        if not isinstance(text, str):
            raise SpecError(f"{where}: parameter overrides must be strings, not {text!r}.")
        try:
            tokens = shlex.split(text)
        except ValueError as exc:
            raise SpecError(f"{where}: cannot read {text!r} ({exc}); close the quotes.") from None
        for token in tokens:
            match = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", token)
            key, sep, val = (match.group(1), "=", match.group(2)) if match else token.partition("=")
            if not sep or not key:
                raise SpecError(
                    f"{where}: {token!r} is not Key=Value; write parameter overrides as "
                    '`Stage=dev Owner="a b"`.'
                )
            out[key] = val
    return out


@dataclass(frozen=True)
class SamConfig:
    """What layerkit reads from one environment of samconfig.toml."""

    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    stack_name: str | None = None
    env: str | None = None  # the table read (None: no samconfig.toml, or no table)
    file: str = SAMCONFIG_FILE  # the file read


def read_samconfig(root: Path, env: str) -> SamConfig:
    """samconfig.toml's (or samconfig.yaml's) ``parameter_overrides`` and ``stack_name``.

    ``env`` is the stage's name; a file without ``[<env>...]`` tables gives ``[default...]``'s.
    ``global.parameters`` is read first, ``deploy.parameters`` wins over it (SAM's order).
    """
    path = next((root / n for n in SAMCONFIG_FILES if (root / n).is_file()), None)
    if path is None:
        return SamConfig()
    try:
        text = path.read_bytes().decode("utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "YAML"
        raise SpecError(
            f"{path}: not valid {kind} ({exc}); fix that line (SAM reads it too)."
        ) from None
    if not isinstance(data, Mapping):
        return SamConfig()
    chosen = env if isinstance(data.get(env), Mapping) else DEFAULT_SAMCONFIG_ENV
    table = data.get(chosen)
    if not isinstance(table, Mapping):
        return SamConfig()
    overrides: dict[str, str] = {}
    stack: str | None = None
    for command in ("global", "deploy"):
        section = (table.get(command) or {}).get("parameters") or {}
        if not isinstance(section, Mapping):
            continue
        if "parameter_overrides" in section:
            overrides |= parse_overrides(
                section["parameter_overrides"],
                f"{path} [{chosen}.{command}.parameters] parameter_overrides",
            )
        if isinstance(section.get("stack_name"), str):
            stack = section["stack_name"]
    return SamConfig(overrides, stack, chosen, path.name)


def parameter_values(
    params: Sequence[Parameter],
    stage: str,
    sources: Sequence[tuple[str, Mapping[str, str]]],
    where: str,
    *,
    missing_ok: bool = False,
) -> dict[str, str | tuple[str, ...]]:
    """Every parameter's value for ``stage`` (see the module's order), each checked.

    ``sources`` are (description, values) pairs, later winning: samconfig.toml, the stage's
    ``parameters`` in stages.toml, ``--parameter-overrides``. A value for a parameter the
    template does not declare, or no value at all, is refused.
    """
    declared = {p.name: p for p in params}
    values: dict[str, tuple[str, str]] = {}  # name -> (value, where it came from)
    for p in params:
        if p.default is not None:
            values[p.name] = (p.default, f"{where} (its Default)")
        if p.name == STAGE_PARAMETER and (not p.allowed_values or stage in p.allowed_values):
            values[p.name] = (stage, f"{where} (the stage's name, layerkit's convention)")
    for source, given in sources:
        for name, value in given.items():
            if name not in declared:
                raise SpecError(
                    f"{source}: sets parameter {name}, which {where} does not declare (its "
                    f"parameters: {', '.join(declared) or 'none'}); remove it or declare it "
                    "under Parameters."
                )
            values[name] = (_scalar(value), source)
    out: dict[str, str | tuple[str, ...]] = {}
    for p in params:
        if p.name not in values and missing_ok:
            continue
        if p.name not in values:
            raise SpecError(
                f"{where}: parameter {p.name} has no Default and no value for stage {stage!r}; "
                f"set it in the stage's `parameters` table in stages.toml ({p.name} = "
                '"..."), in samconfig.toml\'s parameter_overrides, or with --parameter-overrides.'
            )
        value, source = values[p.name]
        p.check(value, f"{source}, stage {stage!r}")
        out[p.name] = tuple(v.strip() for v in value.split(",")) if p.is_list else value
    return out


def pseudo_parameters(
    *, region: str | None, account: str | None, partition: str | None, stack_name: str
) -> dict[str, str]:
    """The pseudo parameters layerkit knows for a stage (unknown ones are left out)."""
    part = partition or ("aws-cn" if (region or "").startswith("cn-") else "aws")
    out = {
        "AWS::Partition": part,
        "AWS::StackName": stack_name,
        "AWS::URLSuffix": "amazonaws.com.cn" if part == "aws-cn" else "amazonaws.com",
    }
    if region:
        out["AWS::Region"] = region
    if account:
        out["AWS::AccountId"] = account
    return out


def role_account(role: str) -> tuple[str | None, str | None]:
    """The (partition, account) of an IAM role ARN, ``arn:aws:iam::<account>:role/x``."""
    match = re.match(r"^arn:(aws[a-z-]*):iam::(\d{12}):", role)
    return (match.group(1), match.group(2)) if match else (None, None)


@dataclass(frozen=True)
class StageTemplate:
    """The template as one stage sees it: parameter values, names, environments resolved."""

    stage: str
    symbols: Symbols
    function_names: Mapping[str, str]  # function logical ID -> its name on the stage
    layer_names: Mapping[str, str]  # layer logical ID -> its name on the stage
    environments: Mapping[str, Mapping[str, str]]  # function logical ID -> Environment
    health_events: Mapping[str, bytes]  # function logical ID -> health-check payload
    stack_name: str
    #: logical ID -> the name of its ``Condition``, false on this stage: CloudFormation would not
    #: create the resource, so layerkit's direct deploy leaves it out too
    excluded: Mapping[str, str] = field(default_factory=dict)

    def not_deployed(self) -> tuple[str, ...]:
        """One line for each resource the stage leaves out, for a deploy's output."""
        return tuple(
            f"{lid} is not deployed to stage {self.stage}: its Condition {name} is false there"
            for lid, name in sorted(self.excluded.items())
        )


def _resources(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    res = doc.get("Resources")
    return res if isinstance(res, Mapping) else {}


def _props(resource: Any) -> Mapping[str, Any]:
    props = resource.get("Properties") if isinstance(resource, Mapping) else None
    return props if isinstance(props, Mapping) else {}


def _name(value: Any, symbols: Symbols, where: str) -> str:
    name = resolve(value, symbols, where)
    if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name):
        raise SpecError(f"{where}: resolves to {name!r}, not a name; write a string.")
    return str(name)


def environment(
    doc: Mapping[str, Any], logical_id: str, symbols: Symbols, where: str
) -> dict[str, str]:
    """A function's Environment Variables (Globals.Function's, then its own), resolved."""
    globals_fn = (doc.get("Globals") or {}).get("Function") or {}
    merged: dict[str, Any] = {}
    for origin, props in (
        ("Globals.Function", globals_fn),
        (logical_id, _props(_resources(doc).get(logical_id))),
    ):
        env = props.get("Environment") if isinstance(props, Mapping) else None
        variables = env.get("Variables") if isinstance(env, Mapping) else None
        if isinstance(variables, Mapping):
            merged.update({str(k): (origin, v) for k, v in variables.items()})
    out: dict[str, str] = {}
    for key, (origin, raw) in merged.items():
        here = f"{where}: {origin} Environment variable {key}"
        value = resolve(raw, symbols, here)
        if value is NO_VALUE:  # AWS::NoValue removes the variable, as in CloudFormation
            continue
        if value is None or isinstance(value, (Mapping, list)):
            raise SpecError(
                f"{here} is {value!r}; Lambda takes a string: write one, or an intrinsic that "
                "gives one."
            )
        out[key] = _scalar(value)
    return out


def health_payload(resource: Any, folder: Path, root: Path, where: str) -> bytes:
    """The health-check event of a function (see the README, "Health checks").

    ``Metadata: {layerkit: {health-check: events/health.json}}`` on the function's resource names
    an event file (relative to the function's folder, else to the project root) or gives the
    payload itself (a mapping or list); without it, the function folder's
    ``events/health.json``; without that, :data:`DEFAULT_HEALTH_PAYLOAD`.
    """
    meta = resource.get("Metadata") if isinstance(resource, Mapping) else None
    own = meta.get("layerkit") if isinstance(meta, Mapping) else None
    setting = own.get("health-check") if isinstance(own, Mapping) else None
    if setting is None:
        default = folder / HEALTH_EVENT_FILE
        return default.read_bytes() if default.is_file() else DEFAULT_HEALTH_PAYLOAD
    if isinstance(setting, (Mapping, list)):
        return json.dumps(setting, sort_keys=True).encode()
    if isinstance(setting, str):
        for base in (folder, root):
            path = base / setting
            if path.is_file():
                data = path.read_bytes()
                try:
                    json.loads(data)
                except ValueError as exc:
                    raise SpecError(
                        f"{where}: Metadata layerkit health-check names {path}, which is not "
                        f"JSON ({exc}); fix the file."
                    ) from None
                return data
    raise SpecError(
        f"{where}: Metadata layerkit health-check is {setting!r}; name an event file (relative "
        f"to {_display(folder, root)}/ or the "
        "project root) that exists, or write the payload itself as a mapping."
    )


def stage_template(
    doc: Mapping[str, Any],
    template: str,
    *,
    stage: str,
    values: Mapping[str, str | tuple[str, ...]],
    pseudo: Mapping[str, str],
    functions: Mapping[str, str],
    layers: Mapping[str, str],
    default_function_name: Mapping[str, str],
    default_layer_name: Mapping[str, str],
    health: Mapping[str, bytes] | None = None,
) -> StageTemplate:
    """Resolve names and environments of the template ``doc`` for ``stage`` (pure).

    ``functions`` and ``layers`` are the logical IDs layerkit deploys (to their folder names);
    ``default_*_name`` the name each gets when its resource has no FunctionName/LayerName.
    """
    resources = _resources(doc)
    types = {str(lid): str(r.get("Type")) for lid, r in resources.items() if isinstance(r, Mapping)}
    pending = {
        lid: "a layer version ARN, known only once that version is published" for lid in layers
    }
    base = Symbols(
        parameters=values,
        pseudo=pseudo,
        resources=types,
        pending=pending,
        mappings=doc.get("Mappings") or {},
        conditions=doc.get("Conditions") or {},
    )
    excluded = {}
    for lid in (*functions, *layers):
        name = resources[lid].get("Condition") if isinstance(resources.get(lid), Mapping) else None
        if name is None:
            continue
        where = f"{template}: {lid} Condition"
        if not isinstance(name, str):
            raise SpecError(
                f"{where}: {name!r} is not a condition name; write the name of one of the "
                "template's Conditions."
            )
        if not condition(name, base, where):
            excluded[lid] = name
    fn_names = {}
    for lid in functions:
        raw = _props(resources.get(lid)).get("FunctionName")
        where = f"{template}: {lid} FunctionName"
        fn_names[lid] = default_function_name[lid] if raw is None else _name(raw, base, where)
    layer_names = {}
    for lid in layers:
        raw = _props(resources.get(lid)).get("LayerName")
        where = f"{template}: {lid} LayerName"
        layer_names[lid] = default_layer_name[lid] if raw is None else _name(raw, base, where)
    region = pseudo.get("AWS::Region", "")
    account = pseudo.get("AWS::AccountId", "")
    part = pseudo.get("AWS::Partition", "aws")
    attributes = {
        (lid, "Arn"): f"arn:{part}:lambda:{region}:{account}:function:{name}"
        for lid, name in fn_names.items()
        if region and account
    }
    symbols = replace(base, refs=dict(fn_names), attributes=attributes)
    envs = {lid: environment(doc, lid, symbols, template) for lid in functions}
    return StageTemplate(
        stage=stage,
        symbols=symbols,
        function_names=fn_names,
        layer_names=layer_names,
        environments=envs,
        health_events=dict(health or {}),
        stack_name=pseudo.get("AWS::StackName", ""),
        excluded=excluded,
    )


__all__ = [
    "DEFAULT_HEALTH_PAYLOAD",
    "IntrinsicError",
    "Parameter",
    "ParameterType",
    "SamConfig",
    "StageParameters",
    "StageTemplate",
    "Unresolvable",
    "environment",
    "for_stage",
    "health_events",
    "health_payload",
    "parameter_values",
    "parse_overrides",
    "pseudo_parameters",
    "read_parameters",
    "read_samconfig",
    "role_account",
    "stage_parameters",
    "stage_template",
]


@dataclass(frozen=True)
class StageParameters:
    """A stage's parameter values and pseudo parameters (what the template is resolved with)."""

    values: Mapping[str, str | tuple[str, ...]]
    pseudo: Mapping[str, str]


def stage_parameters(
    project: Project,
    stage: Stage,
    *,
    region: str | None = None,
    overrides: Mapping[str, str] | None = None,
    missing_ok: bool = False,
) -> StageParameters:
    """The parameter values of ``stage`` (see the module's order) and its pseudo parameters.

    ``region`` is the region the stage's clients use when stages.toml names none (else
    ``AWS_REGION``/``AWS_DEFAULT_REGION``); ``overrides`` come from ``--parameter-overrides``.
    ``missing_ok`` leaves out a parameter without any value instead of refusing it (``package``:
    CloudFormation asks for it).
    """
    doc = project.template.document
    where = _display(project.template.path, project.root)
    samconfig = read_samconfig(project.root, stage.name)
    sources: list[tuple[str, Mapping[str, str]]] = []
    if samconfig.parameter_overrides:
        sources.append(
            (
                f"{samconfig.file} [{samconfig.env}.deploy.parameters] parameter_overrides",
                samconfig.parameter_overrides,
            )
        )
    if stage.parameters:
        sources.append(
            (
                f"{project.config.stages_file} [stages.{stage.name}.parameters]",
                dict(stage.parameters),
            )
        )
    if overrides:
        sources.append(("--parameter-overrides", overrides))
    values = parameter_values(
        read_parameters(doc, where), stage.name, sources, where, missing_ok=missing_ok
    )
    partition, account = role_account(stage.role)
    pseudo = pseudo_parameters(
        region=stage.region
        or region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION"),
        account=account,
        partition=partition,
        stack_name=samconfig.stack_name or f"layerkit-{stage.name}",
    )
    return StageParameters(values, pseudo)


def for_stage(
    project: Project,
    stage: Stage,
    *,
    region: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> StageTemplate:
    """The project's template as ``stage`` sees it (reads samconfig.toml and event files).

    ``region`` and ``overrides``: see :func:`stage_parameters`.
    """
    doc = project.template.document
    where = _display(project.template.path, project.root)
    given = stage_parameters(project, stage, region=region, overrides=overrides)
    values, pseudo = given.values, given.pseudo
    health = health_events(project)
    layer_ids = {tl.logical_id: tl.layer for tl in project.template.layers}
    return stage_template(
        doc,
        where,
        stage=stage.name,
        values=values,
        pseudo=pseudo,
        functions={fn.logical_id: fn.name for fn in project.functions},
        layers=layer_ids,
        default_function_name={
            fn.logical_id: stage.function_name(fn.name) for fn in project.functions
        },
        default_layer_name={lid: stage.layer_name(name) for lid, name in layer_ids.items()},
        health=health,
    )


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def health_events(project: Project) -> dict[str, bytes]:
    """Each function's health-check event by logical ID (what deploy and rollback send).

    The same on every stage: a function's health check is part of the template.
    """
    resources = _resources(project.template.document)
    where = _display(project.template.path, project.root)
    return {
        fn.logical_id: health_payload(
            resources.get(fn.logical_id), fn.path, project.root, f"{where}: {fn.logical_id}"
        )
        for fn in project.functions
    }
