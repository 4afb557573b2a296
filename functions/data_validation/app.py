"""DataValidation: check customer records against the declared schema (schema.json).

Event, one of:
  {"records": [{"customer_id": 1, ...}, ...]}      records inline
  {"s3": {"bucket": "b", "key": "in/batch.csv"}}    a CSV object with a header row

Response (the same shape in all three functions of the pipeline):
  {"statusCode": 200, "total": n, "valid_count": v, "invalid_count": n - v,
   "errors": [{"row": i, "column": c, "error": "..."}], "ignored_columns": [...],
   "records": [valid records, normalised]}      <- FeatureEngineering takes this event as is
  {"statusCode": 4xx/5xx, "error": "what is wrong and how to fix it"}

Rows are numbered from 0 in input order; errors about the whole batch (a missing required
column) have "row": null. Bad records are reported, never raised.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from dateutil import parser as date_parser

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

SCHEMA_PATH = Path(__file__).with_name("schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
MAX_OBJECT_BYTES = int(os.environ.get("MAX_OBJECT_BYTES", str(50 * 1024 * 1024)))

_s3_client = None


class BadEvent(ValueError):
    """The event itself is malformed (as opposed to bad records inside it)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def s3_client() -> Any:
    """The S3 client, created on first use in the function's region (AWS_REGION)."""
    global _s3_client
    if _s3_client is None:
        _s3_client = boto3.client("s3", region_name=os.environ.get("AWS_REGION"))
    return _s3_client


# --- coercion: one value of a declared type -> normalised value, or ValueError ---------------


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {value!r}")


def _to_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if math.isfinite(number):
            return number
    raise ValueError(f"expected a finite number, got {value!r}")


def _to_date(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date string, got {value!r}")
    try:
        return date_parser.isoparse(value.strip()).date().isoformat()
    except (ValueError, OverflowError):
        raise ValueError(f"expected an ISO 8601 date such as 2024-01-31, got {value!r}") from None


def _to_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


COERCE: dict[str, Callable[[Any], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "date": _to_date,
    "category": _to_string,
    "string": _to_string,
}


# --- the check -------------------------------------------------------------------------------


def validate(rows: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Validate ``rows`` (anything, ideally dicts) against ``schema``; return the report."""
    columns: dict[str, dict[str, Any]] = schema["columns"]
    errors: list[dict[str, Any]] = []
    not_objects = {i for i, row in enumerate(rows) if not isinstance(row, dict)}
    bad_rows = set(not_objects)
    for index in sorted(not_objects):
        errors.append({"row": index, "column": None, "error": "record is not an object"})
    records = [{} if i in not_objects else row for i, row in enumerate(rows)]
    frame = pd.DataFrame(records, index=range(len(records)), dtype=object)
    frame = frame.drop(index=sorted(not_objects))
    present = {str(c) for c in frame.columns}
    clean = pd.DataFrame(index=frame.index)
    for name, rule in columns.items():
        if name not in present:
            if rule.get("required", False) and len(frame):
                errors.append({"row": None, "column": name, "error": "required column is missing"})
                bad_rows.update(int(i) for i in frame.index)
            continue
        clean[name] = _coerce_column(frame[name], name, rule, errors, bad_rows)
        for check in (_range_errors, _allowed_errors, _unique_errors):
            for error in check(clean[name], name, rule):
                errors.append(error)
                bad_rows.add(error["row"])
    if len(clean.columns):
        same = clean.astype(str).duplicated(keep="first")
        for index in same.index[same]:
            if int(index) not in bad_rows:
                errors.append({"row": int(index), "column": None, "error": "duplicate record"})
                bad_rows.add(int(index))
    valid = [clean.loc[i].to_dict() for i in clean.index if int(i) not in bad_rows]
    errors.sort(key=lambda e: (-1 if e["row"] is None else e["row"], e["column"] or ""))
    return {
        "total": len(rows),
        "valid_count": len(valid),
        "invalid_count": len(rows) - len(valid),
        "errors": errors,
        "ignored_columns": sorted(present - set(columns)),
        "records": valid,
    }


def _coerce_column(
    raw: pd.Series, name: str, rule: dict[str, Any], errors: list[dict[str, Any]], bad_rows: set
) -> pd.Series:
    coerce = COERCE[rule["type"]]
    values: list[Any] = []
    for index, value in raw.items():
        if _is_null(value):
            values.append(None)
            if not rule.get("nullable", True):
                errors.append({"row": int(index), "column": name, "error": "value is missing"})
                bad_rows.add(int(index))
            continue
        try:
            values.append(coerce(value))
        except ValueError as exc:
            values.append(None)
            errors.append({"row": int(index), "column": name, "error": str(exc)})
            bad_rows.add(int(index))
    return pd.Series(values, index=raw.index, dtype=object)


def _allowed_errors(values: pd.Series, name: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    if "allowed" not in rule:
        return []
    allowed = list(rule["allowed"])
    outside = values.notna() & ~values.isin(allowed)
    return [
        {"row": int(i), "column": name, "error": f"{values[i]!r} is not one of {allowed}"}
        for i in values.index[outside]
    ]


def _unique_errors(values: pd.Series, name: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    if not rule.get("unique", False):
        return []
    keyed = values[values.notna()]
    duplicated = keyed.duplicated(keep="first")
    return [
        {"row": int(i), "column": name, "error": f"duplicate {name} {keyed[i]!r}"}
        for i in keyed.index[duplicated]
    ]


def _range_errors(values: pd.Series, name: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    if "min" not in rule and "max" not in rule:
        return []
    numbers = pd.to_numeric(values, errors="coerce")
    low = rule.get("min", -math.inf)
    high = rule.get("max", math.inf)
    outside = numbers.notna() & ((numbers < low) | (numbers > high))
    return [
        {
            "row": int(i),
            "column": name,
            "error": f"{values[i]!r} is outside the range [{low}, {high}]",
        }
        for i in numbers.index[outside]
    ]


# --- reading the event -----------------------------------------------------------------------


def _read_csv_object(bucket: str, key: str) -> list[dict[str, Any]]:
    client = s3_client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        if head["ContentLength"] > MAX_OBJECT_BYTES:
            raise BadEvent(
                f"s3://{bucket}/{key} is {head['ContentLength']} bytes, over the "
                f"{MAX_OBJECT_BYTES} bytes this function reads; split the file.",
                status=413,
            )
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = 404 if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound") else 502
        raise BadEvent(f"cannot read s3://{bucket}/{key}: {code or exc}", status=status) from None
    except BotoCoreError as exc:
        raise BadEvent(f"cannot read s3://{bucket}/{key}: {exc}", status=502) from None
    try:
        frame = pd.read_csv(
            io.BytesIO(body), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise BadEvent(f"s3://{bucket}/{key} is not a readable CSV file: {exc}") from None
    return frame.to_dict(orient="records")


def read_rows(event: Any) -> list[Any]:
    """The records an event carries, inline or in S3; BadEvent if the event is malformed."""
    if not isinstance(event, dict):
        raise BadEvent('the event must be an object with "records" or "s3"')
    if ("records" in event) == ("s3" in event):
        raise BadEvent(
            'the event must have exactly one of "records" (a list of objects) or '
            '"s3" ({"bucket": ..., "key": ...})'
        )
    if "records" in event:
        if not isinstance(event["records"], list):
            raise BadEvent('"records" must be a list of objects')
        return event["records"]
    location = event["s3"]
    if not (
        isinstance(location, dict)
        and isinstance(location.get("bucket"), str)
        and isinstance(location.get("key"), str)
        and location["bucket"]
        and location["key"]
    ):
        raise BadEvent('"s3" must be {"bucket": "<name>", "key": "<object key>"} with strings')
    return _read_csv_object(location["bucket"], location["key"])


def lambda_handler(event: Any, context: Any | None) -> dict[str, Any]:
    """Validate the event's records and return the report (see the module docstring)."""
    try:
        rows = read_rows(event)
    except BadEvent as exc:
        logger.warning("rejected event: %s", exc)
        return {"statusCode": exc.status, "error": str(exc)}
    report = validate(rows, SCHEMA)
    logger.info(
        "validated %d records: %d valid, %d invalid",
        report["total"],
        report["valid_count"],
        report["invalid_count"],
    )
    return {"statusCode": 200, **report}
