"""The report as GitHub-flavoured markdown, for a CI step summary or a pull-request comment.

Per target: each function's total against 262,144,000 bytes and its headroom, each layer's size
against its budget; then what grew since the previous report. Pure: report in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from layerkit.report.data import timed_artifacts
from layerkit.report.table import mb
from layerkit.report.text import change, headroom

GROWTH_ROWS = 15  # changes listed, largest growth first


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: set[int]) -> list[str]:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    align = ["---:" if i in right else ":---" for i in range(len(headers))]
    return [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows),
    ]


def _verdict(over: bool, accepted: bool = False) -> str:
    return ("over, accepted" if accepted else "**OVER**") if over else "ok"


def _timings_table(entry: Mapping[str, Any]) -> list[str]:
    """Seconds per build step of each artifact's last build (nothing when none were recorded)."""
    rows, steps = timed_artifacts(entry)
    if not rows:
        return []
    body = []
    for x in rows:
        by_step = dict(x["timings"])
        cells = [f"{by_step[s]:.1f}" if s in by_step else "-" for s in steps]
        body.append((x["name"], *cells, f"{sum(by_step.values()):.1f}"))
    table = _table(("artifact", *steps, "total"), body, set(range(1, len(steps) + 2)))
    return ["", "Build time by step (seconds, each artifact's last build):", "", *table]


def render_markdown(report: Mapping[str, Any]) -> str:
    """Sizes, headroom and what grew, as markdown (MB are 10^6 bytes)."""
    build = report.get("build") or {}
    lines = [
        "## layerkit build sizes",
        "",
        f"commit `{build.get('commit') or '?'}` · built {build.get('date') or '?'} · "
        "MB = 10^6 bytes · Lambda limit 262,144,000 bytes unzipped (code + layers)",
    ]
    for entry in report["targets"]:
        lines += ["", f"### {entry['target']}", ""]
        if entry["functions"]:
            lines += _table(
                ("function", "layers", "total MB", "headroom MB", "status"),
                (
                    (
                        fn["name"],
                        " + ".join(fn["layers"]) or "-",
                        mb(fn["total_unzipped_bytes"]),
                        headroom(fn["headroom_bytes"]),
                        _verdict(fn["over_limit"] or fn["too_many_layers"]),
                    )
                    for fn in entry["functions"]
                ),
                {2, 3},
            )
            lines.append("")
        lines += _table(
            ("layer", "MB", "budget MB", "headroom MB", "zipped MB", "largest", "status"),
            (
                (
                    x["name"],
                    mb(x["unzipped_bytes"]),
                    mb(x["budget"]),
                    headroom(x["headroom_bytes"]),
                    mb(x["zipped_bytes"]) + (" (S3)" if x["upload_via_s3"] else ""),
                    ", ".join(d["name"] for d in x["largest_distributions"][:3]),
                    _verdict(x["over_budget"], bool(x.get("over_budget_reason"))),
                )
                for x in entry["layers"]
            ),
            {1, 2, 3, 4},
        )
        lines += _timings_table(entry)
    lines += ["", "### What grew", ""]
    previous = report.get("previous")
    changes = [c for c in report.get("changes", ()) if c["measure"] == "unzipped"]
    if not previous:
        lines.append("No previous report to compare with.")
    elif not changes:
        lines.append(f"Nothing changed size since commit `{previous.get('commit') or '?'}`.")
    else:
        lines.append(f"Since commit `{previous.get('commit') or '?'}` ({previous.get('date')}):")
        lines.append("")
        lines += _table(
            ("target", "what", "before MB", "after MB", "change MB"),
            (
                (c["target"], c["what"], mb(c["before"]), mb(c["after"]), change(c))
                for c in changes[:GROWTH_ROWS]
            ),
            {2, 3, 4},
        )
        if len(changes) > GROWTH_ROWS:
            lines.append(f"\n…and {len(changes) - GROWTH_ROWS} smaller changes (report.json).")
    return "\n".join(lines) + "\n"
