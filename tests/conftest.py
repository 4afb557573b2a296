"""Shared fixtures: small projects on disk, built from text, for spec/lock/build tests."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: tests marked ``slow``, then ``integration`` (real builds), then the rest.

    A slow test collected last would run alone at the end while the other pytest-xdist
    worker idles; started first, the fast tests fill in beside it (the sessions pass
    ``--no-loadscope-reorder`` so that xdist keeps this order). The order is otherwise kept
    (a stable sort), so a file's tests still run in the order they are written.
    """
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            item.get_closest_marker("integration") is None,
        )
    )


@pytest.fixture(scope="session", autouse=True)
def shared_layer_cache() -> Iterator[Path]:
    """One layer cache for every project a test makes: this checkout's ``.layerkit/cache``.

    ``LAYERKIT_CACHE_DIR`` (inherited by every command a test runs) points there, so the
    runtime's boto3 is installed and a zip extracted once for the whole run, and kept for the
    next, as on a developer's machine with one cache folder. Entries are read-only trees keyed
    by content and safe to share between processes; tests of the cache itself use their own.
    """
    from layerkit.runtime.layercache import CACHE_ENV, PROJECT_CACHE

    cache = REPO / PROJECT_CACHE
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(cache))
        yield cache


def imported_modules(module: str, *, at_import: bool = False) -> set[str]:
    """Every module ``module`` imports, following layerkit's own modules (read, not run).

    A package's ``__init__`` counts (it runs first), and ``from x import y`` counts ``x.y``
    too (it may be a submodule). ``at_import``: only what importing it runs, that is the
    module-level imports, not those inside functions or under ``if TYPE_CHECKING``.
    """
    import ast

    src = REPO / "src"
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        path = src.joinpath(*parts)
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text())
        nodes = _run_at_import(tree.body) if at_import else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return seen


def _run_at_import(body: list) -> list:  # type: ignore[type-arg]
    """The statements of a module body that importing it runs, nested in try/if blocks too."""
    import ast

    found = []
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Try, ast.If)):
            found += _run_at_import(
                [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
                + [n for h in getattr(node, "handlers", []) for n in h.body]
            )
        else:
            found.append(node)
    return found


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.9
    Architectures: [x86_64]
Resources:
  BaseLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/base.zip
      CompatibleRuntimes: [python3.9]
  TopLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/top.zip
      CompatibleRuntimes: [python3.9]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: dist/functions/fn.zip
      Handler: app.handler
      Layers: [!Ref BaseLayer, !Ref TopLayer]
"""

LAYER_TOML = """\
requires = {requires}
budget = "10 MB"
runtimes = ["python3.9"]
"""


def write_project(
    root: Path,
    layers: Mapping[str, tuple[list[str], str]],
    template: str = TEMPLATE,
    functions: Mapping[str, str] | None = None,
) -> Path:
    """Write a project: layers maps name -> (requires, requirements text)."""
    for name, (requires, reqs) in layers.items():
        folder = root / "layers" / name
        folder.mkdir(parents=True, exist_ok=True)
        quoted = "[" + ", ".join(f'"{r}"' for r in requires) + "]"
        (folder / "layer.toml").write_text(LAYER_TOML.format(requires=quoted))
        (folder / "requirements.txt").write_text(textwrap.dedent(reqs))
    for name, code in (functions or {"fn": "def handler(event, context):\n    return 1\n"}).items():
        folder = root / "functions" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.py").write_text(code)
        (folder / "requirements.txt").write_text("")
    (root / "template.yaml").write_text(template)
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory for small projects under tmp_path."""

    def make(layers: Mapping[str, tuple[list[str], str]] | None = None, **kwargs: object) -> Path:
        layers = layers or {"base": ([], "six==1.17.0\n"), "top": (["base"], "pytz\n")}
        return write_project(tmp_path / "proj", layers, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of this repository's project files (layers, functions, template, locks)."""
    dest = tmp_path / "repo"
    for name in ("layers", "functions", "locks"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "template.yaml", dest / "template.yaml")
    return dest
