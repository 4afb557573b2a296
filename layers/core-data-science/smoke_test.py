"""Smoke test of the core-data-science layer, run inside the sandbox on the target runtime.

Real work with no network: CSV parsing (pandas' C parser), date parsing with dateutil, time
zones, a groupby and a merge, numpy linear algebra (the bundled OpenBLAS) and a JSON round trip.
Exits non-zero with a message on the first wrong answer.
"""

import io
import sys

import numpy as np
import pandas as pd
from dateutil import parser, tz

CSV = """order_id,store,amount,when
1,north,10.5,2024-01-03T09:15:00Z
2,south,4.25,"Jan 4, 2024 10:00 AM"
3,north,7.0,2024-01-05 16:30:00+01:00
4,east,12.0,05/01/2024
5,south,1.75,2024-01-06
"""

STORES = pd.DataFrame(
    {"store": ["north", "south", "east"], "region": ["N", "S", "E"], "manager": ["ana", "bo", "cy"]}
)


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"core-data-science smoke test failed: {message}")


def main() -> None:
    orders = pd.read_csv(io.StringIO(CSV))
    check(len(orders) == 5, f"read_csv returned {len(orders)} rows, expected 5")

    # dateutil: free-form dates into aware UTC timestamps.
    parsed = [parser.parse(text, dayfirst=False) for text in orders["when"]]
    utc = [(p if p.tzinfo else p.replace(tzinfo=tz.UTC)).astimezone(tz.UTC) for p in parsed]
    orders["when"] = pd.to_datetime(utc, utc=True)
    check(str(orders["when"].iloc[2]) == "2024-01-05 15:30:00+00:00", "wrong tz conversion")
    check(orders["when"].dt.month.tolist() == [1, 1, 1, 5, 1], "wrong month parsing")
    berlin = tz.gettz("Europe/Berlin")
    check(berlin is not None, "no Europe/Berlin time zone (dateutil zoneinfo missing?)")
    local = orders["when"].dt.tz_convert("Europe/Berlin")
    check(local.iloc[0].hour == 10, "pandas time zone database (pytz/tzdata) is wrong")

    # groupby + merge
    totals = orders.groupby("store", as_index=False)["amount"].agg(["sum", "count"])
    merged = totals.merge(STORES, on="store", how="inner").sort_values("store")
    check(merged["store"].tolist() == ["east", "north", "south"], "merge lost or reordered stores")
    check(merged["sum"].tolist() == [12.0, 17.5, 6.0], f"wrong sums {merged['sum'].tolist()}")
    check(merged["count"].tolist() == [1, 2, 2], "wrong counts")
    check(merged["manager"].tolist() == ["cy", "ana", "bo"], "merge attached the wrong rows")
    pivot = orders.pivot_table(index="store", values="amount", aggfunc="mean")
    check(abs(pivot.loc["north", "amount"] - 8.75) < 1e-9, "pivot_table mean is wrong")

    # numpy: linear algebra through the bundled BLAS/LAPACK
    rng = np.random.default_rng(7)
    a = rng.normal(size=(50, 50)) + 50 * np.eye(50)
    x = rng.normal(size=50)
    check(bool(np.allclose(a @ np.linalg.solve(a, a @ x), a @ x)), "np.linalg.solve is wrong")

    # JSON round trip (what a handler returns)
    back = pd.read_json(io.StringIO(merged.to_json(orient="records")), orient="records")
    check(back["sum"].sum() == 35.5, "to_json/read_json round trip is wrong")
    print(f"core-data-science OK: pandas {pd.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
