"""The CloudFormation path: upload the built zips and write a template that points at them.

``inv package --stage=S`` (:func:`package`) uploads every zip ``template.yaml`` names to the
stage bucket under its content-addressed key (``artifacts/<sha256>.zip``, the keys ``inv deploy``
uses; zips already there are not uploaded again) and writes ``dist/template.packaged.yaml``: the
template with each ``ContentUri``/``CodeUri`` replaced by the S3 location of its zip, and the
``Stage`` parameter defaulting to the stage's name. ``sam deploy --template-file
dist/template.packaged.yaml`` or ``aws cloudformation deploy`` deploys it as is; neither
rebuilds anything.

The two deploy paths name the same functions, so a stage belongs to one of them:
:mod:`layerkit.deploy.ownership` refuses to package for a stage whose functions ``inv deploy``
(or someone by hand) created, and ``inv deploy`` refuses functions a stack owns.
"""

from __future__ import annotations

import copy
import os
import re
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
from layerkit.project.spec import Project
from layerkit.project.stages import Stage
from layerkit.project.template import FUNCTION_TYPE

PACKAGED_TEMPLATE = "template.packaged.yaml"
STAGE_PARAMETER = "Stage"
_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


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

    def deploy_command(self, stack_name: str, region: str | None = None) -> str:
        """A ``sam deploy`` command line for the packaged template."""
        return (
            f"sam deploy --template-file {self.template} --stack-name {stack_name} "
            "--capabilities CAPABILITY_IAM" + (f" --region {region}" if region else "")
        )


def packaged_document(
    project: Project, stage: Stage, keys: Mapping[str, str], commit: str | None = None
) -> dict[str, Any]:
    """``template.yaml`` with its zips as S3 locations in the stage bucket (pure).

    ``keys`` maps an artifact path (``layers/core-data-science.zip``) to its S3 key. Every
    layer ``ContentUri`` and function ``CodeUri`` becomes ``{Bucket, Key}``; the ``Stage``
    parameter (if the template has one) defaults to the stage's name.
    """
    doc = copy.deepcopy(dict(project.template.document))
    resources = doc["Resources"]
    for tl in project.template.layers:
        props = resources[tl.logical_id].setdefault("Properties", {})
        props["ContentUri"] = _location(stage, keys, artifact_path("layer", tl.layer))
    for tf in project.template.functions:
        props = resources[tf.logical_id].setdefault("Properties", {})
        props["CodeUri"] = _location(stage, keys, artifact_path("function", tf.name))
    parameters = doc.get("Parameters") or {}
    if isinstance(parameters.get(STAGE_PARAMETER), dict):
        parameters[STAGE_PARAMETER]["Default"] = stage.name
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


def function_names(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The literal function names a template gives (``!Sub`` resolved with parameter defaults).

    Functions without a ``FunctionName`` get a name CloudFormation makes unique, and names
    that use anything but parameters with defaults cannot be known here: both are left out.
    """
    defaults = {
        name: str(p["Default"])
        for name, p in (doc.get("Parameters") or {}).items()
        if isinstance(p, Mapping) and "Default" in p
    }
    names = []
    for res in (doc.get("Resources") or {}).values():
        if not (isinstance(res, Mapping) and res.get("Type") == FUNCTION_TYPE):
            continue
        value = (res.get("Properties") or {}).get("FunctionName")
        if isinstance(value, Mapping) and isinstance(value.get("Fn::Sub"), str):
            text = value["Fn::Sub"]
            if all(v in defaults for v in _SUB_VAR.findall(text)):
                value = _SUB_VAR.sub(lambda m: defaults[m.group(1)], text)
        if isinstance(value, str):
            names.append(value)
    return tuple(names)


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
) -> PackageResult:
    """Upload the built zips in ``out_dir`` to ``stage`` and write the packaged template there.

    Refuses (DeployError, before any upload) a build that does not match its manifest, and a
    stage whose functions exist without a CloudFormation stack owning them. Staleness of the
    build against its inputs is the caller's check (``build.require_fresh``), as for a deploy.
    """
    desired = desired_state(project, read_manifest(out_dir), out_dir, commit)
    artifacts = {artifact_path("layer", a.name): a for a in desired.layers}
    artifacts |= {artifact_path("function", a.name): a for a in desired.functions}
    keys = {path: artifact_key(a.sha256) for path, a in artifacts.items()}
    doc = packaged_document(project, stage, keys, commit)
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
        parameters={STAGE_PARAMETER: stage.name}
        if STAGE_PARAMETER in (doc.get("Parameters") or {})
        else {},
        function_names=names,
    )
