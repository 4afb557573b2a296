from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.requirements import parse_requirements

P = Path("layers/x/requirements.txt")


def test_parses_names_lines_and_skips_comments() -> None:
    reqs = parse_requirements("# c\n\npandas>=2.2  # inline\nPython_Dateutil\n", P)
    assert [(r.name, r.line, r.text) for r in reqs] == [
        ("pandas", 3, "pandas>=2.2"),
        ("python-dateutil", 4, "Python_Dateutil"),
    ]


def test_malformed_requirement_names_file_and_line() -> None:
    with pytest.raises(
        SpecError, match=r"layers/x/requirements.txt:2: malformed requirement 'pandas>=>2'"
    ):
        parse_requirements("numpy\npandas>=>2\n", P)


def test_pip_options_are_refused_with_the_line() -> None:
    with pytest.raises(SpecError, match=r":1: pip option '-r other.txt'"):
        parse_requirements("-r other.txt\n", P)


def test_duplicate_package_is_refused() -> None:
    with pytest.raises(SpecError, match="already required at line 1"):
        parse_requirements("numpy\nNumPy<2\n", P)


def test_direct_urls_are_refused() -> None:
    with pytest.raises(SpecError, match="direct URL"):
        parse_requirements("foo @ https://example.com/foo.whl\n", P)


def test_canonical_text_ignores_comments_blank_lines_and_positions() -> None:
    from layerkit.project.requirements import canonical_text

    plain = canonical_text(parse_requirements("pandas>=2.2\nsix\n", P))
    noisy = canonical_text(parse_requirements("# data\n\npandas>=2.2   # frames\n\nsix  \n", P))
    assert plain == noisy == "pandas>=2.2\nsix"
    assert canonical_text(parse_requirements("pandas>=2.3\nsix\n", P)) != plain
