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
        # a new file in a read-only mount: EROFS (OSError), as on Lambda; PermissionError
        # where the host allows no mount namespace (permission bits only)
        assert result.response["error"] in ("OSError", "PermissionError")
        assert result.response["speedups"].startswith(str(opts[0]))  # the C extension loads
    assert not list(opts[0].rglob("planted.py"))


# ---------------------------------------------------------------- Lambda's filesystem, limits, SDK

FILESYSTEM = """
import errno, os

def handler(event, context):
    out = {}
    targets = {
        "opt": "/opt/layerkit-probe.txt",
        "sandbox_opt": os.path.join(event["opt"], "python", "probe.txt"),
        "task": os.path.join(os.environ["LAMBDA_TASK_ROOT"], "probe.txt"),
        "task_file": os.path.join(os.environ["LAMBDA_TASK_ROOT"], "app.py"),
        "home": os.path.join(os.environ["HOME"], ".cache"),
        "tmp": os.path.join(os.environ["TMPDIR"], "probe.txt"),
    }
    for name, path in targets.items():
        try:
            with open(path, "a") as fh:
                fh.write("x")
            out[name] = "written"
        except OSError as exc:
            out[name] = errno.errorcode[exc.errno]
    if event.get("fill_mb"):
        try:
            with open(os.path.join(os.environ["TMPDIR"], "big"), "wb") as fh:
                for _ in range(event["fill_mb"]):
                    fh.write(b"0" * (1 << 20))
            out["fill"] = "written"
        except OSError as exc:
            out["fill"] = errno.errorcode[exc.errno]
    if event.get("respond_mb"):
        return "x" * (event["respond_mb"] << 20)
    return out
"""


def _filesystem_sandbox(tmp_path: Path, interpreter: Path, cache: Path | None) -> object:
    fn = tmp_path / "function.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("app.py", FILESYSTEM)
    layer = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer, "w") as zf:
        zf.writestr("python/lib.py", "X = 1")
    return prepare(tmp_path / "sb", [layer], fn, interpreter, PY39, cache=cache)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "fresh-copy"])
def test_only_tmp_is_writable_even_as_root(tmp_path: Path, interpreter: Path, cached: bool) -> None:
    from layerkit.runtime.isolation import Isolation, available

    host_opt = set(os.listdir("/opt")) if os.path.isdir("/opt") else set()
    cache = tmp_path / "cache" if cached else None
    sandbox = _filesystem_sandbox(tmp_path, interpreter, cache)
    result = invoke(sandbox, "app.handler", {"opt": str(sandbox.opt)})
    assert result.ok, result.response
    out = result.response
    assert out["tmp"] == "written"
    for name in ("sandbox_opt", "task", "task_file", "home"):
        assert out[name] in ("EACCES", "EROFS"), (name, out)
    if available() is Isolation.NAMESPACE or os.geteuid() != 0:
        # root without a namespace owns the host's /opt: the one documented gap
        assert out["opt"] in ("EACCES", "EROFS", "ENOENT"), out
        assert (set(os.listdir("/opt")) if os.path.isdir("/opt") else set()) == host_opt
    assert not (sandbox.opt / "python" / "probe.txt").exists()


def test_tmp_holds_the_functions_ephemeral_storage(tmp_path: Path, interpreter: Path) -> None:
    sandbox = _filesystem_sandbox(tmp_path, interpreter, tmp_path / "cache")
    event = {"opt": str(sandbox.opt), "fill_mb": 24}
    fits = invoke(sandbox, "app.handler", event, ephemeral_storage_mb=64)
    assert fits.ok, fits.response
    assert fits.response["fill"] == "written"
    over = invoke(sandbox, "app.handler", event, ephemeral_storage_mb=16)
    # a full tmpfs (ENOSPC, as on Lambda) or, without namespaces, the parent's watch
    assert (over.ok and over.response["fill"] == "ENOSPC") or (
        not over.ok and "EphemeralStorage" in over.response["errorMessage"]
    ), over.response


def test_payload_limits_are_lambdas(tmp_path: Path, interpreter: Path) -> None:
    import time

    from layerkit.runtime.sandbox import PayloadTooLargeError

    sandbox = _filesystem_sandbox(tmp_path, interpreter, tmp_path / "cache")
    big = invoke(sandbox, "app.handler", {"opt": str(sandbox.opt), "respond_mb": 7})
    assert not big.ok
    assert big.response["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in big.response["errorMessage"]
    started = time.monotonic()
    with pytest.raises(PayloadTooLargeError, match="RequestEntityTooLargeException"):
        invoke(sandbox, "app.handler", {"opt": "x" * (52 << 20)})
    assert time.monotonic() - started < 5


BOTO3_VERSION = """
import boto3, botocore

def handler(event, context):
    return [boto3.__version__, botocore.__version__, boto3.__file__]
"""


def test_runtime_boto3_without_a_layer_and_a_layers_boto3_wins(
    tmp_path: Path, interpreter: Path
) -> None:
    from layerkit.build.sdk import runtime_sdk_dir
    from layerkit.runtime.sandbox import FunctionZip, invoke_zips
    from layerkit.runtime.sdk import RUNTIME_SDKS

    cache = tmp_path / "cache"
    sdk = runtime_sdk_dir(PY39, cache)
    expected = RUNTIME_SDKS["python3.9"]
    fn = tmp_path / "function.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("app.py", BOTO3_VERSION)
    function = FunctionZip(fn, "app.handler", PY39, 256, 30)
    alone = invoke_zips([], function, {}, interpreter, cache, function_name="f", runtime_sdk=sdk)
    assert alone.ok, (alone.response, alone.logs)
    assert alone.response[:2] == [expected.boto3, expected.botocore]
    assert alone.response[2].startswith(str(sdk))
    layer = install_layer(tmp_path, "sdk_layer", "boto3==1.35.0", "botocore==1.35.0")
    layered = invoke_zips(
        [layer], function, {}, interpreter, cache, function_name="f", runtime_sdk=sdk
    )
    assert layered.ok, (layered.response, layered.logs)
    assert layered.response[:2] == ["1.35.0", "1.35.0"]  # /opt comes before /var/runtime
