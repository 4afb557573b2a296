from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from layerkit.check.elf import elf_finding
from layerkit.check.findings import CheckReport
from layerkit.check.layer import (
    LayerValidation,
    format_validation,
    modules_from_listing,
    modules_in_zip,
    validate_layer,
)
from layerkit.errors import BuildError
from layerkit.project.spec import Project, load_project
from layerkit.runtime.target import Target, find_interpreter

ROOT = Path(__file__).resolve().parents[3]
PY39 = Target("python3.9")


@pytest.fixture(scope="module")
def interpreter() -> Path:
    return find_interpreter(PY39, cwd=ROOT)


def make_zip(path: Path, files: Mapping[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def dist(name: str, version: str, files: Mapping[str, str], top_level: str | None = None) -> dict:
    """Files of an installed distribution: its files plus a dist-info with RECORD."""
    info = f"python/{name}-{version}.dist-info"
    record = "".join(f"{f.removeprefix('python/')},sha256=x,1\n" for f in files)
    record += f"{name}-{version}.dist-info/RECORD,,\n../../bin/{name}-script,sha256=x,1\n"
    out = {**files, f"{info}/RECORD": record, f"{info}/METADATA": f"Name: {name}\n"}
    if top_level is not None:
        out[f"{info}/top_level.txt"] = top_level
    return out


def make_project(root: Path, smoke: Mapping[str, str]) -> Project:
    """A project with layer `base` and layer `top` (requires base), smoke tests as given."""
    for name, requires in (("base", "[]"), ("top", '["base"]')):
        folder = root / "layers" / name
        folder.mkdir(parents=True)
        line = ""
        if name in smoke:
            (folder / "smoke_test.py").write_text(smoke[name])
            line = 'smoke = "smoke_test.py"\n'
        (folder / "layer.toml").write_text(
            f'requires = {requires}\nbudget = "10 MB"\nruntimes = ["python3.9"]\n{line}'
        )
    (root / "template.yaml").write_text("Resources: {}\n")
    return load_project(root)


def test_modules_come_from_record_and_top_level_and_must_exist() -> None:
    files = {
        "python/pkg/__init__.py": "",
        "python/pkg/sub.py": "",
        "python/single.py": "",
        "python/_ext.cpython-39-x86_64-linux-gnu.so": "",
        "python/pkg.libs/libfoo-1234.so.1": "",
    }
    names = [*files, "python/x-1.0.dist-info/RECORD", "python/y-1.0.dist-info/top_level.txt"]
    texts = {
        "python/x-1.0.dist-info/RECORD": (
            "pkg/__init__.py,,\npkg/sub.py,,\nsingle.py,,\n"
            "_ext.cpython-39-x86_64-linux-gnu.so,,\npkg.libs/libfoo-1234.so.1,,\n"
            "x-1.0.dist-info/RECORD,,\n../../bin/x,,\npruned/__init__.py,,\n"
        ),
        # top_level.txt names a module a slimming pass removed: not imported
        "python/y-1.0.dist-info/top_level.txt": "single\nremoved_by_slim\n",
    }
    assert modules_from_listing(names, texts) == ("_ext", "pkg", "single")


def test_modules_in_site_packages_layout() -> None:
    site = "python/lib/python3.9/site-packages"
    names = [f"{site}/mod/__init__.py", f"{site}/m-1.dist-info/RECORD", "python/other.py"]
    texts = {f"{site}/m-1.dist-info/RECORD": "mod/__init__.py,,\nother.py,,\n"}
    # other.py is not under this dist-info's site root
    assert modules_from_listing(names, texts) == ("mod",)


def test_validate_layer_reports_imports_smoke_and_required_layers(
    tmp_path: Path, interpreter: Path
) -> None:
    project = make_project(
        tmp_path / "project",
        {"top": "import basemod, topmod\nassert topmod.VALUE == 42, topmod.VALUE\nprint('fine')\n"},
    )
    base = make_zip(tmp_path / "base.zip", dist("basemod", "1.0", {"python/basemod.py": "X = 41"}))
    top_files = {
        "python/topmod/__init__.py": "import basemod\nVALUE = basemod.X + 1\n",
        "python/broken/__init__.py": "import missing_dependency\n",
    }
    top = make_zip(tmp_path / "top.zip", dist("top", "2.0", top_files, "topmod\nbroken\n"))
    result = validate_layer(
        project, "top", PY39, {"base": base, "top": top}, tmp_path / "work", interpreter=interpreter
    )
    # only the layer's own distributions are imported; the required layer is on the path
    assert result.imported == ("topmod",)
    assert [m for m, _ in result.import_failures] == ["broken"]
    assert "No module named 'missing_dependency'" in result.import_failures[0][1]
    assert result.smoke is None
    assert result.smoke_test == "smoke_test.py"
    assert not result.ok
    text = format_validation(result)
    assert text.startswith("layer top on python3.9-x86_64: FAILED")
    assert "import broken FAILED:" in text
    assert "smoke test smoke_test.py: passed" in text


def test_an_optional_module_is_a_note_and_verbose_shows_the_smoke_output(
    tmp_path: Path, interpreter: Path
) -> None:
    project = make_project(tmp_path / "project", {"base": "print('proved: 41 + 1 == 42')\n"})
    files = dist(
        "basemod",
        "1.0",
        {"python/basemod.py": "X = 41", "python/basemod_plugin.py": "import fancy_extra\n"},
        "basemod\nbasemod_plugin\n",
    )
    info = "python/basemod-1.0.dist-info/METADATA"
    files[info] = "Name: basemod\nRequires-Dist: fancy-extra; extra == 'fancy'\n"
    base = make_zip(tmp_path / "base.zip", files)
    result = validate_layer(
        project, "base", PY39, {"base": base}, tmp_path / "work", interpreter=interpreter
    )
    assert result.ok
    assert result.imported == ("basemod",)
    assert [o.module for o in result.optional] == ["basemod_plugin"]
    quiet, verbose = format_validation(result), format_validation(result, verbose=True)
    assert "note: basemod_plugin (from basemod) is left out" in quiet
    assert "proved: 41 + 1 == 42" not in quiet
    assert "smoke test smoke_test.py: passed\n    proved: 41 + 1 == 42" in verbose


def test_failing_smoke_test_is_returned_with_its_output(tmp_path: Path, interpreter: Path) -> None:
    project = make_project(
        tmp_path / "project", {"base": "print('working')\nraise SystemExit('wrong answer 41')\n"}
    )
    base = make_zip(tmp_path / "base.zip", dist("basemod", "1.0", {"python/basemod.py": ""}))
    result = validate_layer(
        project, "base", PY39, {"base": base}, tmp_path / "work", interpreter=interpreter
    )
    assert result.imported == ("basemod",)
    assert result.import_failures == ()
    assert result.smoke is not None
    assert "working" in result.smoke
    assert "wrong answer 41" in result.smoke
    assert not result.ok


def test_smoke_test_gets_the_kept_botocore_services(tmp_path: Path, interpreter: Path) -> None:
    project = make_project(
        tmp_path / "project",
        {"base": "import os\nassert os.environ['LAYERKIT_BOTOCORE_SERVICES'] == 's3,sts'\n"},
    )
    (project.root / "layers" / "base" / "layer.toml").write_text(
        'budget = "10 MB"\nruntimes = ["python3.9"]\nsmoke = "smoke_test.py"\n'
        '[slim]\nbotocore-services = ["s3", "sts"]\n'
    )
    project = load_project(project.root)
    base = make_zip(tmp_path / "base.zip", dist("basemod", "1.0", {"python/basemod.py": ""}))
    result = validate_layer(
        project, "base", PY39, {"base": base}, tmp_path / "work", interpreter=interpreter
    )
    assert result.ok, format_validation(result)


def test_elf_problems_of_the_layer_only(tmp_path: Path, interpreter: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build a test shared object")
    src = tmp_path / "memfd.c"
    src.write_text(
        '#define _GNU_SOURCE\n#include <sys/mman.h>\nint f(void) { return memfd_create("x", 0); }\n'
    )
    lib = tmp_path / "libmemfd.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    project = make_project(tmp_path / "project", {})
    base = make_zip(
        tmp_path / "base.zip",
        {
            **dist("basemod", "1.0", {"python/basemod.py": ""}),
            "python/base.libs/a.so": lib.read_bytes(),
        },
    )
    top = make_zip(
        tmp_path / "top.zip",
        {
            **dist("topmod", "1.0", {"python/topmod.py": ""}),
            "python/top.libs/b.so": lib.read_bytes(),
        },
    )
    result = validate_layer(
        project, "top", PY39, {"base": base, "top": top}, tmp_path / "work", interpreter=interpreter
    )
    assert [p.path for p in result.elf_problems] == ["python/top.libs/b.so"]
    assert (
        "needs GLIBC_2.27 but python3.9 (Amazon Linux 2) has 2.26" in result.elf_problems[0].message
    )
    assert result.elf_files == 1
    assert "python/top.libs/b.so: needs GLIBC_2.27" in format_validation(result)


def test_missing_required_zip_is_an_error(tmp_path: Path, interpreter: Path) -> None:
    project = make_project(tmp_path / "project", {})
    top = make_zip(tmp_path / "top.zip", dist("topmod", "1.0", {"python/topmod.py": ""}))
    with pytest.raises(BuildError, match="needs the zips of base"):
        validate_layer(project, "top", PY39, {"top": top}, tmp_path / "w", interpreter=interpreter)


def test_ok_and_format_of_a_clean_result() -> None:
    clean = LayerValidation("core", PY39, (), ("numpy", "pandas"), None, (), "smoke_test.py", 3)
    assert clean.ok
    assert format_validation(clean).splitlines() == [
        "layer core on python3.9-x86_64: OK",
        "  imports: 2 ok (numpy, pandas)",
        "  smoke test smoke_test.py: passed",
        "  ELF: 3 files checked, 0 problems",
    ]
    elf_only = LayerValidation(
        "core", PY39, (), ("numpy",), None, (elf_finding("a.so", "bad", "elf-glibc"),)
    )
    assert not elf_only.ok
    assert "smoke test: none" in format_validation(elf_only)
    assert "    a.so: bad" in format_validation(elf_only).splitlines()
    assert [f.subject for f in elf_only.report.errors] == ["a.so"]
    assert clean.report == CheckReport()
    broken = LayerValidation(
        "core", PY39, (("numpy", "Traceback: boom"),), (), "AssertionError", (), "smoke_test.py"
    )
    assert not broken.ok
    assert [(f.subject, f.code) for f in broken.report.errors] == [
        ("layers/core.zip", "layer-import"),
        ("layers/core.zip", "layer-smoke"),
    ]
    assert "import numpy fails on python3.9-x86_64" in broken.report.errors[0].message


def test_real_layer_zip_listing(tmp_path: Path) -> None:
    files = dist(
        "python_dateutil",
        "2.9.0",
        {"python/dateutil/__init__.py": "", "python/dateutil/zoneinfo/x.tar.gz": ""},
        "dateutil\n",
    )
    archive = make_zip(tmp_path / "l.zip", files)
    assert modules_in_zip(archive) == ("dateutil",)


def test_every_shared_object_is_loaded_and_a_failure_names_its_wheel(
    tmp_path: Path, interpreter: Path
) -> None:
    """A library no import reaches is loaded all the same (ctypes, the target interpreter)."""
    patchelf = shutil.which("patchelf")
    if shutil.which("gcc") is None or patchelf is None:
        pytest.skip("gcc and patchelf are needed to build the test shared objects")
    src = tmp_path / "plain.c"
    src.write_text("int f(int x) { return x + 1; }\n")
    good = tmp_path / "libgood.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(good), str(src)], check=True)
    bad = tmp_path / "libbad.so"
    shutil.copy2(good, bad)
    subprocess.run([patchelf, "--add-needed", "libnot-on-lambda.so.1", str(bad)], check=True)
    # a grafted library needing another by soname only (no RPATH), listed before it: it loads
    # once its dependency has (as on Lambda, where a module's RPATH loads both)
    dep_src = tmp_path / "zdep.c"
    dep_src.write_text("int g(int x) { return x * 2; }\n")
    dep = tmp_path / "libzdep.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libzdep.so", "-o", str(dep), str(dep_src)],
        check=True,
    )
    user_src = tmp_path / "user.c"
    user_src.write_text("int g(int);\nint h(int x) { return g(x) + 1; }\n")
    user = tmp_path / "libauser.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(user), str(user_src), f"-L{tmp_path}", "-lzdep"],
        check=True,
    )
    project = make_project(tmp_path / "project", {})
    files = {"python/lazymod/__init__.py": "", "python/lazymod/_lazy.so": bad.read_bytes()}
    base = make_zip(
        tmp_path / "base.zip",
        {
            **dist("lazymod", "3.1", files),  # type: ignore[arg-type]
            "python/lazymod.libs/libgood.so": good.read_bytes(),
            "python/lazymod.libs/libauser.so": user.read_bytes(),
            "python/lazymod.libs/libzdep.so": dep.read_bytes(),
        },
    )
    result = validate_layer(
        project, "base", PY39, {"base": base}, tmp_path / "work", interpreter=interpreter
    )
    assert result.imported == ("lazymod",)  # the import passes: _lazy is never imported
    assert result.loaded == 3
    assert [p.path for p in result.elf_problems] == ["python/lazymod/_lazy.so"]
    message = result.elf_problems[0].message
    assert "libnot-on-lambda.so.1" in message
    assert "lazymod 3.1 wheel" in message
    assert not result.ok
    assert "3 shared objects loaded, 1 problem" in format_validation(result)


def test_a_misaligned_shared_object_is_a_problem_without_running_it(
    tmp_path: Path, interpreter: Path
) -> None:
    from tests.unit.check.test_elf_load import extension_module, misalign

    module = tmp_path / "mod.so"
    shutil.copy2(extension_module(), module)
    misalign(module)
    project = make_project(tmp_path / "project", {})
    base = make_zip(
        tmp_path / "base.zip",
        dist("fastmod", "1.0", {"python/fastmod.so": module.read_bytes()}),  # type: ignore[dict-item]
    )
    result = validate_layer(
        project, "base", PY39, {"base": base}, tmp_path / "work", interpreter=interpreter
    )
    codes = {p.path: p.code for p in result.elf_problems}
    assert codes["python/fastmod.so"] == "elf-segments"
    assert "not page-aligned" in result.elf_problems[0].message
