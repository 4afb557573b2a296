"""The Lambda runtime look-alike, executed BY the target interpreter inside the sandbox.

This file is copied into the sandbox's runtime folder and run as a script with
``python3.X -I -S -B -u bootstrap.py MODE CONFIG [ARG ...]``. It must stay valid Python 3.9 to
3.13 and use the standard library only: it runs under the target runtime's interpreter, with
nothing on ``sys.path`` but the function package, the layers and the interpreter's stdlib.

Modes:

``invoke CONFIG RESULT [REQUEST_ID]``
    Import the handler module (timed: init; the file ``config["init_marker"]`` is created when
    it is done, so the parent can apply Lambda's init limit), call the handler with the event
    and a context object (timed: duration), and write one JSON document to the RESULT file (a
    side channel, so whatever the handler prints cannot corrupt it).
``run CONFIG SCRIPT [ARGS...]``
    Run SCRIPT as ``__main__`` with the same path and environment (import checks, smoke tests,
    benchmarks). Its exit status is the process's.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import time
import traceback
import uuid

_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


def _set_path(config):
    """Put Lambda's search path in front of the interpreter's own standard library."""
    stdlib = [p for p in sys.path if "site-packages" not in p and "dist-packages" not in p]
    sys.path[:] = list(config["path"]) + stdlib
    try:  # what `site` would add on Lambda, minus site-packages: exit(), quit(), help()
        import site

        site.setquit()
        site.sethelper()
    except Exception:  # pragma: no cover - a stripped stdlib
        pass


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id):
        super().__init__()
        self.request_id = request_id

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


def _setup_logging(request_id):
    """Like the Lambda runtime: one root handler with its format; the root level stays WARNING."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(_LOG_FORMAT.rstrip("\n"), "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter(request_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]


class LambdaContext:
    """The ``context`` argument, with the attributes and method the Lambda runtime provides."""

    def __init__(self, config, request_id, deadline):
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.function_name = name
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{config.get('account_id', '123456789012')}:function:{name}"
        )
        # A string, as in the real runtime (it reads the environment variable).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/" + name)
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        """Milliseconds left before the function times out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(error_type, message, tb=None):
    stack = traceback.format_list(traceback.extract_tb(tb)) if tb is not None else []
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack}


def _max_memory_mb():
    # VmHWM is this process image's own peak. ru_maxrss is not: Linux carries the peak of the
    # process that forked us across execve, so a large parent (a test runner) would show through.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int((int(line.split()[1]) + 1023) // 1024)
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return int((kib + 1023) // 1024)


def _write(path, payload):
    sys.stdout.flush()
    sys.stderr.flush()
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


def _load_handler(handler):
    """Import the handler's module and find the function; raise a Lambda-shaped error dict."""
    import importlib

    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        raise _InitError(
            _error("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values")
        )
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        _, _, tb = sys.exc_info()
        raise _InitError(
            _error(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {exc}",
                tb,
            )
        ) from None
    except SyntaxError as exc:
        _, _, tb = sys.exc_info()
        raise _InitError(
            _error(
                "Runtime.UserCodeSyntaxError",
                f"Syntax error in module '{module_name}': {exc}",
                tb,
            )
        ) from None
    except Exception as exc:
        _, _, tb = sys.exc_info()
        raise _InitError(_error(type(exc).__name__, str(exc), tb)) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise _InitError(
            _error(
                "Runtime.HandlerNotFound",
                f"Handler '{function_name}' missing on module '{module_name}'",
            )
        )
    return function


class _InitError(Exception):
    def __init__(self, shape):
        super().__init__(shape["errorMessage"])
        self.shape = shape


def _mark_init_done(config):
    marker = config.get("init_marker")
    if marker:
        with open(marker, "w", encoding="ascii"):
            pass


def _invoke(config, result_path, request_id=None):
    request_id = request_id or str(uuid.uuid4())
    _setup_logging(request_id)
    result = {
        "ok": False,
        "response": None,
        "init_ms": 0.0,
        "duration_ms": 0.0,
        "request_id": request_id,
    }
    start = time.perf_counter()
    try:
        function = _load_handler(config["handler"])
    except _InitError as exc:
        result["init_ms"] = (time.perf_counter() - start) * 1000
        result["response"] = exc.shape
        result["max_memory_mb"] = _max_memory_mb()
        _write(result_path, result)
        return 1
    result["init_ms"] = (time.perf_counter() - start) * 1000
    _mark_init_done(config)

    timeout = float(config["timeout_s"])
    with open(config["event_path"], encoding="utf-8") as fh:
        event = json.load(fh)
    started = time.perf_counter()

    def on_timeout(signum, frame):
        result["duration_ms"] = (time.perf_counter() - started) * 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        result["response"] = {
            "errorMessage": f"{stamp}Z {request_id} Task timed out after {timeout:.2f} seconds",
            "errorType": "Sandbox.Timedout",
            "stackTrace": [],
        }
        result["max_memory_mb"] = _max_memory_mb()
        _write(result_path, result)
        os._exit(1)

    signal.signal(signal.SIGALRM, on_timeout)
    context = LambdaContext(config, request_id, time.monotonic() + timeout)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        response = function(event, context)
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        result["duration_ms"] = (time.perf_counter() - started) * 1000
        _, _, tb = sys.exc_info()
        result["response"] = _error(type(exc).__name__, str(exc), tb)
        result["max_memory_mb"] = _max_memory_mb()
        _write(result_path, result)
        return 1
    signal.setitimer(signal.ITIMER_REAL, 0)
    result["duration_ms"] = (time.perf_counter() - started) * 1000
    try:
        size = len(json.dumps(response).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        result["response"] = _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        result["max_memory_mb"] = _max_memory_mb()
        _write(result_path, result)
        return 1
    limit = int(config.get("response_limit") or 0)
    if limit and size > limit:
        result["response"] = _error(
            "Function.ResponseSizeTooLarge",
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
            f"({limit} bytes).",
        )
        result["max_memory_mb"] = _max_memory_mb()
        _write(result_path, result)
        return 1
    result["ok"] = True
    result["response"] = response
    result["max_memory_mb"] = _max_memory_mb()
    _write(result_path, result)
    return 0


def _run(script, args):
    import runpy

    sys.argv[:] = [script, *args]
    runpy.run_path(script, run_name="__main__")
    return 0


def main(argv):
    """Entry point: ``invoke CONFIG RESULT [REQUEST_ID]`` or ``run CONFIG SCRIPT [ARGS...]``."""
    mode, config_path = argv[0], argv[1]
    with open(config_path, encoding="utf-8") as fh:
        config = json.load(fh)
    _set_path(config)
    if mode == "invoke":
        code = _invoke(config, argv[2], argv[3] if len(argv) > 3 else None)
        # The result is written: skip tearing down pandas & co. (hundreds of milliseconds that
        # Lambda, which keeps the process for the next event, never spends).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if mode == "run":
        return _run(argv[2], argv[3:])
    sys.stderr.write(f"bootstrap: unknown mode {mode!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
