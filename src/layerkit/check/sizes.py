"""Sizes against budgets and Lambda's limits, from the build manifest's records (pure).

- a layer over its budget in layer.toml is an error (a warning with a written
  ``over-budget-reason``);
- a layer alone above Lambda's 262,144,000-byte unzipped limit is an error whatever its budget:
  no function can attach it; the message names its largest distributions and what bytecode and
  remove patterns would save;
- a function's package plus every layer it attaches above that limit is an error, as is a
  function with more than 5 layers;
- a zip above the 50 MiB direct-upload limit is information: it must travel through S3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from layerkit.build.manifest import ArtifactRecord, artifact_path
from layerkit.check.findings import Finding, Severity
from layerkit.errors import CheckError
from layerkit.project.spec import LAYERS_DIR, Project

FUNCTION_UNZIPPED_LIMIT = 262_144_000  # code + all layers, bytes (250 MiB)
DIRECT_UPLOAD_LIMIT = 52_428_800  # a zip sent in the request itself (50 MiB)
MAX_LAYERS = 5
#: The slimming pass that applies a layer's own ``[slim] remove`` patterns.
REMOVE_PASS = "layer-remove"


@dataclass(frozen=True)
class FunctionTotal:
    """A function's unzipped size on Lambda: its package plus every layer it attaches."""

    function: str
    code_bytes: int
    layer_bytes: Mapping[str, int]

    @property
    def total(self) -> int:
        """Package plus layers, bytes."""
        return self.code_bytes + sum(self.layer_bytes.values())

    @property
    def headroom(self) -> int:
        """Bytes left under Lambda's 262,144,000-byte limit (negative when over)."""
        return FUNCTION_UNZIPPED_LIMIT - self.total


def function_totals(
    project: Project, records: Mapping[str, ArtifactRecord]
) -> tuple[FunctionTotal, ...]:
    """The unzipped total of every function whose package and layers are built."""
    totals = []
    for fn in project.functions:
        code = records.get(artifact_path("function", fn.name))
        layers = {name: records.get(artifact_path("layer", name)) for name in fn.layers}
        if code is None or any(r is None for r in layers.values()):
            continue
        sizes = {name: r.unzipped_bytes for name, r in layers.items() if r is not None}
        totals.append(FunctionTotal(fn.name, code.unzipped_bytes, sizes))
    return tuple(totals)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _largest(rec: ArtifactRecord, count: int = 3) -> str:
    sizes = [(n, b) for n, b in rec.distribution_bytes.items() if not n.startswith("(")]
    top = sorted(sizes, key=lambda item: (-item[1], item[0]))[:count]
    return ", ".join(f"{name} {_mb(size)}" for name, size in top) or "none recorded"


def _bytecode_saving(rec: ArtifactRecord) -> str:
    mode = str(rec.bytecode.get("mode", "all"))
    added = int(rec.bytecode.get("added_bytes", 0) or 0)
    if mode in ("all", "imported") and added > 0:
        partial = ', "imported" the part a cold start does not load' if mode == "all" else ""
        return (
            f'bytecode = "{mode}" adds {_mb(added)}: "none" would save all of it{partial} '
            "(at the price of compiling at every cold start)"
        )
    if mode == "sourceless":
        return 'bytecode = "sourceless" already ships no sources, so no mode saves more'
    return f'bytecode = "{mode}" adds nothing, so no bytecode mode saves anything'


def _remove_saving(rec: ArtifactRecord) -> str:
    patterns = sum(
        int(p.get("removed_bytes", 0) or 0) for p in rec.slim if p.get("name") == REMOVE_PASS
    )
    return (
        f"its [slim] remove patterns save {_mb(patterns)} now; a pattern saves what it matches, "
        "up to a whole distribution"
    )


def layer_limit_finding(rec: ArtifactRecord) -> Finding | None:
    """An error for a layer that alone is above Lambda's unzipped limit, whatever its budget."""
    if rec.kind != "layer" or rec.unzipped_bytes <= FUNCTION_UNZIPPED_LIMIT:
        return None
    over = rec.unzipped_bytes - FUNCTION_UNZIPPED_LIMIT
    return Finding(
        Severity.ERROR,
        rec.path,
        f"layer {rec.name} alone is {rec.unzipped_bytes:,} bytes unzipped, {over:,} bytes over "
        f"Lambda's {FUNCTION_UNZIPPED_LIMIT:,}-byte limit for a function and all its layers, "
        f"so no function can attach it (whatever the budget in {LAYERS_DIR}/{rec.name}/"
        f"layer.toml). Its largest distributions: {_largest(rec)}. {_bytecode_saving(rec)}; "
        f"{_remove_saving(rec)}. Move a large distribution into a layer of its own, or slim "
        "this one below the limit.",
        code="layer-over-limit",
    )


def layer_limit_findings(records: Iterable[ArtifactRecord]) -> tuple[Finding, ...]:
    """:func:`layer_limit_finding` for every record, in path order."""
    found = (layer_limit_finding(rec) for rec in sorted(records, key=lambda r: r.path))
    return tuple(f for f in found if f is not None)


def raise_for_layer_limits(records: Iterable[ArtifactRecord]) -> None:
    """Raise one CheckError if any layer among ``records`` is above Lambda's unzipped limit."""
    found = layer_limit_findings(records)
    if found:
        raise CheckError(" ".join(f.message for f in found))


def _budget_finding(project: Project, rec: ArtifactRecord) -> Finding | None:
    if rec.kind != "layer" or rec.budget is None or rec.unzipped_bytes <= rec.budget:
        return None
    known = {x.name: x for x in project.layers}
    over = rec.unzipped_bytes - rec.budget
    reason = known[rec.name].over_budget_reason if rec.name in known else None
    default = f"{LAYERS_DIR}/{rec.name}/layer.toml"
    settings = known[rec.name].settings_file if rec.name in known else default
    message = (
        f"{rec.unzipped_bytes:,} bytes unzipped is {over:,} bytes over the budget of "
        f"{rec.budget:,} in {settings}"
    )
    if reason:
        return Finding(
            Severity.WARNING, rec.path, f"{message}; accepted there: {reason}", code="budget"
        )
    return Finding(Severity.ERROR, rec.path, message, code="budget")


def refusal(project: Project, rec: ArtifactRecord) -> str | None:
    """Why a build must not keep the layer ``rec`` describes, or None when it may.

    Above Lambda's unzipped limit (whatever its budget), or over its budget without an
    ``over_budget_reason`` in its layer.toml; build and validate decide this the same way.
    """
    found = [layer_limit_finding(rec), _budget_finding(project, rec)]
    errors = [f.message for f in found if f is not None and f.severity == Severity.ERROR]
    return "; ".join(errors) if errors else None


def _upload_finding(rec: ArtifactRecord) -> Finding | None:
    if rec.zipped_bytes <= DIRECT_UPLOAD_LIMIT:
        return None
    return Finding(
        Severity.INFO,
        rec.path,
        f"{rec.zipped_bytes:,} bytes zipped is above the {DIRECT_UPLOAD_LIMIT:,}-byte "
        "direct upload limit: upload through S3",
        code="s3-upload",
    )


def _function_findings(
    project: Project, records: Mapping[str, ArtifactRecord]
) -> Iterable[Finding]:
    for fn in project.functions:
        if len(fn.layers) > MAX_LAYERS:
            yield Finding(
                Severity.ERROR,
                artifact_path("function", fn.name),
                f"attaches {len(fn.layers)} layers; Lambda allows {MAX_LAYERS}",
                code="max-layers",
            )
    for total in function_totals(project, records):
        if total.total > FUNCTION_UNZIPPED_LIMIT:
            parts = ", ".join(f"{n} {b:,}" for n, b in total.layer_bytes.items())
            yield Finding(
                Severity.ERROR,
                artifact_path("function", total.function),
                f"package {total.code_bytes:,} + layers ({parts}) = {total.total:,} bytes "
                f"unzipped, over Lambda's {FUNCTION_UNZIPPED_LIMIT:,}-byte limit by "
                f"{-total.headroom:,}",
                code="function-over-limit",
            )


def size_findings(project: Project, records: Mapping[str, ArtifactRecord]) -> tuple[Finding, ...]:
    """Every budget and Lambda-limit finding for a build."""
    found: list[Finding | None] = []
    for _, rec in sorted(records.items()):
        found += [_budget_finding(project, rec), layer_limit_finding(rec), _upload_finding(rec)]
    return (*(f for f in found if f is not None), *_function_findings(project, records))
