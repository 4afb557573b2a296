"""FeatureEngineering: turn validated customer records into model features.

Event: DataValidation's response, or any object with
  {"records": [{"customer_id": 1, "signup_date": "2024-01-05", "age": 30, "income": 52000.0,
                "plan": "basic", "monthly_spend": 20.0}, ...]}

Response:
  {"statusCode": 200, "ids": [customer_id, ...], "columns": [feature names],
   "features": [[float, ...], ...]}            <- Predictions takes this event as is
  {"statusCode": 400, "error": "what is wrong and how to fix it"}

Deterministic: the transformers are fitted once, at import, on the declared ranges and
categories below (never on the batch), so a record always maps to the same features whatever
else is in the batch. Numbers and date parts are min-max scaled to [0, 1] (clipped), the plan
is one-hot encoded (an unknown plan encodes as all zeros), and a missing income or monthly
spend is filled with its declared default before scaling.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import pandas as pd
from dateutil import parser as date_parser
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

#: numeric inputs: name -> (lowest, highest, default when missing or null)
NUMERIC: dict[str, tuple[float, float, float | None]] = {
    "age": (18.0, 100.0, None),
    "income": (0.0, 250_000.0, 40_000.0),
    "monthly_spend": (0.0, 500.0, 0.0),
}
#: date parts of signup_date: name -> (lowest, highest)
DATE_PARTS: dict[str, tuple[float, float]] = {
    "signup_year": (2000.0, 2030.0),
    "signup_month": (1.0, 12.0),
    "signup_dayofweek": (0.0, 6.0),
}
PLANS = ("basic", "standard", "premium")
ID_COLUMN = "customer_id"


class BadEvent(ValueError):
    """The event or a record in it cannot be turned into features."""


def build_transformer() -> ColumnTransformer:
    """The fitted transformer: fitted on the declared ranges, so batch-independent."""
    bounds = {name: spec[:2] for name, spec in NUMERIC.items()}
    bounds.update(DATE_PARTS)
    reference = pd.DataFrame(
        {**{name: list(low_high) for name, low_high in bounds.items()}, "plan": list(PLANS[:2])}
    )
    one_hot = OneHotEncoder(categories=[list(PLANS)], handle_unknown="ignore", sparse_output=False)
    transformer = ColumnTransformer(
        [
            ("scaled", MinMaxScaler(clip=True), list(bounds)),
            ("plan", one_hot, ["plan"]),
        ],
        verbose_feature_names_out=False,
    )
    return transformer.fit(reference)


TRANSFORMER = build_transformer()
FEATURE_NAMES: tuple[str, ...] = tuple(str(n) for n in TRANSFORMER.get_feature_names_out())


def _number(record: dict[str, Any], name: str, index: int, default: float | None) -> float:
    value = record.get(name)
    if value is None:
        if default is None:
            raise BadEvent(f"record {index}: {name} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadEvent(f"record {index}: {name} must be a finite number, got {value!r}")
    return float(value)


def to_frame(records: list[Any]) -> pd.DataFrame:
    """The input columns of the transformer, one row per record; BadEvent names a bad record."""
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadEvent(f"record {index} is not an object")
        row: dict[str, Any] = {
            name: _number(record, name, index, default) for name, (_, _, default) in NUMERIC.items()
        }
        signup = record.get("signup_date")
        try:
            day = date_parser.isoparse(signup)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise BadEvent(
                f"record {index}: signup_date must be an ISO 8601 date, got {signup!r}"
            ) from None
        row.update(
            signup_year=float(day.year),
            signup_month=float(day.month),
            signup_dayofweek=float(day.weekday()),
        )
        plan = record.get("plan")
        if not isinstance(plan, str):
            raise BadEvent(f"record {index}: plan must be a string, got {plan!r}")
        row["plan"] = plan
        rows.append(row)
    return pd.DataFrame(rows, columns=[*NUMERIC, *DATE_PARTS, "plan"])


def engineer(records: list[Any]) -> dict[str, Any]:
    """Features for ``records``: ids, column names and one row of floats per record."""
    frame = to_frame(records)
    if len(frame):
        features = [[float(x) for x in row] for row in TRANSFORMER.transform(frame)]
    else:
        features = []
    ids = [r.get(ID_COLUMN) for r in records]
    return {"ids": ids, "columns": list(FEATURE_NAMES), "features": features}


def lambda_handler(event: Any, context: Any | None) -> dict[str, Any]:
    """Turn the event's records into features (see the module docstring)."""
    if not isinstance(event, dict) or not isinstance(event.get("records"), list):
        logger.warning("rejected event without a records list")
        return {"statusCode": 400, "error": 'the event must be an object with a "records" list'}
    try:
        result = engineer(event["records"])
    except BadEvent as exc:
        logger.warning("rejected event: %s", exc)
        return {"statusCode": 400, "error": str(exc)}
    logger.info("engineered %d features for %d records", len(FEATURE_NAMES), len(result["ids"]))
    return {"statusCode": 200, **result}
