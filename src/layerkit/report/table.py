"""The voice of every table and count layerkit prints (pure: values in, text out).

One place decides how a table looks and how its words read, so every command, the report and
other stages' messages say things the same way:

- :func:`format_table`: a plain aligned table (numbers right-aligned, a :data:`RULE` line under
  the header); :func:`layerkit.report.text.table` is its rich twin for the terminal, drawn with
  the same rule character and the same column gaps.
- :func:`plural`: ``1 file``, ``2 files``, ``0 modules`` (never "1 files").
- :func:`artifact_order`: layers, then functions, by name (every table lists artifacts so).
- :func:`in_order` / :func:`merged_order`: columns in pipeline order, whatever order the
  records happened to list them in.
- :class:`BuildState` / :func:`build_state`: one word for what a build did with an artifact.
- :func:`verdict`: one phrase for the worst size finding about an artifact ("over budget" only
  for a layer's budget; a function is over Lambda's limit, never "over budget").
- :func:`mb`: bytes as MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

#: The one rule character of every table, plain or rich.
RULE = "-"
#: Spaces between two columns of every table.
GAP = 2


def is_numeric(cell: str) -> bool:
    """Whether a cell reads as a number (or ``-`` for none): such columns are right-aligned."""
    return cell.lstrip("+-")[:1].isdigit() or cell == "-"


def rule_line(widths: Sequence[int]) -> str:
    """The line under a table's header: :data:`RULE` under each column and the gap after it.

    Drawn the way the rich tables draw it (the rule runs one character into the gap), so a
    table reads the same from ``status`` and from ``report``.
    """
    if not widths:
        return ""
    return (
        " ".join(RULE * (w + GAP - 1) for w in widths[:-1])
        + (" " if widths[1:] else "")
        + (RULE * widths[-1])
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align columns: a column whose cells are all numbers is right-aligned, header included."""
    body = [[str(c) for c in row] for row in rows]
    cells = [[str(c) for c in headers], *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = [bool(body) and all(is_numeric(row[i]) for row in body) for i in range(len(headers))]

    def fmt(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
        ]
        return (" " * GAP).join(parts).rstrip()

    return "\n".join([fmt(cells[0]), rule_line(widths), *(fmt(r) for r in body)])


def mb(n: int | None) -> str:
    """Bytes as MB (10^6): one decimal, three below 0.1 MB; ``-`` for unknown."""
    if n is None:
        return "-"
    return f"{n / 1e6:.3f}" if 0 < abs(n) < 100_000 else f"{n / 1e6:.1f}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` agreeing: ``1 file``, ``2 files``, ``1 dependency``/``many``.

    ``many`` is the plural when adding an "s" is wrong (``plural(n, "entry", "entries")``).
    """
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def artifact_order(path: str) -> tuple[int, str]:
    """Sort key of an artifact path or label: layers first, then functions, each by name.

    Takes ``layers/x.zip``, ``functions/y.zip``, ``layer x`` or ``function y``.
    """
    return (0 if path.startswith(("layer/", "layers/", "layer ")) else 1, path)


def merged_order(*orders: Sequence[str]) -> tuple[str, ...]:
    """One order holding every name of ``orders``, each order kept.

    A name only a later order knows goes right before the next name both know (the layer steps
    and the function steps merge into install, slim, copy, imports, bytecode, import-check, zip).
    """
    merged: list[str] = list(orders[0]) if orders else []
    for order in orders[1:]:
        pending: list[str] = []
        for name in order:
            if name in merged:
                at = merged.index(name)
                merged[at:at] = pending
                pending = []
            else:
                pending.append(name)
        merged += pending
    return tuple(dict.fromkeys(merged))


def in_order(names: Iterable[str], order: Sequence[str]) -> list[str]:
    """``names`` without repeats, those in ``order`` by it, the others after them as they came."""
    seen = list(dict.fromkeys(names))
    rank = {name: i for i, name in enumerate(order)}
    return sorted(seen, key=lambda n: (rank.get(n, len(rank)), seen.index(n)))


class BuildState(str, Enum):
    """What a build did with an artifact: the one state word of the build summary."""

    BUILT = "built"  # its steps ran now
    CACHED = "cached"  # downloaded from the shared build cache
    FRESH = "fresh"  # already up to date: nothing done

    def __str__(self) -> str:
        return self.value


def build_state(built: bool, cached: bool = False) -> BuildState:
    """The state word of an artifact a build built, fetched from the cache, or left alone."""
    if cached:
        return BuildState.CACHED
    return BuildState.BUILT if built else BuildState.FRESH


#: What the worst size finding about an artifact is called (by its code), in capitals when
#: it is an error; ``budget`` is a layer's own budget, the only thing "over budget" names.
_VERDICTS = {
    "budget": "OVER BUDGET",
    "layer-over-limit": "OVER LAMBDA'S LIMIT",
    "function-over-limit": "OVER LAMBDA'S LIMIT (with its layers)",
    "max-layers": "TOO MANY LAYERS",
    "s3-upload": "upload via S3",
}


def verdict(code: str | None, *, accepted: bool = False) -> str:
    """One phrase for an artifact's worst size finding: ``ok`` when there is none.

    ``code`` is the finding's code (:mod:`layerkit.check.sizes`); ``accepted``: the overrun is
    written down (a layer's ``over_budget_reason``), so it reads ``over budget (accepted)``.
    """
    if code is None:
        return "ok"
    phrase = _VERDICTS.get(code, code)
    return phrase.lower() + " (accepted)" if accepted else phrase
