"""Size checks of a build against layer budgets and Lambda limits (pure: records in, findings out).

- every layer within the budget in its layer.toml;
- every function's package plus all the layers it attaches within 262,144,000 bytes unzipped;
- at most 5 layers per function;
- a zip above 52,428,800 bytes cannot be sent in the API request: it is flagged "upload through
  S3" (information: the deploy always goes through S3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from layerkit.build.manifest import ArtifactRecord, artifact_path
from layerkit.project.spec import Project

FUNCTION_UNZIPPED_LIMIT = 262_144_000  # code + all layers, bytes (250 MiB)
DIRECT_UPLOAD_LIMIT = 52_428_800  # a zip sent in the request itself (50 MiB)
MAX_LAYERS = 5


@dataclass(frozen=True)
class Finding:
    """One result of a check: ``error`` fails validation; ``warning`` and ``info`` do not."""

    severity: str
    artifact: str
    message: str


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


def size_findings(project: Project, records: Mapping[str, ArtifactRecord]) -> tuple[Finding, ...]:
    """Every budget and Lambda-limit finding for a build."""
    found: list[Finding] = []
    known = {x.name: x for x in project.layers}
    for path, rec in sorted(records.items()):
        if rec.kind == "layer" and rec.budget is not None and rec.unzipped_bytes > rec.budget:
            over = rec.unzipped_bytes - rec.budget
            reason = known[rec.name].over_budget_reason if rec.name in known else None
            message = (
                f"{rec.unzipped_bytes:,} bytes unzipped is {over:,} bytes over the budget of "
                f"{rec.budget:,} in layers/{rec.name}/layer.toml"
            )
            if reason:
                found.append(Finding("warning", path, f"{message}; accepted there: {reason}"))
            else:
                found.append(Finding("error", path, message))
        if rec.zipped_bytes > DIRECT_UPLOAD_LIMIT:
            found.append(
                Finding(
                    "info",
                    path,
                    f"{rec.zipped_bytes:,} bytes zipped is above the {DIRECT_UPLOAD_LIMIT:,}-byte "
                    "direct upload limit: upload through S3",
                )
            )
    for fn in project.functions:
        if len(fn.layers) > MAX_LAYERS:
            found.append(
                Finding(
                    "error",
                    artifact_path("function", fn.name),
                    f"attaches {len(fn.layers)} layers; Lambda allows {MAX_LAYERS}",
                )
            )
    for total in function_totals(project, records):
        if total.total > FUNCTION_UNZIPPED_LIMIT:
            parts = ", ".join(f"{n} {b:,}" for n, b in total.layer_bytes.items())
            found.append(
                Finding(
                    "error",
                    artifact_path("function", total.function),
                    f"package {total.code_bytes:,} + layers ({parts}) = {total.total:,} bytes "
                    f"unzipped, over Lambda's {FUNCTION_UNZIPPED_LIMIT:,}-byte limit by "
                    f"{-total.headroom:,}",
                )
            )
    return tuple(found)


_RANK = {"info": 1, "warning": 2, "error": 3}


def worst_severity(findings: tuple[Finding, ...]) -> dict[str, str]:
    """The most severe finding's severity per artifact (an S3 note never hides an overrun)."""
    worst: dict[str, str] = {}
    for f in findings:
        if _RANK[f.severity] > _RANK.get(worst.get(f.artifact, ""), 0):
            worst[f.artifact] = f.severity
    return worst
