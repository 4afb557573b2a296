"""Who owns a stage's functions: ``inv deploy`` or a CloudFormation stack (``sam deploy``).

Both paths name the functions the same way (``staging-predictions``: the stage prefix in
``stages.toml``, ``${Stage}-…`` in ``template.yaml``), so running both against one stage would
have them fight over the same functions. Ownership is read from the functions' tags:

- ``inv deploy`` tags every function it creates ``layerkit:owner=inv-deploy``;
- CloudFormation tags every function of a stack ``aws:cloudformation:stack-name=<stack>`` (AWS
  sets it; no template can leave it out).

``inv deploy`` refuses a function that carries a stack tag; ``inv package`` refuses a function
that exists without one (``inv deploy`` made it, or someone by hand: a stack cannot create a
function whose name is taken). Lambda layers take no tags, and two publishers of one layer name
only add versions that each side references by ARN, so layers are not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from layerkit.deploy.clients import AWS_ERRORS, if_found
from layerkit.errors import DeployError
from layerkit.project.stages import Stage

OWNER_TAG = "layerkit:owner"
INV_DEPLOY = "inv-deploy"
STACK_TAG = "aws:cloudformation:stack-name"


class Owner(Enum):
    """Which deploy path manages a function."""

    INV_DEPLOY = "inv deploy"
    CLOUDFORMATION = "CloudFormation"
    UNMARKED = "nobody layerkit can tell"  # exists with neither tag


@dataclass(frozen=True)
class Claim:
    """An existing function and who owns it."""

    function_name: str
    owner: Owner
    stack: str | None = None  # the CloudFormation stack, for Owner.CLOUDFORMATION


def owner_of(function_name: str, tags: Mapping[str, str]) -> Claim:
    """Who owns a function with ``tags`` (pure)."""
    if STACK_TAG in tags:
        return Claim(function_name, Owner.CLOUDFORMATION, tags[STACK_TAG])
    if tags.get(OWNER_TAG) == INV_DEPLOY:
        return Claim(function_name, Owner.INV_DEPLOY)
    return Claim(function_name, Owner.UNMARKED)


def read_claims(lam: Any, stage: Stage, function_names: Iterable[str]) -> tuple[Claim, ...]:
    """Who owns each of ``function_names`` that exists (GetFunction returns the tags)."""
    claims = []
    try:
        for name in function_names:
            found = if_found(lam.get_function, FunctionName=name)
            if found is not None:
                claims.append(owner_of(name, found.get("Tags") or {}))
    except AWS_ERRORS as exc:
        raise DeployError(
            f"stage {stage.name!r}: could not read who owns its functions ({exc}); nothing was "
            "changed. Check the credentials' permissions (lambda:GetFunction) and try again."
        ) from exc
    return tuple(claims)


def refuse_stack_owned(claims: Iterable[Claim], stage: Stage) -> None:
    """For ``inv deploy``: refuse functions a CloudFormation stack manages."""
    taken = [c for c in claims if c.owner is Owner.CLOUDFORMATION]
    if not taken:
        return
    stacks = sorted({str(c.stack) for c in taken})
    raise DeployError(
        f"stage {stage.name!r}: {', '.join(c.function_name for c in taken)} "
        f"{'belongs' if len(taken) == 1 else 'belong'} to the CloudFormation stack "
        f"{', '.join(stacks)} (tag {STACK_TAG}), so `inv deploy` refuses to change "
        f"{'it' if len(taken) == 1 else 'them'}: the stack would undo it at its next update. "
        f"Deploy this stage the way it was deployed (`inv package --stage={stage.name}`, then "
        "`sam deploy`), or delete the stack first, or deploy with `inv deploy` to a stage whose "
        "prefix names other functions. Nothing was changed."
    )


def refuse_not_stack_owned(claims: Iterable[Claim], stage: Stage) -> None:
    """For ``inv package`` (``sam deploy``): refuse functions no CloudFormation stack manages."""
    taken = [c for c in claims if c.owner is not Owner.CLOUDFORMATION]
    if not taken:
        return
    by_inv = [c.function_name for c in taken if c.owner is Owner.INV_DEPLOY]
    unmarked = [c.function_name for c in taken if c.owner is Owner.UNMARKED]
    whose = []
    if by_inv:
        whose.append(
            f"{', '.join(by_inv)} (deployed by `inv deploy`, tag {OWNER_TAG}={INV_DEPLOY})"
        )
    if unmarked:
        whose.append(f"{', '.join(unmarked)} (not managed by any CloudFormation stack)")
    raise DeployError(
        f"stage {stage.name!r}: the packaged template names functions that exist already: "
        f"{'; '.join(whose)}. A CloudFormation stack cannot create a function whose name is "
        f"taken, and the two deploy paths must not share one. Keep deploying this stage with "
        f"`inv deploy --stage={stage.name}`, or delete those functions first, or package for a "
        "stage whose name gives other function names. Nothing was uploaded."
    )


def guard_inv_deploy(lam: Any, stage: Stage, function_names: Iterable[str]) -> None:
    """``inv deploy``'s hook: read the owners of the existing functions, refuse stack-owned."""
    refuse_stack_owned(read_claims(lam, stage, function_names), stage)
