"""CloudFormation's intrinsic functions, resolved outside CloudFormation against a symbol table.

The direct deploy, ``invoke`` and ``validate`` need the values a template computes: a
``FunctionName: !Sub ${Stage}-orders``, an ``Environment`` entry ``STAGE: !Ref Stage``. This
module resolves them, purely, against a :class:`Symbols` table (parameter values, pseudo
parameters, what layerkit itself deploys, the template's ``Mappings`` and ``Conditions``):

- ``Ref`` (parameters, pseudo parameters, logical IDs of what layerkit deploys), ``Fn::Sub``
  (both forms), ``Fn::GetAtt`` (of what layerkit deploys), ``Fn::If`` with ``Conditions``
  (``Fn::Equals``, ``Fn::And``, ``Fn::Or``, ``Fn::Not``, ``Condition``), ``Fn::Join``,
  ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::Base64``; ``AWS::NoValue`` removes
  the key or list item it stands for, as in CloudFormation.
- What only CloudFormation knows (``Fn::ImportValue``, ``Fn::GetAZs``, an attribute of a resource
  layerkit does not deploy ...) raises :class:`Unresolvable`: one paragraph naming the property
  and the way that works, ``layerkit package`` + ``sam deploy``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from layerkit.errors import SpecError

#: The pseudo parameters layerkit knows a value for (``AWS::NoValue`` is handled apart).
PSEUDO_PARAMETERS = (
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::StackName",
    "AWS::URLSuffix",
)
#: Intrinsics only CloudFormation can evaluate.
CLOUDFORMATION_ONLY = (
    "Fn::ImportValue",
    "Fn::GetAZs",
    "Fn::Cidr",
    "Fn::Transform",
    "Fn::Length",
    "Fn::ToJsonString",
    "Fn::ForEach",
)
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")
_WAY_OUT = (
    "`layerkit package` writes a template that leaves it to CloudFormation: deploy that with "
    "`sam deploy`. For the direct deploy, invoke and validate, write a value instead (for "
    "example a parameter with a per-stage value in stages.toml)"
)


class _NoValue:
    """``AWS::NoValue``: the key or list item is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


class IntrinsicError(SpecError):
    """An intrinsic function is malformed or names something the template does not define."""


class Unresolvable(IntrinsicError):
    """An intrinsic function only CloudFormation can evaluate."""


@dataclass(frozen=True)
class Symbols:
    """What intrinsics resolve against.

    ``parameters`` maps a parameter to its value (a list for ``CommaDelimitedList``);
    ``pseudo`` the pseudo parameters (``AWS::Region`` ...); ``refs`` the ``Ref`` of each resource
    layerkit deploys (a function's name); ``attributes`` its ``Fn::GetAtt`` values
    (``(logical id, "Arn")``); ``resources`` every resource type of the template by logical ID
    (to name what layerkit does not deploy); ``pending`` what layerkit deploys but cannot know
    before it does (a layer's version ARN), with why.
    """

    parameters: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    pseudo: Mapping[str, str] = field(default_factory=dict)
    refs: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    resources: Mapping[str, str] = field(default_factory=dict)
    pending: Mapping[str, str] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Any] = field(default_factory=dict)


def _fail(where: str, problem: str, fix: str) -> IntrinsicError:
    return IntrinsicError(f"{where}: {problem}; {fix}.")


def _only_cloudformation(where: str, what: str) -> Unresolvable:
    return Unresolvable(
        f"{where}: {what}, which only CloudFormation resolves when it deploys the stack; "
        f"{_WAY_OUT}."
    )


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, Mapping) and len(value) == 1):
        return False
    key = next(iter(value))
    return isinstance(key, str) and (key in ("Ref", "Condition") or key.startswith("Fn::"))


def resolve(value: Any, symbols: Symbols, where: str) -> Any:
    """``value`` with every intrinsic function in it resolved (pure).

    ``where`` names the property in errors (``template.yaml: Orders Environment STAGE``).
    Mappings and lists are resolved item by item; an item that resolves to ``AWS::NoValue`` is
    dropped. Raises :class:`IntrinsicError` (bad input) or :class:`Unresolvable` (only
    CloudFormation knows it).
    """
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return _ref(arg, symbols, where)
        if isinstance(key, str) and key.startswith("Fn::"):
            return _function(key, arg, symbols, where)
    if isinstance(value, Mapping):
        out = {k: resolve(v, symbols, f"{where} {k}") for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}
    if isinstance(value, (list, tuple)):
        items = [resolve(v, symbols, where) for v in value]
        return [v for v in items if v is not NO_VALUE]
    return value


def _ref(name: Any, symbols: Symbols, where: str) -> Any:
    if not isinstance(name, str):
        raise _fail(where, f"Ref takes a name, not {name!r}", "write `!Ref ParameterName`")
    if name == "AWS::NoValue":
        return NO_VALUE
    if name in symbols.parameters:
        value = symbols.parameters[name]
        return list(value) if isinstance(value, tuple) else value
    if name in symbols.pseudo:
        return symbols.pseudo[name]
    if name in symbols.refs:
        return symbols.refs[name]
    if name in symbols.pending:
        raise _only_cloudformation(where, f"`Ref {name}` is {symbols.pending[name]}")
    if name in PSEUDO_PARAMETERS:
        raise _fail(
            where,
            f"`Ref {name}` is not known for this stage",
            "set the stage's `region` (and `role`) in stages.toml, or AWS_REGION",
        )
    if name.startswith("AWS::"):
        raise _only_cloudformation(where, f"`Ref {name}` names a pseudo parameter")
    if name in symbols.resources:
        raise _only_cloudformation(
            where,
            f"`Ref {name}` names a {symbols.resources[name]}, which layerkit does not deploy",
        )
    raise _fail(
        where,
        f"`Ref {name}` names no parameter or resource of the template",
        "declare it under Parameters, or fix the name",
    )


def _string(value: Any, where: str, what: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _fail(where, f"{what} is {value!r}, not a string", "give it a single value")


def _list(value: Any, where: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"{what} must be a list (got {value!r})", "write a YAML list")
    return value


def _function(key: str, arg: Any, symbols: Symbols, where: str) -> Any:
    if key in CLOUDFORMATION_ONLY:
        raise _only_cloudformation(where, f"it uses {key}")
    if key == "Fn::Sub":
        return _sub(arg, symbols, where)
    if key == "Fn::GetAtt":
        return _get_att(arg, symbols, where)
    if key == "Fn::If":
        parts = _list(arg, where, "Fn::If's argument")
        if len(parts) != 3 or not isinstance(parts[0], str):
            raise _fail(
                where,
                f"Fn::If takes [condition, value if true, value if false] (got {arg!r})",
                "write `!If [IsProd, a, b]`",
            )
        chosen = parts[1] if condition(parts[0], symbols, where) else parts[2]
        return resolve(chosen, symbols, where)
    if key == "Fn::Join":
        parts = _list(arg, where, "Fn::Join's argument")
        if len(parts) != 2:
            raise _fail(where, f"Fn::Join takes [delimiter, list] (got {arg!r})", "fix it")
        delimiter = _string(resolve(parts[0], symbols, where), where, "Fn::Join's delimiter")
        items = _list(resolve(parts[1], symbols, where), where, "Fn::Join's list")
        return delimiter.join(_string(item, where, "an item of Fn::Join") for item in items)
    if key == "Fn::Select":
        parts = _list(arg, where, "Fn::Select's argument")
        if len(parts) != 2:
            raise _fail(where, f"Fn::Select takes [index, list] (got {arg!r})", "fix it")
        index_text = _string(resolve(parts[0], symbols, where), where, "Fn::Select's index")
        items = _list(resolve(parts[1], symbols, where), where, "Fn::Select's list")
        if not index_text.isdigit() or int(index_text) >= len(items):
            raise _fail(
                where,
                f"Fn::Select index {index_text} is outside the list of {len(items)} item(s)",
                "pick an index from 0",
            )
        return items[int(index_text)]
    if key == "Fn::Split":
        parts = _list(arg, where, "Fn::Split's argument")
        if len(parts) != 2:
            raise _fail(where, f"Fn::Split takes [delimiter, string] (got {arg!r})", "fix it")
        delimiter = _string(resolve(parts[0], symbols, where), where, "Fn::Split's delimiter")
        text = _string(resolve(parts[1], symbols, where), where, "Fn::Split's string")
        return text.split(delimiter)
    if key == "Fn::FindInMap":
        return _find_in_map(arg, symbols, where)
    if key == "Fn::Base64":
        text = _string(resolve(arg, symbols, where), where, "Fn::Base64's argument")
        return base64.b64encode(text.encode()).decode("ascii")
    if key in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"):
        return _condition_expr({key: arg}, symbols, where, ())
    raise _fail(
        where,
        f"unknown intrinsic function {key}",
        "use one of Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Join, Fn::Select, Fn::Split, "
        "Fn::FindInMap",
    )


def _sub(arg: Any, symbols: Symbols, where: str) -> str:
    local: Mapping[str, Any] = {}
    if isinstance(arg, list):
        if len(arg) != 2 or not isinstance(arg[0], str) or not isinstance(arg[1], Mapping):
            raise _fail(
                where,
                f"Fn::Sub takes a string or [string, {{variables}}] (got {arg!r})",
                "write `!Sub 'text ${Name}'` or `!Sub ['text ${Var}', {Var: value}]`",
            )
        text = arg[0]
        local = {k: resolve(v, symbols, f"{where} ${{{k}}}") for k, v in arg[1].items()}
    elif isinstance(arg, str):
        text = arg
    else:
        raise _fail(where, f"Fn::Sub takes a string (got {arg!r})", "write `!Sub 'text ${Name}'`")

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in local:
            return _string(local[name], where, f"${{{name}}}")
        if "." in name and not name.startswith("AWS::"):
            return _string(_get_att(name, symbols, where), where, f"${{{name}}}")
        return _string(_ref(name, symbols, where), where, f"${{{name}}}")

    return _SUB_VAR.sub(one, text)


def _get_att(arg: Any, symbols: Symbols, where: str) -> Any:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
        raise _fail(where, f"Fn::GetAtt takes [LogicalId, Attribute] (got {arg!r})", "fix it")
    logical_id = arg[0]
    attribute = _string(resolve(arg[1], symbols, where), where, "Fn::GetAtt's attribute")
    if (logical_id, attribute) in symbols.attributes:
        return symbols.attributes[(logical_id, attribute)]
    known = sorted(a for lid, a in symbols.attributes if lid == logical_id)
    if known:
        raise _only_cloudformation(
            where,
            f"`GetAtt {logical_id}.{attribute}` is an attribute layerkit does not know before "
            f"CloudFormation creates it (layerkit knows {', '.join(known)})",
        )
    if logical_id in symbols.pending:
        raise _only_cloudformation(
            where, f"`GetAtt {logical_id}.{attribute}` is {symbols.pending[logical_id]}"
        )
    if logical_id in symbols.resources:
        raise _only_cloudformation(
            where,
            f"`GetAtt {logical_id}.{attribute}` reads a {symbols.resources[logical_id]}, which "
            "layerkit does not deploy",
        )
    raise _fail(
        where,
        f"`GetAtt {logical_id}.{attribute}` names no resource of the template",
        "fix the logical ID",
    )


def _find_in_map(arg: Any, symbols: Symbols, where: str) -> Any:
    parts = _list(arg, where, "Fn::FindInMap's argument")
    default: Any = None
    if len(parts) == 4 and isinstance(parts[3], Mapping) and "DefaultValue" in parts[3]:
        default = parts[3]["DefaultValue"]
        parts = parts[:3]
    if len(parts) != 3:
        raise _fail(
            where,
            f"Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey] (got {arg!r})",
            "fix it",
        )
    keys = [_string(resolve(p, symbols, where), where, "a Fn::FindInMap key") for p in parts]
    node: Any = symbols.mappings
    for depth, key in enumerate(keys):
        if not isinstance(node, Mapping) or key not in node:
            if default is not None:
                return resolve(default, symbols, where)
            level = ("mapping", "top-level key", "second-level key")[depth]
            raise _fail(
                where,
                f"Fn::FindInMap {keys[: depth + 1]}: the template's Mappings have no {level} "
                f"{key!r}",
                "add it under Mappings or pass a value that is there",
            )
        node = node[key]
    return node


def condition(name: str, symbols: Symbols, where: str) -> bool:
    """The value of the template condition ``name`` (``Conditions:``)."""
    return _named_condition(name, symbols, where, ())


def _named_condition(name: Any, symbols: Symbols, where: str, chain: tuple[str, ...]) -> bool:
    if not isinstance(name, str) or name not in symbols.conditions:
        raise _fail(
            where,
            f"condition {name!r} is not defined under the template's Conditions",
            f"define it, or use one of: {', '.join(symbols.conditions) or '(none defined)'}",
        )
    if name in chain:
        raise _fail(
            where,
            f"conditions refer to each other in a cycle: {' -> '.join((*chain, name))}",
            "remove one reference",
        )
    return _condition_expr(symbols.conditions[name], symbols, f"{where} ({name})", (*chain, name))


def _condition_expr(expr: Any, symbols: Symbols, where: str, chain: tuple[str, ...]) -> bool:
    if isinstance(expr, Mapping) and len(expr) == 1:
        ((key, arg),) = expr.items()
        if key == "Condition":
            return _named_condition(arg, symbols, where, chain)
        if key == "Fn::Equals":
            parts = _list(arg, where, "Fn::Equals's argument")
            if len(parts) != 2:
                raise _fail(where, f"Fn::Equals takes two values (got {arg!r})", "fix it")
            a, b = (resolve(p, symbols, where) for p in parts)
            return _comparable(a) == _comparable(b)
        if key in ("Fn::And", "Fn::Or"):
            parts = _list(arg, where, f"{key}'s argument")
            if not 2 <= len(parts) <= 10:
                raise _fail(where, f"{key} takes 2 to 10 conditions (got {len(parts)})", "fix it")
            values = [_condition_expr(p, symbols, where, chain) for p in parts]
            return all(values) if key == "Fn::And" else any(values)
        if key == "Fn::Not":
            parts = _list(arg, where, "Fn::Not's argument")
            if len(parts) != 1:
                raise _fail(where, f"Fn::Not takes one condition (got {arg!r})", "fix it")
            return not _condition_expr(parts[0], symbols, where, chain)
        if key == "Fn::If":
            value = resolve(expr, symbols, where)
            if isinstance(value, bool):
                return value
    raise _fail(
        where,
        f"{expr!r} is not a condition",
        "use Fn::Equals, Fn::And, Fn::Or, Fn::Not or {Condition: Name}",
    )


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def contains_intrinsic(value: Any) -> bool:
    """Whether ``value`` holds an intrinsic function call anywhere inside it."""
    if _is_intrinsic(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_intrinsic(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_intrinsic(v) for v in value)
    return False
