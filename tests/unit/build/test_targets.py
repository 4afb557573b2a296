"""Per-target build inputs: overlays, buildable functions, static import discovery (pure I/O)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from layerkit.build.targets import (
    buildable_functions,
    overlay_dir,
    overlay_files,
    static_imported_files,
)
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


def test_static_imports_follow_import_time_statements_only(tmp_path: Path) -> None:
    site = write(
        tmp_path / "site",
        {
            "pkg/__init__.py": "from . import core\nfrom .sub import thing\n",
            "pkg/core.py": """\
                import json
                try:
                    import pkg.fast as impl
                except ImportError:
                    from pkg import slow as impl
                class C:
                    from pkg import inclass
                def later():
                    import pkg.lazy
            """,
            "pkg/fast.py": "",
            "pkg/slow.py": "",
            "pkg/inclass.py": "",
            "pkg/lazy.py": "",
            "pkg/sub/__init__.py": "from ..util import helper\n",
            "pkg/sub/thing.py": "",
            "pkg/util.py": "",
            "pkg/unused.py": "",
            "pkg/broken.py": "print 'python 2'\n",
            "other/__init__.py": "",
        },
    )
    smoke = write(tmp_path, {"smoke.py": "import other\n"}) / "smoke.py"
    assert static_imported_files(site, ["pkg"], [smoke]) == (
        "other/__init__.py",
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/fast.py",
        "pkg/inclass.py",
        "pkg/slow.py",
        "pkg/sub/__init__.py",
        "pkg/sub/thing.py",
        "pkg/util.py",
    )


def test_a_dotted_entry_module_brings_its_packages(tmp_path: Path) -> None:
    site = write(tmp_path, {"a/__init__.py": "", "a/b/__init__.py": "", "a/b/c.py": ""})
    assert static_imported_files(site, ["a.b.c"]) == (
        "a/__init__.py",
        "a/b/__init__.py",
        "a/b/c.py",
    )


def test_overlay_files_are_listed_relative_and_sorted(tmp_path: Path) -> None:
    folder = overlay_dir(tmp_path / "dist" / "python3.12-x86_64", "predictions")
    assert overlay_files(folder) == ()
    write(folder, {"model/model.json": "{}", "model/model.joblib": "x"})
    assert [rel for rel, _ in overlay_files(folder)] == ["model/model.joblib", "model/model.json"]


def test_a_target_builds_the_functions_whose_layers_it_builds(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + 'architectures = ["x86_64", "arm64"]\n')
    project = load_project(root)
    assert [f.name for f in buildable_functions(project, Target("python3.9"))] == ["fn"]
    # fn attaches top too, which is not built for arm64
    assert buildable_functions(project, Target("python3.9", "arm64")) == ()
