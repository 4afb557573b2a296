from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.spec import load_project, parse_size


def test_loads_layers_in_requires_order(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project({"top": (["base"], "pytz\n"), "base": ([], "six\n")}))
    assert [x.name for x in project.layers] == ["base", "top"]
    assert project.required_closure("top") == ("base",)
    assert project.dependents("base") == ("top",)
    assert project.layer("base").budget == 10_000_000
    assert project.function("Fn").layers == ("base", "top")


def test_unknown_required_layer_is_named(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": ([], ""), "top": (["bsae"], "")})
    with pytest.raises(SpecError, match=r"layers/top/layer.toml: requires unknown layer 'bsae'"):
        load_project(root)


def test_requires_cycle_is_reported(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": (["top"], ""), "top": (["base"], "")})
    with pytest.raises(SpecError, match="cycle: base -> top -> base"):
        load_project(root)


def test_malformed_requirement_is_reported_with_file_and_line(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"base": ([], "six\nnumpy>=>1\n"), "top": (["base"], "")})
    with pytest.raises(SpecError, match=r"layers/base/requirements.txt:2: malformed"):
        load_project(root)


def test_unknown_key_and_bad_budget(make_project: Callable[..., Path]) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + "budgett = 3\n")
    with pytest.raises(SpecError, match=r"unknown key.*budgett"):
        load_project(root)
    toml.write_text('budget = "lots"\n')
    with pytest.raises(SpecError, match="size 'lots' is not understood"):
        load_project(root)


def test_template_layer_without_folder(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": ([], "")})
    with pytest.raises(SpecError, match="no layers/top/ folder"):
        load_project(root)


@pytest.mark.parametrize(
    ("text", "size"),
    [("100 MB", 100_000_000), ("250 MiB", 262_144_000), (1234, 1234), ("1.5GB", 1_500_000_000)],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text, "x") == size


def test_repository_project_loads() -> None:
    from tests.conftest import REPO

    project = load_project(REPO)
    assert [x.name for x in project.layers] == [
        "aws-utilities",
        "core-data-science",
        "ml-libraries",
    ]
    assert project.layer("ml-libraries").requires == ("core-data-science",)
    assert project.layer("aws-utilities").requires == ()
    budgets = {x.name: x.budget for x in project.layers}
    assert budgets == {
        "core-data-science": 100_000_000,
        "ml-libraries": 100_000_000,
        "aws-utilities": 50_000_000,
    }
    assert project.function("DataValidation").layers == ("core-data-science", "aws-utilities")
    assert project.function("Predictions").layers == (
        "core-data-science",
        "ml-libraries",
        "aws-utilities",
    )


def test_smoke_test_is_part_of_the_layer_inputs(make_project: Callable[..., Path]) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + 'smoke = "smoke_test.py"\n')
    smoke = root / "layers" / "base" / "smoke_test.py"
    smoke.write_text("import six\n")
    before = load_project(root).layer("base").config_sha256
    smoke.write_text("import six\nimport six.moves\n")
    assert load_project(root).layer("base").config_sha256 != before


def test_a_layer_must_not_target_more_than_a_layer_it_requires(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text().replace('["python3.9"]', '["python3.9", "python3.12"]'))
    with pytest.raises(
        SpecError,
        match=r"layers/top/layer.toml is built for python3.12-x86_64, but the layer it requires, base, is not",
    ):
        load_project(root)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[slim]\nstrip = "false"\n', "slim.strip must be true or false"),
        ("slim = []\n", "`slim` must be a table"),
        ('architectures = ["arm"]\n', "unknown architecture 'arm'"),
    ],
)
def test_layer_toml_type_mistakes_are_named(
    make_project: Callable[..., Path], extra: str, message: str
) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + extra)
    with pytest.raises(SpecError, match=message):
        load_project(root)


def test_non_utf8_requirements_are_named(make_project: Callable[..., Path]) -> None:
    root = make_project()
    (root / "layers" / "base" / "requirements.txt").write_bytes(b"six # caf\xe9\n")
    with pytest.raises(SpecError, match=r"layers/base/requirements.txt: not UTF-8"):
        load_project(root)


def test_two_functions_sharing_a_code_uri_are_refused(make_project: Callable[..., Path]) -> None:
    from tests.conftest import TEMPLATE

    second = "\n  Fn2:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: dist/functions/fn.zip\n      Handler: app.handler\n"
    with pytest.raises(SpecError, match="Fn2 and Fn both have CodeUri"):
        load_project(make_project(template=TEMPLATE + second))


@pytest.mark.parametrize("size", [-5, True, 1.5])
def test_bad_budget_values_are_refused(size: object) -> None:
    with pytest.raises(SpecError):
        parse_size(size, "x")  # type: ignore[arg-type]


def test_parse_size_is_exact() -> None:
    assert parse_size("2.01 MB", "x") == 2_010_000


def test_comments_and_description_do_not_change_a_layers_inputs(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    before = load_project(root).layer("base").config_sha256
    toml.write_text(toml.read_text() + '# a note\ndescription = "the base"\n')
    assert load_project(root).layer("base").config_sha256 == before
    toml.write_text(toml.read_text() + 'bytecode = "none"\n')
    assert load_project(root).layer("base").config_sha256 != before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("smoke = 5\n", r"layers/base/layer.toml: `smoke` must be a string.*not 5"),
        ('description = ["x"]\n', r"layers/base/layer.toml: `description` must be a string"),
        ("bytecode = 1\n", r"`bytecode` must be a string"),
        ('requires = "base"\n', r"`requires` must be a list of strings"),
        ("runtimes = []\n", r"`runtimes` is empty"),
        ('runtimes = ["python3.9", "python3.9"]\n', r"`runtimes` lists a value twice"),
        ('allow-sdist = "docopt"\n', r"`allow-sdist` must be a list of strings"),
        ('allow-sdist = ["docopt>=1"]\n', r"`allow-sdist` lists 'docopt>=1'.*bare names"),
        ("over-budget-reason = 3\n", r"`over-budget-reason` must be a string"),
        ('[slim]\nremove = "x"\n', r"slim.remove must be a list of strings"),
    ],
)
def test_every_layer_toml_key_has_a_strict_type(
    make_project: Callable[..., Path], extra: str, message: str
) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    text = toml.read_text()
    if extra.startswith(("runtimes", "requires")):
        text = "\n".join(x for x in text.splitlines() if not x.startswith(extra.split()[0])) + "\n"
    toml.write_text(text + extra)
    with pytest.raises(SpecError, match=message):
        load_project(root)


def test_a_budget_of_zero_is_refused(make_project: Callable[..., Path]) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', '"0 MB"'))
    with pytest.raises(SpecError, match=r"layers/base/layer.toml: `budget` is '0 MB'.*above zero"):
        load_project(root)


def test_allow_sdist_names_are_normalised(make_project: Callable[..., Path]) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + 'allow-sdist = ["DocOpt", "typed_ast"]\n')
    assert load_project(root).layer("base").allow_sdist == ("docopt", "typed-ast")


def test_comment_only_requirements_edit_keeps_the_layer_fresh(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    req = root / "layers" / "base" / "requirements.txt"
    before = load_project(root).layer("base").config_sha256
    req.write_text("# why six is pinned\n\n" + req.read_text() + "   \n# trailing note\n")
    assert load_project(root).layer("base").config_sha256 == before
    req.write_text("six==1.16.0\n")
    assert load_project(root).layer("base").config_sha256 != before


def test_readme_documents_every_layer_toml_key() -> None:
    from layerkit.project.spec import LAYER_KEYS
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for key in LAYER_KEYS:
        assert f"| `{key.name}` | {key.type} | {key.default} |" in readme, key.name


def test_a_folder_code_uri_is_the_functions_source(make_project: Callable[..., Path]) -> None:
    from tests.conftest import TEMPLATE

    root = make_project(template=TEMPLATE.replace("dist/functions/fn.zip", "hello_world/"))
    with pytest.raises(SpecError, match=r"CodeUri 'hello_world/', but there is no hello_world/"):
        load_project(root)
    (root / "functions" / "fn").rename(root / "hello_world")
    fn = load_project(root).function("Fn")
    assert (fn.name, fn.path) == ("hello_world", root / "hello_world")
