"""The handler check: each function's ``Handler`` resolves in its package, read statically.

The Handler must name a module of the function's package and a callable that module defines at
module level; this is read with ``ast``, so no interpreter starts.

Lambda's Python runtime splits ``Handler`` at its last dot: ``app.lambda_handler`` imports the
module ``app`` (``pkg/mod.handler`` and ``pkg.mod.handler`` both import ``pkg.mod``) from the
package root and takes its attribute ``lambda_handler``. A handler that does not resolve fails
every invoke (Runtime.ImportModuleError or Runtime.HandlerNotFound), so it is an error of
``validate``, found before anything is deployed. The package is the function's built zip when
there is one (what deploys), else its source folder.

A name counts as defined when the module binds it at module level: ``def``/``async def``,
``class``, an assignment, or an import (``import x as name``, ``from m import name``), also
inside a module-level ``if``/``try``/``with``. A ``from m import *``, or a module shipped only as
bytecode or an extension module, cannot be read this way and is taken as defining it.
"""

from __future__ import annotations

import ast
import difflib
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit.build.manifest import artifact_path
from layerkit.build.package import package_files
from layerkit.check.findings import Finding, Severity
from layerkit.errors import CheckError
from layerkit.project.spec import TEMPLATE_FILE, Function, Project


@dataclass(frozen=True)
class Package:
    """A function package's files: relative POSIX paths, and a reader for their text."""

    display: str  # "functions/predictions/" or "dist/functions/predictions.zip"
    files: Collection[str]
    read: Callable[[str], str]


def folder_package(root: Path, display: str) -> Package:
    """The files of the function folder ``root`` that its built package would hold."""
    files = frozenset(rel.as_posix() for rel in package_files(root))
    return Package(display, files, lambda rel: (root / rel).read_text(encoding="utf-8"))


def zip_package(archive: Path, display: str) -> Package:
    """The files of the zip ``archive`` (a built function package)."""
    with zipfile.ZipFile(archive) as zf:
        files = frozenset(n for n in zf.namelist() if not n.endswith("/"))

    def read(rel: str) -> str:
        with zipfile.ZipFile(archive) as zf:
            return zf.read(rel).decode("utf-8")

    return Package(display, files, read)


def _bound_names(body: list[ast.stmt]) -> Iterator[str]:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        yield sub.id
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield alias.asname or alias.name.split(".")[0]
        elif isinstance(node, ast.If):
            yield from _bound_names(node.body)
            yield from _bound_names(node.orelse)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            for part in (node.body, node.orelse, node.finalbody):  # type: ignore[attr-defined]
                yield from _bound_names(part)
            for handler in node.handlers:  # type: ignore[attr-defined]
                yield from _bound_names(handler.body)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            yield from _bound_names(node.body)


def module_level_names(tree: ast.Module) -> frozenset[str] | None:
    """The names ``tree`` binds at module level; None when a ``from m import *`` hides them."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
    return frozenset(_bound_names(tree.body))


def split_handler(handler: str) -> tuple[str, str] | None:
    """``"pkg/mod.fn"`` -> ``("pkg.mod", "fn")`` as Lambda splits it; None when it cannot."""
    module, _, name = handler.rpartition(".")
    if not module or not name:
        return None
    return module.replace("/", "."), name


def _module_file(module: str, files: Collection[str]) -> tuple[str, bool] | None:
    """The file ``module`` is imported from, and whether it is Python source."""
    base = module.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in files:
            return candidate, True
    folder, _, stem = base.rpartition("/")
    for rel in sorted(files):
        path = PurePosixPath(rel)
        in_folder = str(path.parent) == (folder or ".") and path.name.split(".")[0] == stem
        if in_folder and path.suffix in (".pyc", ".so"):
            return rel, False
    return None


def _top_modules(files: Collection[str]) -> list[str]:
    return sorted(rel for rel in files if "/" not in rel and rel.endswith(".py"))


#: What keeps a Handler from resolving: what is wrong, the fix, and the finding's code.
Problem = tuple[str, str, str]


def _missing_module(module: str, files: Collection[str]) -> Problem:
    base = module.replace(".", "/")
    present = ", ".join(_top_modules(files)) or "no top-level .py file"
    return (
        f"the package has no {base}.py (nor {base}/__init__.py), it has {present}",
        f"point Handler in {TEMPLATE_FILE} at one of those modules, or add {base}.py",
        "handler-module",
    )


def _parse(
    package: Package, rel: str, feature_version: tuple[int, int] | None
) -> ast.Module | Problem:
    try:
        return ast.parse(package.read(rel), filename=rel, feature_version=feature_version)
    except SyntaxError as exc:
        grammar = " for Python {}.{}".format(*feature_version) if feature_version else ""
        return (
            f"{rel}:{exc.lineno} does not parse ({exc.msg})",
            f"fix the syntax{grammar}",
            "handler-syntax",
        )
    except (UnicodeDecodeError, OSError, KeyError) as exc:
        return f"{rel} cannot be read ({exc})", "save it as UTF-8 text", "handler-syntax"


def _missing_callable(rel: str, tree: ast.Module, module: str, name: str) -> Problem | None:
    names = module_level_names(tree)
    if names is None or name in names:
        return None
    callables = sorted(
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")
    )
    close = difflib.get_close_matches(name, callables, n=1)
    defines = f"{rel} defines {', '.join(callables)}" if callables else f"{rel} defines no function"
    fix = (
        f"set Handler: {module}.{close[0]} in {TEMPLATE_FILE}, or rename the function"
        if close
        else f"define {name}(event, context) at module level in {rel}, or fix Handler in "
        f"{TEMPLATE_FILE}"
    )
    return f"{rel} defines no {name} at module level ({defines})", fix, "handler-callable"


def handler_problem(
    handler: str, package: Package, feature_version: tuple[int, int] | None = None
) -> Problem | None:
    """What keeps ``handler`` from resolving in ``package`` (None: it resolves)."""
    parts = split_handler(handler)
    if parts is None:
        return (
            "Lambda reads it as MODULE.FUNCTION and finds no dot",
            f"write it as module.function, e.g. Handler: app.lambda_handler in {TEMPLATE_FILE}",
            "handler-format",
        )
    module, name = parts
    found = _module_file(module, package.files)
    if found is None:
        return _missing_module(module, package.files)
    rel, is_source = found
    if not is_source:
        return None
    tree = _parse(package, rel, feature_version)
    if isinstance(tree, tuple):
        return tree
    return _missing_callable(rel, tree, module, name)


def handler_finding(
    fn: Function, subject: str, package: Package, feature_version: tuple[int, int] | None = None
) -> Finding | None:
    """What keeps ``fn``'s Handler from resolving in ``package``, as one error; None if it does.

    One paragraph naming template.yaml, the function's logical id, the Handler, the fix and
    the package that was read.
    """
    problem = handler_problem(fn.handler, package, feature_version)
    if problem is None:
        return None
    what, fix, code = problem
    return Finding(
        Severity.ERROR,
        subject,
        f"function {fn.logical_id} has Handler {fn.handler!r}: {what}; {fix} (checked in "
        f"{package.display}).",
        code=code,
        path=TEMPLATE_FILE,
    )


def function_package(fn: Function, built: Path | None, root: Path | None = None) -> Package:
    """The package to check: the built zip ``built`` when it exists, else the source folder.

    The folder is named relative to the project ``root`` (``src/orders/api/``); without it,
    by its last two names.
    """
    if built is not None and built.is_file():
        return zip_package(built, str(built))
    if root is not None and fn.path.is_relative_to(root):
        return folder_package(fn.path, f"{fn.path.relative_to(root).as_posix()}/")
    return folder_package(fn.path, f"{fn.path.parent.name}/{fn.path.name}/")


def handler_findings(
    project: Project,
    built_zips: Mapping[str, Path] | None = None,
    feature_version: tuple[int, int] | None = None,
    functions: Sequence[Function] | None = None,
) -> tuple[Finding, ...]:
    """A finding for every function whose Handler does not resolve in its package.

    ``built_zips`` maps a function's name to its built zip (checked instead of its folder);
    ``feature_version`` parses the handler modules with that Python's grammar (default: each
    function's runtime); ``functions`` limits the check to those (default: every function).
    """
    found = []
    for fn in functions if functions is not None else project.functions:
        built = (built_zips or {}).get(fn.name)
        subject = artifact_path("function", fn.name)
        grammar = feature_version or fn.target.python_version
        package = function_package(fn, built, project.root)
        finding = handler_finding(fn, subject, package, grammar)
        if finding is not None:
            found.append(finding)
    return tuple(found)


def raise_for_handlers(project: Project, functions: Sequence[Function]) -> None:
    """Refuse a build whose functions' Handlers do not resolve in their source folders.

    Static and cheap (``ast``, no interpreter): ``Handler: app.handle`` for ``app.handler``
    fails ``build all`` before anything is built, as one paragraph (every such function in it).
    """
    found = handler_findings(project, functions=functions)
    if found:
        raise CheckError(" ".join(f.message for f in found) + " Nothing was built.")
