"""README figures that cannot go stale: marked blocks rewritten from what the code measures.

A README keeps a figure the code can measure between two markers::

    <!-- layerkit:sizes-python3.12 -->
    ...generated text...
    <!-- /layerkit:sizes-python3.12 -->

:func:`update_blocks` rewrites every such block it has a value for and leaves the rest of the
file as it was; ``python -m layerkit.report.readme`` (this repository: ``inv readme``) runs it
from ``dist/report.json`` and the committed locks. What a block may say:

- ``sizes-<runtime>``: each layer's unzipped size and budget on that target, from a report
  (``inv report``), with the day it was measured and the machine (:func:`sizes_block`).
- ``bench-pip-target``: the import times and sizes of ``nox -s bench``'s comparison with the
  pip --target baseline (``dist/benchmark-compare-pip-target.json``), with the day and machine
  (:func:`bench_block`); left as it is when that file is absent.
- ``versions-<old>..<new>``: what moving from one runtime's lock to another's changes, from the
  committed locks alone (:func:`versions_block`); a unit test regenerates it and fails when the
  README and the locks disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from layerkit.errors import ReportError
from layerkit.report.table import mb, plural

BLOCK = re.compile(
    r"<!-- layerkit:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /layerkit:(?P=name) -->", re.S
)


def blocks(text: str) -> dict[str, str]:
    """The marked blocks of ``text``: name -> the text between the markers."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with block ``name``'s contents replaced by ``body`` (ending in a newline).

    A block that is not there is a ReportError naming it: the README decides where a figure
    goes, the generator only fills it in.
    """
    found = [m for m in BLOCK.finditer(text) if m["name"] == name]
    if not found:
        raise ReportError(
            f"the README has no block {name!r}; add the two lines `<!-- layerkit:{name} -->` "
            f"and `<!-- /layerkit:{name} -->` where the figures belong."
        )
    m = found[0]
    body = body if body.endswith("\n") else body + "\n"
    return text[: m.start("body")] + body + text[m.end("body") :]


def machine_note() -> str:
    """Where a measurement ran, for its note: ``a 2-core x86_64 machine``."""
    return f"a {os.cpu_count() or 1}-core {platform.machine() or 'unknown'} machine"


def sizes_block(report: Mapping[str, Any], target: str, measured: dt.date, machine: str) -> str:
    """One sentence: each layer of ``target`` (``python3.12-x86_64``), its size and budget.

    ``measured``: the day of the build; ``machine``: where it ran (:func:`machine_note`).
    """
    entry = next((t for t in report["targets"] if t["target"] == target), None)
    if entry is None:
        built = ", ".join(t["target"] for t in report["targets"]) or "none"
        raise ReportError(
            f"the report has no target {target} (it has: {built}); build it "
            f"(`inv build.all --runtime {target.split('-')[0]}`) and run `inv report` first."
        )
    parts = []
    for layer in entry["layers"]:
        size = f"{layer['name']} {mb(layer['unzipped_bytes'])} MB"
        budget = f"{mb(layer['budget'])} MB"
        if layer["over_budget"]:
            accepted = ", accepted in its layer.toml" if layer.get("over_budget_reason") else ""
            parts.append(f"{size} (over its {budget} budget{accepted})")
        else:
            parts.append(f"{size} (budget {budget})")
    runtime = target.split("-")[0]
    return _wrap(
        f"Sizes of the {target} layers, unzipped (`inv build.all --runtime {runtime}` and "
        f"`inv report`, measured {measured.isoformat()} on {machine}): {', '.join(parts)}."
    )


#: What the benchmark's output calls its baseline (tests/benchmarks/test_compare_pip_target.py).
BASELINE = "pip-target"
BASELINE_NAME = "pip --target with find/delete cleanup"


def _case(case: str) -> str:
    """``boto3 + s3 client`` -> ```import boto3` + s3 client``."""
    module, _, rest = case.partition(" ")
    return f"`import {module}`" + (f" {rest}" if rest else "")


def bench_block(results: Mapping[str, Any], measured: dt.date, machine: str) -> str:
    """The baseline comparison as a markdown table: median import times, then total sizes.

    ``results`` is the benchmark's JSON: ``{"times": {"CASE|METHOD": seconds or "FAIL (why)"},
    "sizes": {METHOD: {layer: bytes}}}``.
    """
    times: Mapping[str, Any] = results.get("times", {})
    sizes: Mapping[str, Mapping[str, int]] = results.get("sizes", {})
    lines = [
        _wrap(
            f"Measured {measured.isoformat()} on {machine} (median of each case's rounds):"
        ).rstrip("\n"),
        "",
        f"| | {BASELINE_NAME} (no bytecode) | layerkit | |",
        "|---|---|---|---|",
    ]
    cases = list(dict.fromkeys(key.split("|")[0] for key in times))
    for case in cases:
        base, ours = times.get(f"{case}|{BASELINE}"), times.get(f"{case}|layerkit")

        def cell(value: Any) -> str:
            if isinstance(value, (int, float)):
                return f"{value:.3f} s"
            if value is None:
                return "-"
            why = str(value).removeprefix("FAIL (").removesuffix(")")
            return f"fails ({why[:60]})"

        ratio = (
            f"{base / ours:.1f}x faster"
            if isinstance(base, (int, float)) and isinstance(ours, (int, float)) and ours
            else ""
        )
        lines.append(
            f"| {_case(case)} | {cell(base)} | {cell(ours)} |{' ' + ratio if ratio else ''} |"
        )
    if sizes.get(BASELINE) and sizes.get("layerkit"):
        base_mb = sum(sizes[BASELINE].values())
        ours_mb = sum(sizes["layerkit"].values())
        lines.append(
            f"| {plural(len(sizes['layerkit']), 'layer')}, unzipped | {mb(base_mb)} MB | "
            f"{mb(ours_mb)} MB | |"
        )
    return "\n".join(lines) + "\n"


def _versions(lock_text: str) -> dict[str, str]:
    import tomllib

    return {p["name"]: p["version"] for p in tomllib.loads(lock_text).get("package", ())}


def versions_block(old_lock: str, new_lock: str, old: str, new: str) -> str:
    """What moving from the ``old`` target's lock to the ``new`` one's changes, as prose.

    ``old_lock``/``new_lock`` are the locks' text (``locks/<target>.toml``).
    """
    before, after = _versions(old_lock), _versions(new_lock)
    moved = [
        f"{n} {before[n]} -> {after[n]}"
        for n in sorted(before)
        if before[n] != after.get(n, before[n])
    ]
    added = [f"{n} {after[n]}" for n in sorted(after) if n not in before]
    gone = [f"{n} {before[n]}" for n in sorted(before) if n not in after]
    same = [f"{n} {after[n]}" for n in sorted(after) if before.get(n) == after[n]]
    lines = [f"What {new} moves (the committed locks {old} and {new}):"]
    lines.append(f"{', '.join(moved) or 'nothing'}.")
    if added:
        lines.append(f"New on {new}: {', '.join(added)}.")
    if gone:
        lines.append(f"Only on {old}: {', '.join(gone)}.")
    if same:
        lines.append(f"The same on both: {', '.join(same)}.")
    return _wrap(" ".join(lines))


def _wrap(text: str, width: int = 100) -> str:
    """Markdown prose wrapped at ``width`` (the README's own line length)."""
    import textwrap

    return textwrap.fill(text, width, break_on_hyphens=False, break_long_words=False) + "\n"


def update_blocks(
    text: str,
    root: Path,
    report: Mapping[str, Any] | None,
    measured: dt.date,
    machine: str,
    bench: Mapping[str, Any] | None = None,
    bench_measured: dt.date | None = None,
) -> str:
    """Every ``sizes-*``, ``versions-*`` and ``bench-*`` block of ``text`` rewritten.

    ``sizes-<runtime>`` blocks need ``report`` (``dist/report.json``) with that target built,
    and ``bench-pip-target`` needs ``bench`` (its JSON, measured on ``bench_measured``); without
    them they are left as they are (a report of one target rewrites that target's block only).
    ``versions-`` blocks come from ``root``'s committed locks.
    """
    reported = {t["target"] for t in (report or {}).get("targets", ())}
    for name in blocks(text):
        if name == f"bench-{BASELINE}" and bench is not None:
            text = replace_block(
                text, name, bench_block(bench, bench_measured or measured, machine)
            )
        if name.startswith("sizes-") and report is not None:
            target = name.removeprefix("sizes-")
            target = target if "-" in target else f"{target}-x86_64"
            if target in reported:
                text = replace_block(text, name, sizes_block(report, target, measured, machine))
        elif name.startswith("versions-"):
            old, new = name.removeprefix("versions-").split("..")
            text = replace_block(text, name, versions_from_locks(root, old, new))
    return text


def versions_from_locks(root: Path, old: str, new: str) -> str:
    """:func:`versions_block` for the committed ``locks/<old>.toml`` and ``locks/<new>.toml``."""
    paths = [root / "locks" / f"{key}.toml" for key in (old, new)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ReportError(f"no lock {', '.join(missing)}; run `inv lock` first.")
    texts = [p.read_text(encoding="utf-8") for p in paths]
    return versions_block(texts[0], texts[1], old, new)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m layerkit.report.readme [README.md]``: rewrite its marked blocks in place."""
    import json

    parser = argparse.ArgumentParser(prog="python -m layerkit.report.readme")
    parser.add_argument("readme", nargs="?", default="README.md", type=Path)
    parser.add_argument("--report", type=Path, default=Path("dist/report.json"))
    parser.add_argument(
        "--bench", type=Path, default=Path(f"dist/benchmark-compare-{BASELINE}.json")
    )
    parser.add_argument("--machine", default=machine_note(), help="where the sizes were measured")
    args = parser.parse_args(argv)
    report = bench = None
    measured = bench_day = dt.date.today()
    if args.report.is_file():
        report = json.loads(args.report.read_text(encoding="utf-8"))
        measured = dt.date.fromtimestamp(args.report.stat().st_mtime)
    if args.bench.is_file():
        bench = json.loads(args.bench.read_text(encoding="utf-8"))
        bench_day = dt.date.fromtimestamp(args.bench.stat().st_mtime)
    root = args.readme.resolve().parent
    try:
        old = args.readme.read_text(encoding="utf-8")
        new = update_blocks(old, root, report, measured, args.machine, bench, bench_day)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if new != old:
        tmp = args.readme.with_name(args.readme.name + ".tmp")
        tmp.write_text(new, encoding="utf-8")
        os.replace(tmp, args.readme)  # never half-written
    print(f"{args.readme}: {'rewritten' if new != old else 'already current'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
