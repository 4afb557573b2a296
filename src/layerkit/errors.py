"""One error hierarchy for layerkit.

Every error a user can cause (bad input, a missing tool, a failed build or deploy) is a
:class:`LayerkitError` whose message is a complete, one-paragraph explanation that names the
file, package or layer involved and says how to fix it. The front doors (the ``layerkit``
command in :mod:`layerkit.cli` and the invoke tasks in :mod:`layerkit.tasks`) turn these into
that paragraph on stderr and exit code 1; nothing else in the library prints or exits.
"""

from __future__ import annotations


class LayerkitError(Exception):
    """Root of every error layerkit raises on purpose."""


class SpecError(LayerkitError):
    """The project description (layer.toml, requirements, template.yaml) is invalid."""


class LockError(LayerkitError):
    """Resolving, reading or checking the lock failed, or the lock is stale."""


class WheelTagError(LockError):
    """A locked or requested distribution has no wheel that loads on the target runtime."""


class InstallError(LayerkitError):
    """Installing a layer's or function's share of the lock failed."""


class BuildError(LayerkitError):
    """A build step failed."""


class BuildLockedError(BuildError):
    """Another build holds the build lock for the same output folder."""


class InterpreterNotFoundError(LayerkitError):
    """The target runtime's interpreter (for example python3.9) is not installed."""


class CheckError(LayerkitError):
    """An artifact fails a check (budget, Lambda limit, ELF, imports, template)."""


class SandboxError(LayerkitError):
    """The local Lambda look-alike could not run a handler."""


class DeployError(LayerkitError):
    """A deploy or rollback failed."""


class CacheError(LayerkitError):
    """The shared build cache could not be read or written (a build goes on without it)."""


class ReportError(LayerkitError):
    """A build manifest or report cannot be read (missing, damaged, or from another tool)."""


class OptimizeError(LayerkitError):
    """Tracing or pruning failed: a layer is not built, or a pruned module turned out needed."""


class StorageError(LayerkitError):
    """A folder layerkit must write cannot be written (read-only, full, no permission)."""


class DeployInterrupted(DeployError):
    """A deploy was interrupted (Ctrl-C, SIGINT or SIGTERM) and undone; a command exits 130."""

    exit_code = 130
