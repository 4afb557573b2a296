"""The report for the terminal: rich tables that fit 100 columns (MB are 10^6 bytes).

:func:`report_tables` builds the tables (layers, functions, the slim passes that removed
something, what changed since the previous report); :func:`render_table` renders them as plain
text. :func:`table` is the one helper for any other aligned table (build summary, status).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from layerkit.report.data import build_report
from layerkit.report.table import GAP, RULE, is_numeric, mb

WIDTH = 100  # tables never grow past this many columns
TOP = 3  # distributions named per layer in the terminal
#: The rich tables' box: a :data:`~layerkit.report.table.RULE` line under the header, nothing
#: else, the same as :func:`layerkit.report.table.format_table` draws.
BOX = box.Box(f"    \n    \n {RULE}  \n    \n    \n    \n    \n    \n", ascii=True)


def _style(cell: str) -> str:
    """Red for a verdict that fails, yellow for an accepted one (colour only on a terminal)."""
    if cell.startswith("OVER (accepted)") or "over budget (accepted)" in cell:
        return "yellow"
    return "bold red" if cell.startswith(("OVER", "FAIL", "TOO MANY")) else ""


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None
) -> RenderableType:
    """An aligned table: a column whose cells are all numbers is right-aligned, header included.

    Long cells wrap inside their column, so the table fits the width it is printed at; the
    title is a line of its own above it (never squeezed to a narrow table's width).
    """
    cells = [[str(c) for c in row] for row in rows]
    out = Table(
        box=BOX,
        padding=(0, GAP - 1, 0, 0),  # with the box's separator: two spaces between columns
        pad_edge=False,
        show_edge=False,
        header_style="bold",
    )
    for i, header in enumerate(headers):
        right = bool(cells) and all(is_numeric(row[i]) for row in cells)
        out.add_column(header, justify="right" if right else "left")
    for row in cells:
        out.add_row(*(Text(c, style=_style(c)) for c in row))  # Text: no markup in names
    return out if title is None else Group(Text(title, style="bold"), out)


def headroom(n: int | None) -> str:
    """Signed MB (``+12.3``, ``-50.0``), ``-`` for unknown."""
    return "-" if n is None else f"{n / 1e6:+.1f}"


def change(c: Mapping[str, Any]) -> str:
    """A change's size difference in MB, saying ``(new)`` or ``(gone)`` when it is one."""
    note = " (new)" if c["before"] is None else " (gone)" if c["after"] is None else ""
    return headroom(c["delta"]) + note


def _status(over: bool, s3: bool, accepted: bool = False, execution: str = "native") -> str:
    flags = [("OVER (accepted)" if accepted else "OVER") if over else "ok"]
    if s3:
        flags.append("upload via S3")
    if execution != "native":
        flags.append(execution)
    return ", ".join(flags)


def _largest(layer: Mapping[str, Any], n: int) -> str:
    # one a line: a wrapped "pytz\n1.1" would read as two things
    return "\n".join(
        f"{d['name']} {d['bytes'] / 1e6:.1f}" for d in layer["largest_distributions"][:n]
    )


def _layer_table(entry: Mapping[str, Any], verbose: bool) -> RenderableType:
    headers = ["layer", "size", "budget", "headroom", "zipped"]
    headers += ["slimmed", "bytecode"] if verbose else []
    headers += ["largest distributions", "status"]
    rows = []
    for layer in entry["layers"]:
        row = [
            layer["name"],
            mb(layer["unzipped_bytes"]),
            mb(layer["budget"]),
            headroom(layer["headroom_bytes"]),
            mb(layer["zipped_bytes"]),
        ]
        if verbose:
            row += [mb(layer["slim_removed_bytes"]), layer["bytecode"].get("mode", "-")]
        row += [
            _largest(layer, 5 if verbose else TOP),
            _status(
                layer["over_budget"],
                layer["upload_via_s3"],
                accepted=bool(layer.get("over_budget_reason")),
                execution=layer.get("execution", "native"),
            ),
        ]
        rows.append(row)
    return table(headers, rows, f"{entry['target']}: layers (MB, unzipped)")


def _function_table(entry: Mapping[str, Any]) -> RenderableType:
    rows = [
        (
            fn["name"],
            mb(fn["unzipped_bytes"]),
            " + ".join(fn["layers"]) or "-",
            mb(fn["total_unzipped_bytes"]),
            mb(fn["limit_bytes"]),
            headroom(fn["headroom_bytes"]),
            _status(fn["over_limit"] or fn["too_many_layers"], fn["upload_via_s3"]),
        )
        for fn in entry["functions"]
    ]
    return table(
        ("function", "code", "layers", "total", "limit", "headroom", "status"),
        rows,
        f"{entry['target']}: functions (code + layers, MB, unzipped)",
    )


def _slim_table(entry: Mapping[str, Any], verbose: bool) -> RenderableType | None:
    """Slim passes as rows, layers as columns; without ``verbose`` only passes that saved bytes."""
    names: list[str] = []
    for layer in entry["layers"]:
        names += [
            p["name"]
            for p in layer["slim"]
            if p["name"] not in names and (verbose or p.get("removed_bytes"))
        ]
    if not names:
        return None
    rows = []
    for name in names:
        cells = []
        for layer in entry["layers"]:
            found = [p for p in layer["slim"] if p["name"] == name]
            saved = found[0].get("removed_bytes", 0) if found else 0
            cells.append(mb(saved) if saved else "-")
        rows.append((name, *cells))
    return table(
        ("pass", *(x["name"] for x in entry["layers"])),
        rows,
        f"{entry['target']}: slim passes (MB saved)",
    )


def _change_table(report: Mapping[str, Any], verbose: bool) -> RenderableType | None:
    changes = [c for c in report.get("changes", ()) if c["measure"] == "unzipped"]
    if not verbose:  # artifacts only, and only real growth or shrinkage
        changes = [c for c in changes if " / " not in c["what"]]
    if not changes:
        return None
    since = (report.get("previous") or {}).get("commit") or "the previous report"
    rows = [(c["target"], c["what"], mb(c["before"]), mb(c["after"]), change(c)) for c in changes]
    return table(
        ("target", "what", "before", "after", "change"),
        rows,
        f"changed since {since} (MB, unzipped)",
    )


def report_tables(report: Mapping[str, Any], *, verbose: bool = False) -> list[RenderableType]:
    """The report's tables in print order; ``verbose`` adds columns, every pass, every change."""
    out: list[RenderableType] = []
    for entry in report["targets"]:
        if entry["layers"]:
            out.append(_layer_table(entry, verbose))
        if entry["functions"]:
            out.append(_function_table(entry))
        slim = _slim_table(entry, verbose)
        if slim is not None:
            out.append(slim)
    changes = _change_table(report, verbose)
    if changes is not None:
        out.append(changes)
    return out


def render_plain(renderables: Sequence[RenderableType], width: int = WIDTH) -> str:
    """Renderables as plain text (no colour, no control codes) at ``width`` columns."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    for i, item in enumerate(renderables):
        if i:
            console.print()
        console.print(item)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def render_table(
    manifest: Mapping[str, Any], project: Any = None, *, verbose: bool = False, width: int = WIDTH
) -> str:
    """The report (or a manifest, turned into one) as plain-text tables, one block per target."""
    report = manifest if "targets" in manifest else build_report(manifest, project)
    return render_plain(report_tables(report, verbose=verbose), width)
