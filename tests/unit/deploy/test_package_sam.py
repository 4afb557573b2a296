"""`sam validate --lint` (aws-sam-cli, the `sam` dependency group) on packaged templates.

Run with ``pytest -m sam`` where ``sam`` is on PATH (or named by ``LAYERKIT_SAM``):
``python -m pip install --group sam`` in a separate environment, as aws-sam-cli pins its own
boto3 and cfn-lint. The project's cfn-lint configuration (its ignored rules) is applied, as
``sam validate --lint`` in the project folder would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from layerkit.check.template import config_file
from layerkit.deploy import package as P
from layerkit.project.spec import load_project
from layerkit.project.stages import DEFAULT_LOCAL_STAGE, get_stage

from .test_package import ARTIFACTS, REPO, SHOP, SHOP_KEYS

pytestmark = pytest.mark.sam

SAM = os.environ.get("LAYERKIT_SAM") or shutil.which("sam")


def sam_validate_lint(template_text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / P.PACKAGED_TEMPLATE).write_text(template_text, encoding="utf-8")
    rules = yaml.safe_load(config_file(REPO).read_text(encoding="utf-8")) or {}
    rules.pop("templates", None)  # the packaged template is named on the command line
    (folder / ".cfnlintrc").write_text(yaml.safe_dump(rules), encoding="utf-8")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert SAM is not None
    return subprocess.run(
        [SAM, "validate", "--lint", "--template-file", P.PACKAGED_TEMPLATE],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(SAM is None, reason="aws-sam-cli is not installed (`pip install --group sam`)")
def test_sam_validate_lint_passes_on_the_packaged_templates(make_project, tmp_path):
    repo = load_project(REPO)
    staging = get_stage(REPO, "staging")
    text = P.render(P.packaged_document(repo, staging, ARTIFACTS), staging)
    done = sam_validate_lint(text, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr

    shop = load_project(make_project(template=SHOP))
    text = P.render(P.packaged_document(shop, DEFAULT_LOCAL_STAGE, SHOP_KEYS), DEFAULT_LOCAL_STAGE)
    done = sam_validate_lint(text, tmp_path / "shop")
    assert done.returncode == 0, done.stdout + done.stderr
