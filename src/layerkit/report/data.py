"""The size report's data: where the bytes of each layer go, and how each function fits Lambda.

:func:`distribution_sizes` measures a staged layer tree (the build stores it in the manifest);
:func:`zip_package_sizes` splits a built layer zip by distribution and top-level package (for the
treemap). :func:`check_manifest` says in one paragraph what is wrong with a damaged manifest.
:func:`build_report` turns the build manifests of every built target into the report's data
(pure, JSON-ready) and :func:`report_changes` compares it with the previous report. The text,
HTML and markdown views are in :mod:`~layerkit.report.text`, :mod:`~layerkit.report.html` and
:mod:`~layerkit.report.markdown`; reading and writing files in :mod:`~layerkit.report.files`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from layerkit import __version__
from layerkit.check.sizes import DIRECT_UPLOAD_LIMIT, MAX_LAYERS
from layerkit.check.sizes import FUNCTION_UNZIPPED_LIMIT as LAMBDA_UNZIPPED_LIMIT

OTHER = "(other)"
CODE = "(function code)"
METADATA = "(metadata)"
LARGEST = 10  # distributions listed per layer in report.json, largest first

__all__ = [
    "CODE",
    "DIRECT_UPLOAD_LIMIT",
    "LAMBDA_UNZIPPED_LIMIT",
    "MAX_LAYERS",
    "OTHER",
    "BuildInfo",
    "build_report",
    "check_manifest",
    "distribution_sizes",
    "report_changes",
    "zip_package_sizes",
]


# --- measuring a layer ------------------------------------------------------------------------


def _dist_name(info_dir: str) -> str:
    """Canonical distribution name from ``name-version.dist-info``."""
    return str(canonicalize_name(info_dir.removesuffix(".dist-info").rsplit("-", 1)[0]))


def _owner_of_pyc(path: PurePosixPath) -> str | None:
    """Return the ``.py`` path a ``__pycache__`` pyc or a legacy pyc was compiled from."""
    if path.suffix != ".pyc":
        return None
    if path.parent.name == "__pycache__":
        return str(path.parent.parent / (path.name.split(".", 1)[0] + ".py"))
    return str(path.with_suffix(".py"))


def _top_level(rel: str) -> str:
    """The importable top-level name a file belongs to: ``numpy``, ``six`` (``six.py``)."""
    first, _, rest = rel.partition("/")
    if first.endswith(".dist-info"):
        return METADATA
    return first if rest else first.split(".", 1)[0]


def attribute_files(
    files: Iterable[tuple[str, int]], records: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, int]]:
    """Bytes per distribution and top-level package of a layer tree (pure).

    ``files`` are (path relative to ``python/``, bytes); ``records`` maps each
    ``name-version.dist-info`` folder to the paths its RECORD lists. A file belongs to the
    distribution whose RECORD lists it; a pyc to the distribution of its source; anything else
    to the distribution owning its top-level folder; what is left is ``(other)``.
    """
    owner: dict[str, str] = {}
    top_owner: dict[str, str] = {}
    for info, paths in sorted(records.items()):
        dist = _dist_name(info)
        top_owner[info] = dist
        for rel in paths:
            owner[rel] = dist
            if "/" in rel:
                top_owner.setdefault(rel.split("/", 1)[0], dist)
    sizes: dict[str, dict[str, int]] = {}
    for rel, size in files:
        pure = PurePosixPath(rel)
        source = _owner_of_pyc(pure)
        dist = (
            owner.get(rel)
            or (owner.get(source) if source else None)
            or top_owner.get(pure.parts[0])
            or (top_owner.get(PurePosixPath(source).parts[0]) if source else None)
            or OTHER
        )
        top = _top_level(source if source and pure.parts[0] == "__pycache__" else rel)
        packages = sizes.setdefault(dist, {})
        packages[top] = packages.get(top, 0) + size
    return sizes


def _record_paths(text: str) -> list[str]:
    rows = csv.reader(io.StringIO(text))
    return [
        PurePosixPath(row[0]).as_posix()
        for row in rows
        if row and row[0] and not row[0].startswith("..")
    ]


def _by_size(sizes: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))


def distribution_sizes(root: Path) -> dict[str, int]:
    """Unzipped bytes per distribution in a layer tree (``python/``), largest first.

    Attribution as in :func:`attribute_files`; names are canonical (``scikit-learn``).
    """
    records = {
        info.name: _record_paths((info / "RECORD").read_text(encoding="utf-8"))
        for info in root.glob("*.dist-info")
        if (info / "RECORD").is_file()
    }
    for info in root.glob("*.dist-info"):  # a dist-info without RECORD still owns its folder
        records.setdefault(info.name, [])
    files = [
        (
            (Path(dirpath) / name).relative_to(root).as_posix(),
            (Path(dirpath) / name).lstat().st_size,
        )
        for dirpath, _, names in os.walk(root)
        for name in names
    ]
    split = attribute_files(files, records)
    return _by_size({dist: sum(tops.values()) for dist, tops in split.items()})


def zip_package_sizes(path: Path, prefix: str = "python/") -> dict[str, dict[str, int]]:
    """Unzipped bytes per distribution and top-level package of a built layer zip.

    Reads only the zip's directory and the RECORD files, so it takes milliseconds even for a
    100 MB layer. Each level is ordered largest first.
    """
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir() and i.filename.startswith(prefix)]
        records = {}
        for info in infos:
            rel = info.filename[len(prefix) :]
            parts = rel.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info"):
                records.setdefault(parts[0], [])
                if parts[1] == "RECORD":
                    text = archive.read(info).decode("utf-8", "replace")
                    records[parts[0]] = _record_paths(text)
    files = [(i.filename[len(prefix) :], i.file_size) for i in infos]
    split = attribute_files(files, records)
    order = _by_size({dist: sum(tops.values()) for dist, tops in split.items()})
    return {dist: _by_size(split[dist]) for dist in order}


# --- a damaged manifest -----------------------------------------------------------------------


def check_manifest(data: object) -> str | None:
    """What is wrong with a parsed manifest, as a short phrase, or ``None`` if it is usable."""
    if not isinstance(data, Mapping):
        return f"it holds {type(data).__name__ if data is not None else 'null'}, not an object"
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, Mapping):
        return "it has no `artifacts` object"
    for path, rec in artifacts.items():
        if not isinstance(rec, Mapping):
            return f"the entry for {path} is not an object"
        if not isinstance(rec.get("name"), str) or not rec["name"]:
            return f"the entry for {path} has no `name`"
        for key in ("unzipped_bytes", "zipped_bytes", "budget"):
            value = rec.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                return f"the entry for {path} has a `{key}` that is not a number of bytes"
        for key in ("distribution_bytes", "bytecode"):
            if not isinstance(rec.get(key) or {}, Mapping):
                return f"the entry for {path} has a `{key}` that is not an object"
        slim = rec.get("slim") or []
        if not isinstance(slim, list) or not all(
            isinstance(p, Mapping) and isinstance(p.get("name"), str) for p in slim
        ):
            return f"the entry for {path} has a `slim` that is not a list of passes"
    return None


# --- the report's data ------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildInfo:
    """Where a build came from: when the manifest was written, the commit, each lock's hash."""

    date: str | None = None  # ISO 8601, UTC
    commit: str | None = None
    locks: Mapping[str, str] = field(default_factory=dict)  # target key -> sha256 of its lock


def _function_layers(name: str, record: Mapping[str, Any], project: Any) -> list[str]:
    if record.get("layers"):
        return list(record["layers"])
    if project is not None:
        try:
            return list(project.function(name).layers)
        except Exception:  # a function the project no longer has
            return []
    return []


def _over_budget_reason(name: str, project: Any) -> str | None:
    """The reason a layer's layer.toml gives for accepting an overrun, if any."""
    layers = {x.name: x for x in getattr(project, "layers", ())}
    return layers[name].over_budget_reason if name in layers else None


def _layer_entry(
    rec: Mapping[str, Any], common: dict[str, Any], project: Any, packages: Any
) -> dict[str, Any]:
    budget = rec.get("budget")
    slim = [dict(p) for p in rec.get("slim") or ()]
    dist_bytes = _by_size(dict(rec.get("distribution_bytes") or {}))
    size = common["unzipped_bytes"]
    treemap = [
        {
            "name": dist,
            "bytes": total,
            "packages": [
                {"name": top, "bytes": n} for top, n in (packages or {}).get(dist, {}).items()
            ],
        }
        for dist, total in dist_bytes.items()
    ]
    return {
        **common,
        "budget": budget,
        "headroom_bytes": None if budget is None else budget - size,
        "over_budget": budget is not None and size > budget,
        "over_budget_reason": _over_budget_reason(rec["name"], project),
        "requires": list(rec.get("layers") or rec.get("requires") or ()),
        "distributions": dict(rec.get("distributions") or {}),
        "distribution_bytes": dist_bytes,
        "largest_distributions": [
            {"name": d, "bytes": n} for d, n in list(dist_bytes.items())[:LARGEST]
        ],
        "treemap": treemap,
        "slim": slim,
        "slim_removed_bytes": sum(p.get("removed_bytes", 0) for p in slim),
    }


def _add_function_totals(entry: dict[str, Any]) -> None:
    by_name = {layer["name"]: layer for layer in entry["layers"]}
    for fn in entry["functions"]:
        parts = [{"name": CODE, "unzipped_bytes": fn["unzipped_bytes"]}]
        missing = [n for n in fn["layers"] if n not in by_name]
        parts += [
            {"name": n, "unzipped_bytes": by_name[n]["unzipped_bytes"]}
            for n in fn["layers"]
            if n in by_name
        ]
        total = sum(p["unzipped_bytes"] for p in parts)
        fn.update(
            parts=parts,
            missing_layers=missing,
            total_unzipped_bytes=total,
            limit_bytes=LAMBDA_UNZIPPED_LIMIT,
            headroom_bytes=LAMBDA_UNZIPPED_LIMIT - total,
            over_limit=total > LAMBDA_UNZIPPED_LIMIT,
            too_many_layers=len(fn["layers"]) > MAX_LAYERS,
        )


def timed_artifacts(entry: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The rows and columns of a target's timings table.

    The artifacts that recorded step timings (layers, then functions), and every step name
    among them in pipeline order (install, slim, copy, imports, bytecode, import-check, zip).
    """
    from layerkit.build.steps import pipeline_order
    from layerkit.report.table import in_order

    rows = [x for x in [*entry["layers"], *entry["functions"]] if x.get("timings")]
    steps = in_order((step for x in rows for step, _ in x["timings"]), pipeline_order())
    return rows, steps


def build_id(manifests: Sequence[Mapping[str, Any]]) -> str:
    """A short hash of what was built (every artifact's target, path and sha256)."""
    keys = sorted(
        (str(rec.get("target")), path, str(rec.get("sha256")))
        for manifest in manifests
        for path, rec in manifest.get("artifacts", {}).items()
    )
    return hashlib.sha256(repr(keys).encode()).hexdigest()[:16]


def build_report(
    manifests: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    project: Any = None,
    *,
    info: BuildInfo | None = None,
    packages: Mapping[tuple[str, str], Mapping[str, Mapping[str, int]]] | None = None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn the build manifests (one per built target) into the report's data, per target.

    Per layer: sizes, budget and headroom (and the accepted over-budget reason from its
    layer.toml), its distributions largest first, per-pass savings, bytecode, and the treemap
    (distribution -> top-level package, from ``packages`` keyed by (target, layer name)).
    Per function: its package, the layers it attaches (in order), their sum against
    262,144,000 bytes, the layer count against 5, and whether its zip must go through S3
    (over 52,428,800 bytes zipped). ``project`` (a :class:`layerkit.project.spec.Project`)
    supplies over-budget reasons and the layers of a function whose entry lists none.
    ``previous`` is the last report of a different build: ``changes`` says what grew.
    """
    if isinstance(manifests, Mapping):
        manifests = [manifests]
    targets: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        for path, rec in sorted(manifest.get("artifacts", {}).items()):
            key = rec.get("target") or manifest.get("target") or "?"
            entry = targets.setdefault(key, {"target": key, "layers": [], "functions": []})
            common = {
                "name": rec["name"],
                "artifact": path,
                "zipped_bytes": rec.get("zipped_bytes"),
                "unzipped_bytes": rec.get("unzipped_bytes") or 0,
                "files": rec.get("files"),
                "upload_via_s3": (rec.get("zipped_bytes") or 0) > DIRECT_UPLOAD_LIMIT,
                "bytecode": dict(rec.get("bytecode") or {}),
                # "static only": the host could not run the target's code (runtime/host.py)
                "execution": rec.get("execution", "native"),
                # [[step, seconds], ...] of the artifact's last build, steps in order
                "timings": [[step, seconds] for step, seconds in rec.get("timings") or ()],
            }
            if rec.get("kind") == "layer":
                found = (packages or {}).get((key, rec["name"]))
                entry["layers"].append(_layer_entry(rec, common, project, found))
            else:
                entry["functions"].append(
                    {
                        **common,
                        "layers": _function_layers(rec["name"], rec, project),
                        "distributions": dict(rec.get("distributions") or {}),
                    }
                )
    for entry in targets.values():
        _add_function_totals(entry)
    info = info or BuildInfo()
    report: dict[str, Any] = {
        "layerkit": next((m["layerkit"] for m in manifests if m.get("layerkit")), __version__),
        "build": {
            "id": build_id(manifests),
            "date": info.date,
            "commit": info.commit,
            "locks": dict(info.locks),
        },
        "limit_bytes": LAMBDA_UNZIPPED_LIMIT,
        "direct_upload_limit_bytes": DIRECT_UPLOAD_LIMIT,
        "targets": list(targets.values()),  # the template's target (dist/) first
    }
    report["previous"] = (previous or {}).get("build")
    report["changes"] = report_changes(previous, report) if previous else []
    report["version_changes"] = version_changes(previous, report) if previous else []
    return report


def _sizes_by_key(report: Mapping[str, Any]) -> dict[tuple[str, str, str], int]:
    """(target, artifact or artifact/distribution, measure) -> bytes, for comparing reports."""
    out: dict[tuple[str, str, str], int] = {}
    for entry in report.get("targets", ()):
        for item in [*entry.get("layers", ()), *entry.get("functions", ())]:
            kind = "layer" if "budget" in item else "function"
            label = f"{kind} {item['name']}"
            out[(entry["target"], label, "unzipped")] = item.get("unzipped_bytes") or 0
            out[(entry["target"], label, "zipped")] = item.get("zipped_bytes") or 0
            for dist, n in (item.get("distribution_bytes") or {}).items():
                out[(entry["target"], f"{label} / {dist}", "unzipped")] = n
    return out


def _versions_by_key(report: Mapping[str, Any]) -> dict[tuple[str, str, str], str]:
    """(target, artifact label, distribution) -> version, for comparing reports."""
    out = {}
    for entry in report.get("targets") or ():
        for kind, items in (
            ("layer", entry.get("layers") or ()),
            ("function", entry.get("functions") or ()),
        ):
            for item in items:
                for dist, version in (item.get("distributions") or {}).items():
                    out[(entry["target"], f"{kind} {item['name']}", dist)] = str(version)
    return out


def version_changes(
    previous: Mapping[str, Any], current: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Which locked versions moved between two reports, per artifact (pure).

    Each change: target, what (``layer core-data-science``), distribution, before and after
    version (``None`` when it was added or removed). An artifact that is new or gone is not
    listed distribution by distribution.
    """
    before, after = _versions_by_key(previous), _versions_by_key(current)
    old_artifacts = {(t, w) for t, w, _ in before}
    new_artifacts = {(t, w) for t, w, _ in after}
    both = old_artifacts & new_artifacts
    return [
        {
            "target": key[0],
            "what": key[1],
            "distribution": key[2],
            "before": before.get(key),
            "after": after.get(key),
        }
        for key in sorted(before.keys() | after.keys())
        if (key[0], key[1]) in both and before.get(key) != after.get(key)
    ]


def report_changes(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What changed size between two reports, largest growth first (pure).

    Each change: target, what (``layer ml-libraries`` or ``layer ml-libraries / scipy``),
    measure (unzipped/zipped), before and after bytes (``None`` when new or gone) and delta.
    """
    before, after = _sizes_by_key(previous), _sizes_by_key(current)
    # the distributions of an artifact that is new or gone say nothing more than the artifact
    whole = {
        (target, what) for target, what, _ in before.keys() ^ after.keys() if " / " not in what
    }
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if (key[0], key[1].split(" / ", 1)[0]) in whole and " / " in key[1]:
            continue
        old, new = before.get(key), after.get(key)
        delta = (new or 0) - (old or 0)
        if delta or (old is None) != (new is None):
            target, what, measure = key
            changes.append(
                {
                    "target": target,
                    "what": what,
                    "measure": measure,
                    "before": old,
                    "after": new,
                    "delta": delta,
                }
            )
    return sorted(changes, key=lambda c: (-c["delta"], c["target"], c["what"], c["measure"]))
