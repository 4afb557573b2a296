"""Template wiring: layer folders against template layers, and each function against its layers.

- every layer in the template has a ``layers/<name>/`` folder and every folder a layer resource;
- a function attaches at most 5 layers, none twice, and every layer an attached layer requires;
- a function's runtime and architecture are in each attached layer's CompatibleRuntimes and
  CompatibleArchitectures, and in the runtimes and architectures layerkit builds it for.

All pure: the :class:`~layerkit.project.spec.Project` holds everything read from disk.
"""

from __future__ import annotations

from collections.abc import Iterator

from layerkit.check.findings import Finding, Severity
from layerkit.check.sizes import MAX_LAYERS
from layerkit.project.spec import LAYERS_DIR, TEMPLATE_FILE, Function, Project
from layerkit.project.template import TemplateLayer


def _error(message: str, code: str, *, in_template: bool = True) -> Finding:
    path = TEMPLATE_FILE if in_template else None
    return Finding(Severity.ERROR, TEMPLATE_FILE, message, code=code, path=path)


def folder_findings(project: Project) -> Iterator[Finding]:
    """A template layer without a folder, and a layer folder without a template layer."""
    template_layers = {tl.layer: tl for tl in project.template.layers}
    folders = {layer.name for layer in project.layers}
    for name in sorted(set(template_layers) - folders):
        yield _error(
            f"{template_layers[name].logical_id} builds layer {name!r} but there is no "
            f"{LAYERS_DIR}/{name}/ folder; create it or fix the ContentUri.",
            "layer-folder",
        )
    for name in sorted(folders - set(template_layers)):
        yield _error(
            f"{LAYERS_DIR}/{name}/ has no AWS::Serverless::LayerVersion in {TEMPLATE_FILE} "
            f"(ContentUri dist/layers/{name}.zip); add one or remove the folder.",
            "layer-resource",
            in_template=False,
        )


def attachment_findings(project: Project, fn: Function) -> Iterator[Finding]:
    """Too many layers, a layer twice, or a required layer not attached."""
    where = f"function {fn.logical_id}"
    if len(fn.layers) > MAX_LAYERS:
        yield _error(
            f"{where} attaches {len(fn.layers)} layers; Lambda allows {MAX_LAYERS}. "
            "Merge layers or drop one.",
            "max-layers",
        )
    for name in sorted({n for n in fn.layers if fn.layers.count(n) > 1}):
        yield _error(f"{where} attaches layer {name} twice.", "duplicate-layer")
    folders = {layer.name for layer in project.layers}
    for name in dict.fromkeys(fn.layers):
        missing = [r for r in project.required_closure(name) if r not in fn.layers]
        if name in folders and missing:
            yield _error(
                f"{where} attaches {name}, which requires {', '.join(missing)} (see "
                f"{project.layer(name).settings_file}), but does not attach "
                f"{'it' if len(missing) == 1 else 'them'}; add to its Layers.",
                "required-layer",
            )


def compatibility_findings(project: Project, fn: Function, tl: TemplateLayer) -> Iterator[Finding]:
    """The function's runtime and architecture against one attached layer's resource and folder."""
    where = f"function {fn.logical_id}"
    runtime, arch, name = fn.target.runtime, fn.target.architecture, tl.layer
    if tl.compatible_runtimes and runtime not in tl.compatible_runtimes:  # absent: any runtime
        yield _error(
            f"{where} runs {runtime}, but layer {name} ({tl.logical_id}) lists "
            f"CompatibleRuntimes {list(tl.compatible_runtimes)}; add {runtime} there.",
            "layer-runtime",
        )
    if arch not in tl.compatible_architectures:
        yield _error(
            f"{where} runs on {arch}, but layer {name} ({tl.logical_id}) lists "
            f"CompatibleArchitectures {list(tl.compatible_architectures)}.",
            "layer-architecture",
        )
    if name not in {layer.name for layer in project.layers}:
        return
    layer = project.layer(name)
    if runtime not in layer.runtimes or arch not in layer.architectures:
        yield _error(
            f"{where} runs {runtime} on {arch}, but {layer.settings_file} "
            f"builds the layer for runtimes {list(layer.runtimes)} and "
            f"architectures {list(layer.architectures)}; add them there.",
            "layer-target",
        )


def wiring_findings(project: Project) -> tuple[Finding, ...]:
    """Layer folders vs template layers, and each function's layers vs its runtime."""
    found = list(folder_findings(project))
    template_layers = {tl.layer: tl for tl in project.template.layers}
    for fn in project.functions:
        for name in dict.fromkeys(fn.layers):
            if name in template_layers:
                found.extend(compatibility_findings(project, fn, template_layers[name]))
        found.extend(attachment_findings(project, fn))
    return tuple(found)
