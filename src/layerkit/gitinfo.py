"""The git commit a deploy or rollback records: the one question layerkit asks git."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError:  # no git on this machine
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def git_commit(root: Path) -> str | None:
    """``HEAD``'s short sha (12 digits), ``-dirty`` when tracked files changed; None outside git."""
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    if not commit:
        return None
    return commit + (
        "-dirty" if _git(root, "status", "--porcelain", "--untracked-files=no") else ""
    )
