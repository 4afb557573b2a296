"""Plain-text tables for the terminal (pure: rows in, text out)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align columns; numbers (and text starting with a digit) are right-aligned."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def fmt(row: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(row):
            numeric = cell.lstrip("+-")[:1].isdigit() or cell == "-"
            parts.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule, *(fmt(r) for r in cells[1:])])


def mb(n: int | None) -> str:
    """Bytes as MB (10^6) with one decimal; ``-`` for unknown."""
    return "-" if n is None else f"{n / 1e6:.1f}"
