from __future__ import annotations

from pathlib import Path

from layerkit.check.imports import dotted_imports
from layerkit.optimize.trace import LayerFiles, Subject, owners, parse_importtime, parse_trace

SUBJECT = Subject("function", "fn", ("base", "top"), handler="app.handler")
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      5300 |      81000 | pandas
some handler output on stderr
"""


def test_importtime_lines_are_parsed_and_other_lines_ignored() -> None:
    found = parse_importtime(IMPORTTIME)
    assert [(t.module, t.self_us, t.cumulative_us) for t in found] == [
        ("_io", 120, 120),
        ("pandas", 5300, 81000),
    ]


def test_a_later_layer_owns_a_file_both_layers_carry() -> None:
    base = LayerFiles("base", {"python/six.py": 10, "python/a/__init__.py": 1})
    top = LayerFiles("top", {"python/six.py": 10})
    assert owners([base, top]) == {"python/six.py": "top", "python/a/__init__.py": "base"}


def test_files_are_attributed_to_their_layer_and_cold_start_is_what_init_loaded() -> None:
    owner = {
        "python/a/__init__.py": "base",
        "python/a/__pycache__/__init__.cpython-39.pyc": "base",
        "python/a/data.csv": "base",
        "python/b/_ext.so": "top",
        "python/b/__init__.py": "top",
    }
    opt = "/sb/opt"
    raw = {
        "modules": {
            "a": [
                "/sb/opt/python/a/__init__.py",
                "/sb/opt/python/a/__pycache__/__init__.cpython-39.pyc",
            ],
            "b": ["/sb/opt/python/b/__init__.py", None],
            "json": ["/usr/lib/python3.9/json/__init__.py", None],
            "app": ["/sb/task/app.py", None],
        },
        "init_modules": ["a", "json", "app"],
        "opened": ["/sb/opt/python/a/data.csv", "/etc/hosts"],
        "mapped": ["/sb/opt/python/b/_ext.so", "/usr/lib/libc.so.6"],
        "missed": ["scipy.signal"],
        "outcomes": [{"event": "basic.json", "ok": True, "response": {"statusCode": 200}}],
        "init_ms": 12.5,
        "failure": None,
    }
    trace = parse_trace(SUBJECT, raw, IMPORTTIME, opt, owner)
    assert trace.loaded == {
        "base": frozenset(
            {
                "python/a/__init__.py",
                "python/a/__pycache__/__init__.cpython-39.pyc",
                "python/a/data.csv",
            }
        ),
        "top": frozenset({"python/b/__init__.py", "python/b/_ext.so"}),
    }
    assert trace.cold_start == {
        "base": frozenset({"python/a/__init__.py", "python/a/__pycache__/__init__.cpython-39.pyc"})
    }
    assert trace.missed == ("scipy.signal",)
    assert trace.ok
    assert trace.outcomes[0].response == {"statusCode": 200}


def test_a_failing_event_or_import_is_a_problem_naming_the_subject() -> None:
    raw = {
        "outcomes": [
            {
                "event": "basic.json",
                "ok": False,
                "response": {"errorType": "KeyError", "errorMessage": "'x'"},
            }
        ],
        "failure": None,
    }
    trace = parse_trace(SUBJECT, raw, "", "/sb/opt", {})
    assert not trace.ok
    assert trace.problems() == ("function fn, event basic.json: KeyError: 'x'",)
    broken = parse_trace(
        SUBJECT,
        {
            "failure": {
                "errorType": "ModuleNotFoundError",
                "errorMessage": "No module named 'scipy.io'",
            }
        },
        "",
        "/sb/opt",
        {},
    )
    assert broken.problems() == ("function fn: ModuleNotFoundError: No module named 'scipy.io'",)


def test_dotted_imports_name_submodules_and_from_imports() -> None:
    source = (
        "import os.path\nfrom sklearn.compose import ColumnTransformer\n"
        "from . import local\ntry:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
    )
    names = [n for n, _ in dotted_imports(source, "app.py", (3, 9))]
    assert names == ["os.path", "sklearn.compose", "sklearn.compose.ColumnTransformer"]


def test_layer_files_read_a_zip(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "l.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("python/a/__init__.py", "x = 1\n")
        zf.writestr("python/a/", "")
    assert LayerFiles.read("l", archive).files == {"python/a/__init__.py": 6}
