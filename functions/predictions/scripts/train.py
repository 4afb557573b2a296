"""Train the Predictions model; run under the TARGET interpreter with the built layers on sys.path.

    python3.9 scripts/train.py --out model --feature-engineering ../feature_engineering/app.py

(``model_training.train_model``, next to the repository's tasks.py, runs it as ``python3.9 -I -S``
with the layers' ``python/`` folders as the only site folders, so the pickle matches the layer's
scikit-learn.)

The data are synthetic and seeded (numpy's legacy RandomState, stable across numpy versions) and
go through FeatureEngineering's own transform, so the model's columns are exactly the features
that function produces. With one BLAS thread the output is byte-for-byte reproducible for a
given set of library versions. Writes model.joblib and model.json (feature names, versions).
Not shipped in the function package (scripts/ is excluded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression

PLANS = ("basic", "standard", "premium")
PLAN_EFFECT = {"basic": 0.6, "standard": 0.0, "premium": -0.9}
FIRST_SIGNUP = dt.date(2019, 1, 1)


def load_feature_engineering(path: Path) -> Any:
    """Import FeatureEngineering's app.py under a private module name."""
    spec = importlib.util.spec_from_file_location("_layerkit_feature_engineering", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_records(rows: int, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Customer records and churn labels drawn from a fixed, seeded process."""
    rng = np.random.RandomState(seed)
    records, labels = [], []
    for index in range(rows):
        age = int(rng.randint(18, 81))
        income = float(round(min(max(rng.lognormal(10.8, 0.5), 0.0), 400_000.0), 2))
        plan = PLANS[int(rng.randint(0, 3))]
        spend = float(round(rng.gamma(2.0, 30.0), 2))
        signup = FIRST_SIGNUP + dt.timedelta(days=int(rng.randint(0, 2500)))
        tenure_years = (dt.date(2026, 1, 1) - signup).days / 365.25
        logit = (
            0.8
            - 0.035 * (age - 40)
            - 0.000006 * (income - 50_000)
            + 0.012 * (spend - 60)
            - 0.35 * tenure_years
            + PLAN_EFFECT[plan]
        )
        labels.append(int(rng.uniform() < 1.0 / (1.0 + math.exp(-logit))))
        records.append(
            {
                "customer_id": index + 1,
                "signup_date": signup.isoformat(),
                "age": age,
                "income": income,
                "plan": plan,
                "monthly_spend": spend,
            }
        )
    return records, labels


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    """Train and write model.joblib + model.json into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--feature-engineering", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args(argv)

    features_module = load_feature_engineering(args.feature_engineering)
    records, labels = synthetic_records(args.rows, args.seed)
    engineered = features_module.engineer(records)
    frame = pd.DataFrame(engineered["features"], columns=engineered["columns"])
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(frame, np.asarray(labels))
    accuracy = float(model.score(frame, np.asarray(labels)))

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.joblib"
    tmp_model = args.out / ".model.joblib.tmp"
    joblib.dump(model, tmp_model)
    digest = hashlib.sha256(tmp_model.read_bytes()).hexdigest()
    os.replace(tmp_model, model_path)
    metadata = {
        "estimator": type(model).__name__,
        "feature_names": list(engineered["columns"]),
        "joblib_version": joblib.__version__,
        "model_sha256": digest,
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "python_version": "{}.{}".format(*sys.version_info[:2]),
        "rows": args.rows,
        "seed": args.seed,
        "sklearn_version": sklearn.__version__,
        "threshold": 0.5,
        "training_accuracy": round(accuracy, 4),
    }
    text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    write_atomic(args.out / "model.json", text.encode("utf-8"))
    print(
        f"trained {metadata['estimator']} on {args.rows} rows with scikit-learn "
        f"{sklearn.__version__} (python {platform.python_version()}): training accuracy "
        f"{accuracy:.3f}, {model_path.stat().st_size} bytes, sha256 {digest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
