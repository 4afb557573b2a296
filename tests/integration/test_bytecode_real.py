"""Bytecode compiled by the real python3.9: the pycs it writes are the ones it loads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from layerkit.build.bytecode import compile_tree
from layerkit.errors import BuildError, InterpreterNotFoundError
from layerkit.runtime.target import Target, find_interpreter

pytestmark = pytest.mark.integration

FILES = {
    "app/__init__.py": "from app import helper\nVALUE = helper.VALUE\n",
    "app/helper.py": "VALUE = 'compiled'\nKINDS = {'a', 'b', 'c', 'd'}\n",
    "app/unused.py": "X = 1\n",
    "app/broken.py": "print 'python 2 only'\n",
    "solo.py": "def boom():\n    raise ValueError('from solo')\n",
    "app-1.0.dist-info/top_level.txt": "app\n",
    "solo-2.0.dist-info/RECORD": "solo.py,sha256=x,10\nsolo-2.0.dist-info/RECORD,,\n",
    "bin/script.py": "import sys\n",
}


@pytest.fixture(scope="module")
def py39() -> Path:
    try:
        return find_interpreter(Target("python3.9"))
    except InterpreterNotFoundError:
        pytest.skip("python3.9 is not installed")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "python"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(py: Path, root: Path, code: str) -> str:
    proc = subprocess.run(
        [str(py), "-I", "-B", "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n{code}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() + proc.stderr.strip()


def pycs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.pyc"))}


def test_all_writes_unchecked_hash_pycs_that_are_used(py39: Path, tree: Path) -> None:
    result = compile_tree(tree, py39, "all")
    assert result.compiled_files == 4
    assert [f for f, _ in result.failed] == ["app/broken.py"]
    made = pycs(tree)
    assert set(made) == {
        "app/__pycache__/__init__.cpython-39.pyc",
        "app/__pycache__/helper.cpython-39.pyc",
        "app/__pycache__/unused.cpython-39.pyc",
        "__pycache__/solo.cpython-39.pyc",
    }
    assert result.added_bytes == sum(len(b) for b in made.values())
    for data in made.values():
        assert int.from_bytes(data[4:8], "little") == 1  # hash-based, unchecked
    # unchecked-hash: the interpreter trusts the pyc without looking at the source
    (tree / "app/helper.py").write_text("VALUE = 'source'\nKINDS = set()\n")
    assert run(py39, tree, "import app; print(app.VALUE)") == "compiled"


def test_checked_hash_notices_a_changed_source(py39: Path, tree: Path) -> None:
    compile_tree(tree, py39, "all", invalidation="checked-hash")
    flags = (tree / "app/__pycache__/helper.cpython-39.pyc").read_bytes()[4:8]
    assert int.from_bytes(flags, "little") == 3
    (tree / "app/helper.py").write_text("VALUE = 'source'\n")
    assert run(py39, tree, "import app; print(app.VALUE)") == "source"


def test_same_tree_gives_the_same_bytes(py39: Path, tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "python"
    shutil.copytree(tree, other)
    compile_tree(tree, py39, "all", workers=2)
    compile_tree(other, py39, "all", workers=1)
    assert pycs(tree) == pycs(other)


def test_imported_compiles_only_what_the_entry_modules_load(py39: Path, tree: Path) -> None:
    result = compile_tree(tree, py39, "imported", entry_modules=["app"])
    assert result.compiled_files == 2
    assert set(pycs(tree)) == {
        "app/__pycache__/__init__.cpython-39.pyc",
        "app/__pycache__/helper.cpython-39.pyc",
    }


def test_imported_runs_scripts_and_uses_the_search_path(
    py39: Path, tree: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "baselib.py").write_text("NAME = 'base'\n")
    script = tmp_path / "smoke.py"
    script.write_text("import baselib, app.unused\nassert baselib.NAME == 'base'\n")
    result = compile_tree(tree, py39, "imported", search_path=[base], scripts=[script])
    assert result.compiled_files == 3  # app, app.helper, app.unused; nothing outside the tree
    assert not list(base.rglob("*.pyc"))


def test_imported_fails_loudly_when_an_entry_module_does_not_import(py39: Path, tree: Path) -> None:
    with pytest.raises(BuildError, match=r"(?s)importing 'missing_mod'.*ModuleNotFoundError"):
        compile_tree(tree, py39, "imported", entry_modules=["app", "missing_mod"])
    assert not list(tree.rglob("*.pyc"))  # the probe itself writes no bytecode


def test_imported_needs_entry_modules(py39: Path, tree: Path) -> None:
    with pytest.raises(BuildError, match="needs entry modules"):
        compile_tree(tree, py39, "imported")


def test_sourceless_replaces_sources_and_keeps_uncompilable_ones(py39: Path, tree: Path) -> None:
    result = compile_tree(tree, py39, "sourceless", dest_dir="/opt/python")
    assert result.removed_sources == 4
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.py")) == [
        "app/broken.py",
        "bin/script.py",
    ]
    assert (tree / "app/__init__.pyc").is_file()
    assert not list(tree.rglob("__pycache__"))
    out = run(py39, tree, "import app, solo; print(app.VALUE); solo.boom()")
    assert out.startswith("compiled")
    assert 'File "/opt/python/solo.py", line 2, in boom' in out  # the runtime path, no build dir


def test_none_does_nothing(py39: Path, tree: Path) -> None:
    result = compile_tree(tree, py39, "none")
    assert (result.compiled_files, result.added_bytes) == (0, 0)
    assert not list(tree.rglob("*.pyc"))


def test_unknown_mode_is_refused(py39: Path, tree: Path) -> None:
    with pytest.raises(BuildError, match="choose one of all, imported, none, sourceless"):
        compile_tree(tree, py39, "fast")
