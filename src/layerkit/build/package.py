"""What goes into a function's package, and the refusal to package secrets.

A function package holds the function's own code and data (``app.py``, helper modules, a
schema, a trained model) and nothing else: no tests, no test events, no helper scripts (such as
the model's training script), no host ``__pycache__``, no ``requirements.txt`` (its
distributions are installed into the package by the build), no tool caches.

Secrets are refused rather than silently skipped: a ``.env``, a private key or an AWS
credentials file in a function folder stops the build with the file named, so nobody ships one
by accident or is surprised that a file went missing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path

from layerkit.errors import SpecError

#: Folders of a function that never ship (at any depth).
EXCLUDED_DIRS = frozenset(
    {
        "tests",
        "test",
        "events",
        "scripts",
        "__pycache__",
        ".git",
        ".venv",
        "venv",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        ".aws-sam",
        "node_modules",
    }
)
#: File names that never ship (at any depth); ``requirements.txt`` only at the top.
EXCLUDED_FILES = ("*.pyc", "*.pyo", ".DS_Store", ".gitignore", ".python-version", "*.swp", "*~")

#: File names that hold secrets. ``.env.example``-style templates are allowed.
SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "*.kdbx",
)
_SECRET_TEMPLATES = (".example", ".sample", ".template", ".dist")
#: Content that is a secret whatever the file is called.
SECRET_CONTENT = re.compile(
    rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
    rb"|aws_secret_access_key[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9/+=]{40}",
    re.IGNORECASE,
)
_SCAN_LIMIT = 5 * 1024 * 1024  # bytes of each file searched for secret content


def _excluded(rel: Path) -> bool:
    if any(part in EXCLUDED_DIRS for part in rel.parts[:-1]):
        return True
    if rel.parts == ("requirements.txt",):
        return True
    return any(fnmatch.fnmatch(rel.name, pattern) for pattern in EXCLUDED_FILES)


def package_files(fn_dir: Path) -> tuple[Path, ...]:
    """The files of ``fn_dir`` that go into its package, relative to it, sorted.

    Symlinks are not followed: a link pointing outside the folder would pull in files
    nobody reviewed, so a symlink is an error.
    """
    if not fn_dir.is_dir():
        raise SpecError(f"function folder {fn_dir} does not exist.")
    found = []
    for path in sorted(fn_dir.rglob("*")):
        rel = path.relative_to(fn_dir)
        if any(part in EXCLUDED_DIRS for part in rel.parts):
            continue
        if path.is_symlink():
            raise SpecError(
                f"{path} is a symbolic link; function packages hold regular files only. "
                "Copy the file into the function folder or remove the link."
            )
        if path.is_file() and not _excluded(rel):
            found.append(rel)
    return tuple(found)


def is_secret_name(rel: Path) -> bool:
    """Whether a file's name or place marks it as a secret (``.env``, keys, credentials)."""
    name = rel.name
    if name.endswith(_SECRET_TEMPLATES):
        return False
    if ".aws" in rel.parts[:-1]:
        return True
    return any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_NAMES)


def refuse_secrets(fn_dir: Path, files: Iterable[Path]) -> None:
    """Raise SpecError naming every file among ``files`` that is or holds a secret."""
    secrets = []
    for rel in files:
        if is_secret_name(rel):
            secrets.append(f"{rel.as_posix()} (a secrets file by its name)")
            continue
        with (fn_dir / rel).open("rb") as handle:
            head = handle.read(_SCAN_LIMIT)
        match = SECRET_CONTENT.search(head)
        if match is not None:
            line = head.count(b"\n", 0, match.start()) + 1
            kind = "a private key" if b"PRIVATE KEY" in match.group(0) else "an AWS secret key"
            secrets.append(f"{rel.as_posix()}:{line} ({kind})")
    if secrets:
        raise SpecError(
            f"refusing to package secrets from {fn_dir}: {', '.join(secrets)}. A function "
            "package is readable by anyone who can get the function's code; move these files "
            "out of the function folder and give the function its secrets through its IAM role, "
            "environment configuration or AWS Secrets Manager."
        )
