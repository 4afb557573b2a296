from __future__ import annotations

from layerkit.optimize.modes import mode_files, mode_sizes

COMPILED = {
    "python/a/__init__.py": 100,
    "python/a/__pycache__/__init__.cpython-39.pyc": 80,
    "python/a/cold.py": 1000,
    "python/a/__pycache__/cold.cpython-39.pyc": 700,
    "python/a/rare.py": 2000,
    "python/a/__pycache__/rare.cpython-39.pyc": 1500,
    "python/a/_ext.so": 5000,
    "python/a/data.json": 10,
}
COLD = frozenset({"python/a/__init__.py", "python/a/cold.py"})


def test_each_mode_has_the_bytes_its_files_take() -> None:
    assert mode_sizes(COMPILED, COLD) == {
        "none": 8110,
        "imported": 8110 + 80 + 700,
        "all": 8110 + 80 + 700 + 1500,
        "sourceless": 5010 + 80 + 700 + 1500,
    }


def test_sourceless_puts_each_pyc_where_its_source_was() -> None:
    files = mode_files(COMPILED, COLD)["sourceless"]
    assert files["python/a/cold.pyc"] == ("python/a/__pycache__/cold.cpython-39.pyc", 700)
    assert "python/a/cold.py" not in files
    assert "python/a/_ext.so" in files
