"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, no network.

Per built target: each function's code plus its layers against Lambda's 262,144,000-byte line,
each layer stacked by distribution against its budget (the part over it hatched, with the
reason layer.toml accepts it), every zip against the 52,428,800-byte direct-upload limit, and a
treemap of layer -> distribution -> top-level package, and how long each step of each
artifact's last build took. Above them: the build's date, commit and lock hashes, the targets
side by side, and what grew since the previous report.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from layerkit.report.data import (
    CODE,
    DIRECT_UPLOAD_LIMIT,
    LAMBDA_UNZIPPED_LIMIT,
    MAX_LAYERS,
    timed_artifacts,
)
from layerkit.report.table import mb
from layerkit.report.text import change, headroom

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
SMALLER = "(smaller)"
LIMIT_RED = "#b00020"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1a1a1a;
max-width:1040px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #ccc}
h3{font-size:15px;margin:22px 0 6px}
.muted{color:#555}table{border-collapse:collapse;margin:8px 0 16px}
th,td{padding:3px 10px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.over{color:#b00020;font-weight:600}.ok{color:#1b6e35}.grew{color:#b00020}.shrank{color:#1b6e35}
.legend{max-width:1000px}.legend span{display:inline-block;margin:0 12px 4px 0}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
.reason{border-left:4px solid #b00020;padding:4px 10px;background:#fbf0f1;margin:6px 0 12px}
code{font-size:13px}svg{display:block;margin:4px 0}svg text{font:12px system-ui,sans-serif}
"""


# --- a small SVG/HTML builder -----------------------------------------------------------------


def esc(text: object) -> str:
    """Text escaped for HTML and SVG."""
    return html.escape(str(text))


def el(tag: str, *children: str, **attrs: object) -> str:
    """One element; ``children`` are markup (escape text with :func:`esc`).

    Attribute names: a trailing ``_`` is dropped (``class_``), other ``_`` become ``-``;
    ``None`` values are left out, floats get one decimal.
    """
    parts = [tag]
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        parts.append(f'{name}="{esc(shown)}"')
    return f"<{' '.join(parts)}>{''.join(children)}</{tag}>"


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{mb(n)} MB"


def _luminance(color: str) -> float:
    rgb = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color(fill: str) -> str:
    """Black or white, whichever reads better on ``fill``."""
    return "#000000" if contrast(fill, "#000000") >= contrast(fill, "#ffffff") else "#ffffff"


def _nice_step(top: float, ticks: int = 6) -> float:
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


# --- charts -----------------------------------------------------------------------------------

LABEL_W, BAR_W, RIGHT = 220, 680, 100  # a chart is 1000 px wide
ROW_H, BAR_H, TOP = 46, 22, 26


@dataclass(frozen=True)
class Measure:
    """What a bar chart's values are: ``per_unit`` values make one axis unit, named ``unit``.

    Each segment carries its exact value in the attribute ``data-<name>``.
    """

    unit: str
    per_unit: float
    text: Callable[[float], str]
    name: str


BYTES = Measure("MB", 1e6, lambda v: _mb(int(v)), "bytes")
SECONDS = Measure("s", 1.0, lambda v: f"{v:.1f} s", "seconds")


def _axis(
    scale: float, unit: float, y_top: float, y_bottom: float, measure: Measure = BYTES
) -> str:
    """Gridlines and a scale (MB by default) under the bars."""
    step = _nice_step(scale / measure.per_unit) * measure.per_unit
    out = []
    value = 0.0
    while value <= scale + step / 1e6:
        x = LABEL_W + value * unit
        out.append(el("line", x1=x, y1=y_top, x2=x, y2=y_bottom, stroke="#e0e0e0"))
        tick = f"{round(value / measure.per_unit, 6):g}"
        out.append(el("text", esc(tick), x=x, y=y_bottom + 14, text_anchor="middle"))
        value += step
    unit_x = LABEL_W + BAR_W + 30  # clear of the last tick's number
    out.append(el("text", measure.unit, x=unit_x, y=y_bottom + 14, fill="#555", class_="unit"))
    return "".join(out)


def _hatch(pattern_id: str) -> str:
    return el(
        "defs",
        el(
            "pattern",
            el("rect", width=6, height=6, fill="#ffffff", fill_opacity="0.5"),
            el("path", d="M0,6 L6,0", stroke=LIMIT_RED, stroke_width=1.5),
            id=pattern_id,
            width=6,
            height=6,
            patternUnits="userSpaceOnUse",
        ),
    )


def box(tip: str, x: float, y: float, w: float, h: float, fill: str, **attrs: object) -> str:
    """A rectangle with a tooltip (its ``<title>``)."""
    return el("rect", el("title", esc(tip)), x=x, y=y, width=w, height=h, fill=fill, **attrs)


def fit(name: str, width: float) -> str:
    """``name``, cut with an ellipsis to what 12 px text fits into ``width`` pixels."""
    room = int((width - 6) / 6.5)
    return name if len(name) <= room else name[: max(room - 1, 1)] + "…"


def _segments(
    segments: Sequence[tuple[str, float]],
    colors: Mapping[str, str],
    y: float,
    unit: float,
    measure: Measure = BYTES,
) -> tuple[list[str], list[str], float]:
    """The bar's rectangles, its labels (drawn last, over any hatching) and where it ends."""
    out, labels, x = [], [], float(LABEL_W)
    for name, value in segments:
        w = max(value * unit, 0.0)
        fill = colors.get(name, "#bab0ac")
        tip = f"{name}: {measure.text(value)}"
        exact = {f"data_{measure.name}": value if isinstance(value, int) else f"{value:g}"}
        out.append(box(tip, x, y, w, BAR_H, fill, stroke="#ffffff", class_="bar", **exact))
        if w > 60:  # a label only where it fits; black or white for contrast with the fill
            label = esc(fit(name, w - 2))
            labels.append(
                el("text", label, x=x + 4, y=y + 15, fill=text_color(fill), class_="inbar")
            )
        x += w
    return out, labels, x


def bar_chart(
    rows: Sequence[Mapping[str, Any]],
    colors: Mapping[str, str],
    *,
    scale: float,
    line: tuple[int, str] | None = None,
    chart_id: str,
    measure: Measure = BYTES,
) -> str:
    """Horizontal stacked bars with an axis in ``measure``'s unit (MB by default).

    Each row: ``label``, ``note`` (second line under the label), ``segments`` [(name, bytes)],
    optional ``marker`` (bytes, label: a per-row limit such as a layer's budget). ``line`` is one
    limit for every row (bytes, label), drawn across the chart and labelled at its top. The part
    of a bar past its limit is hatched.
    """
    unit = BAR_W / max(scale, 1)
    height = TOP + ROW_H * len(rows) + 24
    out = [_hatch(f"{chart_id}-over")]
    out.append(_axis(scale, unit, TOP - 4, TOP + ROW_H * len(rows), measure))
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H + 4
        out.append(
            el(
                "text",
                esc(row["label"]),
                x=LABEL_W - 10,
                y=y + 11,
                text_anchor="end",
                font_weight=600,
            )
        )
        out.append(
            el("text", esc(row["note"]), x=LABEL_W - 10, y=y + 26, text_anchor="end", fill="#444")
        )
        rects, labels, end = _segments(row["segments"], colors, y, unit, measure)
        out += rects
        limit = row.get("marker") or ((line[0], "") if line else None)
        if limit and limit[0] and end > LABEL_W + limit[0] * unit:
            start = LABEL_W + limit[0] * unit
            tip = f"over by {_mb(sum(v for _, v in row['segments']) - limit[0])}"
            hatch = f"url(#{chart_id}-over)"
            out.append(box(tip, start, y, end - start, BAR_H, hatch, class_="overpart"))
        marker = row.get("marker")
        if marker and marker[0]:
            mx = LABEL_W + marker[0] * unit
            out.append(
                el(
                    "line",
                    el("title", esc(marker[1])),
                    x1=mx,
                    y1=y - 12,
                    x2=mx,
                    y2=y + BAR_H + 4,
                    stroke=LIMIT_RED,
                    stroke_width=2,
                    stroke_dasharray="4 2",
                    class_="limit",
                )
            )
            out.append(  # above its own bar, so it cannot be read as the next row's
                el("text", esc(marker[1]), x=mx + 4, y=y - 3, fill=LIMIT_RED, font_size=11)
            )
        out += labels  # over the hatching and the budget line
    if line:
        lx = LABEL_W + line[0] * unit
        out.append(
            el(
                "line",
                x1=lx,
                y1=TOP - 8,
                x2=lx,
                y2=TOP + ROW_H * len(rows),
                stroke=LIMIT_RED,
                stroke_width=2,
                stroke_dasharray="5 3",
                class_="limit",
            )
        )
        out.append(
            el(
                "text",
                esc(line[1]),
                x=lx,
                y=TOP - 12,
                text_anchor="middle",
                fill=LIMIT_RED,
                font_weight=600,
            )
        )
    return el(
        "svg",
        *out,
        xmlns="http://www.w3.org/2000/svg",
        width=LABEL_W + BAR_W + RIGHT,
        height=height,
        role="img",
        class_="chart",
        id=chart_id,
    )


def squarify(
    values: Sequence[float], x: float, y: float, w: float, h: float
) -> list[tuple[float, float, float, float]]:
    """Squarified treemap layout (Bruls et al.): a rectangle per value, values largest first."""
    total = sum(values)
    if total <= 0 or w <= 0 or h <= 0:
        return [(x, y, 0.0, 0.0) for _ in values]
    areas = [v * w * h / total for v in values]

    def worst(row: Sequence[float], side: float) -> float:
        s = sum(row)
        return max(max(side * side * r / (s * s), s * s / (side * side * r)) for r in row)

    rects: list[tuple[float, float, float, float]] = []
    i = 0
    while i < len(areas):
        if areas[i] <= 0:
            rects.append((x, y, 0.0, 0.0))
            i += 1
            continue
        side = min(w, h)
        row = [areas[i]]
        i += 1
        while i < len(areas) and areas[i] > 0 and worst([*row, areas[i]], side) <= worst(row, side):
            row.append(areas[i])
            i += 1
        s = sum(row)
        if w >= h:  # a column along the left edge
            cw = s / h
            yy = y
            for a in row:
                rects.append((x, yy, cw, a / cw))
                yy += a / cw
            x, w = x + cw, w - cw
        else:  # a row along the top edge
            rh = s / w
            xx = x
            for a in row:
                rects.append((xx, y, a / rh, rh))
                xx += a / rh
            y, h = y + rh, h - rh
    return rects


def _box_label(
    name: str,
    value: int,
    x: float,
    y: float,
    w: float,
    h: float,
    fill: str,
    *,
    line: int = 0,
    bold: bool = False,
) -> str:
    """``name size`` in a treemap cell if it fits; ``line`` 1 is under a label already there."""
    top = 14 * line
    if w < 48 or h < 16 + top:
        return ""
    label = fit(name, w)
    size = f" {value / 1e6:.1f}"
    size = size if h >= 30 + top and fit(label + size, w) == label + size else ""
    return el(
        "text",
        esc(label + size),
        x=x + 3,
        y=y + 12 + top,
        fill=text_color(fill),
        font_weight=600 if bold else None,
        class_="tmlabel",
    )


def treemap(layers: Sequence[Mapping[str, Any]], colors: Mapping[str, str], chart_id: str) -> str:
    """Layer -> distribution -> top-level package, areas proportional to unzipped bytes."""
    width, height, head = LABEL_W + BAR_W + RIGHT, 520, 16
    sized = [layer for layer in layers if layer["unzipped_bytes"] > 0]
    out = []
    boxes = squarify([layer["unzipped_bytes"] for layer in sized], 0, 0, width, height)
    for layer, (lx, ly, lw, lh) in zip(sized, boxes, strict=True):
        name = f"{layer['name']} {_mb(layer['unzipped_bytes'])}"
        out.append(box(name, lx, ly, lw, lh, "#333333", class_="tmlayer"))
        # a title bar only where it takes a few percent: small layers keep their true area and
        # carry their name on a chip over their content instead
        titled = lh >= 200 and lw >= 120
        top = head if titled else 1
        layer_label = el(
            "text",
            esc(name),
            x=lx + 4,
            y=ly + 12 if titled else ly + lh - 5,
            fill="#ffffff",
            font_weight=600,
            class_="tmlayername",
        )
        if not titled and lw > 7 * len(name) and lh > 18:
            chip = el(
                "rect", x=lx + 1, y=ly + lh - 17, width=7 * len(name), height=16, fill="#333333"
            )
            layer_label = chip + layer_label
        elif not titled:
            layer_label = ""
        dists = [d for d in layer["treemap"] if d["bytes"] > 0]
        inner = squarify([d["bytes"] for d in dists], lx + 1, ly + top, lw - 2, lh - top - 1)
        for dist, (dx, dy, dw, dh) in zip(dists, inner, strict=True):
            fill = colors.get(dist["name"], "#bab0ac")
            packages = [p for p in dist["packages"] if p["bytes"] > 0]
            labels: list[str] = []
            if len(packages) > 1:
                cells = squarify([p["bytes"] for p in packages], dx, dy, dw, dh)
                for n, (pkg, (px, py, pw, ph)) in enumerate(zip(packages, cells, strict=True)):
                    # the first package sits under the distribution's label: a line lower
                    labels.append(
                        _box_label(
                            pkg["name"], pkg["bytes"], px, py, pw, ph, fill, line=int(n == 0)
                        )
                    )
                    tip = f"{layer['name']} / {dist['name']} / {pkg['name']}: {_mb(pkg['bytes'])}"
                    out.append(box(tip, px, py, pw, ph, fill, stroke="#ffffff", class_="tmpkg"))
            tip = f"{layer['name']} / {dist['name']}: {_mb(dist['bytes'])}"
            cover = fill if len(packages) <= 1 else "none"  # packages drawn: only the outline
            out.append(
                box(
                    tip,
                    dx,
                    dy,
                    dw,
                    dh,
                    cover,
                    stroke="#ffffff",
                    stroke_width=2,
                    class_="tmdist",
                    data_bytes=dist["bytes"],
                )
            )
            out.append(_box_label(dist["name"], dist["bytes"], dx, dy, dw, dh, fill, bold=True))
            out += labels
        out.append(layer_label)
    return el(
        "svg",
        *out,
        xmlns="http://www.w3.org/2000/svg",
        width=width,
        height=height,
        role="img",
        class_="chart treemap",
        id=chart_id,
    )


# --- sections ---------------------------------------------------------------------------------


def palette_for(entry: Mapping[str, Any]) -> dict[str, str]:
    """One colour per name across a target's charts: the code, each layer, each distribution."""
    names = [CODE, *(layer["name"] for layer in entry["layers"])]
    for layer in entry["layers"]:
        names += [d for d in layer["distribution_bytes"] if d not in names]
    colors = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}
    return {**colors, SMALLER: "#bab0ac"}


def _legend(colors: Mapping[str, str]) -> str:
    return el(
        "div",
        *(el("span", el("i", style=f"background:{c}"), esc(n)) for n, c in colors.items()),
        class_="legend",
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(
        el("th", esc(h), class_="n" if i in numeric else None) for i, h in enumerate(headers)
    )
    body = "".join(
        el("tr", *(el("td", c, class_="n" if i in numeric else None) for i, c in enumerate(row)))
        for row in rows
    )
    return el("table", el("tr", head), body)


def _headroom_cell(n: int | None, over: bool) -> str:
    """Signed MB left, red when over the limit, green otherwise."""
    return el("span", esc(f"{headroom(n)} MB"), class_="over" if over else "ok")


def _function_section(entry: Mapping[str, Any], palette: Mapping[str, str], key: str) -> str:
    fns = entry["functions"]
    if not fns:
        return ""
    colors = {n: palette.get(n, "#bab0ac") for n in [CODE, *(x["name"] for x in entry["layers"])]}
    rows = [
        {
            "label": fn["name"],
            "note": f"{_mb(fn['total_unzipped_bytes'])}, "
            + (
                f"{_mb(-fn['headroom_bytes'])} over"
                if fn["over_limit"]
                else f"{_mb(fn['headroom_bytes'])} free"
            ),
            "segments": [(p["name"], p["unzipped_bytes"]) for p in fn["parts"]],
        }
        for fn in fns
    ]
    scale = max(LAMBDA_UNZIPPED_LIMIT, *(fn["total_unzipped_bytes"] for fn in fns)) * 1.04
    table_rows = [
        (
            esc(fn["name"]),
            esc(" + ".join(fn["layers"]) or "-")
            + (
                el("b", esc(f" (missing: {', '.join(fn['missing_layers'])})"), class_="over")
                if fn["missing_layers"]
                else ""
            ),
            esc(_mb(fn["total_unzipped_bytes"])),
            _headroom_cell(fn["headroom_bytes"], fn["over_limit"]),
            el(
                "span",
                esc(f"{len(fn['layers'])}/{MAX_LAYERS}"),
                class_="over" if fn["too_many_layers"] else None,
            ),
        )
        for fn in fns
    ]
    return (
        el("h3", "Functions: code + attached layers against Lambda's limit (unzipped)")
        + bar_chart(
            rows,
            colors,
            scale=scale,
            line=(LAMBDA_UNZIPPED_LIMIT, "limit 262,144,000 bytes (250 MiB)"),
            chart_id=f"{key}-functions",
        )
        + _legend(colors)
        + _table(
            ("function", "layers (extraction order)", "total", "headroom", "layers"),
            table_rows,
            {2, 3, 4},
        )
    )


def _layer_segments(layer: Mapping[str, Any]) -> list[tuple[str, int]]:
    dist = layer["distribution_bytes"] or {layer["name"]: layer["unzipped_bytes"]}
    floor = 0.01 * max(layer["unzipped_bytes"], 1)
    shown = [(n, v) for n, v in dist.items() if v >= floor]
    rest = sum(v for n, v in dist.items() if v < floor)
    return [*shown, *([(SMALLER, rest)] if rest else [])]


def _layer_section(entry: Mapping[str, Any], palette: Mapping[str, str], key: str) -> str:
    layers = entry["layers"]
    if not layers:
        return el("p", "No layers built for this target.", class_="muted")
    rows, names = [], []
    for layer in layers:
        segments = _layer_segments(layer)
        names += [n for n, _ in segments if n not in names]
        over = layer["over_budget"]
        rows.append(
            {
                "label": layer["name"],
                "note": _mb(layer["unzipped_bytes"])
                + (
                    f", {_mb(-layer['headroom_bytes'])} over"
                    if over
                    else f", {_mb(layer['headroom_bytes'])} free"
                    if layer["headroom_bytes"] is not None
                    else ""
                ),
                "segments": segments,
                "marker": (layer["budget"], f"budget {_mb(layer['budget'])}")
                if layer["budget"]
                else None,
            }
        )
    scale = max(max(x["unzipped_bytes"], x["budget"] or 0) for x in layers) * 1.12
    colors = {n: palette.get(n, "#bab0ac") for n in names}
    reasons = "".join(
        el(
            "div",
            el("b", esc(f"{x['name']} is {_mb(-x['headroom_bytes'])} over its budget")),
            esc(": accepted because " + x["over_budget_reason"])
            if x.get("over_budget_reason")
            else esc(
                ": no reason is given in its layer.toml (`over-budget-reason`), so "
                "validation fails."
            ),
            class_="reason",
        )
        for x in layers
        if x["over_budget"]
    )
    table_rows = [
        (
            esc(x["name"]),
            esc(_mb(x["unzipped_bytes"])),
            esc(_mb(x["budget"])),
            _headroom_cell(x["headroom_bytes"], x["over_budget"]),
            esc(
                ", ".join(f"{d['name']} {_mb(d['bytes'])}" for d in x["largest_distributions"][:3])
            ),
            esc(
                f"{x['bytecode'].get('mode', '-')} "
                f"({x['bytecode'].get('compiled_files', 0)} modules)"
            ),
        )
        for x in layers
    ]
    return (
        el("h3", "Layers by distribution against their budgets (unzipped; hatched: over budget)")
        + bar_chart(rows, colors, scale=scale, chart_id=f"{key}-layers")
        + reasons
        + _legend(colors)
        + _table(
            ("layer", "unzipped", "budget", "headroom", "largest distributions", "bytecode"),
            table_rows,
            {1, 2, 3},
        )
    )


def _zip_section(entry: Mapping[str, Any], palette: Mapping[str, str], key: str) -> str:
    items = [*entry["layers"], *entry["functions"]]
    if not items:
        return ""
    rows = [
        {
            "label": x["name"],
            "note": f"{_mb(x['zipped_bytes'])}" + (", via S3" if x["upload_via_s3"] else ""),
            "segments": [(x["name"], x["zipped_bytes"] or 0)],
        }
        for x in items
    ]
    colors = {x["name"]: palette.get(x["name"], "#79706e") for x in items}
    scale = max(DIRECT_UPLOAD_LIMIT, *((x["zipped_bytes"] or 0) for x in items)) * 1.08
    return el(
        "h3", "Zipped sizes against the direct-upload limit (larger zips upload through S3)"
    ) + bar_chart(
        rows,
        colors,
        scale=scale,
        line=(DIRECT_UPLOAD_LIMIT, "52,428,800 bytes (50 MiB)"),
        chart_id=f"{key}-zipped",
    )


def _treemap_section(entry: Mapping[str, Any], palette: Mapping[str, str], key: str) -> str:
    if not entry["layers"]:
        return ""
    return el(
        "h3", "Treemap: layer, distribution, top-level package (area: unzipped bytes)"
    ) + treemap(entry["layers"], palette, f"{key}-treemap")


def _slim_section(entry: Mapping[str, Any]) -> str:
    layers = entry["layers"]
    names: list[str] = []
    for layer in layers:
        names += [
            p["name"] for p in layer["slim"] if p["name"] not in names and p.get("removed_bytes")
        ]
    if not names:
        return ""
    rows = []
    for name in names:
        cells = [esc(name)]
        for layer in layers:
            found = [p for p in layer["slim"] if p["name"] == name]
            if not found or not found[0].get("removed_bytes"):
                cells.append("-")
                continue
            p = found[0]
            tip = ", ".join(p.get("examples") or ()) + (
                " " + p.get("note", "") if p.get("note") else ""
            )
            cells.append(
                el(
                    "span",
                    esc(f"{_mb(p['removed_bytes'])} ({p.get('removed_files', 0)})"),
                    title=tip,
                )
            )
        rows.append(cells)
    rows.append([el("b", "total"), *(el("b", esc(_mb(x["slim_removed_bytes"]))) for x in layers)])
    return el("h3", "Slim passes that removed something: bytes saved (files)") + _table(
        ("pass", *(x["name"] for x in layers)), rows, set(range(1, len(layers) + 1))
    )


def _step_colors(names: Iterable[str]) -> dict[str, str]:
    """One colour per build step, the same on every page (steps in the order they run)."""
    fixed = ("install", "copy", "slim", "imports", "bytecode", "import-check", "zip")
    order = [*fixed, *sorted(set(names) - set(fixed))]
    return {name: _PALETTE[(2 * i) % len(_PALETTE)] for i, name in enumerate(order)}


def _timings_section(entry: Mapping[str, Any], key: str) -> str:
    """Seconds per step of each artifact's last build: stacked bars and the table."""
    rows, steps = timed_artifacts(entry)
    if not rows:
        return ""
    colors = _step_colors(steps)
    totals = [sum(sec for _, sec in x["timings"]) for x in rows]
    chart_rows = [
        {
            "label": x["name"],
            "note": f"{'layer' if 'budget' in x else 'function'} · {total:.1f} s",
            "segments": [(step, sec) for step, sec in x["timings"]],
        }
        for x, total in zip(rows, totals, strict=True)
    ]
    table = []
    for x, total in zip(rows, totals, strict=True):
        by_step = dict(x["timings"])
        table.append(
            [
                esc(x["name"]),
                *(esc(f"{by_step[s]:.2f}") if s in by_step else "-" for s in steps),
                el("b", esc(f"{total:.2f}")),
            ]
        )
    legend = el(
        "div",
        *(el("span", el("i", "", style=f"background:{colors[s]}"), esc(s)) for s in steps),
        class_="legend",
    )
    return (
        el("h3", "Build time by step (seconds, each artifact's last build)")
        + el(
            "p",
            "Wall-clock seconds of each step; independent layers build side by side, so the "
            "build took less than the sum.",
            class_="muted",
        )
        + legend
        + bar_chart(
            chart_rows,
            colors,
            scale=max(totals) or 1.0,
            chart_id=f"{key}-timings",
            measure=SECONDS,
        )
        + _table(("artifact", *steps, "total"), table, set(range(1, len(steps) + 2)))
    )


def _targets_section(report: Mapping[str, Any]) -> str:
    """Every built target side by side: one row per artifact, unzipped and zipped per target."""
    targets = report["targets"]
    if len(targets) < 2:
        return ""
    names: list[str] = []
    sizes: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in targets:
        for x in [*entry["layers"], *entry["functions"]]:
            label = f"{'layer' if 'budget' in x else 'function'} {x['name']}"
            names += [label] if label not in names else []
            sizes[(entry["target"], label)] = x
    headers = ["artifact"]
    for entry in targets:
        headers += [f"{entry['target']} unzipped", "zipped"]
    rows = []
    for label in names:
        row = [esc(label)]
        for entry in targets:
            x = sizes.get((entry["target"], label))
            row += [esc(_mb(x["unzipped_bytes"])), esc(_mb(x["zipped_bytes"]))] if x else ["-", "-"]
        rows.append(row)
    return el("h2", "Targets side by side") + _table(headers, rows, set(range(1, len(headers))))


def _versions_section(report: Mapping[str, Any]) -> str:
    """The locked versions that moved since the previous report, per artifact."""
    moved = report.get("version_changes") or ()
    if not moved:
        return ""
    rows = [
        (
            esc(c["target"]),
            esc(c["what"]),
            esc(c["distribution"]),
            esc(c["before"] or "(added)"),
            esc(c["after"] or "(removed)"),
        )
        for c in moved
    ]
    return el("h3", "Versions that moved") + _table(
        ("target", "artifact", "distribution", "before", "after"), rows, set()
    )


def _changes_section(report: Mapping[str, Any]) -> str:
    previous = report.get("previous")
    if not previous:
        return el(
            "p",
            "No previous report to compare with: the next build's report will show what grew "
            "(the last one is kept as report.previous.json).",
            class_="muted",
        )
    changes = [c for c in report.get("changes", ()) if c["measure"] == "unzipped"]
    since = f"build of {previous.get('date') or '?'}, commit {previous.get('commit') or '?'}"
    if not changes:
        return (
            el("h2", "Changes")
            + el("p", esc(f"No size changed since the {since}."))
            + _versions_section(report)
        )
    artifacts = [c for c in changes if " / " not in c["what"]]
    dists = [c for c in changes if " / " in c["what"]][:15]
    rows = [
        (
            esc(c["target"]),
            esc(c["what"]),
            esc(_mb(c["before"])),
            esc(_mb(c["after"])),
            el(
                "span",
                esc(change(c)),
                class_="grew" if c["delta"] > 0 else "shrank",
            ),
        )
        for c in [*artifacts, *dists]
    ]
    return (
        el("h2", "What changed")
        + el("p", esc(f"Unzipped sizes against the {since}; largest growth first."), class_="muted")
        + _table(("target", "what", "before", "after", "change MB"), rows, {2, 3, 4})
        + _versions_section(report)
    )


def _header(report: Mapping[str, Any]) -> str:
    build = report.get("build") or {}
    locks = ", ".join(f"{k} {v[:12]}" for k, v in sorted((build.get("locks") or {}).items()))
    facts = [
        ("built", build.get("date") or "unknown"),
        ("commit", build.get("commit") or "unknown"),
        ("locks (sha256)", locks or "unknown"),
        ("layerkit", report.get("layerkit")),
    ]
    return el("h1", "layerkit size report") + el(
        "p",
        " · ".join(f"{esc(k)} {el('code', esc(v))}" for k, v in facts),
        el("br", ""),
        "Sizes are bytes, MB = 10",
        el("sup", "6"),
        " bytes. Lambda's limit for a function's code plus its layers is 262,144,000 bytes "
        "(250 MiB) unzipped; zips above 52,428,800 bytes (50 MiB) upload through S3.",
        class_="muted",
    )


def _sbom_section(entry: Mapping[str, Any]) -> str:
    """Links to each artifact's CycloneDX SBOM (written beside its zip by the build)."""
    items = [x for x in (*entry["layers"], *entry["functions"]) if x.get("sbom")]
    if not items:
        return ""
    rows = [
        (
            el("a", esc(x["name"]), href=x["sbom"]["path"]),
            esc(x["sbom"]["path"]),
            str(x["sbom"]["components"]),
        )
        for x in items
    ]
    return el("h3", "What is in each artifact (CycloneDX SBOM)") + _table(
        ("artifact", "SBOM", "components"), rows, {2}
    )


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page (inline CSS and SVG, no scripts, no network) for a report."""
    sections = []
    for n, entry in enumerate(report["targets"]):
        palette, key = palette_for(entry), f"t{n}"
        sections.append(
            el("h2", esc(entry["target"]))
            + _function_section(entry, palette, key)
            + _layer_section(entry, palette, key)
            + _zip_section(entry, palette, key)
            + _treemap_section(entry, palette, key)
            + _slim_section(entry)
            + _timings_section(entry, key)
            + _sbom_section(entry)
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>layerkit size report</title>"
        f"<style>{_CSS}</style></head><body>"
        + _header(report)
        + _changes_section(report)
        + _targets_section(report)
        + "".join(sections)
        + "</body></html>\n"
    )
