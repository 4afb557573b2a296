"""``python -m layerkit.report [dist/report.json]``: the report as markdown on stdout.

CI appends it to the step summary: ``python -m layerkit.report >> "$GITHUB_STEP_SUMMARY"``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from layerkit.report.markdown import render_markdown


def main(argv: Sequence[str] | None = None) -> int:
    """Print the markdown summary of a report.json; 1 with one line on stderr if unreadable."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0] if args else "dist/report.json")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        text = render_markdown(report)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"error: cannot summarise {path} ({exc}); run `inv report` first.\n")
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
