"""The size report: where the bytes of each layer go, and how each function fits Lambda's limit.

:func:`distribution_sizes` measures a staged layer tree (the build stores it in the manifest).
:func:`build_report` turns a build manifest into the report's data (pure); :func:`render_table`
prints it for the terminal and :func:`render_html` draws one self-contained page (inline CSS and
SVG, no scripts, no network): each layer as a bar stacked by distribution against its budget,
and each function's package plus its layers against the 262,144,000-byte line.
:func:`write_report` writes ``report.json`` and ``report.html``.
"""

from __future__ import annotations

import csv
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from layerkit import __version__
from layerkit.check.sizes import DIRECT_UPLOAD_LIMIT, MAX_LAYERS
from layerkit.check.sizes import FUNCTION_UNZIPPED_LIMIT as LAMBDA_UNZIPPED_LIMIT
from layerkit.report.table import format_table, mb

OTHER = "(other)"
CODE = "(function code)"


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


def distribution_sizes(root: Path) -> dict[str, int]:
    """Unzipped bytes per distribution in a layer tree (``python/``), sorted by size.

    A file belongs to the distribution whose RECORD lists it; a pyc to the distribution of its
    source; anything else to the distribution owning its top-level folder (from RECORD); what
    is left is ``(other)``. Names are canonical (``scikit-learn``, ``python-dateutil``).
    """
    owner: dict[str, str] = {}
    top_owner: dict[str, str] = {}
    for info in sorted(root.glob("*.dist-info")):
        dist = _dist_name(info.name)
        top_owner[info.name] = dist
        record = info / "RECORD"
        if not record.is_file():
            continue
        with record.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                if not row or not row[0] or row[0].startswith(".."):
                    continue
                rel = PurePosixPath(row[0]).as_posix()
                owner[rel] = dist
                if "/" in rel:
                    top_owner.setdefault(rel.split("/", 1)[0], dist)
    sizes: dict[str, int] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            pure = PurePosixPath(rel)
            source = _owner_of_pyc(pure)
            dist = (
                owner.get(rel)
                or (owner.get(source) if source else None)
                or top_owner.get(pure.parts[0])
                or (top_owner.get(PurePosixPath(source).parts[0]) if source else None)
                or OTHER
            )
            sizes[dist] = sizes.get(dist, 0) + full.lstat().st_size
    return dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))


# --- the report's data ------------------------------------------------------------------------


def _function_layers(name: str, record: Mapping[str, Any], project: Any) -> list[str]:
    if record.get("layers"):
        return list(record["layers"])
    if project is not None:
        try:
            return list(project.function(name).layers)
        except Exception:  # a function the project no longer has
            return []
    return []


def build_report(manifest: Mapping[str, Any], project: Any = None) -> dict[str, Any]:
    """Turn a build manifest into the report's data: layers and functions per target.

    Per layer: sizes, budget and headroom, per-distribution bytes, per-pass savings, bytecode.
    Per function: its package, the layers it attaches (in order), their sum against
    262,144,000 bytes, the layer count against 5, and whether its zip must go through S3.
    ``project`` (a :class:`layerkit.project.spec.Project`) is only consulted for a function whose
    manifest entry does not list its layers.
    """
    artifacts: Mapping[str, Mapping[str, Any]] = manifest.get("artifacts", {})
    targets: dict[str, dict[str, Any]] = {}
    for path, rec in sorted(artifacts.items()):
        key = rec.get("target") or manifest.get("target") or "?"
        entry = targets.setdefault(key, {"target": key, "layers": [], "functions": []})
        common = {
            "name": rec["name"],
            "artifact": path,
            "zipped_bytes": rec.get("zipped_bytes"),
            "unzipped_bytes": rec.get("unzipped_bytes", 0),
            "files": rec.get("files"),
            "upload_via_s3": (rec.get("zipped_bytes") or 0) > DIRECT_UPLOAD_LIMIT,
            "bytecode": dict(rec.get("bytecode") or {}),
            # "static only": the host could not run the target's code (runtime/host.py)
            "execution": rec.get("execution", "native"),
        }
        if rec.get("kind") == "layer":
            budget = rec.get("budget")
            slim = [dict(p) for p in rec.get("slim") or ()]
            entry["layers"].append(
                {
                    **common,
                    "budget": budget,
                    "headroom_bytes": None if budget is None else budget - common["unzipped_bytes"],
                    "over_budget": budget is not None and common["unzipped_bytes"] > budget,
                    "over_budget_reason": _over_budget_reason(rec["name"], project),
                    "requires": list(rec.get("layers") or rec.get("requires") or ()),
                    "distributions": dict(rec.get("distributions") or {}),
                    "distribution_bytes": dict(rec.get("distribution_bytes") or {}),
                    "slim": slim,
                    "slim_removed_bytes": sum(p.get("removed_bytes", 0) for p in slim),
                }
            )
        else:
            entry["functions"].append(
                {**common, "layers": _function_layers(rec["name"], rec, project)}
            )
    for entry in targets.values():
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
    return {
        "layerkit": manifest.get("layerkit", __version__),
        "limit_bytes": LAMBDA_UNZIPPED_LIMIT,
        "direct_upload_limit_bytes": DIRECT_UPLOAD_LIMIT,
        "targets": [targets[k] for k in sorted(targets)],
    }


# --- terminal ---------------------------------------------------------------------------------


def _headroom(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:+.1f}"


def _over_budget_reason(name: str, project: Any) -> str | None:
    """The reason a layer's layer.toml gives for accepting an overrun, if any."""
    layers = {x.name: x for x in getattr(project, "layers", ())}
    return layers[name].over_budget_reason if name in layers else None


def _status(over: bool, s3: bool, accepted: bool = False, execution: str = "native") -> str:
    flags = [("OVER (accepted)" if accepted else "OVER") if over else "ok"]
    if execution != "native":
        flags.append(execution)
    if s3:
        flags.append("upload via S3")
    return ", ".join(flags)


def render_table(manifest: Mapping[str, Any], project: Any = None) -> str:
    """The report as plain-text tables (MB are 10^6 bytes), one block per target."""
    report = manifest if "targets" in manifest else build_report(manifest, project)
    blocks = []
    for entry in report["targets"]:
        layer_rows = [
            (
                layer["name"],
                mb(layer["unzipped_bytes"]),
                mb(layer["budget"]),
                _headroom(layer["headroom_bytes"]),
                mb(layer["zipped_bytes"]),
                mb(layer["slim_removed_bytes"]),
                layer["bytecode"].get("mode", "-"),
                ", ".join(
                    f"{d} {v / 1e6:.1f}" for d, v in list(layer["distribution_bytes"].items())[:3]
                ),
                _status(
                    layer["over_budget"],
                    layer["upload_via_s3"],
                    accepted=bool(layer.get("over_budget_reason")),
                    execution=layer.get("execution", "native"),
                ),
            )
            for layer in entry["layers"]
        ]
        blocks.append(
            f"{entry['target']}: layers (MB, unzipped)\n"
            + format_table(
                (
                    "layer",
                    "size",
                    "budget",
                    "headroom",
                    "zipped",
                    "slimmed",
                    "bytecode",
                    "largest distributions",
                    "status",
                ),
                layer_rows,
            )
        )
        fn_rows = [
            (
                fn["name"],
                mb(fn["unzipped_bytes"]),
                " + ".join(fn["layers"]) or "-",
                mb(fn["total_unzipped_bytes"]),
                mb(fn["limit_bytes"]),
                _headroom(fn["headroom_bytes"]),
                _status(fn["over_limit"] or fn["too_many_layers"], fn["upload_via_s3"]),
            )
            for fn in entry["functions"]
        ]
        if fn_rows:
            blocks.append(
                f"{entry['target']}: functions (code + layers, MB, unzipped)\n"
                + format_table(
                    ("function", "code", "layers", "total", "limit", "headroom", "status"),
                    fn_rows,
                )
            )
        pass_names: list[str] = []
        for layer in entry["layers"]:
            for p in layer["slim"]:
                if p["name"] not in pass_names:
                    pass_names.append(p["name"])
        if pass_names and entry["layers"]:
            rows = []
            for name in pass_names:
                cells = []
                for layer in entry["layers"]:
                    found = [p for p in layer["slim"] if p["name"] == name]
                    cells.append(mb(found[0]["removed_bytes"]) if found else "-")
                rows.append((name, *cells))
            blocks.append(
                f"{entry['target']}: slim passes (MB saved)\n"
                + format_table(("pass", *(x["name"] for x in entry["layers"])), rows)
            )
    return "\n\n".join(blocks)


# --- HTML -------------------------------------------------------------------------------------

_PALETTE = (  # Tableau 20: enough for the code, the layers and every distribution of a target
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#79706e",
    "#a0cbe8",
    "#ffbe7d",
    "#8cd17d",
    "#b6992d",
    "#499894",
    "#86bcb6",
    "#d37295",
    "#fabfd2",
    "#d4a6c8",
    "#f1ce63",
)
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.muted{color:#666}table{border-collapse:collapse;margin:8px 0 16px}
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.over{color:#b00020;font-weight:600}.ok{color:#1b7f3b}
.legend span{display:inline-block;margin:0 12px 4px 0}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
svg text{font:12px system-ui,sans-serif}
"""


def _mb(n: int | float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def _color(names: Sequence[str]) -> dict[str, str]:
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}


def _bar_chart(
    rows: Sequence[tuple[str, Sequence[tuple[str, int]], int | None, str]],
    colors: Mapping[str, str],
    scale_max: int,
) -> str:
    """Horizontal stacked bars; each row is (label, [(segment, bytes)], line_at, line_label)."""
    label_w, bar_w, row_h, top = 190, 760, 34, 8
    height = top + row_h * len(rows) + 24
    unit = bar_w / max(scale_max, 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 110}" '
        f'height="{height}" role="img">'
    ]
    for i, (label, segments, line_at, line_label) in enumerate(rows):
        y = top + i * row_h
        total = sum(v for _, v in segments)
        out.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{html.escape(label)}</text>'
        )
        x = float(label_w)
        for name, value in segments:
            w = value * unit
            out.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{max(w, 0):.1f}" height="20" '
                f'fill="{colors.get(name, "#bbb")}"><title>{html.escape(name)}: '
                f"{_mb(value)}</title></rect>"
            )
            if w > 70:
                out.append(
                    f'<text x="{x + 4:.1f}" y="{y + 18}" fill="#fff">'
                    f"{html.escape(name[: int(w / 7)])}</text>"
                )
            x += w
        lx = label_w + (line_at or 0) * unit
        text_x = x + 6 if not line_at or x > lx + 4 or x < lx - 70 else lx + 6
        out.append(f'<text x="{text_x:.1f}" y="{y + 18}">{_mb(total)}</text>')
        if line_at:
            out.append(
                f'<line x1="{lx:.1f}" y1="{y}" x2="{lx:.1f}" y2="{y + 28}" stroke="#b00020" '
                f'stroke-width="2" stroke-dasharray="4 2"><title>{html.escape(line_label)}'
                "</title></line>"
            )
    out.append("</svg>")
    return "".join(out)


def _palette_for(entry: Mapping[str, Any]) -> dict[str, str]:
    """One colour per name across a target's charts: the code, each layer, each distribution."""
    names = [CODE, *(layer["name"] for layer in entry["layers"])]
    for layer in entry["layers"]:
        names += [d for d in layer["distribution_bytes"] if d not in names]
    return {**_color(names), "(smaller)": "#bab0ac"}


def _legend(colors: Mapping[str, str]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{c}"></i>{html.escape(n)}</span>'
            for n, c in colors.items()
        )
        + "</div>"
    )


def _layer_section(entry: Mapping[str, Any], palette: Mapping[str, str]) -> str:
    layers = entry["layers"]
    if not layers:
        return "<p class='muted'>No layers built for this target.</p>"
    dist_names: list[str] = []
    rows = []
    for layer in layers:
        dist = layer["distribution_bytes"] or {layer["name"]: layer["unzipped_bytes"]}
        big = sorted(dist.items(), key=lambda kv: -kv[1])
        shown = [(n, v) for n, v in big if v >= 0.01 * max(layer["unzipped_bytes"], 1)]
        rest = sum(v for n, v in big if (n, v) not in shown)
        segments = [*shown, *([("(smaller)", rest)] if rest else [])]
        dist_names += [n for n, _ in segments if n not in dist_names]
        rows.append((layer["name"], segments, layer["budget"], f"budget {_mb(layer['budget'])}"))
    scale = max(max(layer["unzipped_bytes"], layer["budget"] or 0) for layer in layers)
    colors = {n: palette.get(n, "#bbb") for n in dist_names}
    table_rows = "".join(
        f"<tr><td>{html.escape(layer['name'])}</td><td class=n>{_mb(layer['unzipped_bytes'])}</td>"
        f"<td class=n>{_mb(layer['budget'])}</td>"
        f"<td class='n {'over' if layer['over_budget'] else 'ok'}'>"
        f"{_headroom(layer['headroom_bytes'])} MB</td>"
        f"<td class=n>{_mb(layer['zipped_bytes'])}"
        f"{' (S3)' if layer['upload_via_s3'] else ''}</td>"
        f"<td>{html.escape(str(layer['bytecode'].get('mode', '-')))} "
        f"<span class=muted>{layer['bytecode'].get('compiled_files', '')} modules, "
        f"{_mb(layer['bytecode'].get('added_bytes'))}</span></td></tr>"
        for layer in layers
    )
    return (
        "<h3>Layers by distribution (unzipped; dashed line: the layer's budget)</h3>"
        + _bar_chart(rows, colors, scale)
        + _legend(colors)
        + "<table><tr><th>layer</th><th class=n>unzipped</th><th class=n>budget</th>"
        "<th class=n>headroom</th><th class=n>zipped</th><th>bytecode</th></tr>"
        + table_rows
        + "</table>"
    )


def _function_section(entry: Mapping[str, Any], palette: Mapping[str, str]) -> str:
    fns = entry["functions"]
    if not fns:
        return ""
    names = [CODE, *[layer["name"] for layer in entry["layers"]]]
    colors = {n: palette.get(n, "#bbb") for n in names}
    rows = [
        (
            fn["name"],
            [(p["name"], p["unzipped_bytes"]) for p in fn["parts"]],
            LAMBDA_UNZIPPED_LIMIT,
            "Lambda limit 262,144,000 bytes (250 MiB)",
        )
        for fn in fns
    ]
    scale = max(LAMBDA_UNZIPPED_LIMIT, *(fn["total_unzipped_bytes"] for fn in fns))
    table_rows = "".join(
        f"<tr><td>{html.escape(fn['name'])}</td><td>{html.escape(' + '.join(fn['layers']))}"
        f"{' <b class=over>(missing: ' + ', '.join(fn['missing_layers']) + ')</b>' if fn['missing_layers'] else ''}"  # noqa: E501
        f"</td><td class=n>{_mb(fn['total_unzipped_bytes'])}</td>"
        f"<td class='n {'over' if fn['over_limit'] else 'ok'}'>{_headroom(fn['headroom_bytes'])}"
        f" MB</td><td class='n {'over' if fn['too_many_layers'] else ''}'>{len(fn['layers'])}"
        f"/{MAX_LAYERS}</td></tr>"
        for fn in fns
    )
    return (
        "<h3>Functions: code + attached layers (unzipped; dashed line: 262,144,000 bytes)</h3>"
        + _bar_chart(rows, colors, scale)
        + _legend(colors)
        + "<table><tr><th>function</th><th>layers (extraction order)</th><th class=n>total</th>"
        "<th class=n>headroom</th><th class=n>layers</th></tr>" + table_rows + "</table>"
    )


def _slim_section(entry: Mapping[str, Any]) -> str:
    layers = entry["layers"]
    names: list[str] = []
    for layer in layers:
        names += [p["name"] for p in layer["slim"] if p["name"] not in names]
    if not names:
        return ""
    head = "".join(f"<th class=n>{html.escape(x['name'])}</th>" for x in layers)
    body = ""
    for name in names:
        cells = ""
        for layer in layers:
            found = [p for p in layer["slim"] if p["name"] == name]
            if not found:
                cells += "<td class=n>-</td>"
                continue
            p = found[0]
            tip = html.escape(", ".join(p.get("examples") or ()) + (" " + p.get("note", "")))
            cells += (
                f'<td class=n title="{tip}">{_mb(p["removed_bytes"])}'
                f" <span class=muted>({p['removed_files']})</span></td>"
            )
        body += f"<tr><td>{html.escape(name)}</td>{cells}</tr>"
    total = "".join(f"<td class=n><b>{_mb(x['slim_removed_bytes'])}</b></td>" for x in layers)
    return (
        "<h3>Slim passes: bytes saved (files)</h3><table><tr><th>pass</th>"
        + head
        + "</tr>"
        + body
        + "<tr><td><b>total</b></td>"
        + total
        + "</tr></table>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page (inline CSS and SVG, no scripts, no network) for a report."""
    sections = "".join(
        f"<h2>{html.escape(entry['target'])}</h2>"
        + _function_section(entry, _palette_for(entry))
        + _layer_section(entry, _palette_for(entry))
        + _slim_section(entry)
        for entry in report["targets"]
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>layerkit size report</title>"
        f"<style>{_CSS}</style></head><body><h1>layerkit size report</h1>"
        f"<p class=muted>layerkit {html.escape(str(report['layerkit']))}. Sizes are unzipped "
        "bytes, MB = 10<sup>6</sup> bytes. Lambda's limit for a function's code plus its "
        "layers is 262,144,000 bytes (250 MiB); zips above 52,428,800 bytes upload through "
        "S3.</p>"
        f"{sections}</body></html>\n"
    )


def write_report(manifest: Mapping[str, Any], project: Any, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; return their paths."""
    report = build_report(manifest, project)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    for path, text in (
        (json_path, json.dumps(report, indent=2, sort_keys=True) + "\n"),
        (html_path, render_html(report)),
    ):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return json_path, html_path
