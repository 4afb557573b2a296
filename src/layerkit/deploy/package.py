"""The CloudFormation path: upload the built zips and write a template that points at them.

``inv package --stage=S`` (:func:`package`) uploads every zip ``template.yaml`` names to the
stage bucket under its content-addressed key (``artifacts/<sha256>.zip``, the keys ``inv deploy``
uses; zips already there are not uploaded again) and writes ``dist/template.packaged.yaml``: the
template with each ``ContentUri``/``CodeUri`` replaced by the S3 location of its zip, each
parameter defaulting to the stage's value (stages.toml ``parameters``, samconfig.toml, the
``Stage`` convention; every one inside its AllowedValues), and a function or layer without a
``FunctionName``/``LayerName`` given the name the direct deploy gives it. Every other intrinsic
is left to CloudFormation. ``sam deploy --template-file dist/template.packaged.yaml`` or ``aws
cloudformation deploy`` deploys it as is; neither rebuilds anything.

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
from layerkit.deploy.clients import Clients
from layerkit.deploy.deployer import desired_state
from layerkit.deploy.executor import apply
from layerkit.deploy.ownership import read_claims, refuse_not_stack_owned
from layerkit.deploy.planner import UploadArtifact, artifact_key
from layerkit.deploy.state import read_current
from layerkit.errors import DeployError
from layerkit.project.intrinsics import IntrinsicError, Symbols, resolve
from layerkit.project.parameters import (
    FUNCTION_TYPES,
    LAYER_TYPES,
    StageTemplate,
    read_parameters,
    stage_parameters,
)
from layerkit.project.spec import Project
from layerkit.project.stages import Stage
from layerkit.project.template import FUNCTION_TYPE

PACKAGED_TEMPLATE = "template.packaged.yaml"
STAGE_PARAMETER = "Stage"
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
    resources = doc["Resources"]
    for tl in project.template.layers:
        props = resources[tl.logical_id].setdefault("Properties", {})
        props["ContentUri"] = _location(stage, keys, artifact_path("layer", tl.layer))
        props.setdefault("LayerName", stage.layer_name(tl.layer))
    for tf in project.template.functions:
        props = resources[tf.logical_id].setdefault("Properties", {})
        props["CodeUri"] = _location(stage, keys, artifact_path("function", tf.name))
    for fn in project.functions:
        props = resources[fn.logical_id].setdefault("Properties", {})
        props.setdefault("FunctionName", stage.function_name(fn.name))
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
    artifacts = {artifact_path("layer", a.name): a for a in desired.layers}
    artifacts |= {artifact_path("function", a.name): a for a in desired.functions}
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
            steps[key] = UploadArtifact(key, out_dir / path, artifact.sha256, artifact.zipped_bytes)
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
