"""Smoke test of the ml-libraries layer (with core-data-science below it), run in the sandbox.

Real work with no network: a StandardScaler + OneHotEncoder pipeline feeding a
LogisticRegression (lbfgs, through scipy.optimize), fit and predict on a small synthetic data
set; a k-means and a random forest; a joblib dump and load of the fitted pipeline to a temporary
folder (Lambda's /tmp) that must predict the same. Exits non-zero with a message on failure.
"""

import os
import sys
import tempfile

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"ml-libraries smoke test failed: {message}")


def data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(0, 60, n)
    spend = rng.normal(50, 15, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    # churn is likely for short tenure on the basic plan: learnable, not trivial
    score = -0.08 * tenure + 0.01 * spend + np.where(plan == "basic", 1.5, -0.5)
    churn = (score + rng.normal(0, 0.3, n) > 0).astype(int)
    return pd.DataFrame({"tenure": tenure, "spend": spend, "plan": plan}), churn


def main() -> None:
    x_train, y_train = data(400, seed=1)
    x_test, y_test = data(200, seed=2)
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), ["tenure", "spend"]),
                        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=500)),
        ]
    )
    model.fit(x_train, y_train)
    accuracy = float((model.predict(x_test) == y_test).mean())
    check(accuracy > 0.85, f"LogisticRegression accuracy {accuracy:.2f} <= 0.85")
    proba = model.predict_proba(x_test)
    check(bool(np.allclose(proba.sum(axis=1), 1.0)), "predict_proba rows do not sum to 1")

    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(
        model[:-1].transform(x_train), y_train
    )
    check(forest.score(model[:-1].transform(x_test), y_test) > 0.8, "random forest is off")
    centres = KMeans(n_clusters=2, n_init=3, random_state=0).fit(
        np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 10]
    )
    check(len(set(centres.labels_)) == 2, "k-means did not find two clusters")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.joblib")
        joblib.dump(model, path, compress=3)
        loaded = joblib.load(path)
    check(
        bool(np.array_equal(loaded.predict_proba(x_test), proba)),
        "the model loaded back with joblib predicts differently",
    )
    print(f"ml-libraries OK: scikit-learn {sklearn.__version__}, accuracy {accuracy:.2f}")


if __name__ == "__main__":
    main()
