"""Reading the SAM ``template.yaml``: which function attaches which layers, in what order.

The template is the one source of the deploy topology. This module reads it with a YAML loader
that understands CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...), turning them
into their long forms (``{"Ref": ...}``), and extracts a small, frozen description of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from layerkit.errors import SpecError

LAYER_TYPE = "AWS::Serverless::LayerVersion"
LAMBDA_LAYER_TYPE = "AWS::Lambda::LayerVersion"
LAYER_TYPES = (LAYER_TYPE, LAMBDA_LAYER_TYPE)
FUNCTION_TYPE = "AWS::Serverless::Function"
#: The key of a layer resource's ``Metadata`` holding layerkit's own settings (layer.toml's keys).
METADATA_KEY = "layerkit"


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
    """An ``AWS::Serverless::LayerVersion`` (or ``AWS::Lambda::LayerVersion``) resource.

    Its ``ContentUri`` (``Content`` for the Lambda type) names either the zip layerkit builds
    from ``<layers-dir>/<stem>/`` (``dist/layers/common.zip``) or, as SAM writes it, the layer's
    source folder (``layers/common/``: requirements.txt, optionally layer.toml).
    """

    logical_id: str
    layer: str  # the layer's name: its zip stem, or its source folder's last name
    content_uri: str
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]  # x86_64 when the resource lists none
    source_dir: str | None = None  # the ContentUri folder (SAM style); None: it names the zip
    build_method: str | None = None  # Metadata.BuildMethod (python3.12, makefile ...)
    build_architecture: str | None = None  # Metadata.BuildArchitecture
    settings: Mapping[str, Any] | None = None  # Metadata.layerkit: layer.toml's keys
    architectures_written: bool = False  # CompatibleArchitectures is in the resource


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


def _layer_location(uri: Any, logical_id: str, path: Path, key: str) -> tuple[str, str | None]:
    """A layer's name and, for a folder ContentUri (SAM style), its source folder."""
    if isinstance(uri, str) and uri.endswith(".zip"):
        return PurePosixPath(uri).stem, None
    folder = PurePosixPath(uri) if isinstance(uri, str) and "://" not in uri else None
    if folder is None or folder.is_absolute() or ".." in folder.parts or not folder.name:
        raise SpecError(
            f"{path}: {logical_id}: {key} must name the layer's source folder inside the project "
            "(SAM style, for example `layers/common/` holding its requirements.txt) or the zip "
            f"layerkit builds, `dist/layers/<name>.zip` (got {uri!r})."
        )
    return folder.name, folder.as_posix()


def _str_list(value: Any, key: str, logical_id: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(
            f"{path}: {logical_id}: {key} must be a literal list of names such as [python3.12] "
            f"(got {value!r}); layerkit builds the layer for what it lists."
        )
    return tuple(value)


def _template_layer(logical_id: str, res: Mapping[str, Any], path: Path) -> TemplateLayer:
    """One layer resource of either type, read into a TemplateLayer."""
    props = res.get("Properties") or {}
    key = "ContentUri" if res.get("Type") == LAYER_TYPE else "Content"
    uri = props.get(key)
    name, source_dir = _layer_location(uri, logical_id, path, key)
    metadata = res.get("Metadata") or {}
    if not isinstance(metadata, Mapping):
        raise SpecError(f"{path}: {logical_id}: Metadata must be a mapping (got {metadata!r}).")
    settings = metadata.get(METADATA_KEY)
    if settings is not None and not isinstance(settings, Mapping):
        raise SpecError(
            f"{path}: {logical_id}: Metadata.{METADATA_KEY} must be a mapping of layer.toml's "
            f"keys, for example `{METADATA_KEY}: {{budget: 50 MB}}` (got {settings!r})."
        )
    method, arch = metadata.get("BuildMethod"), metadata.get("BuildArchitecture")
    archs = _str_list(
        props.get("CompatibleArchitectures"), "CompatibleArchitectures", logical_id, path
    )
    return TemplateLayer(
        logical_id=logical_id,
        layer=name,
        content_uri=uri,
        compatible_runtimes=_str_list(
            props.get("CompatibleRuntimes"), "CompatibleRuntimes", logical_id, path
        ),
        compatible_architectures=archs or ((arch,) if isinstance(arch, str) else ("x86_64",)),
        source_dir=source_dir,
        build_method=method if isinstance(method, str) else None,
        build_architecture=arch if isinstance(arch, str) else None,
        settings=settings,
        architectures_written=bool(archs),
    )


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


def _unique_layer_names(layers: dict[str, TemplateLayer]) -> dict[str, TemplateLayer]:
    """Layers whose names (zip stem, folder last name) clash are named by their logical IDs.

    Two resources may build the same zip or folder only by naming it the same way; two folders
    sharing a last name (``a/common/``, ``b/common/``) are two layers, keyed by logical ID.
    """
    by_name: dict[str, set[str]] = {}
    for tl in layers.values():
        by_name.setdefault(tl.layer, set()).add(tl.source_dir or tl.content_uri)
    return {
        lid: replace(tl, layer=lid) if len(by_name[tl.layer]) > 1 else tl
        for lid, tl in layers.items()
    }


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


def with_globals(globals_fn: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """A function's properties with Globals.Function applied as SAM applies them.

    A scalar of the function replaces the global one; mappings are merged (the function's keys
    win, ``Environment.Variables`` included); lists add up, the global entries first (SAM
    documents this for ``Layers``: global layers come before the function's).
    """
    merged: dict[str, Any] = dict(globals_fn)
    for key, value in props.items():
        base = merged.get(key)
        if isinstance(base, list) and isinstance(value, list):
            merged[key] = [*base, *value]
        elif isinstance(base, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge_maps(base, value)
        else:
            merged[key] = value
    return merged


def _merge_maps(base: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(base)
    for key, item in value.items():
        inner = out.get(key)
        both = isinstance(inner, Mapping) and isinstance(item, Mapping)
        out[key] = _merge_maps(inner, item) if both else item  # type: ignore[arg-type]
    return out


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
        if isinstance(res, Mapping) and res.get("Type") in LAYER_TYPES:
            layers[logical_id] = _template_layer(logical_id, res, path)
    layers = _unique_layer_names(layers)
    functions: list[TemplateFunction] = []
    for logical_id, res in doc["Resources"].items():
        if not (isinstance(res, Mapping) and res.get("Type") == FUNCTION_TYPE):
            continue
        props = with_globals(globals_fn, res.get("Properties") or {})
        archs_seen = props.get("Architectures")
        if isinstance(archs_seen, list) and len(archs_seen) > 1:
            raise SpecError(
                f"{path}: function {logical_id}: Architectures adds up to {archs_seen!r} (SAM "
                "puts the list of Globals.Function before the function's own); Lambda takes "
                "one architecture: set it in Globals.Function or in the function, not both."
            )
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
    return Template(path, tuple(layers.values()), _unique_function_names(functions), doc)


def _unique_function_names(functions: list[TemplateFunction]) -> tuple[TemplateFunction, ...]:
    """A folder-CodeUri function whose name another function has is named by its logical ID.

    ``src/orders/api/`` and ``src/payments/api/`` (or two functions sharing one folder, each
    with its own Handler) are packaged as ``OrdersApi.zip`` and ``PaymentsApi.zip``; a function
    whose folder's last name is its own keeps it (``hello_world/``: ``hello_world.zip``).
    """
    count: dict[str, int] = {}
    for tf in functions:
        count[tf.name] = count.get(tf.name, 0) + 1
    return tuple(
        replace(tf, name=tf.logical_id) if count[tf.name] > 1 and tf.source_dir is not None else tf
        for tf in functions
    )


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
