from __future__ import annotations

import ast
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.check.findings import Severity
from layerkit.check.handler import (
    folder_package,
    handler_finding,
    handler_findings,
    module_level_names,
    split_handler,
    zip_package,
)
from layerkit.project.spec import load_project
from tests.conftest import REPO, TEMPLATE

ProjectFactory = Callable[..., Path]


def project_with(make_project: ProjectFactory, handler: str, files: dict[str, str]) -> Path:
    root = make_project(
        template=TEMPLATE.replace("Handler: app.handler", f"Handler: {handler}"),
        functions={"fn": files.pop("app.py", "def handler(event, context):\n    return 1\n")},
    )
    for rel, text in files.items():
        path = root / "functions" / "fn" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def findings(root: Path, **kwargs: object) -> list[str]:
    found = handler_findings(load_project(root), **kwargs)  # type: ignore[arg-type]
    assert all(f.severity is Severity.ERROR and f.path == "template.yaml" for f in found)
    assert all(f.subject == "functions/fn.zip" for f in found)
    return [str(f) for f in found]


def test_the_repository_handlers_resolve() -> None:
    assert handler_findings(load_project(REPO)) == ()


def test_a_misspelt_handler_names_the_template_function_handler_and_fix(
    make_project: ProjectFactory,
) -> None:
    code = "import json\n\ndef lambda_handler(event, context):\n    return 1\n"
    root = project_with(make_project, "app.lambda_handlr", {"app.py": code})
    (text,) = findings(root)
    assert text.startswith("template.yaml: function Fn has Handler 'app.lambda_handlr': ")
    assert "app.py defines no lambda_handlr at module level (app.py defines lambda_handler)" in text
    assert "set Handler: app.lambda_handler in template.yaml" in text
    assert "(checked in functions/fn/)" in text
    assert "\n" not in text


def test_a_missing_module_lists_the_modules_the_package_has(make_project: ProjectFactory) -> None:
    (text,) = findings(project_with(make_project, "main.handler", {}))
    assert "the package has no main.py (nor main/__init__.py), it has app.py" in text
    assert "point Handler in template.yaml at one of those modules" in text


def test_a_handler_without_a_dot_is_malformed(make_project: ProjectFactory) -> None:
    (text,) = findings(project_with(make_project, "handler", {}))
    assert "finds no dot" in text
    assert "Handler: app.lambda_handler" in text


def test_no_close_name_says_to_define_it(make_project: ProjectFactory) -> None:
    (text,) = findings(project_with(make_project, "app.entry", {}))
    assert "define entry(event, context) at module level in app.py" in text


@pytest.mark.parametrize(
    "code",
    [
        "def handler(event, context): ...",
        "async def handler(event, context): ...",
        "def make():\n    return print\nhandler = make()",
        "handler: object = print",
        "from functools import partial as handler",
        "import json as handler",
        "from os.path import join, basename as handler",
        "try:\n    from fast import handler\nexcept ImportError:\n    def handler(e, c): ...",
        "import sys\nif sys.version_info >= (3, 9):\n    def handler(e, c): ...",
        "class handler:\n    def __init__(self, event, context): ...",
        "from helpers import *",  # cannot be read statically: taken as defined
    ],
)
def test_every_module_level_binding_counts(make_project: ProjectFactory, code: str) -> None:
    assert findings(project_with(make_project, "app.handler", {"app.py": code + "\n"})) == []


@pytest.mark.parametrize(
    "code",
    [
        "def main():\n    def handler(e, c): ...",
        "class App:\n    def handler(self, e, c): ...",
        "def other(event, context): ...\n# def handler(event, context):",
        "handler_x = 1",
    ],
)
def test_a_name_bound_only_inside_a_def_or_class_does_not(
    make_project: ProjectFactory, code: str
) -> None:
    (text,) = findings(project_with(make_project, "app.handler", {"app.py": code + "\n"}))
    assert "app.py defines no handler at module level" in text


def test_handlers_in_packages_resolve_in_both_spellings(make_project: ProjectFactory) -> None:
    files = {"pkg/__init__.py": "", "pkg/mod.py": "def run(event, context): ...\n"}
    for handler in ("pkg/mod.run", "pkg.mod.run", "pkg.run"):
        found = findings(project_with(make_project, handler, dict(files)))
        if handler == "pkg.run":
            assert "pkg/__init__.py defines no run at module level" in found[0]
        else:
            assert found == []


def test_a_syntax_error_of_the_runtime_is_named_with_its_line(
    make_project: ProjectFactory,
) -> None:
    code = "import json\n\ndef handler(event, context):\n    match event:\n        case _: pass\n"
    (text,) = findings(project_with(make_project, "app.handler", {"app.py": code}))
    assert (
        "app.py:5 does not parse (Pattern matching is only supported in Python 3.10" in text
    )  # `match` is not Python 3.9 (the template's)


def test_the_built_zip_is_checked_instead_of_the_folder(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    root = project_with(make_project, "app.handler", {})
    built = tmp_path / "fn.zip"
    with zipfile.ZipFile(built, "w") as zf:
        zf.writestr("app.py", "def lambda_handler(event, context): ...\n")
        zf.writestr("__pycache__/app.cpython-39.pyc", b"\x00")
    (text,) = findings(root, built_zips={"fn": built})
    assert f"(checked in {built})" in text
    assert "set Handler: app.lambda_handler" in text
    assert findings(root, built_zips={"fn": tmp_path / "missing.zip"}) == []  # the folder


def test_a_module_shipped_as_bytecode_or_extension_only_is_present(tmp_path: Path) -> None:
    built = tmp_path / "fn.zip"
    with zipfile.ZipFile(built, "w") as zf:
        zf.writestr("app.cpython-39-x86_64-linux-gnu.so", b"\x7fELF")
        zf.writestr("legacy.pyc", b"\x00")
    package = zip_package(built, "fn.zip")
    fn = load_project(REPO).functions[0]
    for handler in ("app.handler", "legacy.handler"):
        assert handler_finding(_with_handler(fn, handler), "s", package) is None
    assert handler_finding(_with_handler(fn, "other.handler"), "s", package) is not None


def _with_handler(fn, handler):  # type: ignore[no-untyped-def]
    import dataclasses

    return dataclasses.replace(fn, handler=handler)


def test_pure_helpers() -> None:
    assert split_handler("a/b.c") == ("a.b", "c")
    assert split_handler("app.") is None
    assert split_handler(".handler") is None
    assert module_level_names(ast.parse("x, (y, z) = 1, (2, 3)\nw += 1\n")) == {"x", "y", "z", "w"}
    assert module_level_names(ast.parse("from a import *\n")) is None


def test_the_folder_is_read_as_its_package_would_be(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context): ...\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "old.cpython-311.pyc").write_bytes(b"\x00")
    (tmp_path / "old.pyc").write_bytes(b"\x00")  # host bytecode never goes into a package
    package = folder_package(tmp_path, "functions/fn/")
    assert set(package.files) == {"app.py"}
    assert package.read("app.py").startswith("def handler")
