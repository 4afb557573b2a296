"""A layer attached by functions on several targets is published once per target.

A Lambda layer version has one content: a layer built for python3.12 on x86_64 holds x86_64
shared objects and that Python's compiled wheels, so an arm64 (or python3.13) function cannot
attach it. layerkit therefore publishes one layer version per (layer, target) the template's
functions use: a *variant*.

- The layer's **main** variant is its build for the template's main target (``dist/``), or,
  when no function on that target attaches it, its first target in the project's order. It
  keeps the template's logical ID and ``LayerName`` (or the stage's default name).
- Every **other** variant is named with the target's suffix, ``-python312-arm64``: the layer
  name ``shop-common-dev-python312-arm64``, the packaged template's resource
  ``CommonLayerPython312Arm64``, the deploy's key ``common-python312-arm64``.
- A layer with several variants declares, in each, only the runtime and architecture it was
  built for (``CompatibleRuntimes``/``CompatibleArchitectures``); a layer with one variant keeps
  the template's lists.

One rule for both paths: the direct deploy (:func:`layerkit.deploy.deployer.desired_state`)
and the packaged template (:mod:`layerkit.deploy.package`) use :func:`layer_variants`.
"""

from __future__ import annotations

from dataclasses import dataclass

from layerkit.project.spec import Project
from layerkit.runtime.target import Target

__all__ = ["LayerVariant", "layer_variants", "target_suffix", "variant_key"]


def target_suffix(target: Target) -> str:
    """The name suffix of a target's variant: ``python312-arm64`` (Lambda names take no dot)."""
    return f"{target.runtime.replace('.', '')}-{target.architecture}"


def _logical_suffix(target: Target) -> str:
    """The logical-ID suffix of a target's variant: ``Python312Arm64`` (alphanumeric only)."""
    arch = {"x86_64": "X86", "arm64": "Arm64"}.get(target.architecture, target.architecture)
    return target.runtime.replace(".", "").capitalize() + arch


@dataclass(frozen=True)
class LayerVariant:
    """One layer built for one target: what one layer version on a stage holds."""

    layer: str  # the project's layer name (its folder's or zip's stem)
    logical_id: str  # the template's LayerVersion resource
    target: Target
    main: bool  # keeps the template's logical ID and name
    several: bool  # the layer has other variants (narrow its Compatible* lists to the target)

    @property
    def key(self) -> str:
        """The deploy's name for it: the layer's name, plus the target suffix unless main."""
        return self.layer if self.main else f"{self.layer}-{target_suffix(self.target)}"

    @property
    def name_suffix(self) -> str:
        """What its published name adds to the layer's: ``""`` or ``-python312-arm64``."""
        return "" if self.main else f"-{target_suffix(self.target)}"

    @property
    def resource_id(self) -> str:
        """Its packaged template logical ID: ``CommonLayer``, ``CommonLayerPython312Arm64``."""
        return self.logical_id if self.main else self.logical_id + _logical_suffix(self.target)


def layer_variants(project: Project) -> tuple[LayerVariant, ...]:
    """Every (layer, target) a deploy publishes, in the build's layer order, main first.

    A layer's targets are those of the functions attaching it; a layer no function attaches is
    published for the main target when it is built for it, else for its first target.
    """
    order = {t: i for i, t in enumerate(project.targets)}
    declared = {tl.layer: tl for tl in project.template.layers}
    found: list[LayerVariant] = []
    for layer in project.layers:  # required layers first, as the build orders them
        tl = declared.get(layer.name)
        if tl is None:
            continue
        targets = {fn.target for fn in project.functions if tl.layer in fn.layers}
        if not targets:
            built = layer.targets()
            if not built:
                continue
            targets = {project.deploy_target if project.deploy_target in built else built[0]}
        ordered = sorted(targets, key=lambda t: order.get(t, len(order)))
        several = len(ordered) > 1
        found += [
            LayerVariant(tl.layer, tl.logical_id, t, i == 0, several) for i, t in enumerate(ordered)
        ]
    return tuple(found)


def variant_key(variants: tuple[LayerVariant, ...], layer: str, target: Target) -> str:
    """The deploy key of ``layer`` as a function on ``target`` attaches it."""
    for v in variants:
        if v.layer == layer and v.target == target:
            return v.key
    return layer  # a layer the template does not declare: the planner names it
