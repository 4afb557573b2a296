"""One resolution per target for every layer and function, and its partition into layers.

``inv lock`` resolves, once per target, the requirement files of exactly the layers that list the
target (a layer's ``runtimes`` x ``architectures``) and the functions that run on it, with uv, for
the target platform and interpreter (markers evaluated for python3.9.23, not the host), and
writes ``locks/<target>.toml``: one exact wheel (URL, sha256, size) per distribution, or the sdist
of a distribution a layer allows to be built from source, and who pulls it in. The lock is
committed; builds install from it and refuse to run when it is stale.

Wheels: uv knows no manylinux_2_24/_2_26, so an Amazon Linux 2 target resolves at
``manylinux_2_28`` (which sees every wheel that loads on glibc 2.26, and some that do not), keeps
the wheel of each release that the runtime loads, and resolves again without the releases that
have none: the newest release with a loadable wheel wins. A failure is explained in one paragraph
(the clashing requirement lines, the chain between them, a fix); uv's own output goes to
``dist/logs/lock-<target>.log``.

The partition is derived from the lock, never stored: a distribution belongs to the first layer
(in ``requires`` order) that pulls it in, and a layer never carries what a layer it requires
carries. Two layers that do not require each other may both need a distribution (botocore and
pandas both need python-dateutil); each then carries the same locked version, so files that
overlap in /opt are byte-identical. :func:`Partition.shared` lists those.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from layerkit.build.index import IndexFile, PackageIndex, PyPI
from layerkit.build.sdist import check_sdist
from layerkit.build.targets import buildable_functions
from layerkit.build.uv import PYPI_SIMPLE, Index, Indexes, run_uv, target_args
from layerkit.check.sizes import FUNCTION_UNZIPPED_LIMIT
from layerkit.errors import LayerkitError, LockError, SpecError, WheelTagError
from layerkit.project.requirements import LineKind, LineRequirement, canonical_text
from layerkit.project.spec import Project
from layerkit.redact import redact_text, redact_url
from layerkit.runtime.target import Target, best_wheel, wheel_fits, wheel_tags_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_DIR = "locks"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockedPackage:
    """One distribution pinned to one wheel file."""

    name: NormalizedName
    version: str
    wheel: str  # URL of the one wheel that fits the target (or of the sdist, see is_sdist)
    sha256: str
    size: int
    required_by: tuple[str, ...]  # package names, or sources such as "layer:core-data-science"
    index: str = ""  # the index it came from, without credentials ("": the default, PyPI)

    @property
    def filename(self) -> str:
        """The wheel's file name (carries its tags)."""
        return self.wheel.rsplit("/", 1)[-1]

    @property
    def pin(self) -> str:
        """``name==version``."""
        return f"{self.name}=={self.version}"

    @property
    def is_sdist(self) -> bool:
        """Whether this is a source distribution, built into a wheel with the target's Python."""
        return not self.filename.endswith(".whl")


@dataclass(frozen=True)
class Lock:
    """The resolution for one target."""

    target: Target
    inputs: Mapping[str, str]  # source -> sha256 of its requirement lines
    packages: tuple[LockedPackage, ...]  # sorted by name

    def package(self, name: str) -> LockedPackage:
        """The locked distribution ``name``."""
        wanted = canonicalize_name(name)
        for pkg in self.packages:
            if pkg.name == wanted:
                return pkg
        raise LockError(f"{name} is not in the {self.target.key} lock; run `inv lock`.")


# ---------------------------------------------------------------- sources and their hashes


def sources(
    project: Project, target: Target | None = None
) -> dict[str, tuple[LineRequirement, ...]]:
    """The requirement sources resolved for ``target``: ``layer:<name>`` and ``function:<name>``.

    A layer counts when it is built for the target, a function when it is built for it
    (:func:`layerkit.build.targets.buildable_functions`); with no target, every source.
    """
    found: dict[str, tuple[LineRequirement, ...]] = {}
    for layer in project.layers:
        if target is None or target in layer.targets():
            found[f"layer:{layer.name}"] = layer.requirements
    built = None if target is None else buildable_functions(project, target)
    for fn in project.functions:  # every function built for the target: its own requirements
        if built is None or fn in built:
            found[f"function:{fn.name}"] = fn.requirements
    return found


def requirement_sources(
    project: Project, target: Target | None = None
) -> dict[str, tuple[LineRequirement, ...]]:
    """Like :func:`sources`, each with only its requirement lines (no constraints, no indexes)."""
    return {
        s: tuple(r for r in reqs if r.is_requirement)
        for s, reqs in sources(project, target).items()
    }


def target_indexes(project: Project, target: Target | None = None) -> Indexes:
    """The indexes a target resolves and installs from: the project's, then each source's.

    ``[tool.layerkit]`` comes first, then layer.toml keys and requirements-file lines in the
    order of the sources. Every source shares one resolution per target, so their indexes are
    pooled (each URL once); two different default indexes (``index-url``) are an error naming
    both places.
    """
    config = project.config
    where = "pyproject.toml [tool.layerkit]"
    default = Index.parse(config.index_url, f"{where} index-url") if config.index_url else None
    extra = [Index.parse(u, f"{where} extra-index-urls") for u in config.extra_index_urls]
    links = [Index.parse(u, f"{where} find-links") for u in config.find_links]
    for reqs in sources(project, target).values():
        for r in reqs:
            if not r.kind.is_index:
                continue
            index = Index.parse(r.text, r.where)
            if r.kind is LineKind.FIND_LINKS:
                if "://" not in index.url:
                    folder = (project.root / r.path.parent / index.url).resolve()
                    index = Index(str(folder), r.where)
                links.append(index)
            elif r.kind is LineKind.EXTRA_INDEX_URL:
                extra.append(index)
            elif default is None:
                default = index
            elif default.url.rstrip("/") != index.url.rstrip("/"):
                raise SpecError(
                    f"{r.where} sets the default index to {index.shown}, but {default.where} "
                    f"sets it to {default.shown}; one resolution per target has one default "
                    "index. Keep one `index-url` and make the other an `--extra-index-url`."
                )
    links = [
        Index(str(project.root / i.url), i.where, i.name)
        if "://" not in i.url and not Path(i.url).is_absolute()
        else i
        for i in links
    ]
    return Indexes(default, tuple(_once(extra)), tuple(_once(links)))


def _once(indexes: Iterable[Index]) -> list[Index]:
    seen: set[str] = set()
    kept = []
    for index in indexes:
        if index.url.rstrip("/") not in seen:
            seen.add(index.url.rstrip("/"))
            kept.append(index)
    return kept


def source_file(project: Project, source: str) -> Path:
    """The requirements.txt of a source, relative to the project root."""
    kind, _, name = source.partition(":")
    folder = project.layer(name).path if kind == "layer" else project.function(name).path
    return folder.relative_to(project.root) / "requirements.txt"


def source_label(source: str) -> str:
    """``layer:aws-utilities`` -> ``aws-utilities``; ``function:fn`` -> ``function fn``."""
    kind, _, name = source.partition(":")
    return name if kind == "layer" else f"function {name}"


def input_hashes(project: Project, target: Target | None = None) -> dict[str, str]:
    """Hash of each source's requirement lines (comments and blank lines do not count).

    The project's own index settings count as one more input, ``project:indexes``, only when
    it has any (so the locks of a project without them keep their inputs).
    """
    found = {
        source: hashlib.sha256(canonical_text(reqs).encode()).hexdigest()
        for source, reqs in sources(project, target).items()
    }
    config = project.config
    if config.index_url or config.extra_index_urls or config.find_links:
        shown = [redact_url(config.index_url), *map(redact_url, config.extra_index_urls)]
        shown += [f"find-links {u}" for u in map(redact_url, config.find_links)]
        found["project:indexes"] = hashlib.sha256("\n".join(shown).encode()).hexdigest()
    return found


def lock_path(root: Path, target: Target) -> Path:
    """Where the lock for ``target`` lives."""
    return root / LOCK_DIR / f"{target.key}.toml"


# ---------------------------------------------------------------- reading and writing


def _quote(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def render_lock(lock: Lock) -> str:
    """The lock as TOML text, stable for review (sorted, one wheel per package)."""
    out = [
        "# Generated by layerkit's lock command. Do not edit by hand: change requirements.txt",
        "# files and lock again. One wheel per distribution, for this target only.",
        f"version = {LOCK_VERSION}",
        f"target = {_quote(lock.target.key)}",
        f"uv-platform = {_quote(lock.target.uv_platform)}",
        f"python-version = {_quote(lock.target.python_full_version)}",
        f"glibc = {_quote(lock.target.glibc_text)}",
        "",
        "[inputs]",
    ]
    out += [f"{_quote(k)} = {_quote(v)}" for k, v in sorted(lock.inputs.items())]
    for pkg in lock.packages:
        out += [
            "",
            "[[package]]",
            f"name = {_quote(pkg.name)}",
            f"version = {_quote(pkg.version)}",
            f"required-by = [{', '.join(_quote(r) for r in pkg.required_by)}]",
            f"{'sdist' if pkg.is_sdist else 'wheel'} = {_quote(pkg.wheel)}",
            f"sha256 = {_quote(pkg.sha256)}",
            f"size = {pkg.size}",
        ]
        if pkg.index:
            out.append(f"index = {_quote(redact_url(pkg.index))}")
    return "\n".join(out) + "\n"


def parse_lock(text: str, path: Path) -> Lock:
    """Parse lock TOML text; ``path`` is for messages."""
    try:
        data = tomllib.loads(text)
        if data.get("version") != LOCK_VERSION:
            raise LockError(
                f"{path} has lock format {data.get('version')!r}, this layerkit reads "
                f"{LOCK_VERSION}; run `inv lock` to write it again."
            )
        packages = tuple(
            LockedPackage(
                name=canonicalize_name(p["name"]),
                version=p["version"],
                wheel=p["wheel"] if "wheel" in p else p["sdist"],
                sha256=p["sha256"],
                size=int(p["size"]),
                required_by=tuple(p["required-by"]),
                index=str(p.get("index", "")),
            )
            for p in data.get("package", [])
        )
        return Lock(Target.parse(data["target"]), dict(data["inputs"]), packages)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise LockError(
            f"{path} is not a valid layerkit lock ({exc}); run `inv lock` to write it again."
        ) from None


def read_lock(project: Project, target: Target) -> Lock:
    """Read the committed lock for ``target`` and refuse it if it is missing or stale."""
    path = lock_path(project.root, target)
    display = path.relative_to(project.root)
    try:
        lock = parse_lock(path.read_text(encoding="utf-8"), display)
    except FileNotFoundError:
        raise LockError(
            f"{display} does not exist: the {target.key} target has not been locked yet. "
            "Run `inv lock` and commit the lock file."
        ) from None
    changed = stale_sources(lock, input_hashes(project, target))
    if changed:
        known = sources(project)
        files = ", ".join(str(source_file(project, s)) if s in known else s for s in changed)
        raise LockError(
            f"{display} is stale: requirements changed since it was written ({files}). "
            "Run `inv lock` to resolve again, then commit the lock."
        )
    return lock


def stale_sources(lock: Lock, current: Mapping[str, str]) -> tuple[str, ...]:
    """Sources whose requirements differ from what the lock was resolved from."""
    names = sorted(set(lock.inputs) | set(current))
    return tuple(n for n in names if lock.inputs.get(n) != current.get(n))


def write_lock(project: Project, lock: Lock) -> Path:
    """Write the lock atomically (temp file + rename) and return its path."""
    path = lock_path(project.root, lock.target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_lock(lock))
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- resolving with uv

#: Where ``inv lock`` writes uv's full output for a target whose resolution failed.
LOG_DIR = Path("dist") / "logs"
#: Resolutions per target at most: each leaves out the releases with no loadable wheel.
MAX_PASSES = 6

_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NOT_FOUND_RE = re.compile(rf"Because ({_NAME}) was not found in the package registry")
_WHEELS_REQUIRED_RE = re.compile(r"Wheels are required for `([^`]+)`")
_NO_WHEEL_RE = re.compile(
    rf"(?:Because |and )(?:all versions of |only )?({_NAME})[^\s,]* (?:has|have) no "
    r"(?:usable )?wheels"
)


def parse_compiled(
    text: str, file_sources: Mapping[str, str]
) -> dict[NormalizedName, tuple[str, tuple[str, ...]]]:
    """Parse ``uv pip compile`` text output into ``name -> (version, required_by)``.

    ``file_sources`` maps the requirement file paths given to uv to source names, so that
    ``# via -r layers/x/requirements.txt`` becomes ``layer:x``.
    """
    result: dict[NormalizedName, tuple[str, tuple[str, ...]]] = {}
    current: NormalizedName | None = None
    parents: list[str] = []

    def flush() -> None:
        if current is not None:
            version = result[current][0]
            result[current] = (version, tuple(sorted(set(parents))))

    for raw in text.splitlines():
        line = raw.strip()
        match = _PIN_RE.match(raw)
        if match:
            flush()
            current = canonicalize_name(match.group(1))
            parents = []
            result[current] = (match.group(2), ())
            continue
        if current is None or not line.startswith("#"):
            continue
        body = line.lstrip("#").strip()
        if body.startswith("via"):
            body = body[3:].strip()
        if not body:
            continue
        if body.startswith("-r "):
            path = body[3:].strip()
            parents.append(file_sources.get(path, path))
        elif body.startswith(("-c ", "This file", "from ")):
            continue
        else:
            parents.append(canonicalize_name(body.split()[0]))
    flush()
    return result


def unusable_name(stderr: str) -> NormalizedName | None:
    """The distribution uv says has no usable wheel, if that is what its failure says."""
    found = _WHEELS_REQUIRED_RE.search(stderr) or _NO_WHEEL_RE.search(stderr)
    return canonicalize_name(found.group(1)) if found else None


def releases_without_wheel(files: Iterable[IndexFile], target: Target) -> set[str]:
    """Versions whose files include no wheel that loads on ``target`` (left out of the lock)."""
    fits: dict[str, bool] = {}
    for f in files:
        version = f.version
        if version is None:
            continue
        ok = f.is_wheel and wheel_fits(f.filename, target)
        fits[str(version)] = fits.get(str(version), False) or ok
    return {v for v, ok in fits.items() if not ok}


@dataclass
class _Uv:
    """``uv pip compile`` for one target, with the passes' exclusions; keeps every output."""

    project: Project
    target: Target
    tmp: Path
    sdists: set[str] = field(default_factory=set)
    excluded: dict[NormalizedName, set[str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    indexes: Indexes = field(default_factory=Indexes)
    constraints: tuple[str, ...] = ()  # the project's -c lines, for every resolution

    def compile(self, files: Iterable[str], extra: Sequence[str]) -> tuple[bool, str, str]:
        constraints = self.tmp / "excluded.txt"
        constraints.write_text(
            "".join(f"{c}\n" for c in self.constraints)
            + "".join(
                f"{name}{','.join(f'!={v}' for v in sorted(vs))}\n"
                for name, vs in sorted(self.excluded.items())
            )
        )
        args = [
            "pip",
            "compile",
            *files,
            *target_args(self.target, self.sdists),
            *self.indexes.args(),
            "--no-header",
            "--quiet",
            "--annotation-style",
            "split",
            "-c",
            str(constraints),
            *extra,
        ]
        proc = run_uv(args, cwd=self.project.root)
        shown = " ".join(redact_text(a) for a in args)
        self.log.append(f"$ uv {shown}\n{proc.stdout}{proc.stderr}")
        return proc.returncode == 0, proc.stdout, proc.stderr

    def failing_name(self, stderr: str) -> NormalizedName | None:
        """The distribution without a usable wheel that made uv fail, if that is the cause.

        Either uv says so, or the requirements pin a release the passes left out.
        """
        name = unusable_name(stderr)
        if name is None:
            found = (n for n in self.excluded if re.search(rf"\b{re.escape(n)}\b", stderr))
            name = next(found, None)
        return name

    def write_log(self) -> Path:
        """Write every uv run of this resolution to the target's log; its project-relative path."""
        rel = LOG_DIR / f"lock-{self.target.key}.log"
        path = self.project.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact_text("\n".join(self.log)), encoding="utf-8")
        return rel


def uv_inputs(project: Project, target: Target, folder: Path) -> dict[str, str]:
    """One requirements file per source in ``folder`` (its requirement lines only); path -> source.

    uv reads these, not the project's files: its constraints and indexes are passed on their
    own, the ``--hash`` options are checked by :func:`check_hashes`, and the ``# via -r``
    annotations name one file per source.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for number, (source, reqs) in enumerate(requirement_sources(project, target).items()):
        if reqs:
            path = folder / f"{number}-{source.replace(':', '-')}.txt"
            path.write_text("".join(f"{r.text}\n" for r in reqs), encoding="utf-8")
            files[str(path)] = source
    return files


def user_constraints(project: Project, target: Target) -> tuple[str, ...]:
    """Every ``-c`` line of the sources built for ``target`` (they bind the whole resolution)."""
    return tuple(
        r.text
        for reqs in sources(project, target).values()
        for r in reqs
        if r.kind is LineKind.CONSTRAINT
    )


def resolve(
    project: Project,
    target: Target,
    previous: Lock | None = None,
    index: PackageIndex | None = None,
    upgrade_packages: Iterable[str] = (),
) -> Lock:
    """Resolve the requirements of the layers and functions built for ``target`` (network I/O).

    Versions in ``previous`` are kept where they still satisfy the requirements, so changing one
    layer's requirements does not move every other layer (pass ``None`` to upgrade everything;
    ``upgrade_packages`` lets those names move to their newest release).
    """
    if target not in project.targets:
        raise SpecError(
            f"no layer lists {target.key}, so there is nothing to lock for it: the targets are "
            f"{', '.join(t.key for t in project.targets)}. Add the runtime to `runtimes` (and "
            "the architecture to `architectures`) in a layer's layer.toml to build it."
        )
    indexes = target_indexes(project, target)
    index = index or PyPI()
    allowed = {
        n for layer in project.layers if target in layer.targets() for n in layer.allow_sdist
    }
    moving = {canonicalize_name(n) for n in upgrade_packages}
    with tempfile.TemporaryDirectory(prefix="layerkit-lock-") as tmp:
        files = uv_inputs(project, target, Path(tmp) / "inputs")
        uv = _Uv(
            project,
            target,
            Path(tmp),
            indexes=indexes,
            constraints=user_constraints(project, target),
        )
        pins_file = Path(tmp) / "resolved.txt"
        if previous is not None:
            kept = [p for p in previous.packages if p.name not in moving]
            pins_file.write_text("".join(f"{p.pin}\n" for p in kept))
        for _ in range(MAX_PASSES):
            ok, _, err = uv.compile(files, ["-o", str(pins_file), "--emit-index-annotation"])
            if not ok:
                name = uv.failing_name(err)
                if name is not None and name in allowed and name not in uv.sdists:
                    uv.sdists.add(name)  # no wheel loads: the layer allows its sdist
                    uv.excluded.pop(name, None)  # releases without a wheel are fine now
                    continue
                raise explain_failure(project, target, err, uv, index)
            compiled = pins_file.read_text()
            graph = parse_compiled(compiled, files)
            origins = index_annotations(compiled)
            ok, out, err = uv.compile(files, ["-c", str(pins_file), "--format", "pylock.toml"])
            if not ok:
                raise explain_failure(project, target, err, uv, index)
            entries = {
                canonicalize_name(p["name"]): p for p in tomllib.loads(out).get("packages", [])
            }
            packages, unloadable = _choose(graph, entries, target, origins, indexes)
            if not unloadable:
                break
            for name, version in unloadable:
                without = releases_without_wheel(index.files(name), target) | {version}
                uv.excluded[name] = uv.excluded.get(name, set()) | without
        else:
            raise LockError(
                f"resolving {target.key} did not settle after {MAX_PASSES} passes that each left "
                "out releases with no wheel for the runtime; uv's output is in "
                f"{uv.write_log()}. Pin the distributions it names to a release with a "
                f"manylinux_2_{target.glibc[1]} (or older) wheel."
            )
        for pkg in packages:
            if pkg.is_sdist:
                check_sdist(project, target, pkg, Path(tmp))
    lock = Lock(target, input_hashes(project, target), tuple(packages))
    check_hashes(project, lock)
    reached = closure((n for s in sources(project, target) for n in _direct(lock, s)), lock)
    orphans = sorted({p.name for p in packages} - reached)
    if orphans:
        raise LockError(
            f"could not tell which layer or function needs {', '.join(orphans)}: uv's output "
            "did not say. Please report this with the output of `uv --version`."
        )
    return lock


_FROM_RE = re.compile(r"^\s*#\s*from\s+(\S+)\s*$")


def index_annotations(text: str) -> dict[NormalizedName, str]:
    """``name -> index URL`` from uv's ``--emit-index-annotation`` output (``# from URL``)."""
    found: dict[NormalizedName, str] = {}
    current: NormalizedName | None = None
    for raw in text.splitlines():
        match = _PIN_RE.match(raw)
        if match:
            current = canonicalize_name(match.group(1))
            continue
        origin = _FROM_RE.match(raw)
        if origin and current is not None:
            found[current] = redact_url(origin.group(1))
    return found


def _origin(name: NormalizedName, origins: Mapping[NormalizedName, str], indexes: Indexes) -> str:
    """The index a distribution came from, as the lock records it ("" for the default PyPI)."""
    url = origins.get(name, "")
    if not url or url.rstrip("/") == indexes.default_url.rstrip("/") == PYPI_SIMPLE:
        return ""
    return redact_url(url)


def check_hashes(project: Project, lock: Lock) -> None:
    """Refuse a lock whose wheel is not one a requirement's ``--hash`` options allow (pure)."""
    for reqs in requirement_sources(project, lock.target).values():
        for req in reqs:
            if not req.hashes:
                continue
            locked = next((p for p in lock.packages if p.name == req.name), None)
            if locked is None or locked.sha256 in req.hashes:
                continue
            raise LockError(
                f"{req.where}: {req.text} allows {len(req.hashes)} hash(es), but the "
                f"{lock.target.key} lock resolves {locked.pin} to {locked.filename} with sha256 "
                f"{locked.sha256}, which is not one of them. Either the index serves other "
                f"files than when the hashes were written (check {locked.index or 'PyPI'}), "
                "or the hashes belong to another version: regenerate them (`pip-compile "
                "--generate-hashes`, or `pip hash` of the wheel) and run `inv lock` again."
            )


def _choose(
    graph: Mapping[NormalizedName, tuple[str, tuple[str, ...]]],
    entries: Mapping[NormalizedName, Mapping[str, Any]],
    target: Target,
    origins: Mapping[NormalizedName, str] | None = None,
    indexes: Indexes | None = None,
) -> tuple[list[LockedPackage], list[tuple[NormalizedName, str]]]:
    """The one file per distribution, and the distributions whose release has no loadable wheel."""
    packages: list[LockedPackage] = []
    unloadable: list[tuple[NormalizedName, str]] = []
    for name, (version, required_by) in sorted(graph.items()):
        entry = entries.get(name)
        if entry is None or entry.get("version") != version:
            raise LockError(
                f"uv's pylock output has no entry for {name}=={version} on {target.key}; "
                "run `inv lock` again (an upload may have happened in between)."
            )
        wheels = {w["url"].rsplit("/", 1)[-1]: w for w in entry.get("wheels", [])}
        best = best_wheel(wheels, target)
        if best is not None:
            chosen = wheels[best]
        elif not wheels and "sdist" in entry:
            chosen = entry["sdist"]  # only where a layer allows it (uv --no-binary)
        else:
            unloadable.append((name, version))
            continue
        packages.append(
            LockedPackage(
                name=name,
                version=version,
                wheel=redact_url(chosen["url"]),
                sha256=chosen["hashes"]["sha256"],
                size=int(chosen.get("size", 0)),
                required_by=required_by,
                index=_origin(name, origins or {}, indexes or Indexes()),
            )
        )
    return packages, unloadable


# ---------------------------------------------------------------- explaining failures


def _spots(project: Project, target: Target, name: str) -> list[LineRequirement]:
    return [
        req
        for reqs in requirement_sources(project, target).values()
        for req in reqs
        if req.name == canonicalize_name(name)
    ]


def _index_words(indexes: Indexes) -> str:
    """``PyPI`` when that is the only index, else every index asked (without credentials)."""
    if not indexes.extra and not indexes.find_links and indexes.default is None:
        return "PyPI"
    return f"any index asked ({indexes.shown()})"


def _where(project: Project, target: Target, name: str) -> str:
    spots = [f"{req.where} ({req.text})" for req in _spots(project, target, name)]
    return "required at " + ", ".join(spots) if spots else "pulled in by another requirement"


def explain_failure(
    project: Project, target: Target, stderr: str, uv: _Uv, index: PackageIndex
) -> LayerkitError:
    """Turn uv's failure into one paragraph: what clashes, through what, and the fix."""
    log = uv.write_log()
    unreachable = index_failure(stderr, uv.indexes, target, log)
    if unreachable is not None:
        return unreachable
    found = _NOT_FOUND_RE.search(stderr)
    if found:
        name = found.group(1)
        return SpecError(
            f"package {name!r} is not on {_index_words(uv.indexes)}; "
            f"{_where(project, target, name)}. Check the "
            f"spelling of the requirement. uv's full output: {log}."
        )
    name = uv.failing_name(stderr)
    if name is not None:
        return no_wheel_error(project, target, name, index.files(name), log)
    conflict = find_conflict(project, target, uv, index)
    if isinstance(conflict, LayerkitError):
        return conflict
    if conflict is not None:
        return LockError(f"{conflict} uv's full output: {log}.")
    cause = next((ln.strip() for ln in stderr.splitlines() if "cause:" in ln), "")
    cause = cause.removeprefix("cause:").strip().rstrip(".")
    cause = cause if len(cause) <= 300 else cause[:297] + "..."
    files = ", ".join(
        str(source_file(project, s)) for s, r in requirement_sources(project, target).items() if r
    )
    named = {canonicalize_name(w) for w in re.findall(_NAME, cause)}
    limits = [
        f"{r.where} ({r.text})"
        for reqs in sources(project, target).values()
        for r in reqs
        if r.kind is LineKind.CONSTRAINT and r.name in named
    ]
    also = f" The constraint {', '.join(limits)} takes part." if limits else ""
    if uv.indexes.extra and named:
        also += (
            " A name found on an extra index is taken from that index only (first-index: "
            "no other index's releases of it are considered)."
        )
    return LockError(
        f"the requirements for {target.key} cannot be resolved together (from {files}). uv "
        f"concludes: {cause or 'no solution'}.{also} Relax or align the requirement lines it names "
        f"and run `inv lock` again; uv's full output ({len(stderr.splitlines())} lines): {log}."
    )


_AUTH_RE = re.compile(
    r"(?:index|URL)\s*\(?`?(?P<url>[a-z][a-z0-9+.-]*://[^\s`)]+)`?\)? returned an? "
    r"(?P<code>401|403)\b"
)
_STATUS_RE = re.compile(
    r"(?:HTTP status|status code|status)\D{0,20}(?P<code>401|403)\b.*?(?P<url>[a-z][a-z0-9+.-]*://[^\s`)]+)",
    re.IGNORECASE,
)
_FETCH_RE = re.compile(r"Failed to fetch:? `?(?P<url>[a-z][a-z0-9+.-]*://[^\s`]+)`?")
_OFFLINE_RE = re.compile(
    r"Network connectivity is disabled|not found in the cache|offline", re.IGNORECASE
)
_NETWORK_RE = re.compile(
    r"error sending request|tcp connect error|Connection refused|dns error|failed to lookup "
    r"address|timed out|operation timed out|Could not connect|connection reset|tls|certificate",
    re.IGNORECASE,
)


def _index_of(url: str, indexes: Indexes) -> str:
    """The configured index that ``url`` lies under (shown without credentials), else ``url``."""
    bare = redact_url(url)
    for index in indexes.all:
        prefix = _without_auth(index.shown).rstrip("/")
        if prefix and _without_auth(bare).startswith(prefix.rsplit("/simple", 1)[0]):
            return f"{index.shown} ({index.where})"
    return bare


def _without_auth(url: str) -> str:
    return url.replace("***@", "")


def index_failure(stderr: str, indexes: Indexes, target: Target, log: Path) -> LockError | None:
    """One paragraph when uv failed because an index refused or could not be reached (pure).

    That is never a requirements clash: the paragraph names the index (without credentials),
    what it answered, and the fix (credentials, the URL, or the offline hint).
    """
    text = redact_text(stderr)
    auth = _AUTH_RE.search(text) or _STATUS_RE.search(text)
    if auth is not None:
        where = _index_of(auth.group("url"), indexes)
        meaning = (
            "credentials missing or wrong" if auth.group("code") == "401" else "credentials refused"
        )
        return LockError(
            f"the index {where} refused layerkit's request for {target.key} with HTTP "
            f"{auth.group('code')} ({meaning}). "
            "Give uv the right user and password: in the URL (`https://user:${TOKEN}@host/simple`, "
            "the variable read from the environment), in ~/.netrc, with keyring "
            "(UV_KEYRING_PROVIDER=subprocess), or for an index named in layerkit's settings "
            "(`name=URL`) in UV_INDEX_<NAME>_USERNAME and UV_INDEX_<NAME>_PASSWORD; then run "
            f"`inv lock` again. uv's full output: {log}."
        )
    offline = _OFFLINE_RE.search(text)
    fetch = _FETCH_RE.search(text)
    if offline is not None and (fetch is not None or "cache" in offline.group(0).lower()):
        return LockError(
            f"resolving {target.key} needs the network, but uv runs offline (UV_OFFLINE is set) "
            f"and its cache lacks what the indexes ({indexes.shown()}) would answer. Run "
            "`inv lock` once online (a build installs from the lock and uv's warm cache "
            f"offline, a new resolution does not). uv's full output: {log}."
        )
    if fetch is not None and _NETWORK_RE.search(text):
        where = _index_of(fetch.group("url"), indexes)
        cause = next(
            (
                ln.strip().removeprefix("cause:").strip()
                for ln in reversed(text.splitlines())
                if "cause:" in ln
            ),
            "no answer",
        )
        return LockError(
            f"the index {where} could not be reached while resolving {target.key} ({cause}); "
            "this is not a requirements clash. Check the URL and the network (a proxy, a VPN), "
            "or, to build from what was already downloaded, keep the committed lock: builds "
            "install from it and uv's cache, and work offline with UV_OFFLINE=1. uv's full "
            f"output: {log}."
        )
    return None


def no_wheel_error(
    project: Project,
    target: Target,
    name: str,
    files: Sequence[IndexFile],
    log: Path,
    lines: Sequence[LineRequirement] | None = None,
) -> WheelTagError:
    """One paragraph: no wheel of ``name`` loads; which releases and tags exist; the fix (pure).

    ``lines`` are the requirement lines at fault (default: every line that names ``name``).
    """
    spots = list(lines) if lines is not None else _spots(project, target, name)
    wanted = SpecifierSet(",".join(str(Requirement(r.text).specifier) for r in spots))
    releases: dict[Version, list[IndexFile]] = {}
    for f in files:
        if f.version is not None and not f.yanked:
            releases.setdefault(f.version, []).append(f)
    python = target.python_full_version
    abi = "{}{}".format(*target.python_version)

    def fits(v: Version) -> bool:
        return any(f.is_wheel and wheel_fits(f.filename, target) for f in releases[v])

    def describe(v: Version) -> str:
        needs = {f.requires_python for f in releases[v] if f.requires_python}
        if needs and not any(SpecifierSet(n).contains(python) for n in needs):
            return f"{v} (needs Python {sorted(needs)[0]})"
        tags = sorted(
            {
                wheel_tags_text(f.filename)
                for f in releases[v]
                if f.is_wheel
                and (
                    f.filename.endswith("-any.whl")
                    or ("linux" in f.filename and target.machine in f.filename)
                )
            }
        )
        own = [t for t in tags if re.search(rf"\b(cp{abi}|abi3|py3|py2\.py3)\b", t)]
        tags = own or tags
        if not tags:
            kinds = (
                "an sdist only" if all(not f.is_wheel for f in releases[v]) else "no Linux wheel"
            )
            return f"{v} ({kinds})"
        shown = ", ".join(tags[:4]) + (f" and {len(tags) - 4} more" if len(tags) > 4 else "")
        return f"{v} ({shown})"

    newest = sorted(releases, reverse=True)
    in_range = [v for v in newest if wanted.contains(v) and not v.is_prerelease] or newest
    existing = "; ".join(describe(v) for v in in_range[:3]) or "none"
    fitting = [v for v in newest if not v.is_prerelease and fits(v)]
    where = (
        "required at " + ", ".join(f"{r.where} ({r.text})" for r in spots)
        if spots
        else "pulled in by another requirement"
    )
    tomls = sorted(
        {
            str(source_file(project, s).parent / "layer.toml")
            for s in _sources_of(project, target, name)
        }
    )
    toml = " or ".join(tomls) or "the layer.toml of the layer that needs it"
    if fitting and spots:
        fix = (
            f"the newest release with such a wheel is {fitting[0]}: change "
            f"{spots[0].where} to allow it (for example {name}<={fitting[0]})"
        )
    elif fitting:
        fix = f"the newest release with such a wheel is {fitting[0]}: require {name}<={fitting[0]}"
    elif any(not f.is_wheel for fs in releases.values() for f in fs):
        fix = (
            f'if it is pure Python, add allow-sdist = ["{name}"] to {toml} to build it from '
            f"source with {target.runtime}, or choose another package"
        )
    else:
        fix = f"remove {target.runtime} from `runtimes` in {toml}, or choose another package"
    pinned = {
        str(s.version) for r in spots for s in Requirement(r.text).specifier if s.operator == "=="
    }
    subject = (
        f"{name} {pinned.pop()} has no wheel"
        if len(pinned) == 1
        else f"{name} has no release with a wheel"
    )
    return WheelTagError(
        f"{subject} that loads on {target.description} "
        f"({where}). Releases{' in that range' if spots else ''}, newest "
        f"first: {existing}. Fix: {fix}; then run `inv lock` again. uv's full output: {log}."
    )


def _sources_of(project: Project, target: Target, name: str) -> list[str]:
    """The layer sources whose lines name ``name``, else every layer built for the target."""
    direct = [
        s
        for s, reqs in requirement_sources(project, target).items()
        if s.startswith("layer:") and any(r.name == canonicalize_name(name) for r in reqs)
    ]
    return direct or [s for s in sources(project, target) if s.startswith("layer:")]


@dataclass(frozen=True)
class LineGraph:
    """One requirement line resolved alone (its graph): where the chains of a conflict start."""

    source: str
    req: LineRequirement
    graph: Mapping[NormalizedName, tuple[str, tuple[str, ...]]]


def _path(
    graph: Mapping[NormalizedName, tuple[str, tuple[str, ...]]], root: str, name: str
) -> list[str]:
    """The shortest chain of distributions from the line's source to ``name`` in its graph."""
    children: dict[str, list[str]] = {}
    for child, (_, parents) in graph.items():
        for parent in parents:
            children.setdefault(parent, []).append(child)
    queue: list[list[str]] = [[root]]
    seen = {root}
    while queue:
        chain = queue.pop(0)
        if chain[-1] == name:
            return chain[1:]
        for child in sorted(children.get(chain[-1], ())):
            if child not in seen:
                seen.add(child)
                queue.append([*chain, child])
    return []


def _demand(
    line: LineGraph, name: NormalizedName, target: Target, index: PackageIndex
) -> tuple[SpecifierSet, str] | None:
    """What the chain from ``line`` asks of ``name``, and those words (None: it asks nothing)."""
    chain = _path(line.graph, line.source, name)
    if not chain:
        return None
    if len(chain) == 1:
        spec = Requirement(line.req.text).specifier
        return spec, f"{line.req.where} asks for {line.req.text}"
    parent = chain[-2]
    version = line.graph[canonicalize_name(parent)][0]
    env = target.marker_environment
    for text in index.requires_dist(parent, version):
        req = Requirement(text)
        if canonicalize_name(req.name) != name:
            continue
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        via = f" via {', '.join(chain[1:-2])}" if len(chain) > 3 else ""
        words = (
            f"{parent} {version}, carried by {source_label(line.source)} ({line.req.where}: "
            f"{line.req.text}{via}), requires {name}{req.specifier} on {target.runtime}"
        )
        return req.specifier, words
    return None


def find_conflict(project: Project, target: Target, uv: _Uv, index: PackageIndex) -> str | None:
    """Name two requirement lines whose demands on one distribution no release meets together.

    Each line is resolved alone; then, for every distribution two lines reach, what each chain
    asks of it (the line itself, or the requirement of the distribution that pulls it in, its
    markers evaluated for the runtime) is intersected and tested against every release.
    """
    lines: list[LineGraph] = []
    for source, reqs in requirement_sources(project, target).items():
        for req in reqs:
            one = uv.tmp / f"line-{len(lines)}.txt"
            one.write_text(req.text + "\n")
            ok, out, err = uv.compile([str(one)], [])
            if not ok:  # that line alone cannot be met: say why, for that line
                name = unusable_name(err)
                if name is not None:
                    at_fault = [req] if req.name == name else None
                    return no_wheel_error(
                        project, target, name, index.files(name), uv.write_log(), at_fault
                    )
                return None
            lines.append(LineGraph(source, req, parse_compiled(out, {str(one): source})))
    return conflict_between(lines, target, index)


def conflict_between(lines: Sequence[LineGraph], target: Target, index: PackageIndex) -> str | None:
    """The first clash between two lines' chains, as a sentence with its fix (pure but index)."""
    names = sorted({n for line in lines for n in line.graph})
    for name in names:
        demands = [(line, d) for line in lines if (d := _demand(line, name, target, index))]
        for i, (line_a, (spec_a, words_a)) in enumerate(demands):
            for line_b, (spec_b, words_b) in demands[i + 1 :]:
                if line_a.req is line_b.req:
                    continue
                versions = sorted(
                    {f.version for f in index.files(name) if f.version and not f.yanked},
                    reverse=True,
                )
                if not versions or any(spec_a.contains(v) and spec_b.contains(v) for v in versions):
                    continue
                return _conflict_sentence(
                    name, target, (line_a, spec_a, words_a), (line_b, spec_b, words_b), versions
                )
    return None


def _conflict_sentence(
    name: str,
    target: Target,
    a: tuple[LineGraph, SpecifierSet, str],
    b: tuple[LineGraph, SpecifierSet, str],
    versions: Sequence[Version],
) -> str:
    direct = [x for x in (a, b) if x[0].req.name == name]
    if direct:
        mine = direct[0]
        other = b if mine is a else a
        accepted = [v for v in versions if other[1].contains(v)]
        fix = f"change {mine[0].req.where} to a range the other side accepts" + (
            f" (the newest {name} it accepts is {accepted[0]})" if accepted else ""
        )
    else:
        fix = (
            f"pin {a[0].req.name} or {b[0].req.name} to releases that agree on {name}, or move "
            "one of them to a layer no function attaches together with the other"
        )
    alone = ", ".join(
        f"{line.source} alone resolves {line.graph[canonicalize_name(name)][0]}"
        for line in sorted({a[0].source: a[0], b[0].source: b[0]}.values(), key=lambda x: x.source)
    )
    return (
        f"the requirements for {target.key} clash over {name} ({name}: {alone}): {a[2]}, while "
        f"{b[2]}, and no "
        f"{name} release satisfies both. Fix: {fix}, then run `inv lock` again "
        "(every layer of a function is unpacked into the same /opt)."
    )


def lock_all(
    project: Project,
    *,
    upgrade: bool = False,
    on_target: Callable[[Target], None] | None = None,
) -> tuple[tuple[Path, Lock], ...]:
    """Resolve every target's lock, then write them all: all or nothing.

    Each lock keeps the versions of the one on disk unless ``upgrade``; ``on_target`` is told
    before each target resolves. Nothing is written unless every target resolved.
    """
    locks = []
    for target in project.targets:
        path = lock_path(project.root, target)
        previous = None if upgrade or not path.exists() else parse_lock(path.read_text(), path)
        if on_target is not None:
            on_target(target)
        locks.append(resolve(project, target, previous))
    return tuple((write_lock(project, lock), lock) for lock in locks)


# ---------------------------------------------------------------- what a relock moves


class MoveKind(enum.Enum):
    """How one distribution's locked version changed for one layer or function."""

    ADDED = "added"
    REMOVED = "removed"
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"


@dataclass(frozen=True)
class VersionMove:
    """One distribution of one layer or function whose locked version changed."""

    owner: str  # "layer:<name>" or "function:<name>"
    name: NormalizedName
    before: str  # "" when added
    after: str  # "" when removed
    cause: str  # "path:line (requirement)" of the line behind it, or a sentence, or ""
    owner_changed: bool  # whether the owner's own requirement lines changed

    @property
    def kind(self) -> MoveKind:
        """Added, removed, upgraded or downgraded."""
        if not self.before:
            return MoveKind.ADDED
        if not self.after:
            return MoveKind.REMOVED
        return (
            MoveKind.UPGRADED if Version(self.after) > Version(self.before) else MoveKind.DOWNGRADED
        )

    @property
    def label(self) -> str:
        """``core-data-science`` or ``function fn``."""
        return source_label(self.owner)


@dataclass(frozen=True)
class LockDiff:
    """Every locked version that a relock of one target changed, per layer and function."""

    target: str
    moves: tuple[VersionMove, ...]

    HEADERS: ClassVar[tuple[str, ...]] = (
        "target",
        "layer or function",
        "distribution",
        "from",
        "to",
        "because of",
    )

    def rows(self) -> list[list[str]]:
        """The table rows, in the order of :attr:`HEADERS`."""
        return [
            [self.target, m.label, m.name, m.before or "-", m.after or "-", m.cause or "--upgrade"]
            for m in self.moves
        ]


def _shares(project: Project, lock: Lock) -> dict[str, dict[NormalizedName, str]]:
    """``owner -> {distribution: version}`` of what each layer and function carries."""
    versions = {p.name: p.version for p in lock.packages}
    parts = partition(project, lock)
    shares = {f"layer:{k}": {n: versions[n] for n in v} for k, v in parts.layers.items()}
    shares.update(
        {f"function:{k}": {n: versions[n] for n in v} for k, v in parts.functions.items()}
    )
    return shares


def _cause(
    project: Project,
    reqs: Mapping[str, Sequence[LineRequirement]],
    name: NormalizedName,
    owner: str,
    changed: Sequence[str],
) -> str:
    """The line that most likely moved ``name``: a changed source's, else the owner's.

    ``reqs`` is :func:`requirement_sources` of the relocked target (read once per diff).
    """
    lines = [r for s in changed for r in reqs.get(s, ()) if r.name == name]
    lines = lines or [r for r in reqs.get(owner, ()) if r.name == name]
    if lines:
        return f"{lines[0].where} ({lines[0].text})"
    files = [str(source_file(project, s)) for s in changed if s in reqs]
    return f"a change in {', '.join(files)}" if files else ""


def diff_locks(project: Project, before: Lock | None, after: Lock) -> LockDiff:
    """What moved from ``before`` to ``after``, per layer and function (pure; empty: first lock)."""
    if before is None:
        return LockDiff(after.target.key, ())
    changed = stale_sources(before, after.inputs)
    old, new = _shares(project, before), _shares(project, after)
    reqs = requirement_sources(project, after.target)
    moves = []
    for owner in sorted(set(old) | set(new)):
        was, now = old.get(owner, {}), new.get(owner, {})
        for name in sorted(set(was) | set(now)):
            if was.get(name) == now.get(name):
                continue
            moves.append(
                VersionMove(
                    owner,
                    name,
                    was.get(name, ""),
                    now.get(name, ""),
                    _cause(project, reqs, name, owner, changed),
                    owner in changed,
                )
            )
    return LockDiff(after.target.key, tuple(moves))


def refuse_silent_moves(
    project: Project, diff: LockDiff, upgrade: bool, upgrade_packages: Iterable[str] = ()
) -> None:
    """Refuse a version move in a layer or function whose own requirements did not change.

    Such a move is forced by another source (a new pin, a function's pin) and needs
    ``--upgrade`` or ``--upgrade-package NAME``; the paragraph names the pin and what it moves.
    """
    if upgrade:
        return
    allowed = {canonicalize_name(n) for n in upgrade_packages}
    silent = [
        m
        for m in diff.moves
        if m.before and m.after and not m.owner_changed and m.name not in allowed
    ]
    if not silent:
        return
    name = silent[0].name
    mine = [m for m in silent if m.name == name]
    moved = ", ".join(f"{m.label} ({m.before} -> {m.after})" for m in mine)
    cause = mine[0].cause
    forced = f"the pin {cause} forces it" if "(" in cause else (cause or "a changed requirement")
    function_pin = any(
        cause.startswith(f"{source_file(project, f'function:{fn.name}').parent}/")
        for fn in project.functions
    )
    both = (
        f"; that function pin conflicts with the {name} {mine[0].before} that "
        f"{', '.join(m.label for m in mine if m.owner.startswith('layer:'))} carries"
        if function_pin and any(m.owner.startswith("layer:") for m in mine)
        else ""
    )
    others = sorted({m.name for m in silent} - {name})
    also = f" It would also move {', '.join(others)}." if others else ""
    raise LockError(
        f"locking {diff.target} would move {name} in {moved}, whose own requirements did not "
        f"change: {forced}{both}. Nothing was written. To accept the move run `inv lock "
        f"--upgrade-package {name}` (or `--upgrade` for every distribution); to keep "
        f"{name} {mine[0].before}, change that line to allow it.{also}"
    )


# ---------------------------------------------------------------- size before download

#: Installed bytes per byte of wheel, measured on this repository's locks: 2.99 for
#: python3.12-x86_64 (95.0 MB of wheels install to 283.7 MB) and 2.96 for python3.9-x86_64
#: (100.8 MB to 298.8 MB); single wheels range from 1.28 (botocore) to 7.07 (boto3).
UNZIPPED_PER_WHEEL_BYTE = 3.0
#: Lambda's limit for a function and all its layers, unzipped (the same as check.sizes').
LAMBDA_UNZIPPED_LIMIT = FUNCTION_UNZIPPED_LIMIT


@dataclass(frozen=True)
class SizeEstimate:
    """One layer's or function's size, estimated from its wheels' sizes before any download."""

    owner: str
    wheel_bytes: int  # the sum of its locked files' sizes, as the index gives them
    biggest: tuple[tuple[str, int], ...]  # (pin, bytes), largest first
    unknown: tuple[str, ...] = ()  # distributions whose size the index did not give

    @property
    def zipped(self) -> int:
        """About the zip's size: wheels are zips of the same files, deflated alike."""
        return self.wheel_bytes

    @property
    def unzipped(self) -> int:
        """About the unpacked size: :data:`UNZIPPED_PER_WHEEL_BYTE` times the wheels' bytes."""
        return int(self.wheel_bytes * UNZIPPED_PER_WHEEL_BYTE)

    @property
    def certainly_over(self) -> bool:
        """Whether even the compressed wheels exceed Lambda's unzipped limit.

        Unpacking never shrinks a wheel (the smallest ratio measured is 1.28), and slimming
        removes tests and docs, not gigabytes of libraries.
        """
        return self.wheel_bytes > LAMBDA_UNZIPPED_LIMIT


def estimate_sizes(project: Project, lock: Lock) -> tuple[SizeEstimate, ...]:
    """Each layer's and function's estimated size from the lock's file sizes (pure)."""
    by_name = {p.name: p for p in lock.packages}
    parts = partition(project, lock)
    owned = [(f"layer:{k}", v) for k, v in parts.layers.items()]
    owned += [(f"function:{k}", v) for k, v in parts.functions.items()]
    found = []
    for owner, names in owned:
        if not names:
            continue
        pkgs = [by_name[n] for n in names]
        biggest = sorted(((p.pin, p.size) for p in pkgs), key=lambda x: (-x[1], x[0]))
        found.append(
            SizeEstimate(
                owner,
                sum(p.size for p in pkgs),
                tuple(biggest[:5]),
                tuple(sorted(p.pin for p in pkgs if p.size <= 0)),
            )
        )
    return tuple(found)


def refuse_oversized(project: Project, lock: Lock, estimates: Sequence[SizeEstimate]) -> None:
    """One paragraph for a layer or function certain to exceed Lambda's limit (pure)."""
    for est in estimates:
        if not est.certainly_over:
            continue
        biggest = ", ".join(f"{pin} ({size / 1e6:,.1f} MB)" for pin, size in est.biggest[:3])
        raise LockError(
            f"{source_label(est.owner)} on {lock.target.key} cannot fit in Lambda: its wheels "
            f"alone are {est.wheel_bytes:,} bytes (about {est.unzipped:,} unpacked), over "
            f"Lambda's {LAMBDA_UNZIPPED_LIMIT:,}-byte unzipped limit, so nothing was downloaded "
            f"or written. Biggest: {biggest}. Ways out: a smaller build of the biggest from "
            "another index (a CPU-only index for machine-learning libraries: add it with "
            "`--extra-index-url` or `extra-index-urls`), moving some distributions to another "
            "layer that functions attach only where needed, or a container image (up to 10 GB)."
        )


@dataclass(frozen=True)
class TargetLock:
    """One target's new lock, what it moved and its size estimates (not yet written)."""

    lock: Lock
    diff: LockDiff
    sizes: tuple[SizeEstimate, ...]


def _lock_on_disk(path: Path, *, tolerant: bool) -> Lock | None:
    """The lock at ``path`` (None: none); with ``tolerant`` an unreadable one counts as none.

    ``--upgrade`` ignores the locked versions, so it can replace a damaged or older lock.
    """
    if not path.exists():
        return None
    try:
        return parse_lock(path.read_text(), path)
    except LockError:
        if tolerant:
            return None
        raise


def lock_targets(
    project: Project,
    *,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    on_target: Callable[[Target], None] | None = None,
) -> tuple[tuple[Path, TargetLock], ...]:
    """Resolve every target, refuse silent moves and certain oversizes, then write all locks.

    All or nothing: no lock is written unless every target resolved and passed both checks.
    """
    done = []
    for target in project.targets:
        path = lock_path(project.root, target)
        before = _lock_on_disk(path, tolerant=upgrade)
        if on_target is not None:
            on_target(target)
        after = resolve(
            project, target, None if upgrade else before, upgrade_packages=upgrade_packages
        )
        diff = diff_locks(project, before, after)
        refuse_silent_moves(project, diff, upgrade, upgrade_packages)
        sizes = estimate_sizes(project, after)
        refuse_oversized(project, after, sizes)
        done.append(TargetLock(after, diff, sizes))
    return tuple((write_lock(project, t.lock), t) for t in done)


# ---------------------------------------------------------------- partition


@dataclass(frozen=True)
class Partition:
    """Which locked distributions each layer and function package carries."""

    layers: Mapping[str, tuple[NormalizedName, ...]]
    functions: Mapping[str, tuple[NormalizedName, ...]]

    def shared(self) -> dict[NormalizedName, tuple[str, ...]]:
        """Distributions carried by more than one layer (only layers independent of each other)."""
        owners: dict[NormalizedName, list[str]] = {}
        for layer, names in self.layers.items():
            for name in names:
                owners.setdefault(name, []).append(layer)
        return {n: tuple(o) for n, o in sorted(owners.items()) if len(o) > 1}


def closure(roots: Iterable[NormalizedName], lock: Lock) -> set[NormalizedName]:
    """Every locked distribution reachable from ``roots`` through dependencies."""
    children: dict[str, set[NormalizedName]] = {}
    for pkg in lock.packages:
        for parent in pkg.required_by:
            children.setdefault(parent, set()).add(pkg.name)
    seen: set[NormalizedName] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(children.get(name, ()))
    return seen


def _direct(lock: Lock, source: str) -> set[NormalizedName]:
    return {p.name for p in lock.packages if source in p.required_by}


def partition(project: Project, lock: Lock) -> Partition:
    """Split the lock into each layer's and each function's share (pure).

    A layer or function that is not built for the lock's target gets an empty share.
    """
    layers: dict[str, tuple[NormalizedName, ...]] = {}
    for layer in project.layers:  # required layers come first
        if lock.target not in layer.targets():
            layers[layer.name] = ()  # never built for this target
            continue
        needed = closure(_direct(lock, f"layer:{layer.name}"), lock)
        below = {n for req in project.required_closure(layer.name) for n in layers[req]}
        layers[layer.name] = tuple(sorted(needed - below))
    functions: dict[str, tuple[NormalizedName, ...]] = {}
    built = buildable_functions(project, lock.target)
    for fn in project.functions:
        if fn not in built:
            functions[fn.name] = ()
            continue
        needed = closure(_direct(lock, f"function:{fn.name}"), lock)
        attached = {n for name in fn.layers for n in layers.get(name, ())}
        functions[fn.name] = tuple(sorted(needed - attached))
    return Partition(layers, functions)
