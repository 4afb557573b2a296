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
    # -r is read now (issue 20); an option pip has and layerkit does not pass on is still refused
    with pytest.raises(SpecError, match=r":1: pip option '--pre'"):
        parse_requirements("--pre\n", P)


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


# ---------------------------------------------------------------- pip's syntax (issue 20)

H1 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
H2 = "1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926"


def test_hash_lines_with_continuations_read_as_pip_compile_writes_them() -> None:
    text = (
        "# generated\n"
        f"six==1.16.0 \\\n    --hash=sha256:{H1} \\\n    --hash=sha256:{H2.upper()}\n"
        "    # via -r requirements.in\n"
        f"pandas>=2.2 --hash sha256:{H1}\n"
    )
    reqs = parse_requirements(text, P)
    assert [(r.name, r.line, r.text, r.hashes) for r in reqs] == [
        ("six", 2, "six==1.16.0", (H1, H2)),
        ("pandas", 6, "pandas>=2.2", (H1,)),
    ]


def test_a_malformed_hash_names_the_line() -> None:
    with pytest.raises(SpecError, match=r"requirements.txt:1: 'sha256' is not a hash"):
        parse_requirements("six==1.16.0 --hash=sha256\n", P)


def test_markers_and_extras_are_kept() -> None:
    (req,) = parse_requirements('requests[socks]>=2 ; python_version < "3.10"\n', P)
    assert req.name == "requests"
    assert req.text == 'requests[socks]>=2 ; python_version < "3.10"'


def test_r_and_c_are_read_relative_to_the_including_file(tmp_path: Path) -> None:
    from layerkit.project.requirements import LineKind, read_requirements

    layer = tmp_path / "layers" / "x"
    (layer / "more").mkdir(parents=True)
    (tmp_path / "shared.txt").write_text("numpy<2\n")
    (layer / "more" / "base.txt").write_text("# base\n-c ../../../shared.txt\nsix\n")
    (layer / "requirements.txt").write_text("-r more/base.txt\npandas\n")
    reqs = read_requirements(layer / "requirements.txt", Path("layers/x/requirements.txt"))
    assert [(r.kind, r.name, r.where) for r in reqs] == [
        (LineKind.CONSTRAINT, "numpy", "shared.txt:1"),
        (LineKind.REQUIREMENT, "six", "layers/x/more/base.txt:3"),
        (LineKind.REQUIREMENT, "pandas", "layers/x/requirements.txt:2"),
    ]


def test_a_package_required_in_two_included_files_names_both(tmp_path: Path) -> None:
    from layerkit.project.requirements import read_requirements

    (tmp_path / "a.txt").write_text("six\n")
    (tmp_path / "requirements.txt").write_text("-r a.txt\nsix<2\n")
    with pytest.raises(SpecError, match=r"requirements.txt:2: six is already required at a.txt:1"):
        read_requirements(tmp_path / "requirements.txt", Path("requirements.txt"))


def test_an_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    from layerkit.project.requirements import read_requirements

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("ok\n\nbad>=>1\n")
    (tmp_path / "requirements.txt").write_text("-r sub/a.txt\n")
    with pytest.raises(SpecError, match=r"^x/sub/a.txt:3: malformed requirement 'bad>=>1'"):
        read_requirements(tmp_path / "requirements.txt", Path("x/requirements.txt"))


def test_missing_and_circular_includes_are_refused(tmp_path: Path) -> None:
    from layerkit.project.requirements import read_requirements

    (tmp_path / "requirements.txt").write_text("-r nope.txt\n")
    with pytest.raises(SpecError, match=r"requirements.txt:1: -r nope.txt: nope.txt does not"):
        read_requirements(tmp_path / "requirements.txt", Path("requirements.txt"))
    (tmp_path / "a.txt").write_text("-r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text("-r a.txt\n")
    with pytest.raises(SpecError, match="includes it back"):
        read_requirements(tmp_path / "requirements.txt", Path("requirements.txt"))


def test_index_lines_are_kept_with_their_kind() -> None:
    from layerkit.project.requirements import LineKind

    reqs = parse_requirements(
        "--index-url https://u:tok@pkgs.example/simple\n"
        "--extra-index-url=https://other.example/simple\n"
        "-f ./wheels\n-i https://third.example/simple\nsix\n",
        P,
    )
    assert [(r.kind, r.text) for r in reqs] == [
        (LineKind.INDEX_URL, "https://u:tok@pkgs.example/simple"),
        (LineKind.EXTRA_INDEX_URL, "https://other.example/simple"),
        (LineKind.FIND_LINKS, "./wheels"),
        (LineKind.INDEX_URL, "https://third.example/simple"),
        (LineKind.REQUIREMENT, "six"),
    ]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("-e git+https://bob:hunter2@git.example/x.git#egg=x", "editable install"),
        ("git+https://bob:hunter2@git.example/x.git#egg=x", "VCS requirement"),
        ("x @ git+https://bob:hunter2@git.example/x.git", "VCS requirement"),
        ("x @ https://bob:hunter2@files.example/x-1-py3-none-any.whl", "direct URL"),
        ("--trusted-host https://bob:hunter2@files.example", "pip option"),
        ("x>=>1 @ https://bob:hunter2@files.example/x", "malformed"),
    ],
)
def test_refusals_never_echo_credentials(line: str, words: str) -> None:
    with pytest.raises(SpecError, match=words) as caught:
        parse_requirements(line + "\n", P)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "bob" not in message
    assert message.startswith(f"{P}:1: ")
    assert "\n" not in message


def test_canonical_text_is_unchanged_for_plain_files_and_hides_credentials() -> None:
    from layerkit.project.requirements import canonical_text

    plain = canonical_text(parse_requirements("pandas>=2.2\nsix\n", P))
    assert plain == "pandas>=2.2\nsix"  # the committed locks' input hashes stay valid
    with_index = canonical_text(
        parse_requirements("--extra-index-url https://u:tok@h.example/simple\nsix\n", P)
    )
    assert "tok" not in with_index
    assert "h.example" in with_index
    hashed = canonical_text(parse_requirements(f"six --hash=sha256:{H1}\n", P))
    assert hashed != canonical_text(parse_requirements("six\n", P))
