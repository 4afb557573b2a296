"""The CloudFormation path: upload the built zips and write a template that points at them.

``inv package --stage=S`` (:func:`package`) uploads every zip ``template.yaml`` names to the
stage bucket under its content-addressed key (``artifacts/<sha256>.zip``, the keys ``inv deploy``
uses; zips already there are not uploaded again) and writes ``dist/template.packaged.yaml``: the
template with each ``ContentUri``/``CodeUri`` replaced by the S3 location of its zip, each
parameter defaulting to the stage's value (stages.toml ``parameters``, samconfig.toml, the
``Stage`` convention; every one inside its AllowedValues), and a function or layer without a
``FunctionName``/``LayerName`` given the name the direct deploy gives it. A layer attached on
several targets becomes one resource per target (:mod:`layerkit.deploy.variants`), each
function's ``Layers`` naming its own target's. Every other intrinsic is left to CloudFormation.
``sam deploy --template-file dist/template.packaged.yaml`` or ``aws cloudformation deploy``
deploys it as is; neither rebuilds anything.

The two deploy paths name the same functions, so a stage belongs to one of them:
:mod:`layerkit.deploy.ownership` refuses to package for a stage whose functions ``inv deploy``
(or someone by hand) created, and ``inv deploy`` refuses functions a stack owns.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from layerkit.build.manifest import artifact_path, read_manifest
from layerkit.build.plan import output_dir
from layerkit.deploy.clients import Clients
from layerkit.deploy.deployer import desired_state
from layerkit.deploy.executor import apply
from layerkit.deploy.ownership import read_claims, refuse_not_stack_owned
from layerkit.deploy.planner import UploadArtifact, artifact_key
from layerkit.deploy.state import read_current
from layerkit.deploy.variants import LayerVariant, layer_variants
from layerkit.errors import DeployError
from layerkit.project.intrinsics import IntrinsicError, Symbols, resolve
from layerkit.project.parameters import (
    FUNCTION_TYPES,
    StageTemplate,
    read_parameters,
    stage_parameters,
)
from layerkit.project.spec import Project
from layerkit.project.stages import Stage
from layerkit.project.template import FUNCTION_TYPE, LAYER_TYPES
from layerkit.runtime.target import Target

PACKAGED_TEMPLATE = "template.packaged.yaml"
__all__ = ["FUNCTION_TYPE", "PACKAGED_TEMPLATE", "PackageResult", "package", "packaged_document"]


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package` uploaded and wrote."""

    stage: str
    template: Path  # dist/template.packaged.yaml
    uploaded: tuple[str, ...]  # S3 keys uploaded now
    reused: tuple[str, ...]  # S3 keys that were in the bucket already
    locations: Mapping[str, str]  # artifact path (layers/x.zip) -> s3://bucket/key
    parameters: Mapping[str, str]  # parameter defaults the packaged template sets
    function_names: tuple[str, ...]  # the function names the packaged template gives
    layer_names: tuple[str, ...] = ()  # the layer names the packaged template gives
    stack_name: str = ""  # samconfig.toml's stack_name for the stage, else layerkit-<stage>

    def deploy_command(self, stack_name: str, region: str | None = None) -> str:
        """A ``sam deploy`` command line for the packaged template."""
        return (
            f"sam deploy --template-file {self.template} --stack-name {stack_name} "
            "--capabilities CAPABILITY_IAM" + (f" --region {region}" if region else "")
        )


def packaged_document(
    project: Project,
    stage: Stage,
    keys: Mapping[str, str],
    commit: str | None = None,
    *,
    values: Mapping[str, str | tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """``template.yaml`` with its zips as S3 locations in the stage bucket.

    Pure, but for reading the stage's parameter values when ``values`` is None.
    ``keys`` maps an artifact path (``layers/core-data-science.zip``) to its S3 key. Every
    layer ``ContentUri`` and function ``CodeUri`` becomes ``{Bucket, Key}``; each parameter
    with a value for the stage (``values``, checked against its AllowedValues) defaults to it;
    a function or layer without a name gets the one the direct deploy gives it.
    """
    if values is None:
        values = stage_parameters(project, stage, missing_ok=True).values
    doc = copy.deepcopy(dict(project.template.document))
    variants = layer_variants(project)
    doc["Resources"] = resources = _with_variants(
        doc["Resources"], variants, project.config.template
    )
    declared = {v.logical_id for v in variants}
    for tl in project.template.layers:
        if tl.logical_id in declared:
            continue  # written below, per target
        props = resources[tl.logical_id].setdefault("Properties", {})
        props["ContentUri"] = _location(stage, keys, artifact_path("layer", tl.layer))
        props.setdefault("LayerName", stage.layer_name(tl.layer))
    for v in variants:
        props = resources[v.resource_id].setdefault("Properties", {})
        path = dist_path(project, v.target, artifact_path("layer", v.layer))
        props["ContentUri"] = _location(stage, keys, path)
        if "LayerName" not in props:
            props["LayerName"] = stage.layer_name(v.key)
        elif v.name_suffix:
            props["LayerName"] = _suffixed(props["LayerName"], v.name_suffix)
        if v.several:  # this version holds one target's build
            props["CompatibleRuntimes"] = [v.target.runtime]
            props["CompatibleArchitectures"] = [v.target.architecture]
    for fn in project.functions:
        props = resources[fn.logical_id].setdefault("Properties", {})
        path = dist_path(project, fn.target, artifact_path("function", fn.name))
        props["CodeUri"] = _location(stage, keys, path)
        props.setdefault("FunctionName", stage.function_name(fn.name))
    _attach_variants(doc, project, variants)
    parameters = doc.get("Parameters") or {}
    for name, value in values.items():
        spec = parameters.get(name)
        text = ",".join(value) if isinstance(value, tuple) else value
        if isinstance(spec, dict) and str(spec.get("Default")) != text:
            spec["Default"] = text
    doc.setdefault("Metadata", {})["layerkit"] = {
        "stage": stage.name,
        "commit": commit or "unknown",
        "artifacts": {path: f"s3://{stage.bucket}/{key}" for path, key in sorted(keys.items())},
    }
    return doc


def dist_path(project: Project, target: Target, path: str) -> str:
    """An artifact's path relative to ``dist/``: ``layers/x.zip`` or ``python3.12-arm64/...``."""
    return (output_dir(project, target) / path).relative_to(project.dist_dir).as_posix()


def _with_variants(
    resources: Mapping[str, Any], variants: tuple[LayerVariant, ...], template: str
) -> dict[str, Any]:
    """The resources with each layer's other-target variants right after it (copies of it).

    ``template`` names the template file in the message refusing a name that is taken.
    """
    out: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        out[logical_id] = resource
        for v in variants:
            if v.logical_id == logical_id and not v.main:
                if v.resource_id in resources:
                    raise DeployError(
                        f"{template} already has a resource {v.resource_id}, the name the "
                        f"packaged template gives layer {logical_id} built for {v.target.key}; "
                        "rename that resource."
                    )
                out[v.resource_id] = copy.deepcopy(resource)
    return out


def _attach_variants(
    doc: dict[str, Any], project: Project, variants: tuple[LayerVariant, ...]
) -> None:
    """Point each function's ``Layers`` at the variant built for its target.

    A layer attached on several targets may be named in ``Globals.Function.Layers``: those
    entries then move into every function (before its own, as SAM merges them), since each
    function needs its own target's variant.
    """
    others = {(v.logical_id, v.target): v.resource_id for v in variants if not v.main}
    if not others:
        return
    moved: list[Any] = []
    function_globals = (doc.get("Globals") or {}).get("Function")
    shared = {lid for lid, _ in others}
    if (
        isinstance(function_globals, dict)
        and isinstance(function_globals.get("Layers"), list)
        and any(_ref(entry) in shared for entry in function_globals["Layers"])
    ):
        moved = function_globals.pop("Layers")
    resources = doc["Resources"]
    for fn in project.functions:
        props = resources[fn.logical_id].setdefault("Properties", {})
        entries = [*copy.deepcopy(moved), *(props.get("Layers") or [])]
        if not entries:
            continue
        props["Layers"] = [
            {"Ref": others[(_ref(e), fn.target)]} if (_ref(e), fn.target) in others else e
            for e in entries
        ]


def _suffixed(name: Any, suffix: str) -> Any:
    """A ``LayerName`` with ``suffix`` appended: to the string, the ``!Sub`` text, else joined."""
    if isinstance(name, str):
        return name + suffix
    if isinstance(name, Mapping) and len(name) == 1 and isinstance(name.get("Fn::Sub"), str):
        return {"Fn::Sub": name["Fn::Sub"] + suffix}  # suffixes hold no "${"
    return {"Fn::Join": ["", [name, suffix]]}


def _ref(entry: Any) -> str | None:
    """The logical ID a ``Layers`` entry refers to (``{"Ref": "CommonLayer"}``), if any."""
    return entry.get("Ref") if isinstance(entry, Mapping) and len(entry) == 1 else None


def _location(stage: Stage, keys: Mapping[str, str], path: str) -> dict[str, str]:
    if path not in keys:
        raise DeployError(
            f"template.yaml names {path}, which the build did not produce; run `inv build.all` "
            "and package again."
        )
    return {"Bucket": stage.bucket, "Key": keys[path]}


def _symbols(doc: Mapping[str, Any]) -> Symbols:
    """A symbol table of the parameters' defaults only (what the packaged template gives)."""
    defaults: dict[str, str | tuple[str, ...]] = {}
    for p in read_parameters(doc, PACKAGED_TEMPLATE):
        if p.default is not None:
            defaults[p.name] = tuple(p.default.split(",")) if p.is_list else p.default
    return Symbols(
        parameters=defaults,
        mappings=doc.get("Mappings") or {},
        conditions=doc.get("Conditions") or {},
    )


def _names(doc: Mapping[str, Any], types: tuple[str, ...], key: str) -> tuple[tuple[str, str], ...]:
    symbols = _symbols(doc)
    found = []
    for logical_id, res in (doc.get("Resources") or {}).items():
        if not (isinstance(res, Mapping) and res.get("Type") in types):
            continue
        value = (res.get("Properties") or {}).get(key)
        try:
            value = resolve(value, symbols, f"{logical_id} {key}")
        except IntrinsicError:
            continue
        if isinstance(value, str):
            found.append((str(logical_id), value))
    return tuple(found)


def function_names(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The literal function names a template gives (intrinsics resolved with parameter defaults).

    Functions without a ``FunctionName`` get a name CloudFormation makes unique, and names
    that use anything but parameters with defaults cannot be known here: both are left out.
    """
    return tuple(name for _, name in _names(doc, FUNCTION_TYPES, "FunctionName"))


def layer_names(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The literal layer names a template gives (see :func:`function_names`)."""
    return tuple(name for _, name in _names(doc, LAYER_TYPES, "LayerName"))


def render(doc: Mapping[str, Any], stage: Stage) -> str:
    """The packaged template as YAML (intrinsics in their long form, ``{"Ref": ...}``)."""
    header = (
        f"# Written by `inv package --stage={stage.name}` from template.yaml: do not edit.\n"
        "# Deploy with `sam deploy --template-file <this file>` or `aws cloudformation deploy`.\n"
    )
    return header + yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False, width=100)


def package(
    project: Project,
    stage: Stage,
    clients: Clients,
    out_dir: Path,
    *,
    commit: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> PackageResult:
    """Upload the built zips in ``out_dir`` to ``stage`` and write the packaged template there.

    Refuses (DeployError, before any upload) a build that does not match its manifest, and a
    stage whose functions exist without a CloudFormation stack owning them. Staleness of the
    build against its inputs is the caller's check (``build.require_fresh``), as for a deploy.
    """
    # only the artifacts: the names and Environment are CloudFormation's to resolve here
    artifacts_only = StageTemplate(stage.name, Symbols(), {}, {}, {}, {}, "")
    desired = desired_state(project, read_manifest(out_dir), out_dir, commit, view=artifacts_only)
    variants = {v.key: v for v in layer_variants(project)}  # a layer artifact's name is its key
    targets = {fn.name: fn.target for fn in project.functions}
    artifacts = {
        dist_path(
            project, variants[a.name].target, artifact_path("layer", variants[a.name].layer)
        ): a
        for a in desired.layers
    }
    artifacts |= {
        dist_path(project, targets[a.name], artifact_path("function", a.name)): a
        for a in desired.functions
    }
    keys = {path: artifact_key(a.sha256) for path, a in artifacts.items()}
    given = stage_parameters(project, stage, overrides=overrides, missing_ok=True)
    doc = packaged_document(project, stage, keys, commit, values=given.values)
    names = function_names(doc)
    refuse_not_stack_owned(read_claims(clients.lambda_, stage, names), stage)

    current = read_current(clients, stage, desired)  # which artifacts the bucket holds
    steps: dict[str, UploadArtifact] = {}
    for path, artifact in artifacts.items():
        key = keys[path]
        if key not in current.artifacts:
            size = artifact.zipped_bytes
            steps[key] = UploadArtifact(key, artifact.zip_path, artifact.sha256, size)
    result = apply(tuple(steps.values()), clients, stage, current)

    dest = out_dir / PACKAGED_TEMPLATE
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render(doc, stage), encoding="utf-8")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return PackageResult(
        stage=stage.name,
        template=dest,
        uploaded=result.uploaded,
        reused=tuple(sorted(set(keys.values()) & current.artifacts)),
        locations={path: f"s3://{stage.bucket}/{key}" for path, key in keys.items()},
        parameters={
            name: str(spec["Default"])
            for name, spec in (doc.get("Parameters") or {}).items()
            if isinstance(spec, Mapping) and "Default" in spec
        },
        function_names=names,
        layer_names=layer_names(doc),
        stack_name=given.pseudo.get("AWS::StackName", f"layerkit-{stage.name}"),
    )
