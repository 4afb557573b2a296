"""Where a project keeps its parts: ``[tool.layerkit]`` in the project's ``pyproject.toml``.

Every setting is a path relative to the project root, and every default is the layout of the
layerkit repository itself, so a project laid out like it needs no ``[tool.layerkit]`` at all
(and no ``pyproject.toml`` either):

```toml
[tool.layerkit]
layers-dir = "layers"          # one folder per layer: layer.toml, requirements.txt
functions-dir = "functions"    # a function whose CodeUri names a zip: <functions-dir>/<name>/
template = "template.yaml"     # the SAM template
dist-dir = "dist"              # build output (zips, manifest.json, report)
stages-file = "stages.toml"    # deploy stages (without it: only the built-in local stage)
build-steps = []               # the project's own steps, "module:function", run per target
```

Where distributions come from (see the README's "Private indexes"), not paths:
``index-url`` (a string), ``extra-index-urls`` and ``find-links`` (lists of strings).
``build-steps`` is not a path either: each entry names a callable run for every target between
the layers and the function packages (:mod:`layerkit.build.hooks`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from layerkit.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class ProjectConfig:
    """The project's layout, each entry relative to the project root."""

    layers_dir: str = "layers"
    functions_dir: str = "functions"
    template: str = "template.yaml"
    dist_dir: str = "dist"
    stages_file: str = "stages.toml"
    index_url: str = ""  # uv's default index ("" : PyPI); "name=URL" names it for credentials
    extra_index_urls: tuple[str, ...] = ()  # asked before the default index
    find_links: tuple[str, ...] = ()  # folders (relative to the project root) or URLs
    build_steps: tuple[str, ...] = ()  # "module:function" entries (layerkit.build.hooks)


#: The settings that name indexes, not paths.
INDEX_KEYS = ("index-url", "extra-index-urls", "find-links")


def _key(name: str) -> str:
    """The TOML key of a field: ``layers_dir`` is written ``layers-dir``."""
    return name.replace("_", "-")


_KEYS = {_key(f.name): f.name for f in fields(ProjectConfig)}


def _build_steps(value: Any, where: str) -> tuple[str, ...]:
    """``build-steps``: a list of ``module:function`` strings."""
    ok = isinstance(value, list) and all(
        isinstance(v, str) and v.count(":") == 1 and all(part.strip() for part in v.split(":"))
        for v in value
    )
    if not ok:
        raise SpecError(
            f"{where} [tool.layerkit]: build-steps must be a list of callables written "
            f'"module:function", for example build-steps = ["model_training:model_step"] '
            f"(got {value!r})."
        )
    return tuple(value)


def parse_config(table: Mapping[str, Any], where: str) -> ProjectConfig:
    """Turn the ``[tool.layerkit]`` table into a ProjectConfig; ``where`` names the file."""
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise SpecError(
            f"{where} [tool.layerkit]: unknown key(s) {', '.join(unknown)}; the settings are "
            f"{', '.join(_KEYS)} (each a path relative to the project root, but the index "
            "settings and build-steps)."
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in INDEX_KEYS:
            values[_KEYS[key]] = _index_value(key, value, where)
            continue
        if key == "build-steps":
            values["build_steps"] = _build_steps(value, where)
            continue
        if not isinstance(value, str) or not value.strip():
            raise SpecError(
                f"{where} [tool.layerkit]: {key} must be a non-empty string, a path relative "
                f'to the project root such as "{getattr(ProjectConfig, _KEYS[key])}" '
                f"(got {value!r})."
            )
        if PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts:
            raise SpecError(
                f"{where} [tool.layerkit]: {key} = {value!r} leaves the project; write a path "
                "inside the project root, relative to it."
            )
        values[_KEYS[key]] = value
    return ProjectConfig(**values)


def _index_value(key: str, value: Any, where: str) -> str | tuple[str, ...]:
    """An index setting: ``index-url`` a string, the other two lists of strings."""
    if key == "index-url":
        if not isinstance(value, str) or not value.strip():
            raise SpecError(
                f"{where} [tool.layerkit]: index-url must be a URL string such as "
                f'"https://pkgs.example.com/simple" (got a {type(value).__name__}).'
            )
        return value.strip()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpecError(
            f"{where} [tool.layerkit]: {key} must be a list of non-empty strings, for example "
            f'{key} = ["https://pkgs.example.com/simple"].'
        )
    return tuple(v.strip() for v in value)


def load_config(root: Path) -> ProjectConfig:
    """Read ``[tool.layerkit]`` from ``<root>/pyproject.toml``; the defaults when absent."""
    path = root / PYPROJECT
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ProjectConfig()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}; fix the file.") from None
    tool = data.get("tool", {})
    table = tool.get("layerkit", {}) if isinstance(tool, Mapping) else {}
    if not isinstance(table, Mapping):
        raise SpecError(f"{path}: tool.layerkit must be a table; write a [tool.layerkit] section.")
    return parse_config(table, str(path))


def _is_root(folder: Path) -> bool:
    """True when ``folder`` holds a layerkit project: its [tool.layerkit] or its template."""
    pyproject = folder / PYPROJECT
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            return True  # its own error is clearer than "not a project"
        tool = data.get("tool")
        if isinstance(tool, Mapping) and "layerkit" in tool:
            return True
    return (folder / ProjectConfig.template).is_file()


def find_project_root(start: Path) -> Path:
    """The project holding ``start``: the nearest folder, ``start`` or above, with a project.

    A project folder has a ``pyproject.toml`` with ``[tool.layerkit]`` or a ``template.yaml``,
    so both front doors work from any subfolder (``src/orders/``), as git and sam do.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if _is_root(folder):
            return folder
    raise SpecError(
        f"{start} is not in a layerkit project: neither it nor any folder above holds a "
        f"{ProjectConfig.template} (the SAM template) or a {PYPROJECT} with [tool.layerkit]; "
        "run the command in the project folder, or pass --project-dir."
    )
