"""The sandbox with real wheels from PyPI, installed by uv for python3.9 and zipped as layers."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from layerkit.build.uv import run_uv, target_args
from layerkit.check.elf import check_tree, scan_tree
from layerkit.check.layer import modules_in_zip
from layerkit.runtime.sandbox import invoke, prepare, run_code
from layerkit.runtime.target import Target, find_interpreter

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PY39 = Target("python3.9")


def install_layer(tmp: Path, name: str, *requirements: str) -> Path:
    """uv-install ``requirements`` for python3.9 into ``name/python`` and zip it."""
    tree = tmp / name
    proc = run_uv(
        ["pip", "install", "--no-deps", "--target", str(tree / "python"), *target_args(PY39),
         *requirements],
        cwd=tmp,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    archive = tmp / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _, filenames in os.walk(tree):
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if filename != ".lock" and "/bin/" not in path.as_posix():
                    zf.write(path, path.relative_to(tree).as_posix())
    return archive


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("layers")
    return {
        "six": install_layer(tmp, "six", "six==1.16.0"),
        "dateutil": install_layer(tmp, "dateutil", "python-dateutil==2.9.0.post0"),
        "newer_six": install_layer(tmp, "newer_six", "six==1.17.0"),
        "markupsafe": install_layer(tmp, "markupsafe", "markupsafe==2.1.5"),
    }


@pytest.fixture(scope="module")
def interpreter() -> Path:
    return find_interpreter(PY39, cwd=ROOT)


FUNCTION = """
import json
import dateutil
from dateutil import parser
import markupsafe._speedups

def handler(event, context):
    print("parsing", event["when"])
    when = parser.parse(event["when"])
    return {"iso": when.isoformat(), "dateutil": dateutil.__version__,
            "remaining_ok": context.get_remaining_time_in_millis() > 0}

def broken(event, context):
    return {"value": 1 / event["zero"]}
"""


@pytest.fixture
def sandbox(tmp_path: Path, layers: dict[str, Path], interpreter: Path):
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "app.py").write_text(FUNCTION)
    return prepare(
        tmp_path / "sb",
        [layers["six"], layers["dateutil"], layers["markupsafe"]],
        fn,
        interpreter,
        PY39,
    )


def test_handler_using_real_wheels(sandbox) -> None:
    result = invoke(sandbox, "app.handler", {"when": "2024-03-01 12:30"}, memory_mb=256)
    assert result.ok, result.response
    assert result.response == {
        "iso": "2024-03-01T12:30:00",
        "dateutil": "2.9.0.post0",
        "remaining_ok": True,
    }
    assert "parsing 2024-03-01 12:30" in result.logs
    line = result.report_line()
    assert line.startswith("REPORT RequestId: ")
    fields = dict(f.split(": ", 1) for f in line.removeprefix("REPORT ").split("\t"))
    assert list(fields) == [
        "RequestId", "Duration", "Billed Duration", "Memory Size", "Max Memory Used",
        "Init Duration",
    ]  # fmt: skip
    assert fields["Duration"].endswith(" ms")
    assert fields["Memory Size"] == "256 MB"
    assert fields["Max Memory Used"].endswith(" MB")
    assert float(fields["Init Duration"].removesuffix(" ms")) == pytest.approx(
        result.init_ms, abs=0.01
    )


def test_handler_exception_shape(sandbox) -> None:
    result = invoke(sandbox, "app.broken", {"zero": 0})
    assert not result.ok
    assert result.response["errorType"] == "ZeroDivisionError"
    assert result.response["errorMessage"] == "division by zero"
    assert isinstance(result.response["stackTrace"], list)
    assert any("in broken" in line for line in result.response["stackTrace"])


def test_later_layer_overwrites_earlier(
    tmp_path: Path, layers: dict[str, Path], interpreter: Path
) -> None:
    sandbox = prepare(
        tmp_path / "sb", [layers["six"], layers["newer_six"]], None, interpreter, PY39
    )
    proc = run_code(sandbox, "import six; print(six.__version__)")
    assert proc.stdout.strip() == "1.17.0"
    swapped = prepare(
        tmp_path / "sb2", [layers["newer_six"], layers["six"]], None, interpreter, PY39
    )
    assert run_code(swapped, "import six; print(six.__version__)").stdout.strip() == "1.16.0"


def test_host_packages_are_not_visible(sandbox) -> None:
    code = (
        "import importlib.util\n"
        "for name in ('pytest', 'layerkit', 'elftools', 'boto3', 'pip', 'six'):\n"
        "    print(name, importlib.util.find_spec(name) is not None)\n"
    )
    proc = run_code(sandbox, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == [
        "pytest False", "layerkit False", "elftools False", "boto3 False", "pip False",
        "six True",  # from the layer
    ]  # fmt: skip


def test_layer_zip_listing_and_elf_of_real_wheels(layers: dict[str, Path], sandbox) -> None:
    assert modules_in_zip(layers["markupsafe"]) == ("markupsafe",)
    assert modules_in_zip(layers["dateutil"]) == ("dateutil",)
    elfs = scan_tree(sandbox.opt)
    assert [e.path for e in elfs] == ["python/markupsafe/_speedups.cpython-39-x86_64-linux-gnu.so"]
    assert elfs[0].machine == "x86_64"
    assert elfs[0].max_glibc is not None
    assert elfs[0].max_glibc <= (2, 17)  # a manylinux2014 wheel
    assert check_tree(sandbox.opt, PY39) == ()


WRITER = """
import os, dateutil, markupsafe._speedups

def handler(event, context):
    target = os.path.join(os.path.dirname(dateutil.__file__), "planted.py")
    try:
        with open(target, "w") as fh:
            fh.write("x = 1")
    except OSError as exc:
        return {"error": type(exc).__name__, "speedups": markupsafe._speedups.__file__}
    return {"error": None}
"""


def test_real_layers_from_the_cache_are_shared_and_read_only(
    tmp_path: Path, layers: dict[str, Path], interpreter: Path
) -> None:
    cache = tmp_path / "cache"
    fn = tmp_path / "fn.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("app.py", WRITER)
    zips = [layers["six"], layers["dateutil"], layers["markupsafe"]]
    results, opts = [], []
    for run in range(2):
        sandbox = prepare(tmp_path / f"sb{run}", zips, fn, interpreter, PY39, cache=cache)
        opts.append(sandbox.opt)
        results.append(invoke(sandbox, "app.handler", {}, memory_mb=256))
    assert opts[0] == opts[1]  # the second run extracted nothing
    for result in results:
        assert result.ok, result.response
        assert result.response["error"] == "PermissionError"
        assert result.response["speedups"].startswith(str(opts[0]))  # the C extension loads
    assert not list(opts[0].rglob("planted.py"))
