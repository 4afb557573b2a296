from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from layerkit.errors import SandboxError
from layerkit.runtime.sandbox import (
    InvokeResult,
    Sandbox,
    extract_zip,
    invoke,
    prepare,
    run_code,
)
from layerkit.runtime.target import Target, find_interpreter

ROOT = Path(__file__).resolve().parents[3]
PY39 = Target("python3.9")
SITE39 = "python/lib/python3.9/site-packages"


@pytest.fixture(scope="module")
def interpreter() -> Path:
    return find_interpreter(PY39, cwd=ROOT)


def make_zip(path: Path, files: Mapping[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def make_sandbox(
    tmp_path: Path,
    interpreter: Path,
    layers: list[Mapping[str, str]],
    function: Mapping[str, str] | None = None,
) -> Sandbox:
    zips = [make_zip(tmp_path / f"layer{i}.zip", files) for i, files in enumerate(layers)]
    fn = make_zip(tmp_path / "function.zip", function) if function is not None else None
    return prepare(tmp_path / "sandbox", zips, fn, interpreter, PY39)


def test_report_line_matches_lambda() -> None:
    result = InvokeResult(True, {}, 812.4, 35.1, 143, "", memory_size_mb=256, request_id="r-1")
    assert result.report_line() == (
        "REPORT RequestId: r-1\tDuration: 35.10 ms\tBilled Duration: 36 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 143 MB\tInit Duration: 812.40 ms"
    )


def test_invoke_returns_handler_value_and_keeps_prints_out_of_it(
    tmp_path: Path, interpreter: Path
) -> None:
    app = (
        "import sys\n"
        'print(\'{"not": "the result"}\')\n'
        "def handler(event, context):\n"
        "    print('handling', event['n'])\n"
        "    sys.stderr.write('to stderr\\n')\n"
        "    return {'double': event['n'] * 2}\n"
    )
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {"n": 21})
    assert result.ok
    assert result.response == {"double": 42}
    assert "handling 21" in result.logs
    assert "to stderr" in result.logs
    assert result.max_memory_mb > 0
    assert result.report_line().startswith("REPORT RequestId: ")
    assert "\tInit Duration: " in result.report_line()


def test_handler_exception_has_lambda_error_shape(tmp_path: Path, interpreter: Path) -> None:
    app = "def handler(event, context):\n    raise ValueError('bad record 7')\n"
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {})
    assert not result.ok
    assert result.response["errorType"] == "ValueError"
    assert result.response["errorMessage"] == "bad record 7"
    assert any("app.py" in line and "handler" in line for line in result.response["stackTrace"])


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        ({"app.py": "import not_installed_anywhere\n"}, "app.handler", "Runtime.ImportModuleError",
         "Unable to import module 'app': No module named 'not_installed_anywhere'"),
        ({"app.py": "x = 1\n"}, "app.handler", "Runtime.HandlerNotFound",
         "Handler 'handler' missing on module 'app'"),
        ({"app.py": "def handler(:\n"}, "app.handler", "Runtime.UserCodeSyntaxError",
         "Syntax error in module 'app'"),
        ({"app.py": "def handler(e, c):\n    return {1, 2}\n"}, "app.handler",
         "Runtime.MarshalError", "Unable to marshal response"),
        ({"pkg/__init__.py": "", "pkg/mod.py": "raise RuntimeError('init failed')\n"},
         "pkg/mod.handler", "RuntimeError", "init failed"),
    ],
)  # fmt: skip
def test_runtime_errors_are_shaped_like_lambda(
    tmp_path: Path,
    interpreter: Path,
    files: Mapping[str, str],
    handler: str,
    error_type: str,
    message: str,
) -> None:
    sandbox = make_sandbox(tmp_path, interpreter, [], files)
    result = invoke(sandbox, handler, {})
    assert not result.ok
    assert result.response["errorType"] == error_type
    assert result.response["errorMessage"].startswith(message)


def test_context_and_environment_look_like_lambda(tmp_path: Path, interpreter: Path) -> None:
    app = (
        "import os\n"
        "def handler(event, context):\n"
        "    return {\n"
        "        'name': context.function_name,\n"
        "        'memory': context.memory_limit_in_mb,\n"
        "        'arn': context.invoked_function_arn,\n"
        "        'request_id': context.aws_request_id,\n"
        "        'remaining': context.get_remaining_time_in_millis(),\n"
        "        'log_group': context.log_group_name,\n"
        "        'env': {k: os.environ.get(k) for k in event['keys']},\n"
        "        'cwd': os.getcwd(),\n"
        "    }\n"
    )
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    keys = [
        "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
        "PYTHONDONTWRITEBYTECODE", "TZ", "_HANDLER", "AWS_ACCESS_KEY_ID",
    ]  # fmt: skip
    result = invoke(
        sandbox, "app.handler", {"keys": keys}, function_name="predictions", memory_mb=1024,
        timeout_s=30, env={"AWS_REGION": "eu-west-1"},
    )  # fmt: skip
    assert result.ok, result.response
    out = result.response
    assert out["name"] == "predictions"
    assert out["memory"] == "1024"
    assert out["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:predictions"
    assert len(out["request_id"]) == 36
    assert 0 < out["remaining"] <= 30_000
    assert out["log_group"] == "/aws/lambda/predictions"
    assert out["cwd"] == str(sandbox.task)
    assert out["env"] == {
        "LAMBDA_TASK_ROOT": str(sandbox.task),
        "AWS_LAMBDA_FUNCTION_NAME": "predictions",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.9",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TZ": ":UTC",
        "_HANDLER": "app.handler",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    }


def test_search_path_order_is_lambdas(tmp_path: Path, interpreter: Path) -> None:
    # The same module in all three places: /var/task wins, then site-packages, then python/.
    layers = [
        {"python/where.py": "WHERE = 'opt/python'", f"{SITE39}/where.py": "WHERE = 'site'",
         "python/only_python.py": "WHERE = 'opt/python'"},
    ]  # fmt: skip
    sandbox = make_sandbox(tmp_path, interpreter, layers, {"where.py": "WHERE = 'task'"})
    proc = run_code(
        sandbox,
        "import sys, where, only_python\n"
        "print(where.WHERE, only_python.WHERE)\n"
        "print(sys.path[:3])\n",
    )
    assert proc.returncode == 0, proc.stderr
    first, paths = proc.stdout.splitlines()
    assert first == "task opt/python"
    assert paths == str([str(p) for p in sandbox.search_path])
    assert sandbox.search_path == (
        sandbox.task,
        sandbox.opt / SITE39,
        sandbox.opt / "python",
    )


def test_later_layer_overwrites_earlier_one(tmp_path: Path, interpreter: Path) -> None:
    layers = [
        {"python/shared.py": "VALUE = 'first'", "python/first_only.py": "X = 1"},
        {"python/shared.py": "VALUE = 'second'"},
    ]
    sandbox = make_sandbox(tmp_path, interpreter, layers)
    proc = run_code(sandbox, "import shared, first_only; print(shared.VALUE, first_only.X)")
    assert proc.stdout.strip() == "second 1"


def test_host_environment_does_not_leak(
    tmp_path: Path, interpreter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leak = tmp_path / "leak"
    leak.mkdir()
    (leak / "leaked_module.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(leak))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALHOSTKEY00000")
    sandbox = make_sandbox(tmp_path, interpreter, [])
    code = (
        "import importlib.util, os, sys\n"
        "names = ['pytest', 'layerkit', 'elftools', 'pip', 'setuptools', 'leaked_module']\n"
        "print([n for n in names if importlib.util.find_spec(n) is not None])\n"
        "print(os.environ['AWS_ACCESS_KEY_ID'], 'PYTHONPATH' in os.environ, sys.flags.no_site)\n"
    )
    proc = run_code(sandbox, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "AKIAIOSFODNN7EXAMPLE False 1"]


def test_no_bytecode_is_written_into_the_sandbox(tmp_path: Path, interpreter: Path) -> None:
    sandbox = make_sandbox(tmp_path, interpreter, [{"python/mod.py": "X = 1"}], {"app.py": ""})
    assert run_code(sandbox, "import mod, app").returncode == 0
    assert not list(sandbox.opt.rglob("__pycache__"))
    assert not list(sandbox.task.rglob("__pycache__"))


def test_run_code_reports_exit_status_and_traceback(tmp_path: Path, interpreter: Path) -> None:
    sandbox = make_sandbox(tmp_path, interpreter, [])
    script = tmp_path / "smoke.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nraise SystemExit('smoke failed: x')\n")
    proc = run_code(sandbox, script, args=["a"])
    assert proc.returncode == 1
    assert proc.stdout == "['a']\n"
    assert "smoke failed: x" in proc.stderr
    crash = run_code(sandbox, "import json\njson.loads('{')\n")
    assert crash.returncode == 1
    assert "JSONDecodeError" in crash.stderr


def test_handler_timeout(tmp_path: Path, interpreter: Path) -> None:
    app = "import time\ndef handler(event, context):\n    time.sleep(30)\n"
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {}, timeout_s=0.5)
    assert not result.ok
    assert result.response["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.50 seconds" in result.response["errorMessage"]


def test_memory_above_limit_is_out_of_memory(tmp_path: Path, interpreter: Path) -> None:
    # The process is killed at the limit (as on Lambda), so it never returns; the old check
    # after the fact saw the whole 200 MB, the watcher stops it on the way there.
    app = (
        "import os\n"
        "def handler(event, context):\n"
        "    blocks = [bytearray(10 * 1024 * 1024) for _ in range(20)]\n"
        "    open(os.path.join(os.environ['TMPDIR'], 'returned'), 'w').close()\n"
        "    return len(blocks)\n"
    )
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {}, memory_mb=128)
    assert not result.ok
    assert result.response["errorType"] == "Runtime.OutOfMemory"
    assert result.max_memory_mb >= 128
    assert not (sandbox.root / "tmp" / "returned").exists()


def test_crashing_process_is_reported(tmp_path: Path, interpreter: Path) -> None:
    app = (
        "import os, signal\n"
        "def handler(event, context):\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {})
    assert not result.ok
    assert result.response["errorType"] == "Runtime.ExitError"
    assert "SIGSEGV" in result.response["errorMessage"]


def test_function_folder_is_copied_without_bytecode(tmp_path: Path, interpreter: Path) -> None:
    folder = tmp_path / "fn"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "app.py").write_text("def handler(e, c):\n    return 'from folder'\n")
    (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    sandbox = prepare(tmp_path / "sandbox", [], folder, interpreter, PY39)
    assert invoke(sandbox, "app.handler", {}).response == "from folder"
    assert not (sandbox.task / "__pycache__").exists()


def test_skip_bytecode_leaves_pyc_out(tmp_path: Path, interpreter: Path) -> None:
    layer = make_zip(
        tmp_path / "l.zip",
        {"python/m.py": "", "python/__pycache__/m.cpython-39.pyc": "x", "python/n.pyc": "x"},
    )
    sandbox = prepare(tmp_path / "sb", [layer], None, interpreter, PY39, skip_bytecode=True)
    assert sorted(p.name for p in sandbox.opt.rglob("*") if p.is_file()) == ["m.py"]


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil.py", "python/../../evil.py"])
def test_unsafe_zip_entries_are_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", {name: "x"})
    with pytest.raises(SandboxError, match="absolute path or climbs out"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("python/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SandboxError, match="symbolic link"):
        extract_zip(archive, tmp_path / "out")


def test_prepare_refuses_a_used_folder_and_a_relative_interpreter(
    tmp_path: Path, interpreter: Path
) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "stale.py").write_text("")
    with pytest.raises(SandboxError, match="not empty"):
        prepare(tmp_path / "used", [], None, interpreter, PY39)
    with pytest.raises(SandboxError, match="find_interpreter"):
        prepare(tmp_path / "fresh", [], None, Path("python3.9"), PY39)


def test_event_must_be_json(tmp_path: Path, interpreter: Path) -> None:
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": ""})
    with pytest.raises(SandboxError, match="JSON"):
        invoke(sandbox, "app.handler", {"when": object()})


def test_bootstrap_runs_on_every_supported_interpreter(tmp_path: Path) -> None:
    target = Target("python3.12")
    interpreter = find_interpreter(target, cwd=ROOT)
    app = "import sys\ndef handler(e, c):\n    return list(sys.version_info[:2])\n"
    fn = make_zip(tmp_path / "f.zip", {"app.py": app})
    sandbox = prepare(tmp_path / "sb", [], fn, interpreter, target)
    result = invoke(sandbox, "app.handler", {})
    assert result.response == [3, 12]


def cached_sandbox(
    tmp_path: Path, interpreter: Path, layer: Mapping[str, str], app: str
) -> Sandbox:
    zips = [make_zip(tmp_path / "layer.zip", layer)]
    fn = make_zip(tmp_path / "function.zip", {"app.py": app})
    return prepare(tmp_path / "sandbox", zips, fn, interpreter, PY39, cache=tmp_path / "cache")


def test_cached_opt_and_task_are_read_only_for_the_handler(
    tmp_path: Path, interpreter: Path
) -> None:
    app = (
        "import errno, os\n"
        "def handler(event, context):\n"
        "    out = {}\n"
        "    for path in ('/opt/python/new.py', '/opt/python/lib.py', 'app.py', 'x.txt'):\n"
        "        where = path.replace('/opt', os.environ['LAYERKIT_OPT'])\n"
        "        try:\n"
        "            with open(where, 'a') as fh:\n"
        "                fh.write('x')\n"
        "            out[path] = 'written'\n"
        "        except OSError as exc:\n"
        "            out[path] = errno.errorcode[exc.errno]\n"
        "    with open(os.path.join(os.environ['TMPDIR'], 'ok'), 'w') as fh:\n"
        "        fh.write('tmp is writable')\n"
        "    return out\n"
    )
    sandbox = cached_sandbox(tmp_path, interpreter, {"python/lib.py": "X = 1"}, app)
    result = invoke(sandbox, "app.handler", {}, env={"LAYERKIT_OPT": str(sandbox.opt)})
    assert result.ok, result.response
    # Lambda's errors: no write permission on an existing file (EACCES, PermissionError); a
    # read-only file system for a new one (EROFS) where the host allows a mount namespace
    assert set(result.response) == {"/opt/python/new.py", "/opt/python/lib.py", "app.py", "x.txt"}
    assert set(result.response.values()) <= {"EACCES", "EROFS"}
    assert result.response["/opt/python/lib.py"] == "EACCES"
    assert (sandbox.opt / "python" / "lib.py").read_text() == "X = 1"  # the cache is clean
    # a second sandbox of the same zips reuses the cached trees
    again = prepare(tmp_path / "again", [tmp_path / "layer.zip"], tmp_path / "function.zip",
                    interpreter, PY39, cache=tmp_path / "cache")  # fmt: skip
    assert (again.opt, again.task) == (sandbox.opt, sandbox.task)


def test_init_over_the_limit_is_lambdas_init_timeout(tmp_path: Path, interpreter: Path) -> None:
    app = "import time\ntime.sleep(30)\ndef handler(event, context):\n    return 1\n"
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {}, init_limit_s=0.5)
    assert not result.ok
    assert result.response["errorType"] == "Sandbox.Timedout"
    assert result.response["errorMessage"].startswith("INIT phase timed out after 0.50 seconds")
    assert result.init_ms == 500


def test_a_handler_deaf_to_its_timer_is_killed_at_the_timeout(
    tmp_path: Path, interpreter: Path
) -> None:
    app = (
        "import signal, time\n"
        "def handler(event, context):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "    time.sleep(30)\n"
    )
    sandbox = make_sandbox(tmp_path, interpreter, [], {"app.py": app})
    result = invoke(sandbox, "app.handler", {}, timeout_s=0.5)
    assert not result.ok
    assert result.response["errorType"] == "Sandbox.Timedout"
    assert result.response["errorMessage"].endswith("Task timed out after 0.50 seconds")
    assert result.duration_ms == 500


def test_the_interpreter_is_looked_up_once_and_again_when_it_is_gone(tmp_path: Path) -> None:
    from layerkit.runtime.sandbox import remembered_interpreter

    fake = tmp_path / "bin" / "python3.9"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    looked_up: list[Path] = []

    def find(target: Target, cwd: Path | None = None) -> Path:
        looked_up.append(cwd)
        return fake

    cache = tmp_path / "cache"
    assert remembered_interpreter(PY39, tmp_path, cache, find) == fake
    assert remembered_interpreter(PY39, tmp_path, cache, find) == fake
    assert looked_up == [tmp_path]
    fake.unlink()
    fake.write_text("")  # no longer executable: looked up again
    assert remembered_interpreter(PY39, tmp_path, cache, find) == fake
    assert len(looked_up) == 2


def test_an_event_over_six_mb_is_refused_before_anything_runs() -> None:
    from layerkit.runtime.sandbox import (
        REQUEST_LIMIT_BYTES,
        PayloadTooLargeError,
        request_payload,
    )

    assert request_payload({"a": 1}) == b'{"a": 1}'
    with pytest.raises(PayloadTooLargeError, match="RequestEntityTooLargeException") as info:
        request_payload({"x": "y" * REQUEST_LIMIT_BYTES})
    assert info.value.error_type == "RequestEntityTooLargeException"
    assert isinstance(info.value, SandboxError)


def test_huge_logs_keep_their_tail(tmp_path: Path) -> None:
    from layerkit.runtime import sandbox as sb

    log = tmp_path / "output.log"
    log.write_bytes(b"a" * sb.LOG_LIMIT_BYTES + b"the end\n")
    text = sb._read_logs(log)
    assert text.startswith("[layerkit: 8 bytes of earlier output not shown]\n")
    assert text.endswith("the end\n")
    log.write_text("short\n")
    assert sb._read_logs(log) == "short\n"


def test_runtime_sdk_comes_after_the_layers(tmp_path: Path, interpreter: Path) -> None:
    sdk = tmp_path / "sdk"
    (sdk / "boto3").mkdir(parents=True)
    sandbox = prepare(tmp_path / "sb", [], None, interpreter, PY39, runtime_sdk=sdk)
    assert sandbox.search_path == (
        sandbox.task,
        sandbox.opt / SITE39,
        sandbox.opt / "python",
        sdk.absolute(),
    )
    with pytest.raises(SandboxError, match="does not exist"):
        prepare(tmp_path / "sb2", [], None, interpreter, PY39, runtime_sdk=tmp_path / "none")


def test_uncached_opt_task_and_home_are_read_only(tmp_path: Path, interpreter: Path) -> None:
    sandbox = make_sandbox(tmp_path, interpreter, [{"python/m.py": "X = 1"}], {"app.py": ""})
    for tree in (sandbox.opt, sandbox.task):
        for path in (tree, *tree.rglob("*")):
            assert not path.stat().st_mode & 0o222, path
    assert not sandbox.home.stat().st_mode & 0o222
    assert sandbox.tmp.stat().st_mode & 0o200


def test_the_real_opt_is_covered_only_when_nothing_of_the_sandbox_lives_there(
    tmp_path: Path,
) -> None:
    from layerkit.runtime import isolation

    opt = tmp_path / "opt"
    opt.mkdir()
    elsewhere = isolation.Layout((tmp_path / "sb" / "opt",), tmp_path / "t", 512, opt, opt, ())
    assert isolation._cover(opt, elsewhere)
    inside = isolation.Layout((), tmp_path / "t", 512, opt, opt, (opt / "python3.9" / "bin",))
    assert not isolation._cover(opt, inside)
    assert not isolation._cover(tmp_path / "missing", elsewhere)


def test_without_namespaces_a_user_gets_permission_bits_and_a_watched_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from layerkit.runtime import isolation

    isolation.available.cache_clear()
    monkeypatch.setenv("LAYERKIT_SANDBOX_ISOLATION", "permissions")
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    layout = isolation.Layout((), tmp_path, 512, tmp_path, tmp_path, ())
    try:
        assert isolation.isolation(layout) == (isolation.Isolation.PERMISSIONS, None)
    finally:
        isolation.available.cache_clear()
    (tmp_path / "f").write_bytes(b"0" * (2 << 20))
    assert 1.9 < isolation.tree_mb(tmp_path) < 2.2
