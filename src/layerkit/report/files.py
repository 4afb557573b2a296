"""Reading the build's manifests and writing ``report.json``, ``report.html``.

:func:`write_report` reports every built target at once: ``dist/manifest.json`` (the template's
target) and each ``dist/<target>/manifest.json``. The report it replaces is kept as
``dist/report.previous.json`` when it describes a different build, so the new one can say what
grew. A damaged manifest is a :class:`~layerkit.errors.ReportError` that says what to run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from layerkit.build.sbom import sbom_path
from layerkit.errors import ReportError
from layerkit.report.data import (
    BuildInfo,
    build_id,
    build_report,
    check_manifest,
    zip_package_sizes,
)
from layerkit.report.html import render_html

MANIFEST = "manifest.json"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
PREVIOUS_JSON = "report.previous.json"
LOCK_DIR = "locks"


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, and the report's data."""

    report: Mapping[str, Any]
    json_path: Path
    html_path: Path
    previous_path: Path | None  # the report compared against, if there was one


def _rebuild_hint(path: Path, dist: Path, unreadable: bool) -> str:
    """What to run: the build refuses a manifest that is not JSON, so that one needs a clean."""
    folder = path.parent
    runtime = "" if folder == dist else f" --runtime={folder.name.rsplit('-', 1)[0]}"
    if unreadable:
        return f"run `inv clean` and then `inv build.all{runtime}`"
    return f"run `inv build.all{runtime} --force` to rebuild every artifact and write it again"


def load_manifest(path: Path, dist: Path | None = None) -> dict[str, Any]:
    """A build manifest, or one paragraph (:class:`ReportError`) saying why it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(
            f"{path} does not exist, so there is no build to report. Run `inv build.all` first."
        ) from None
    except (OSError, ValueError) as exc:
        problem = f"it is not valid JSON ({exc})" if isinstance(exc, ValueError) else str(exc)
        data, error, unreadable = None, problem, True
    else:
        error, unreadable = check_manifest(data), False
    if error:
        hint = _rebuild_hint(path, dist or path.parent, unreadable)
        raise ReportError(f"{path} is damaged: {error}. Nothing was reported; {hint}.")
    return data  # type: ignore[return-value]


def find_manifests(dist: Path) -> list[Path]:
    """``dist/manifest.json`` and every ``dist/<target>/manifest.json`` that exist."""
    found = [dist / MANIFEST] if (dist / MANIFEST).is_file() else []
    return found + sorted(p for p in dist.glob(f"*/{MANIFEST}") if p.is_file())


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def build_info(
    paths: Sequence[Path],
    manifests: Sequence[Mapping[str, Any]],
    root: Path | None,
    commit: str | None,
) -> BuildInfo:
    """When the newest manifest was written, the commit, and the sha256 of each target's lock."""
    stamp = max(p.stat().st_mtime for p in paths)
    keys = {rec.get("target") for m in manifests for rec in m["artifacts"].values()}
    locks = {}
    for key in sorted(k for k in keys if k):
        digest = _sha256(root / LOCK_DIR / f"{key}.toml") if root else None
        if digest:
            locks[key] = digest
    date = datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return BuildInfo(date=date, commit=commit, locks=locks)


def layer_packages(
    paths: Sequence[Path], manifests: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    """Per (target, layer): bytes per distribution and top-level package, read from its zip."""
    out = {}
    for path, manifest in zip(paths, manifests, strict=True):
        for rel, rec in manifest["artifacts"].items():
            if rec.get("kind") != "layer":
                continue
            with contextlib.suppress(OSError, zipfile.BadZipFile):  # gone or partial: no treemap
                out[(rec.get("target") or "?", rec["name"])] = zip_package_sizes(path.parent / rel)
    return out


def link_sboms(
    report: Mapping[str, Any],
    dist: Path,
    paths: Sequence[Path],
    manifests: Sequence[Mapping[str, Any]],
) -> None:
    """Give each artifact of ``report`` the SBOM the build wrote beside its zip.

    ``item["sbom"]`` is ``{"path", "components"}``, the path relative to ``dist`` (where the
    report is); an artifact without a readable SBOM gets none.
    """
    folders = {
        (rec.get("target") or "?", rel): path.parent
        for path, manifest in zip(paths, manifests, strict=True)
        for rel, rec in manifest["artifacts"].items()
    }
    for entry in report["targets"]:
        for item in [*entry["layers"], *entry["functions"]]:
            folder = folders.get((entry["target"], item["artifact"]))
            sbom = folder / sbom_path(item["artifact"]) if folder is not None else None
            try:
                data = json.loads(sbom.read_text(encoding="utf-8")) if sbom else None
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and sbom is not None:
                rel = sbom.relative_to(dist).as_posix()
                item["sbom"] = {"path": rel, "components": len(data.get("components") or ())}


def _read_report(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("targets"), list)
    return data if ok else None


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all; an unwritable or full folder is one paragraph."""
    from layerkit.locking import is_storage_problem, storage_error

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # on a read-only file system even this fails
            tmp.unlink(missing_ok=True)
        if not is_storage_problem(exc):
            raise
        raise storage_error(path.parent, f"the report {path.name}", exc) from None


def _keep_previous(json_path: Path, prev_path: Path) -> None:
    from layerkit.locking import is_storage_problem, storage_error

    try:
        os.replace(json_path, prev_path)
    except OSError as exc:
        if not is_storage_problem(exc):
            raise
        raise storage_error(json_path.parent, f"the report {json_path.name}", exc) from None


def write_report(dist: Path, project: Any = None, *, commit: str | None = None) -> ReportFiles:
    """Report every build in ``dist`` into ``dist/report.json`` and ``dist/report.html``.

    ``project`` supplies over-budget reasons and the project root (for the lock hashes);
    ``commit`` is the git commit the build is from. Raises :class:`ReportError` when there is no
    build or a manifest is damaged, before anything is written.
    """
    paths = find_manifests(dist)
    if not paths:
        raise ReportError(
            f"{dist} holds no build manifest, so there is nothing to report. "
            "Run `inv build.all` first."
        )
    manifests = [load_manifest(p, dist) for p in paths]
    root = getattr(project, "root", None)
    info = build_info(paths, manifests, root, commit)
    json_path, html_path, prev_path = dist / REPORT_JSON, dist / REPORT_HTML, dist / PREVIOUS_JSON
    last = _read_report(json_path)
    if last is not None and (last.get("build") or {}).get("id") != build_id(manifests):
        _keep_previous(json_path, prev_path)  # a different build: keep it to compare against
    previous = _read_report(prev_path)
    report = build_report(
        manifests,
        project,
        info=info,
        packages=layer_packages(paths, manifests),
        previous=previous,
    )
    link_sboms(report, dist, paths, manifests)
    _write(json_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    _write(html_path, render_html(report))
    return ReportFiles(report, json_path, html_path, prev_path if previous else None)
