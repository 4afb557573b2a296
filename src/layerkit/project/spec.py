"""The project description: layers, functions and the template, read once into frozen data.

A layer is its folder ``layers/<name>/``: ``requirements.txt`` plus ``layer.toml`` (what it
requires, its budget, runtimes, slim rules, bytecode mode, smoke test). A function is its folder
plus its resource in ``template.yaml``, which says which layers it attaches; the folder is the
resource's ``CodeUri`` when that names a folder (SAM style), else ``functions/<name>/`` for a
``CodeUri`` naming the zip ``dist/functions/<name>.zip``. Where these live is configurable in
``[tool.layerkit]`` (:mod:`layerkit.project.config`); the names above are the defaults.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from layerkit.errors import SpecError
from layerkit.project.config import ProjectConfig, load_config
from layerkit.project.requirements import (
    LineRequirement,
    canonical_text,
    read_requirements,
    redacted_settings,
    settings_index_lines,
)
from layerkit.project.template import Template, TemplateFunction, TemplateLayer, read_template
from layerkit.runtime.target import ARCHITECTURES, RUNTIMES, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The default layout (a project's own is ``project.config``, from ``[tool.layerkit]``).
LAYERS_DIR = ProjectConfig.layers_dir
FUNCTIONS_DIR = ProjectConfig.functions_dir
TEMPLATE_FILE = ProjectConfig.template
BYTECODE_MODES = ("all", "imported", "none", "sourceless")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}


def parse_size(text: str | int, where: str) -> int:
    """Parse ``"100 MB"`` (10^6 bytes), ``"250 MiB"`` (2^20) or a plain byte count."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise SpecError(f'{where}: size {text!r} is not understood; write e.g. "100 MB".')
    if isinstance(text, int):
        if text < 0:
            raise SpecError(f"{where}: size {text} is negative.")
        return text
    match = _SIZE_RE.match(text)
    if match is None:
        raise SpecError(
            f"{where}: size {text!r} is not understood; write a number with a unit such as "
            '"100 MB" (10^6 bytes) or "250 MiB" (2^20 bytes).'
        )
    return int(Decimal(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class SlimConfig:
    """How a layer is slimmed (``[slim]`` in layer.toml). A keep pattern wins over a remove."""

    remove: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    strip: bool = True
    botocore_services: tuple[str, ...] | None = None  # None: keep every service


@dataclass(frozen=True)
class Layer:
    """A layer, as described by ``layers/<name>/``."""

    name: str
    path: Path
    description: str
    requires: tuple[str, ...]
    budget: int  # unzipped bytes
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    requirements: tuple[LineRequirement, ...]
    slim: SlimConfig = field(default_factory=SlimConfig)
    bytecode: str = "all"
    smoke_test: Path | None = None
    config_sha256: str = ""
    over_budget_reason: str | None = None  # a reviewed reason to accept an overrun
    allow_sdist: tuple[NormalizedName, ...] = ()  # may be built from their sdist
    settings_where: str = ""  # where its settings live: "layers/x/layer.toml", the template's
    logical_id: str | None = None  # its LayerVersion resource in the template, if any
    target_list: tuple[Target, ...] = ()  # the targets, when not every runtime x architecture

    def targets(self) -> tuple[Target, ...]:
        """Every (runtime, architecture) this layer is built and validated for."""
        if self.target_list:
            return self.target_list
        return tuple(Target(r, a) for r in self.runtimes for a in self.architectures)

    @property
    def settings_file(self) -> str:
        """Where to change this layer's settings, for messages (layer.toml or the template)."""
        return self.settings_where or f"{self.path.name}/layer.toml"


@dataclass(frozen=True)
class Function:
    """A function: its folder and its resource in template.yaml."""

    name: str
    logical_id: str
    path: Path
    handler: str
    target: Target
    memory_size: int
    timeout: int
    layers: tuple[str, ...]
    requirements: tuple[LineRequirement, ...]


@dataclass(frozen=True)
class Project:
    """Everything layerkit knows about a project, loaded once."""

    root: Path
    layers: tuple[Layer, ...]  # required layers before the layers that require them
    functions: tuple[Function, ...]
    template: Template
    config: ProjectConfig = field(default_factory=ProjectConfig)

    @property
    def dist_dir(self) -> Path:
        """The build output folder (``dist/`` unless ``[tool.layerkit] dist-dir`` says else)."""
        return self.root / self.config.dist_dir

    @property
    def stages_file(self) -> Path:
        """The deploy stages file (``stages.toml`` unless ``[tool.layerkit]`` says else)."""
        return self.root / self.config.stages_file

    def layer(self, name: str) -> Layer:
        """The layer called ``name``, or a SpecError listing the known ones."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise SpecError(
            f"there is no layer {name!r}; the layers are: "
            f"{', '.join(x.name for x in self.layers)} (folders under {self.config.layers_dir}/)."
        )

    def function(self, name: str) -> Function:
        """The function called ``name`` (folder name or template logical id)."""
        for fn in self.functions:
            if name in (fn.name, fn.logical_id):
                return fn
        raise SpecError(
            f"there is no function {name!r}; the functions are: "
            f"{', '.join(f.logical_id for f in self.functions)} (their logical IDs in "
            f"{self.config.template}; each function's package name works too)."
        )

    @property
    def deploy_target(self) -> Target:
        """The template's main target: the one most functions run on (its build is ``dist/``).

        A tie goes to the target of the function written first; a template without functions
        builds python3.9 on x86_64. Every other target builds in ``dist/<target>/``.
        """
        if not self.functions:
            return Target("python3.9")
        count: dict[Target, int] = {}
        for fn in self.functions:
            count[fn.target] = count.get(fn.target, 0) + 1
        return max(count, key=lambda t: count[t])  # max keeps the first of equal counts

    @property
    def function_targets(self) -> tuple[Target, ...]:
        """Every target a function of the template runs on, the deploy target first."""
        found = {fn.target for fn in self.functions}
        return (self.deploy_target, *sorted(found - {self.deploy_target}))

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every target some layer or function is built for, the deploy target first."""
        found = {t for layer in self.layers for t in layer.targets()}
        found |= {fn.target for fn in self.functions}
        rest = sorted(found - {self.deploy_target})
        return (self.deploy_target, *rest)

    def required_closure(self, name: str) -> tuple[str, ...]:
        """The layers ``name`` requires, directly or not, in build order (itself excluded)."""
        wanted: set[str] = set()
        stack = list(self.layer(name).requires)
        while stack:
            current = stack.pop()
            if current not in wanted:
                wanted.add(current)
                stack.extend(self.layer(current).requires)
        return tuple(layer.name for layer in self.layers if layer.name in wanted)

    def dependents(self, name: str) -> tuple[str, ...]:
        """The layers that require ``name``, directly or not."""
        return tuple(x.name for x in self.layers if name in self.required_closure(x.name))


@dataclass(frozen=True)
class LayerKey:
    """One layer.toml key: its TOML type, its default and what it means (README's table)."""

    name: str
    type: str
    default: str
    meaning: str


#: Every key of layer.toml, in the order the README lists them. Unknown keys are errors.
LAYER_KEYS: tuple[LayerKey, ...] = (
    LayerKey("description", "string", '""', "one line shown in reports; not a build input"),
    LayerKey(
        "requires", "list of strings", "from the template", "layers this one is built on top of"
    ),
    LayerKey(
        "budget",
        "string or integer",
        "250 MiB (template layer)",
        'unzipped size limit above 0, e.g. "100 MB"',
    ),
    LayerKey(
        "runtimes",
        "list of strings",
        "from the template",
        "Lambda runtimes built, locked, validated",
    ),
    LayerKey("architectures", "list of strings", "from the template", "x86_64 and/or arm64"),
    LayerKey("bytecode", "string", '"all"', "all, imported, none or sourceless"),
    LayerKey("smoke", "string", "none", "smoke test file in the layer folder"),
    LayerKey("over-budget-reason", "string", "none", "a reviewed reason to accept an overrun"),
    LayerKey("allow-sdist", "list of strings", "[]", "distributions that may be built from source"),
    LayerKey("index-url", "string", "PyPI", "the default index for this layer's requirements"),
    LayerKey("extra-index-urls", "list of strings", "[]", "indexes asked before the default"),
    LayerKey("find-links", "list of strings", "[]", "folders (relative to the layer) of wheels"),
    LayerKey("slim", "table", "{}", "the [slim] keys below"),
    LayerKey("slim.remove", "list of strings", "[]", "glob patterns removed from the layer"),
    LayerKey("slim.keep", "list of strings", "[]", "glob patterns kept (wins over remove)"),
    LayerKey("slim.strip", "boolean", "true", "strip debug symbols from extension modules"),
    LayerKey("slim.botocore-services", "list of strings", "all services", "botocore services kept"),
)
_LAYER_KEYS = {k.name for k in LAYER_KEYS if "." not in k.name}
_SLIM_KEYS = {k.name.split(".", 1)[1] for k in LAYER_KEYS if k.name.startswith("slim.")}
_TYPE_PHRASES = {
    "string": 'a string, for example {key} = "text"',
    "list of strings": 'a list of strings, for example {key} = ["a", "b"]',
    "boolean": "true or false",
    "table": "a table: write a [{key}] section",
}


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f'{where} must be a list of strings, for example ["a", "b"].')
    return tuple(value)


def _typed(
    table: Mapping[str, Any], key: str, default: Any, where: str, *, slim: bool = False
) -> Any:
    """``table[key]`` (or ``default``), refused unless it has the type LAYER_KEYS gives it."""
    value = table.get(key, default)
    full = f"slim.{key}" if slim else key
    kind = next(k.type for k in LAYER_KEYS if k.name == full)
    ok = {
        "string": isinstance(value, str),
        "list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "boolean": isinstance(value, bool),
        "table": isinstance(value, dict),
    }[kind]
    if not ok:
        label = full if "." in full else f"`{full}`"
        raise SpecError(
            f"{where}: {label} must be {_TYPE_PHRASES[kind].format(key=full)}, not {value!r}; "
            "fix that line of the file."
        )
    return tuple(value) if isinstance(value, list) else value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}."
        )


def _config_digest(data: Mapping[str, Any], requirements: str, smoke: bytes) -> str:
    """Hash what of a layer's folder can change its zip.

    That is its settings (not the description or comments), its requirement lines (canonical
    text: comments and blank lines do not count) and its smoke test.
    """
    settings = json.dumps({k: v for k, v in data.items() if k != "description"}, sort_keys=True)
    return hashlib.sha256(b"\0".join((settings.encode(), requirements.encode(), smoke))).hexdigest()


def _names(values: tuple[str, ...], allowed: Mapping[str, object], key: str, where: str) -> None:
    """Refuse an empty list, repeats and names outside ``allowed`` (runtimes, architectures)."""
    if not values:
        raise SpecError(f"{where}: `{key}` is empty; list at least one of {', '.join(allowed)}.")
    for value in values:
        if value not in allowed:
            raise SpecError(
                f"{where}: unknown {key[:-1]} {value!r} in `{key}`; use one of "
                f"{', '.join(allowed)}."
            )
    if len(set(values)) != len(values):
        raise SpecError(f"{where}: `{key}` lists a value twice ({', '.join(values)}).")


def _allow_sdist(values: tuple[str, ...], where: str) -> tuple[NormalizedName, ...]:
    names = []
    for value in values:
        try:
            names.append(canonicalize_name(Requirement(value).name))
            if Requirement(value).name != value.strip():
                raise InvalidRequirement(value)
        except InvalidRequirement:
            raise SpecError(
                f"{where}: `allow-sdist` lists {value!r}, which is not a distribution name; "
                'write bare names such as allow-sdist = ["docopt"].'
            ) from None
    return tuple(sorted(set(names)))


#: Lambda's limit on a function's unzipped code and layers: a layer's budget when none is set.
LAMBDA_UNZIPPED_BYTES = 262_144_000


@dataclass(frozen=True)
class LayerContext:
    """What the template says of a layer: its resource and the functions attaching it.

    It fills what the layer's settings do not write: runtimes and architectures (the targets of
    the functions attaching it, within CompatibleRuntimes/CompatibleArchitectures, else those
    lists, else Metadata BuildMethod/BuildArchitecture), ``requires`` (the layers every function
    attaching it attaches before it) and the budget (Lambda's unzipped limit).
    """

    resource: TemplateLayer | None = None
    template_file: str = TEMPLATE_FILE
    attached_by: tuple[Function, ...] = ()


def _settings_data(
    path: Path, root: Path, ctx: LayerContext
) -> tuple[dict[str, Any], str, str | None]:
    """A layer's settings (layer.toml, else its resource's Metadata.layerkit) and where they are.

    The third item is layer.toml's text (None: the settings are the resource's Metadata).
    """
    toml_path = path / "layer.toml"
    display = toml_path.relative_to(root)
    tl = ctx.resource
    meta_where = f"{ctx.template_file}: {tl.logical_id} Metadata.layerkit" if tl else ""
    try:
        raw_toml = toml_path.read_bytes()
    except FileNotFoundError:
        if tl is None:
            raise SpecError(
                f"{display} is missing, and no LayerVersion of {ctx.template_file} builds "
                f"{path.relative_to(root)}/: add a resource whose ContentUri is that folder, or "
                "write a layer.toml (requires, budget, runtimes); see the README."
            ) from None
        return dict(tl.settings or {}), meta_where, None
    if tl is not None and tl.settings is not None:
        raise SpecError(
            f"{meta_where} and {display} both set layer {path.name}'s settings; keep one "
            "(the template's Metadata.layerkit, or layer.toml) and delete the other."
        )
    try:
        text = raw_toml.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise SpecError(f"{display}: not UTF-8 text ({exc}); save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{display}: invalid TOML: {exc}.") from None
    return data, str(display), text


def _derived_requires(name: str, ctx: LayerContext) -> tuple[str, ...]:
    """The layers every function attaching ``name`` attaches before it (none if unattached)."""
    if not ctx.attached_by:
        return ()
    before = [set(fn.layers[: fn.layers.index(name)]) for fn in ctx.attached_by]
    common = set.intersection(*before)
    return tuple(n for n in ctx.attached_by[0].layers if n in common)


def _derived_targets(
    runtimes: tuple[str, ...] | None, archs: tuple[str, ...] | None, ctx: LayerContext
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Target, ...]]:
    """Runtimes, architectures and targets of a layer whose settings do not list both."""
    tl = ctx.resource
    compat_runtimes: tuple[str, ...] = tl.compatible_runtimes if tl else ()
    if not compat_runtimes and tl is not None and tl.build_method in RUNTIMES:
        compat_runtimes = (tl.build_method,)
    compat_archs: tuple[str, ...] = tl.compatible_architectures if tl else ("x86_64",)
    used = [
        fn.target
        for fn in ctx.attached_by
        if (not compat_runtimes or fn.target.runtime in compat_runtimes)
        and fn.target.architecture in compat_archs
    ]
    if runtimes is None and archs is None and used:
        targets = tuple(sorted(set(used)))
        return (
            tuple(sorted({t.runtime for t in targets})),
            tuple(sorted({t.architecture for t in targets})),
            targets,
        )
    if runtimes is None:
        runtimes = tuple(sorted({t.runtime for t in used})) or compat_runtimes or ("python3.9",)
    if archs is None:
        archs = tuple(sorted({t.architecture for t in used})) or compat_archs
    return runtimes, archs, ()


def load_layer(path: Path, root: Path, ctx: LayerContext | None = None) -> Layer:
    """Read one layer folder; every key of its settings (layer.toml or Metadata) is typed."""
    ctx = ctx or LayerContext()
    name = ctx.resource.layer if ctx.resource is not None else path.name
    data, where, toml_text = _settings_data(path, root, ctx)
    display = where
    _check_keys(data, _LAYER_KEYS, where)
    slim_raw = _typed(data, "slim", {}, where)
    slim_where = f"{display} [slim]"
    _check_keys(slim_raw, _SLIM_KEYS, slim_where)
    services = slim_raw.get("botocore-services")
    slim = SlimConfig(
        remove=_typed(slim_raw, "remove", [], slim_where, slim=True),
        keep=_typed(slim_raw, "keep", [], slim_where, slim=True),
        strip=_typed(slim_raw, "strip", True, slim_where, slim=True),
        botocore_services=None
        if services is None
        else _typed(slim_raw, "botocore-services", [], slim_where, slim=True),
    )
    bytecode = _typed(data, "bytecode", "all", where)
    if bytecode not in BYTECODE_MODES:
        raise SpecError(
            f"{display}: bytecode = {bytecode!r}; choose one of {', '.join(BYTECODE_MODES)}."
        )
    runtimes = _typed(data, "runtimes", [], where) if "runtimes" in data else None
    if runtimes is not None:
        _names(runtimes, RUNTIMES, "runtimes", where)
    architectures = _typed(data, "architectures", [], where) if "architectures" in data else None
    if architectures is not None:
        _names(architectures, ARCHITECTURES, "architectures", where)
    if runtimes is None or architectures is None:
        runtimes, architectures, target_list = _derived_targets(runtimes, architectures, ctx)
    else:
        target_list = ()
    reason = _typed(data, "over-budget-reason", "", where) or None
    if reason is not None and not reason.strip():
        raise SpecError(f"{display}: over-budget-reason must be a sentence saying why.")
    smoke = _typed(data, "smoke", "", where) or None
    smoke_path = path / smoke if smoke is not None else None
    if smoke_path is not None and not smoke_path.is_file():
        raise SpecError(
            f"{display}: smoke = {smoke!r}, but {smoke_path.relative_to(root)} does not exist."
        )
    if "budget" not in data and ctx.resource is None:
        raise SpecError(
            f'{display}: set `budget`, the unzipped size limit, e.g. budget = "100 MB".'
        )
    budget = parse_size(data.get("budget", LAMBDA_UNZIPPED_BYTES), f"{display}: budget")
    if budget <= 0:
        raise SpecError(
            f"{display}: `budget` is {data['budget']!r}, so nothing would fit; set the unzipped "
            'size limit above zero, e.g. budget = "100 MB".'
        )
    if "requires" in data:
        requires = _typed(data, "requires", [], where)
    else:
        requires = _derived_requires(name, ctx)
    req_path = path / "requirements.txt"
    requirements = settings_index_lines(
        _typed(data, "index-url", "", where),
        _typed(data, "extra-index-urls", [], where),
        _typed(data, "find-links", [], where),
        # layer.toml's keys at their lines; None: the resource's Metadata.layerkit
        Path(where) if toml_text is not None else Path(ctx.template_file),
        toml_text or "",
    ) + read_requirements(req_path, req_path.relative_to(root))
    # the smoke test is an input too: in "imported" mode it decides what gets compiled
    raw_smoke = smoke_path.read_bytes() if smoke_path is not None else b""
    return Layer(
        name=name,
        path=path,
        description=_typed(data, "description", "", where),
        requires=requires,
        budget=budget,
        runtimes=tuple(runtimes),
        architectures=tuple(architectures),
        requirements=requirements,
        slim=slim,
        bytecode=bytecode,
        smoke_test=smoke_path,
        config_sha256=_config_digest(
            redacted_settings(data), canonical_text(requirements), raw_smoke
        ),
        over_budget_reason=reason,
        allow_sdist=_allow_sdist(_typed(data, "allow-sdist", [], where), where),
        settings_where=where,
        logical_id=ctx.resource.logical_id if ctx.resource is not None else None,
        target_list=target_list,
    )


def order_layers(layers: Mapping[str, Layer], root: Path) -> tuple[Layer, ...]:
    """Sort layers so that each comes after every layer it requires; refuse unknowns and cycles."""
    for layer in layers.values():
        for req in layer.requires:
            if req in layers and not set(layer.targets()) <= set(layers[req].targets()):
                missing = sorted(t.key for t in set(layer.targets()) - set(layers[req].targets()))
                raise SpecError(
                    f"{layer.settings_file} is built for "
                    f"{', '.join(missing)}, but the layer it requires, {req}, is not "
                    f"({layers[req].settings_file}): add those runtimes "
                    "and architectures there too, or remove them here."
                )
            if req not in layers:
                raise SpecError(
                    f"{layer.settings_file}: requires unknown layer "
                    f"{req!r}; the layers are {', '.join(sorted(layers))}."
                )
    ordered: list[Layer] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            raise SpecError(
                f"layers require each other in a cycle: {cycle}; remove one `requires` entry "
                "in those layer.toml files."
            )
        state[name] = "active"
        for req in sorted(layers[name].requires):
            visit(req, (*chain, name))
        state[name] = "done"
        ordered.append(layers[name])

    for name in sorted(layers):
        visit(name, ())
    return tuple(ordered)


def _layer_folder(tl: TemplateLayer, root: Path, config: ProjectConfig) -> Path:
    """A layer's source folder: its ContentUri folder (SAM style), or the one its zip names."""
    if tl.source_dir is not None:
        return root / tl.source_dir
    return root / config.layers_dir / tl.layer


def _load_layers(
    root: Path, config: ProjectConfig, template: Template, functions: tuple[Function, ...]
) -> tuple[Layer, ...]:
    """The template's layers, then any other folder under the layers folder (layer.toml)."""
    layers: dict[str, Layer] = {}
    for tl in template.layers:
        folder = _layer_folder(tl, root, config)
        if not folder.is_dir():
            where = tl.source_dir or f"{config.layers_dir}/{tl.layer}"
            raise SpecError(
                f"{config.template}: {tl.logical_id} has ContentUri {tl.content_uri!r}, but "
                f"there is no {where}/ folder; create it (its requirements.txt) or fix the "
                "ContentUri."
            )
        ctx = LayerContext(
            tl, config.template, tuple(fn for fn in functions if tl.layer in fn.layers)
        )
        layers[tl.layer] = load_layer(folder, root, ctx)
    known = {layer.path for layer in layers.values()}
    layers_dir = root / config.layers_dir
    if layers_dir.is_dir():
        for p in sorted(layers_dir.iterdir()):
            if p.is_dir() and not p.name.startswith((".", "_")) and p not in known:
                if p.name in layers:
                    continue  # a template layer of that name is built from elsewhere
                layers[p.name] = load_layer(p, root)
    return order_layers(layers, root)


def _function_folder(tf: TemplateFunction, root: Path, config: ProjectConfig) -> Path:
    """A function's source folder: its CodeUri folder (SAM style), or the one its zip names."""
    if tf.source_dir is not None:
        return root / tf.source_dir
    return root / config.functions_dir / tf.name


def load_project(root: Path) -> Project:
    """Read the whole project below ``root``, laid out as its ``[tool.layerkit]`` says.

    The template is the map: its LayerVersion resources are the layers (a ContentUri folder is
    the source; a zip names ``<layers-dir>/<stem>/``) and its functions attach them. Folders
    under ``<layers-dir>/`` that no resource names are read too (each needs its layer.toml).
    """
    root = root.resolve()
    config = load_config(root)
    template = read_template(root / config.template)
    functions = []
    seen: dict[str, str] = {}
    for tf in template.functions:
        if tf.name in seen:
            raise SpecError(
                f"{config.template}: {tf.logical_id} and {seen[tf.name]} both have CodeUri "
                f"{tf.code_uri!r}; each function needs its own source folder and zip "
                f"(dist/functions/<name>.zip is named after the folder)."
            )
        seen[tf.name] = tf.logical_id
        fn_path = _function_folder(tf, root, config)
        if not fn_path.is_dir():
            raise SpecError(
                f"{config.template}: {tf.logical_id} has CodeUri {tf.code_uri!r}, but there is "
                f"no {fn_path.relative_to(root)}/ folder; create it or fix the CodeUri."
            )
        req_path = fn_path / "requirements.txt"
        functions.append(
            Function(
                name=tf.name,
                logical_id=tf.logical_id,
                path=fn_path,
                handler=tf.handler,
                target=Target(tf.runtime, tf.architecture),
                memory_size=tf.memory_size,
                timeout=tf.timeout,
                layers=tf.layers,
                requirements=read_requirements(req_path, req_path.relative_to(root)),
            )
        )
    ordered = _load_layers(root, config, template, tuple(functions))
    return Project(
        root=root, layers=ordered, functions=tuple(functions), template=template, config=config
    )
