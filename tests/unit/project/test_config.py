"""[tool.layerkit] in pyproject.toml: the layout of a project; defaults are this repository's."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.build.pipeline import output_dir
from layerkit.errors import SpecError
from layerkit.project.config import ProjectConfig, load_config
from layerkit.project.spec import load_project
from layerkit.project.stages import DEFAULT_LOCAL_STAGE, get_stage
from tests.conftest import REPO


def test_no_pyproject_or_no_table_means_the_default_layout(tmp_path: Path) -> None:
    assert load_config(tmp_path) == ProjectConfig()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(tmp_path) == ProjectConfig(
        layers_dir="layers",
        functions_dir="functions",
        template="template.yaml",
        dist_dir="dist",
        stages_file="stages.toml",
    )
    # this repository keeps the default layout; its [tool.layerkit] declares its model step only
    repo = load_config(REPO)
    assert dataclasses.replace(repo, build_steps=()) == ProjectConfig()
    assert repo.build_steps == ("model_training:model_step",)


def test_a_project_laid_out_elsewhere_loads_and_builds_there(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    (root / "layers").rename(root / "lambda-layers")
    (root / "functions").mkdir(exist_ok=True)
    shutil.move(root / "functions", root / "src-functions")
    (root / "infra").mkdir()
    (root / "template.yaml").rename(root / "infra" / "sam.yaml")
    (root / "pyproject.toml").write_text(
        "[tool.layerkit]\n"
        'layers-dir = "lambda-layers"\n'
        'functions-dir = "src-functions"\n'
        'template = "infra/sam.yaml"\n'
        'dist-dir = "out/lambda"\n'
        'stages-file = "deploy/stages.toml"\n'
    )
    project = load_project(root)
    assert [x.name for x in project.layers] == ["base", "top"]
    assert project.layer("base").path == root / "lambda-layers" / "base"
    assert project.function("fn").path == root / "src-functions" / "fn"
    assert project.template.path == root / "infra" / "sam.yaml"
    assert output_dir(project, project.deploy_target) == root / "out" / "lambda"
    assert project.stages_file == root / "deploy" / "stages.toml"
    with pytest.raises(SpecError, match=r"no layer 'nope'.*folders under lambda-layers/"):
        project.layer("nope")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('layer-dir = "x"', r"unknown key\(s\) layer-dir; the settings are layers-dir, "),
        ("dist-dir = 3", r"dist-dir must be a non-empty string.*\"dist\".*got 3"),
        ('template = ""', r"template must be a non-empty string"),
        ('dist-dir = "/tmp/out"', r"dist-dir = '/tmp/out' leaves the project"),
        ('layers-dir = "../shared"', r"leaves the project"),
    ],
)
def test_mistakes_are_one_paragraph_naming_pyproject(
    tmp_path: Path, table: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.layerkit]\n{table}\n")
    with pytest.raises(SpecError, match=message) as info:
        load_config(tmp_path)
    assert str(tmp_path / "pyproject.toml") in str(info.value)
    assert "[tool.layerkit]" in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_toml_and_a_non_table_are_named(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.layerkit\n")
    with pytest.raises(SpecError, match=r"pyproject\.toml: invalid TOML"):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool]\nlayerkit = "layers"\n')
    with pytest.raises(SpecError, match=r"tool\.layerkit must be a table"):
        load_config(tmp_path)


def test_a_project_without_a_stages_file_has_the_local_stage(tmp_path: Path) -> None:
    assert get_stage(tmp_path, "local") == DEFAULT_LOCAL_STAGE
    assert DEFAULT_LOCAL_STAGE.local
    with pytest.raises(SpecError, match=r"stages\.toml not found"):
        get_stage(tmp_path, "staging")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "st.toml").write_text(
        '[stages.local]\nlocal = true\nbucket = "b"\nalias = "live"\n'
        'role = "arn:aws:iam::123456789012:role/r"\n'
    )
    assert get_stage(tmp_path, "local", "cfg/st.toml").bucket == "b"  # the file wins
