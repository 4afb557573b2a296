"""Plain ASCII tables (pure: rows in, text out) for what commands return as text.

:func:`layerkit.report.text.table` is the rich one for the terminal; both align columns the
same way (:func:`is_numeric`).
"""

from __future__ import annotations

from collections.abc import Sequence


def is_numeric(cell: str) -> bool:
    """Whether a cell reads as a number (or ``-`` for none): such columns are right-aligned."""
    return cell.lstrip("+-")[:1].isdigit() or cell == "-"


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
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule, *(fmt(r) for r in body)])


def mb(n: int | None) -> str:
    """Bytes as MB (10^6): one decimal, three below 0.1 MB; ``-`` for unknown."""
    if n is None:
        return "-"
    return f"{n / 1e6:.3f}" if 0 < abs(n) < 100_000 else f"{n / 1e6:.1f}"
