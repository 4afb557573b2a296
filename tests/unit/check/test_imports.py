from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from layerkit.check.findings import Severity
from layerkit.check.imports import (
    RUNTIME_BUILTIN,
    check_function_imports,
    module_imports,
    package_modules,
    provider_maps,
    raise_for_problems,
    read_sources,
    stdlib_modules,
)
from layerkit.errors import CheckError
from layerkit.runtime.target import Target, find_interpreter

STDLIB = frozenset({"json", "logging", "os", "typing", "__future__"})


def imports(source: str) -> tuple[tuple[str, int], ...]:
    return module_imports(textwrap.dedent(source), "app.py")


def test_top_level_names_and_lines_of_plain_and_from_imports() -> None:
    found = imports(
        """\
        import os, json
        import sklearn.linear_model as lm
        from pandas.api import types
        def handler():
            import joblib
        """
    )
    assert found == (("os", 1), ("json", 1), ("sklearn", 2), ("pandas", 3), ("joblib", 5))


def test_relative_future_and_type_checking_imports_are_not_checked() -> None:
    found = imports(
        """\
        from __future__ import annotations
        from . import helpers
        from .model import load
        import typing
        if typing.TYPE_CHECKING:
            import mypy_boto3_s3
        if TYPE_CHECKING:
            import pandas
        else:
            import numpy
        """
    )
    assert found == (("typing", 4), ("numpy", 10))


def test_imports_guarded_by_import_error_are_optional_but_the_fallback_is_not() -> None:
    found = imports(
        """\
        try:
            import ujson as json
        except ImportError:
            import json
        try:
            import orjson
        except (ValueError, ModuleNotFoundError):
            orjson = None
        try:
            import pandas
        except ValueError:
            pass
        """
    )
    assert found == (("json", 4), ("pandas", 10))


def test_syntax_the_target_cannot_parse_is_a_check_error() -> None:
    source = "match x:\n    case 1:\n        pass\n"
    assert module_imports(source, "app.py") == ()
    with pytest.raises(
        CheckError, match=r"app.py:\d+: invalid syntax for Python 3.9: Pattern matching"
    ):
        module_imports(source, "app.py", feature_version=(3, 9))


def test_package_modules_are_top_level_files_and_packages() -> None:
    files = ["app.py", "helpers/__init__.py", "helpers/io.py", "schema.json", "model/model.joblib"]
    assert package_modules(files) == {"app", "helpers"}


def check(source: str, **kwargs: object) -> tuple[str, ...]:
    provided, elsewhere = provider_maps(
        ["core-data-science", "aws-utilities"],
        {
            "core-data-science": ["pandas", "numpy", "dateutil"],
            "ml-libraries": ["sklearn", "joblib"],
            "aws-utilities": ["boto3", "botocore", "s3transfer"],
        },
        requirement_modules=["tabulate"],
    )
    problems = check_function_imports(
        {"app.py": textwrap.dedent(source), "helpers.py": "import json\n", "notes.txt": "import x"},
        own_modules={"app", "helpers"},
        provided=provided,
        available_elsewhere=elsewhere,
        stdlib=STDLIB,
        **kwargs,  # type: ignore[arg-type]
    )
    return tuple(str(p) for p in problems)


def test_every_source_of_modules_resolves() -> None:
    source = """\
        import json, helpers
        import pandas, numpy, dateutil.parser
        import boto3, tabulate
        """
    assert check(source) == ()


def test_a_module_of_an_unattached_layer_names_that_layer() -> None:
    (problem,) = check("import os\nfrom sklearn.linear_model import LogisticRegression\n")
    assert problem.startswith("app.py:2: `sklearn` is imported")
    assert "the layer ml-libraries provides it" in problem
    assert "template.yaml" in problem


def test_a_module_nobody_provides_says_where_to_add_it() -> None:
    (problem,) = check("\n\nimport requests\n")
    assert problem.startswith("app.py:3: `requests`")
    assert "requirements.txt" in problem


def test_the_runtime_boto3_counts_only_when_allowed() -> None:
    provided, elsewhere = provider_maps([], {"aws-utilities": ["boto3"]})
    args = {"own_modules": set(), "provided": provided, "stdlib": STDLIB}
    files = {"app.py": "import boto3\n"}
    assert check_function_imports(files, available_elsewhere=elsewhere, **args) == ()  # type: ignore[arg-type]
    (problem,) = check_function_imports(
        files,
        available_elsewhere=elsewhere,
        runtime_builtin=frozenset(),
        **args,  # type: ignore[arg-type]
    )
    assert (problem.path, problem.line) == ("app.py", 1)
    assert problem.message.startswith("`boto3` is imported")
    assert (problem.severity, problem.code) == (Severity.ERROR, "import-unresolved")
    assert "boto3" in RUNTIME_BUILTIN


def test_raise_for_problems_lists_every_file_and_line() -> None:
    problems = check_function_imports({"app.py": "import a\nimport b\n"}, set(), {}, {}, STDLIB)
    with pytest.raises(CheckError) as caught:
        raise_for_problems("predictions", problems)
    assert "functions/predictions/app.py:1" in str(caught.value)
    assert "functions/predictions/app.py:2" in str(caught.value)
    raise_for_problems("predictions", ())


def test_read_sources_reads_only_python_files(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\n")
    (tmp_path / "schema.json").write_text("{}")
    sources = read_sources(tmp_path, [Path("app.py"), Path("schema.json")])
    assert sources == {"app.py": "import os\n"}


def test_stdlib_of_python39_comes_from_the_interpreter() -> None:
    interpreter = find_interpreter(Target("python3.9"))
    names = stdlib_modules(interpreter)
    assert {"json", "asyncio", "_json", "sys", "math", "sqlite3", "zoneinfo"} <= names
    assert "tomllib" not in names  # new in 3.11: not the target's stdlib
    assert names.isdisjoint({"pandas", "pip", "setuptools", "site-packages"})


def test_the_repository_functions_resolve_against_their_layers() -> None:
    repo = Path(__file__).resolve().parents[3]
    interpreter = find_interpreter(Target("python3.9"))
    layers = {
        "core-data-science": ["pandas", "numpy", "dateutil", "pytz", "tzdata", "six"],
        "ml-libraries": ["sklearn", "joblib", "scipy", "threadpoolctl"],
        "aws-utilities": ["boto3", "botocore", "s3transfer", "jmespath", "urllib3"],
    }
    attached = {
        "data_validation": ["core-data-science", "aws-utilities"],
        "feature_engineering": ["core-data-science", "ml-libraries", "aws-utilities"],
        "predictions": ["core-data-science", "ml-libraries", "aws-utilities"],
    }
    for name, layer_names in attached.items():
        fn_dir = repo / "functions" / name
        files = [Path("app.py")]
        provided, elsewhere = provider_maps(layer_names, layers)
        problems = check_function_imports(
            read_sources(fn_dir, files),
            package_modules(files),
            provided,
            elsewhere,
            stdlib_modules(interpreter),
            feature_version=(3, 9),
        )
        assert problems == (), name
