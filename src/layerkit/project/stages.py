"""Deploy stages: where a deploy goes, read from ``stages.toml`` at the project root.

(The file's name and place are ``stages-file`` in ``[tool.layerkit]``; a project without one has
only the built-in ``local`` stage, :data:`DEFAULT_LOCAL_STAGE`.)

A stage names an AWS region (optional: the standard chain decides when it is left out), the S3
bucket that holds artifacts, releases and the deploy lock, a prefix for layer and function names,
the alias that carries traffic, the execution role, and optionally an endpoint. The ``local``
stage (``local = true``) runs against an embedded moto server
(see :mod:`layerkit.deploy.localstage`)
and needs no credentials.

```toml
[stages.staging]
region = "eu-west-1"
bucket = "acme-layerkit-staging"
prefix = "staging-"
alias = "live"
role = "arn:aws:iam::111122223333:role/layerkit-staging-lambda"
health_check = true

[stages.staging.parameters]   # values of the template's Parameters on this stage
Stage = "staging"
LogLevel = "INFO"
```

Every key is documented in :data:`STAGE_KEYS` (the README's table, and what ``layerkit init``
writes as comments: :func:`stages_file_text`).
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STAGES_FILE = "stages.toml"


@dataclass(frozen=True)
class StageKey:
    """One key of a stage's table in stages.toml: its type, default and meaning (README)."""

    name: str
    type: str
    default: str
    meaning: str


#: Every key of a ``[stages.<name>]`` table, in the order the README lists them.
STAGE_KEYS: tuple[StageKey, ...] = (
    StageKey(
        "region", "string", "AWS_REGION / the profile's", "the AWS region the stage deploys to"
    ),
    StageKey(
        "bucket",
        "string",
        "required",
        "S3 bucket (it must exist) for artifacts/<sha256>.zip, releases/<stage>/ and the deploy "
        "lock locks/<stage>.lock",
    ),
    StageKey(
        "prefix",
        "string",
        '""',
        "prefix of the names of functions and layers whose resource has no FunctionName or "
        'LayerName ("staging-" deploys the function folder orders_api as staging-orders-api)',
    ),
    StageKey(
        "alias",
        "string",
        "required",
        "the alias that carries traffic; moved only after the new version passed its checks",
    ),
    StageKey("role", "string", "required", "the functions' execution role (an IAM role ARN)"),
    StageKey(
        "endpoint", "string", "AWS_ENDPOINT_URL, else AWS", "another endpoint URL (LocalStack ...)"
    ),
    StageKey(
        "local",
        "boolean",
        "false",
        "true: the embedded moto server (no credentials; state in .layerkit/local-stage), whose "
        "Invoke runs the deployed zips in layerkit's Lambda sandbox",
    ),
    StageKey(
        "health_check",
        "boolean",
        "true",
        "invoke each new version before moving the alias, and each version of a release "
        "before rolling back to it",
    ),
    StageKey(
        "parameters",
        "table",
        "{}",
        "values of the template's Parameters on this stage (over samconfig.toml's "
        "parameter_overrides; --parameter-overrides wins)",
    ),
)
_KEYS = {key.name for key in STAGE_KEYS}
_REQUIRED = ("bucket", "alias", "role")
INIT_HINT = "run `layerkit init` (or `inv init`) to write a commented stages.toml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_ALIAS_RE = re.compile(r"^(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}$")
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
_EXAMPLE = (
    "each stage is a [stages.<name>] table with bucket, alias and role (the README's "
    '"Stages" section lists every key)'
)


@dataclass(frozen=True)
class Stage:
    """One deploy target: account resources and naming."""

    name: str
    bucket: str
    alias: str
    role: str
    prefix: str = ""
    region: str | None = None  # None: AWS_REGION / profile / config file decide
    endpoint: str | None = None  # None: AWS_ENDPOINT_URL (if set) or the real AWS endpoints
    local: bool = False  # True: the embedded moto server (layerkit.deploy.localstage)
    health_check: bool = True
    parameters: tuple[tuple[str, str], ...] = ()  # the template's Parameters on this stage

    def layer_name(self, layer: str) -> str:
        """The AWS layer name for the project layer ``layer`` (``staging-core-data-science``)."""
        return f"{self.prefix}{layer}"

    def function_name(self, function: str) -> str:
        """The AWS function name for the function folder ``function``.

        Underscores become hyphens, as in template.yaml: ``data_validation`` deploys as
        ``staging-data-validation`` with ``prefix = "staging-"``.
        """
        return f"{self.prefix}{function.replace('_', '-')}"

    @property
    def lock_key(self) -> str:
        """The S3 key of this stage's deploy lock."""
        return f"locks/{self.name}.lock"

    @property
    def releases_prefix(self) -> str:
        """The S3 key prefix under which this stage's releases are recorded."""
        return f"releases/{self.name}/"


def parse_stages(data: Mapping[str, Any], where: str) -> dict[str, Stage]:
    """Turn the parsed TOML of ``stages.toml`` into stages; ``where`` names the file in errors."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: not a table of stages; {_EXAMPLE}.")
    unknown_top = sorted(set(data) - {"stages"})
    if unknown_top:
        raise SpecError(
            f"{where}: unknown top-level key(s) {', '.join(unknown_top)} (this layerkit reads "
            f"only [stages.<name>] tables; a file for another layerkit version may hold more); "
            "put every stage under [stages.<name>]."
        )
    tables = data.get("stages", {})
    if not isinstance(tables, Mapping) or not tables:
        raise SpecError(f"{where}: define at least one stage: {_EXAMPLE}.")
    stages: dict[str, Stage] = {}
    for name, table in tables.items():
        here = f"{where} [stages.{name}]"
        if not _NAME_RE.match(name):
            raise SpecError(f"{here}: a stage name uses letters, digits, '-' and '_' only.")
        if not isinstance(table, Mapping):
            raise SpecError(f"{here}: must be a table of settings.")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise SpecError(
                f"{here}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}."
            )
        missing = [key for key in _REQUIRED if key not in table]
        if missing:
            raise SpecError(f"{here}: set {', '.join(missing)}.")
        for key in ("region", "bucket", "prefix", "alias", "role", "endpoint"):
            if key in table and not isinstance(table[key], str):
                raise SpecError(f"{here}: {key} must be a string.")
        for key in ("local", "health_check"):
            if key in table and not isinstance(table[key], bool):
                raise SpecError(f"{here}: {key} must be true or false.")
        parameters = _parameters(table.get("parameters", {}), here)
        if not _ALIAS_RE.match(table["alias"]):
            raise SpecError(
                f"{here}: alias {table['alias']!r} is not a valid Lambda alias name "
                "(letters, digits, '-', '_'; not only digits)."
            )
        if not _ROLE_RE.match(table["role"]):
            raise SpecError(
                f"{here}: role {table['role']!r} is not an IAM role ARN "
                "(arn:aws:iam::<account>:role/<name>)."
            )
        stages[name] = Stage(
            name=name,
            bucket=table["bucket"],
            alias=table["alias"],
            role=table["role"],
            prefix=table.get("prefix", ""),
            region=table.get("region"),
            endpoint=table.get("endpoint"),
            local=table.get("local", False),
            health_check=table.get("health_check", True),
            parameters=parameters,
        )
    return stages


def _parameters(table: Any, here: str) -> tuple[tuple[str, str], ...]:
    """A stage's ``parameters`` table as (name, value) pairs; a list joins with commas."""
    if not isinstance(table, Mapping):
        raise SpecError(
            f'{here}: parameters must be a table, for example parameters = {{ Stage = "dev" }}.'
        )
    out = []
    for name, value in table.items():
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise SpecError(
                f"{here}: parameters.{name} is {value!r}; write a string, a number or a list "
                "of strings (a CommaDelimitedList)."
            )
        out.append((str(name), value))
    return tuple(out)


#: The stage a project without a stages file has: the embedded moto server, no credentials.
DEFAULT_LOCAL_STAGE = Stage(
    name="local",
    local=True,
    region="us-east-1",
    bucket="layerkit-local-artifacts",
    prefix="local-",
    alias="live",
    role="arn:aws:iam::123456789012:role/layerkit-local-lambda",
)


def load_stages(root: Path, file: str | Path = STAGES_FILE) -> dict[str, Stage]:
    """Read every stage from the stages file ``file`` (relative to ``root``: ``stages.toml``)."""
    path = root / file
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc}); {_EXAMPLE}.") from None
    except FileNotFoundError:
        raise SpecError(
            f"{path} not found: deploy stages (region, bucket, prefix, alias, role) live there; "
            f"{INIT_HINT}, then edit it."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(
            f"{path}: invalid TOML ({exc}); the file may be cut short or edited by hand. Fix "
            f"that line: {_EXAMPLE}."
        ) from None
    return parse_stages(data, str(path))


def get_stage(root: Path, name: str, file: str | Path = STAGES_FILE) -> Stage:
    """The stage called ``name`` from the stages file, or a SpecError listing the known ones.

    A project without a stages file still has the ``local`` stage (:data:`DEFAULT_LOCAL_STAGE`).
    """
    path = root / file
    if name == DEFAULT_LOCAL_STAGE.name and not path.exists():
        return DEFAULT_LOCAL_STAGE
    stages = load_stages(root, file)
    if name not in stages:
        raise SpecError(
            f"there is no stage {name!r} in {path}; the stages are: "
            f'{", ".join(stages)}. Add a [stages.{name}] table there (the README\'s "Stages" '
            "section lists every key; `layerkit init` writes a commented example into a new "
            "project), or use --stage=local for the embedded local stage."
        )
    return stages[name]


def stages_file_text() -> str:
    """The commented stages.toml ``layerkit init`` writes: every key, a local and a real stage."""
    width = max(len(key.name) for key in STAGE_KEYS)
    lines = [
        "# Deploy stages: `layerkit deploy --stage=<name>` (and rollback, releases, package).",
        "# Each stage is a [stages.<name>] table; its keys:",
        "#",
    ]
    for key in STAGE_KEYS:
        text = f"{key.type}, default {key.default}: {key.meaning}"
        wrapped = textwrap.wrap(text, 96 - width - 4)
        lines.append(f"# {key.name.ljust(width)}  {wrapped[0]}")
        lines += [f"# {' ' * width}  {more}" for more in wrapped[1:]]
    lines += [
        "",
        "# The embedded local stage: a moto server in .layerkit/local-stage, no credentials.",
        "[stages.local]",
        "local = true",
        'region = "us-east-1"',
        'bucket = "layerkit-local-artifacts"',
        'prefix = "local-"',
        'alias = "live"',
        'role = "arn:aws:iam::123456789012:role/layerkit-local-lambda"',
        "",
        "# A stage on AWS: uncomment and fill in (the bucket and the role must exist).",
        "# [stages.staging]",
        '# region = "eu-west-1"',
        '# bucket = "my-project-layerkit-staging"',
        '# prefix = "staging-"',
        '# alias = "live"',
        '# role = "arn:aws:iam::111122223333:role/my-project-staging-lambda"',
        "# health_check = true",
        "#",
        "# [stages.staging.parameters]  # the template's Parameters on this stage",
        '# Stage = "staging"',
        "",
    ]
    return "\n".join(lines)
