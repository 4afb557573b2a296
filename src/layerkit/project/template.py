"""Reading the SAM ``template.yaml``: which function attaches which layers, in what order.

The template is the one source of the deploy topology. This module reads it with a YAML loader
that understands CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...), turning them
into their long forms (``{"Ref": ...}``), and extracts a small, frozen description of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from layerkit.errors import SpecError

LAYER_TYPE = "AWS::Serverless::LayerVersion"
FUNCTION_TYPE = "AWS::Serverless::Function"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of template.yaml names the same key twice (YAML would keep the last silently)."""


class _CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that maps ``!Tag value`` to ``{"Fn::Tag": value}`` like CloudFormation.

    A key given twice in one mapping (two resources with one logical ID, say) is an error with
    both line numbers, where YAML would silently keep the last.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping, refusing a key given twice in it."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in seen:
                raise DuplicateKeyError(
                    f"the key `{key}` is given twice in one mapping, at line {seen[key]} and "
                    f"again at line {line} (YAML would silently keep only the second); rename "
                    "or remove one of them"
                )
            if isinstance(key, str):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class TemplateLayer:
    """An ``AWS::Serverless::LayerVersion`` resource."""

    logical_id: str
    layer: str  # the layers/<name>/ folder its ContentUri zip is built from
    content_uri: str
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]


@dataclass(frozen=True)
class TemplateFunction:
    """An ``AWS::Serverless::Function`` resource, with Globals applied."""

    logical_id: str
    name: str  # the function's name: its zip is dist/functions/<name>.zip
    code_uri: str
    handler: str
    runtime: str
    architecture: str
    memory_size: int
    timeout: int
    layers: tuple[str, ...]  # layer folder names, in the order Lambda extracts them
    source_dir: str | None = None  # the CodeUri folder (SAM style); None: CodeUri is the zip


@dataclass(frozen=True)
class Template:
    """What layerkit needs from template.yaml."""

    path: Path
    layers: tuple[TemplateLayer, ...]
    functions: tuple[TemplateFunction, ...]
    document: Mapping[str, Any]


def load_yaml(text: str) -> Any:
    """Parse CloudFormation YAML, short tags included."""
    return yaml.load(text, Loader=_CfnLoader)


def _layer_stem(uri: Any, logical_id: str, path: Path) -> str:
    if not isinstance(uri, str) or not uri.endswith(".zip"):
        raise SpecError(
            f"{path}: {logical_id}: ContentUri must name the zip layerkit builds, for example "
            f"`dist/layers/<name>.zip` (got {uri!r})."
        )
    return PurePosixPath(uri).stem


def _code_location(uri: Any, logical_id: str, path: Path) -> tuple[str, str | None]:
    """A function's name and, for a folder CodeUri (SAM style), its source folder.

    ``CodeUri: dist/functions/hello.zip`` names the zip layerkit builds from ``functions/hello/``;
    ``CodeUri: hello/`` (what ``sam init`` writes) names the source folder, whose zip layerkit
    builds as ``dist/functions/hello.zip``.
    """
    if isinstance(uri, str) and uri.endswith(".zip"):
        return PurePosixPath(uri).stem, None
    folder = PurePosixPath(uri) if isinstance(uri, str) and "://" not in uri else None
    if folder is None or folder.is_absolute() or ".." in folder.parts or not folder.name:
        raise SpecError(
            f"{path}: {logical_id}: CodeUri must name the function's source folder inside the "
            "project (SAM style, for example `hello_world/`) or the zip layerkit builds, "
            f"`dist/functions/<name>.zip` (got {uri!r})."
        )
    return folder.name, folder.as_posix()


def _resolve_layer_ref(
    entry: Any, layer_ids: Mapping[str, TemplateLayer], fn: str, path: Path
) -> str:
    ref = entry.get("Ref") if isinstance(entry, Mapping) else None
    if ref is None and isinstance(entry, Mapping) and "Fn::GetAtt" in entry:
        ref = entry["Fn::GetAtt"][0]
    if not isinstance(ref, str) or ref not in layer_ids:
        raise SpecError(
            f"{path}: function {fn} attaches layer {entry!r}, which is not an "
            f"{LAYER_TYPE} in this template; use `!Ref <LayerLogicalId>` with one of: "
            f"{', '.join(sorted(layer_ids)) or '(none defined)'}."
        )
    return layer_ids[ref].layer


def _int_prop(props: Mapping[str, Any], key: str, default: int, fn: str, path: Path) -> int:
    value = props.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise SpecError(
            f"{path}: function {fn}: {key} must be a literal number (got {value!r}); layerkit "
            "reads it from the template for the sandbox and the deploy."
        )
    return int(value)


def parse_template(text: str, path: Path) -> Template:
    """Extract layers and functions (Globals applied) from the text of a SAM template."""
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("Resources"), Mapping):
        raise SpecError(f"{path}: a SAM template needs a `Resources` mapping.")
    globals_all = doc.get("Globals") or {}
    globals_fn = globals_all.get("Function") or {} if isinstance(globals_all, Mapping) else None
    if not isinstance(globals_fn, Mapping):
        raise SpecError(f"{path}: `Globals` must be a mapping with a `Function` mapping inside.")
    layers: dict[str, TemplateLayer] = {}
    for logical_id, res in doc["Resources"].items():
        if isinstance(res, Mapping) and res.get("Type") == LAYER_TYPE:
            props = res.get("Properties") or {}
            uri = props.get("ContentUri")
            layers[logical_id] = TemplateLayer(
                logical_id=logical_id,
                layer=_layer_stem(uri, logical_id, path),
                content_uri=uri,
                compatible_runtimes=tuple(props.get("CompatibleRuntimes") or ()),
                compatible_architectures=tuple(props.get("CompatibleArchitectures") or ("x86_64",)),
            )
    functions: list[TemplateFunction] = []
    for logical_id, res in doc["Resources"].items():
        if not (isinstance(res, Mapping) and res.get("Type") == FUNCTION_TYPE):
            continue
        props = {**globals_fn, **(res.get("Properties") or {})}
        missing = [key for key in ("Handler", "Runtime", "CodeUri") if key not in props]
        if missing:
            raise SpecError(
                f"{path}: function {logical_id} has no {', '.join(missing)} (in its Properties "
                "or in Globals.Function); add it."
            )
        archs = props.get("Architectures") or ["x86_64"]
        if not (isinstance(archs, list) and archs and isinstance(archs[0], str)):
            raise SpecError(
                f"{path}: function {logical_id}: Architectures must be a literal list such as "
                f"[x86_64] (got {archs!r}); layerkit builds for the architecture it names."
            )
        for key in ("Handler", "Runtime"):
            if not isinstance(props[key], str):
                raise SpecError(
                    f"{path}: function {logical_id}: {key} must be a literal string (got "
                    f"{props[key]!r}); layerkit reads it from the template to build and test."
                )
        name, source_dir = _code_location(props["CodeUri"], logical_id, path)
        functions.append(
            TemplateFunction(
                logical_id=logical_id,
                name=name,
                code_uri=props["CodeUri"],
                source_dir=source_dir,
                handler=str(props["Handler"]),
                runtime=str(props["Runtime"]),
                architecture=str(archs[0]),
                memory_size=_int_prop(props, "MemorySize", 128, logical_id, path),
                timeout=_int_prop(props, "Timeout", 3, logical_id, path),
                layers=tuple(
                    _resolve_layer_ref(entry, layers, logical_id, path)
                    for entry in props.get("Layers") or ()
                ),
            )
        )
    return Template(path, tuple(layers.values()), tuple(functions), doc)


def read_template(path: Path) -> Template:
    """Read and parse ``template.yaml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"{path} not found: layerkit reads which function attaches which layers from the "
            "SAM template; create it (see the README)."
        ) from None
    return parse_template(text, path)
