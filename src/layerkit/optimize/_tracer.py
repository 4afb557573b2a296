"""The tracer, executed BY the target interpreter inside the sandbox (stdlib only, Python 3.9+).

``run_code`` starts it as ``tracer.py JOB`` under the sandbox's bootstrap (Lambda's search path,
its environment). It then starts itself again as ``python3.X -I -S -B -X importtime tracer.py
--child JOB`` with the same search path, so ``-X importtime`` (which cannot be switched on from
inside a running interpreter) records every import, and the child's stderr (where importtime
writes) goes to a file the library parses.

The child runs the subject and, at exit, writes one JSON document to ``job["out"]``:

- a function: imports the handler module (timed: init), notes the modules loaded so far (what a
  cold start loads), then calls the handler with each event and records the response;
- a script (a layer's smoke test): runs it as ``__main__`` and records whether it exited cleanly;

plus every module in ``sys.modules`` with its ``__file__`` and ``__cached__``, every file opened
(an audit hook on ``open``), every shared object mapped (``/proc/self/maps``) and every import
that no finder could satisfy (a finder at the end of ``sys.meta_path``), even those a ``try``
swallowed: a module a pruned layer no longer has shows up there.
"""

import json
import os
import runpy
import subprocess
import sys
import time
import traceback


class _Missed:
    """A last meta-path finder: records each import no other finder could satisfy."""

    def __init__(self):
        self.names = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)
        return None


class _Context:
    """The attributes of Lambda's context object the functions may read."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    aws_request_id = "layerkit-trace"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "trace"
    identity = None
    client_context = None

    def get_remaining_time_in_millis(self):
        return 60000


def _error(exc):
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)[:2000],
            "stackTrace": traceback.format_exc()[-3000:]}  # fmt: skip


def _plain(value):
    """The response as JSON would carry it (what Lambda returns to the caller)."""
    return json.loads(json.dumps(value, default=str))


def _mapped():
    found = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    found.add(parts[5].strip())
    except OSError:
        pass
    return sorted(found)


def _modules():
    out = {}
    for name, module in list(sys.modules.items()):
        out[name] = [getattr(module, "__file__", None), getattr(module, "__cached__", None)]
    return out


def _child(job):
    sys.path[:] = job["path"]
    opened = []

    def audit(event, args):
        if event == "open" and args and isinstance(args[0], str):
            opened.append(args[0])

    sys.addaudithook(audit)
    missed = _Missed()
    sys.meta_path.append(missed)
    result = {"init_ms": 0.0, "init_modules": [], "outcomes": [], "failure": None}
    if job["kind"] == "function":
        import importlib

        module_name, _, attr = job["handler"].rpartition(".")
        start = time.perf_counter()
        try:
            handler = getattr(importlib.import_module(module_name.replace("/", ".")), attr)
        except BaseException as exc:
            result["failure"] = _error(exc)
            handler = None
        result["init_ms"] = (time.perf_counter() - start) * 1000
        result["init_modules"] = sorted(sys.modules)
        for event_path in job["events"] if handler is not None else ():
            with open(event_path, encoding="utf-8") as fh:
                event = json.load(fh)
            try:
                outcome = {"ok": True, "response": _plain(handler(event, _Context()))}
            except Exception as exc:
                outcome = {"ok": False, "response": _error(exc)}
            outcome["event"] = os.path.basename(event_path)
            result["outcomes"].append(outcome)
    else:
        sys.argv[:] = [job["script"]]
        try:
            runpy.run_path(job["script"], run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                result["failure"] = {"errorType": "SystemExit", "errorMessage": str(exc.code)}
        except BaseException as exc:
            result["failure"] = _error(exc)
    sys.stdout.flush()
    result["modules"] = _modules()
    result["opened"] = sorted(set(opened))
    result["mapped"] = _mapped()
    result["missed"] = sorted(set(missed.names))
    tmp = job["out"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(tmp, job["out"])
    return 0


def main(argv):
    """``JOB`` (start the traced child) or ``--child JOB`` (be the child)."""
    if argv[0] == "--child":
        with open(argv[1], encoding="utf-8") as fh:
            return _child(json.load(fh))
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    job["path"] = list(sys.path)
    child_job = argv[0] + ".child.json"
    with open(child_job, "w", encoding="utf-8") as fh:
        json.dump(job, fh)
    flags = ["-I", "-S", "-B", "-X", "importtime", "-X", "utf8"]
    with open(job["importtime"], "w", encoding="utf-8") as err:
        proc = subprocess.run(
            [sys.executable, *flags, os.path.abspath(__file__), "--child", child_job],
            stdin=subprocess.DEVNULL,
            stderr=err,
            check=False,
        )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
