"""Bytecode with a fake target interpreter: what is compiled, in which mode, what is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.build.bytecode import compile_tree, python_sources, top_level_modules
from layerkit.errors import BuildError
from tests.unit.build.fakes import FakePython, fail_on

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


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "python"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def pycs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.pyc"))}


def test_python_sources_skip_bin_and_metadata(tree: Path) -> None:
    assert python_sources(tree) == (
        "app/__init__.py",
        "app/broken.py",
        "app/helper.py",
        "app/unused.py",
        "solo.py",
    )


def test_top_level_modules_from_top_level_txt_and_record(tree: Path) -> None:
    assert top_level_modules(tree) == ("app", "solo")
    (tree / "solo.py").unlink()
    assert top_level_modules(tree) == ("app",)


def test_all_compiles_every_source_hash_based_and_lists_failures(tree: Path) -> None:
    python = FakePython()
    result = compile_tree(tree, python, "all", workers=3)
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
    assert {int.from_bytes(d[4:8], "little") for d in made.values()} == {1}  # unchecked-hash
    assert (result.mode, result.invalidation) == ("all", "unchecked-hash")


def test_checked_hash_is_passed_to_the_compiler(tree: Path) -> None:
    compile_tree(tree, FakePython(), "all", invalidation="checked-hash")
    flags = (tree / "app/__pycache__/helper.cpython-39.pyc").read_bytes()[4:8]
    assert int.from_bytes(flags, "little") == 3


def test_imported_compiles_only_what_the_entry_modules_load(tree: Path) -> None:
    result = compile_tree(tree, FakePython(), "imported", entry_modules=["app"])
    assert result.compiled_files == 2
    assert set(pycs(tree)) == {
        "app/__pycache__/__init__.cpython-39.pyc",
        "app/__pycache__/helper.cpython-39.pyc",
    }


def test_imported_runs_scripts_and_compiles_nothing_outside_the_tree(
    tree: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "baselib.py").write_text("NAME = 'base'\n")
    script = tmp_path / "smoke.py"
    script.write_text("import baselib, app.unused\nassert baselib.NAME == 'base'\n")
    result = compile_tree(tree, FakePython(), "imported", search_path=[base], scripts=[script])
    assert result.compiled_files == 3  # app, app.helper, app.unused; nothing outside the tree
    assert not list(base.rglob("*.pyc"))


def test_imported_fails_loudly_when_an_entry_module_does_not_import(tree: Path) -> None:
    with pytest.raises(BuildError, match=r"(?s)importing 'missing_mod'.*ModuleNotFoundError"):
        compile_tree(tree, FakePython(), "imported", entry_modules=["app", "missing_mod"])
    assert not list(tree.rglob("*.pyc"))


def _plugin_tree(tree: Path, requires: str) -> None:
    """A distribution shipping a top-level plugin module that imports an extra's package."""
    (tree / "plugin_mod.py").write_text("import fancy_extra\n")
    info = tree / "plugkit-1.0.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text("plugin_mod\n")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: plugkit\n{requires}")


def test_an_optional_module_is_left_out_with_its_distribution_named(tree: Path) -> None:
    _plugin_tree(tree, 'Requires-Dist: fancy-extra; extra == "fancy"\n')
    result = compile_tree(tree, FakePython(), "imported", entry_modules=["app", "plugin_mod"])
    assert result.compiled_files == 2  # app and app.helper; the plugin is left out
    (left_out,) = result.optional
    assert (left_out.module, left_out.distribution, left_out.needs) == (
        "plugin_mod",
        "plugkit",
        "fancy_extra",
    )
    assert "plugin_mod (from plugkit) is left out" in left_out.note()
    assert "fancy_extra" in left_out.note()


def test_a_module_missing_a_required_dependency_still_fails(tree: Path) -> None:
    _plugin_tree(tree, "Requires-Dist: fancy-extra>=1\n")  # required: the layer is broken
    with pytest.raises(BuildError, match=r"importing 'plugin_mod' from .* failed") as caught:
        compile_tree(tree, FakePython(), "imported", entry_modules=["app", "plugin_mod"])
    assert "Traceback" not in str(caught.value)  # the exception line, never the traceback
    assert "ModuleNotFoundError: No module named 'fancy_extra'" in str(caught.value)


def test_a_module_importing_an_undeclared_name_still_fails(tree: Path) -> None:
    _plugin_tree(tree, "")  # nothing says fancy_extra is optional
    with pytest.raises(BuildError, match=r"importing 'plugin_mod' from .* failed"):
        compile_tree(tree, FakePython(), "imported", entry_modules=["app", "plugin_mod"])


def test_a_submodule_removed_from_a_present_package_still_fails(tree: Path) -> None:
    (tree / "app" / "__init__.py").write_text("import app.gone\n")
    with pytest.raises(BuildError, match=r"importing 'app' from .* failed"):
        compile_tree(tree, FakePython(), "imported", entry_modules=["app"])


def test_imported_needs_entry_modules(tree: Path) -> None:
    with pytest.raises(BuildError, match="needs entry modules"):
        compile_tree(tree, FakePython(), "imported")


def test_sourceless_replaces_the_compiled_sources(tree: Path) -> None:
    result = compile_tree(tree, FakePython(), "sourceless", dest_dir="/opt/python")
    assert result.removed_sources == 4
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.py")) == [
        "app/broken.py",
        "bin/script.py",
    ]
    assert (tree / "app/__init__.pyc").is_file()
    assert not list(tree.rglob("__pycache__"))


def test_none_does_nothing_and_starts_nothing(tree: Path) -> None:
    python = FakePython(fail=fail_on("", AssertionError("the compiler was called")))
    result = compile_tree(tree, python, "none")
    assert (result.compiled_files, result.added_bytes) == (0, 0)
    assert not list(tree.rglob("*.pyc"))


def test_unknown_mode_is_refused(tree: Path) -> None:
    with pytest.raises(BuildError, match="choose one of all, imported, none, sourceless"):
        compile_tree(tree, FakePython(), "fast")


def test_wheel_data_folders_are_not_modules(tree: Path) -> None:
    (tree / "share/man/man1").mkdir(parents=True)
    (tree / "share/man/man1/ttx.1").write_text(".TH TTX 1\n")
    (tree / "nspkg/sub").mkdir(parents=True)
    (tree / "nspkg/sub/mod.py").write_text("X = 1\n")  # a namespace package: importable
    record = "share/man/man1/ttx.1,,\nnspkg/sub/mod.py,,\nsolo.py,,\n"
    (tree / "solo-2.0.dist-info/RECORD").write_text(record)
    assert top_level_modules(tree) == ("app", "nspkg", "solo")


@pytest.mark.parametrize("mode", ["all", "sourceless"])
def test_the_step_cache_compiles_each_module_once_with_the_same_bytes(
    tmp_path: Path, mode: str
) -> None:
    from layerkit.build.memo import StepCache
    from tests.unit.build.fakes import CountingMemo

    memo = CountingMemo(StepCache(tmp_path / "steps"))

    def fresh(name: str) -> Path:
        root = tmp_path / name / "python"
        for rel, text in FILES.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return root

    plain_root, first_root, second_root = fresh("plain"), fresh("first"), fresh("second")
    sources = len(python_sources(plain_root))  # 5; app/broken.py never compiles
    plain = compile_tree(plain_root, FakePython(), mode)
    first = compile_tree(first_root, FakePython(), mode, memo=memo)
    python = FakePython()
    second = compile_tree(second_root, python, mode, memo=memo)
    assert python.compiled == [str(second_root)]  # only app/broken.py, which never compiles
    assert memo.hits == first.compiled_files == second.compiled_files == plain.compiled_files
    assert pycs(plain_root) == pycs(first_root) == pycs(second_root)
    assert second.failed == plain.failed
    assert second.removed_sources == plain.removed_sources

    edited = fresh("edited")
    (edited / "app/helper.py").write_text("VALUE = 'edited'\n")
    compile_tree(edited, FakePython(), mode, memo=memo, dest_dir="/var/task")  # other path too
    # first: every module; second: app/broken.py only; edited under /var/task: every key new
    assert memo.misses == sources + 1 + sources


def test_a_module_moved_elsewhere_is_compiled_again(tree: Path, tmp_path: Path) -> None:
    from layerkit.build.memo import StepCache
    from tests.unit.build.fakes import CountingMemo

    memo = CountingMemo(StepCache(tmp_path / "steps"))
    compile_tree(tree, FakePython(), "all", memo=memo, dest_dir="/opt/python")
    hits = memo.hits
    compile_tree(tree, FakePython(), "all", memo=memo, dest_dir="/var/task")
    assert memo.hits == hits  # the code objects name another file: no hit
