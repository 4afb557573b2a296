"""The static import check: every import in a function's code must resolve on its runtime.

Each module of a function package is parsed (``ast``, with the target's grammar) and each import
is resolved to one of: the function's own modules, its own requirements, the top-level modules
of the layers it attaches, the target's standard library, or the runtime's built-in boto3.
Anything else would be a ``Runtime.ImportModuleError`` on Lambda, so it fails the build, naming
file:line, the import, and the layer that would provide it if attached.

Imports that cannot fail the function are not checked: relative imports (its own package),
``from __future__``, imports inside ``if TYPE_CHECKING:``, and imports in the body of a ``try``
whose handlers catch ImportError (the code has a fallback).

The core (:func:`module_imports`, :func:`check_function_imports`) is pure; :func:`stdlib_modules`
asks the target interpreter, since ``sys.stdlib_module_names`` does not exist on Python 3.9.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from layerkit.check.findings import Finding, Severity
from layerkit.errors import CheckError
from layerkit.runtime.sdk import SDK_MODULES

#: What every Lambda Python runtime carries itself, in /var/runtime: boto3, botocore and their
#: dependencies (:data:`layerkit.runtime.sdk.SDK_MODULES`; the sandbox puts the same folder on the
#: path, so what passes here also imports in ``invoke`` and on the local stage).
RUNTIME_BUILTIN: frozenset[str] = SDK_MODULES

#: Exceptions whose handler makes the imports of a ``try`` body optional.
_OPTIONAL_HANDLERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _handler_names(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return {"BaseException"}
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = set()
    for node in nodes:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _ImportCollector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[str, int]] = []
        self.dotted: list[tuple[str, int]] = []  # full names; `from a import b` adds a and a.b

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name.split(".")[0], node.lineno))
            self.dotted.append((alias.name, node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module and node.module != "__future__":
            self.found.append((node.module.split(".")[0], node.lineno))
            self.dotted.append((node.module, node.lineno))
            self.dotted.extend((f"{node.module}.{a.name}", node.lineno) for a in node.names)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        optional = any(_handler_names(h) & _OPTIONAL_HANDLERS for h in node.handlers)
        if not optional:
            self.generic_visit(node)
            return
        for child in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(child)

    visit_TryStar = visit_Try  # Python 3.11+ grammar; harmless elsewhere


def module_imports(
    source: str, filename: str, feature_version: tuple[int, int] | None = None
) -> tuple[tuple[str, int], ...]:
    """The (top-level module, line) pairs ``source`` imports for real, in source order.

    ``feature_version`` (for example ``(3, 9)``) parses with that Python's grammar, so code
    that only newer Pythons accept is reported as a syntax error of the target.
    """
    collector = _collect(source, filename, feature_version)
    return tuple(sorted(collector.found, key=lambda item: item[1]))


def dotted_imports(
    source: str, filename: str, feature_version: tuple[int, int] | None = None
) -> tuple[tuple[str, int], ...]:
    """Like :func:`module_imports`, with full dotted names (``sklearn.linear_model``).

    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a submodule or a name).
    """
    collector = _collect(source, filename, feature_version)
    return tuple(sorted(collector.dotted, key=lambda item: item[1]))


def _collect(
    source: str, filename: str, feature_version: tuple[int, int] | None
) -> _ImportCollector:
    try:
        tree = ast.parse(source, filename=filename, feature_version=feature_version)
    except SyntaxError as exc:
        grammar = "" if feature_version is None else " for Python {}.{}".format(*feature_version)
        raise CheckError(
            f"{filename}:{exc.lineno}: invalid syntax{grammar}: {exc.msg}. The runtime could not "
            "import this module; fix the code (or use syntax the target runtime supports)."
        ) from None
    collector = _ImportCollector()
    collector.visit(tree)
    return collector


def package_modules(files: Iterable[str | PurePosixPath | Path]) -> frozenset[str]:
    """Top-level module names a function package defines: ``app.py``, ``pkg/...``."""
    names = set()
    for file in files:
        parts = PurePosixPath(str(file).replace("\\", "/")).parts
        if len(parts) == 1 and parts[0].endswith(".py"):
            names.add(parts[0][:-3])
        elif len(parts) > 1 and parts[-1].endswith(".py") and parts[0].isidentifier():
            names.add(parts[0])
    return frozenset(names)


def check_function_imports(
    files: Mapping[str, str],
    own_modules: Iterable[str],
    provided: Mapping[str, str],
    available_elsewhere: Mapping[str, str],
    stdlib: frozenset[str],
    runtime_builtin: frozenset[str] = RUNTIME_BUILTIN,
    feature_version: tuple[int, int] | None = None,
) -> tuple[Finding, ...]:
    """Every import in ``files`` (relative path -> source) that nothing provides.

    ``provided`` maps a top-level module to who provides it (``"layer core-data-science"``,
    ``"requirements.txt"``); ``available_elsewhere`` maps a module to a layer the function
    does not attach that has it, named in the message.
    """
    own = set(own_modules)
    problems = []
    for file in sorted(files):
        if not file.endswith(".py"):
            continue
        for module, line in module_imports(files[file], file, feature_version):
            if module in own or module in provided or module in stdlib:
                continue
            if module in runtime_builtin:
                continue
            if module in available_elsewhere:
                fix = (
                    f"the layer {available_elsewhere[module]} provides it: attach it to this "
                    "function (its Layers in template.yaml)"
                )
            else:
                fix = (
                    "no layer provides it: add the distribution to the function's "
                    "requirements.txt, or to a layer it attaches"
                )
            problems.append(
                Finding(
                    Severity.ERROR,
                    file,
                    f"`{module}` is imported, but nothing on the runtime provides it; {fix}.",
                    code="import-unresolved",
                    path=file,
                    line=line,
                )
            )
    return tuple(problems)


def provider_maps(
    attached: Sequence[str],
    layer_modules: Mapping[str, Iterable[str]],
    requirement_modules: Iterable[str] = (),
) -> tuple[dict[str, str], dict[str, str]]:
    """(provided, available_elsewhere) for :func:`check_function_imports`.

    ``attached`` are the layers the function attaches, ``layer_modules`` every layer's
    top-level modules (``bytecode.top_level_modules`` of its built tree), and
    ``requirement_modules`` those of the function's own requirements.
    """
    provided = {m: "requirements.txt" for m in requirement_modules}
    elsewhere: dict[str, str] = {}
    for layer, modules in layer_modules.items():
        for module in modules:
            if layer in attached:
                provided.setdefault(module, f"layer {layer}")
            else:
                elsewhere.setdefault(module, layer)
    return provided, elsewhere


def read_sources(fn_dir: Path, files: Iterable[Path]) -> dict[str, str]:
    """Map each Python file among ``files`` (relative to ``fn_dir``) to its source."""
    sources = {}
    for rel in files:
        if rel.suffix == ".py":
            sources[rel.as_posix()] = (fn_dir / rel).read_text(encoding="utf-8")
    return sources


def raise_for_problems(
    function: str, problems: Sequence[Finding], folder: str | None = None
) -> None:
    """Raise one CheckError listing every problem of ``function``, if there are any.

    ``folder`` is the function's source folder relative to the project (its CodeUri folder);
    by default ``functions/<function>``.
    """
    if problems:
        where = folder if folder is not None else f"functions/{function}"
        listing = "\n".join(f"  {where}/{p}" for p in problems)
        raise CheckError(
            f"function {function} imports modules that would fail on Lambda with "
            f"Runtime.ImportModuleError:\n{listing}"
        )


_STDLIB_SCRIPT = """\
import json, os, pkgutil, sys, sysconfig
names = set(sys.builtin_module_names) | set(getattr(sys, "stdlib_module_names", ()))
paths = sysconfig.get_paths()
folders = {paths["stdlib"], paths["platstdlib"]}
folders |= {os.path.join(f, "lib-dynload") for f in list(folders)}
names |= {m.name for m in pkgutil.iter_modules(sorted(f for f in folders if os.path.isdir(f)))}
print(json.dumps(sorted(names)))
"""


@functools.lru_cache(maxsize=8)
def stdlib_modules(interpreter: Path) -> frozenset[str]:
    """The top-level modules of ``interpreter``'s standard library (cached per interpreter).

    Computed by the interpreter itself, isolated (``-I -S``): its built-in modules plus what
    its stdlib and lib-dynload folders hold (``sys.stdlib_module_names`` when it has one).
    """
    proc = subprocess.run(
        [str(interpreter), "-I", "-S", "-c", _STDLIB_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CheckError(
            f"could not list the standard library of {interpreter} (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-500:]}. Check that the interpreter runs."
        )
    names = frozenset(json.loads(proc.stdout))
    return names - {"site-packages", "__pycache__"}
