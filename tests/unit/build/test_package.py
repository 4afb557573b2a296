from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.build.package import package_files, refuse_secrets
from layerkit.errors import SpecError

REPO = Path(__file__).resolve().parents[3]


def write(root: Path, *names: str, text: str = "x = 1\n") -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_code_and_data_ship_tests_events_scripts_and_caches_do_not(tmp_path: Path) -> None:
    write(
        tmp_path,
        "app.py",
        "helpers/__init__.py",
        "helpers/io.py",
        "schema.json",
        "model/model.joblib",
        "requirements.txt",
        "helpers/requirements.txt",
        "tests/test_app.py",
        "events/basic.json",
        "scripts/train.py",
        "__pycache__/app.cpython-311.pyc",
        "helpers/__pycache__/io.cpython-39.pyc",
        "stray.pyc",
        ".DS_Store",
        ".pytest_cache/v/cache",
        ".venv/lib/site.py",
    )
    assert package_files(tmp_path) == tuple(
        Path(p)
        for p in [
            "app.py",
            "helpers/__init__.py",
            "helpers/io.py",
            "helpers/requirements.txt",
            "model/model.joblib",
            "schema.json",
        ]
    )


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "app.py")
    (tmp_path / "linked.py").symlink_to("/etc/hostname")
    with pytest.raises(SpecError, match=r"linked\.py is a symbolic link"):
        package_files(tmp_path)


def test_the_repository_predictions_package_is_code_and_model() -> None:
    files = package_files(REPO / "functions" / "predictions")
    assert Path("app.py") in files
    assert Path("model/model.joblib") in files
    assert Path("model/model.json") in files
    assert not any(f.parts[0] in {"scripts", "events", "__pycache__"} for f in files)
    refuse_secrets(REPO / "functions" / "predictions", files)


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.production",
        "config/server.pem",
        "deploy.key",
        "id_rsa",
        "keys/id_ed25519.pub",
        ".aws/credentials",
        ".aws/config",
        "credentials",
    ],
)
def test_secret_files_are_refused_by_name(tmp_path: Path, name: str) -> None:
    write(tmp_path, "app.py", name)
    files = package_files(tmp_path)
    assert Path(name) in files  # listed, so that it is refused rather than silently dropped
    with pytest.raises(SpecError, match="refusing to package secrets") as caught:
        refuse_secrets(tmp_path, files)
    assert name in str(caught.value)


def test_secret_content_is_refused_whatever_the_file_is_called(tmp_path: Path) -> None:
    write(
        tmp_path,
        "settings.py",
        text='REGION = "eu-west-1"\nAWS_SECRET_ACCESS_KEY = "' + "a" * 40 + '"\n',
    )
    write(tmp_path, "data/cert.txt", text="junk\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n")
    with pytest.raises(SpecError) as caught:
        refuse_secrets(tmp_path, package_files(tmp_path))
    message = str(caught.value)
    assert "settings.py:2 (an AWS secret key)" in message
    assert "data/cert.txt:2 (a private key)" in message


def test_code_that_reads_secrets_from_the_environment_and_templates_pass(tmp_path: Path) -> None:
    write(
        tmp_path,
        "app.py",
        text='import os\nkey = dict(aws_secret_access_key=os.environ["SECRET"])\n',
    )
    write(tmp_path, ".env.example", text="API_TOKEN=\n")
    write(tmp_path, "credentials.py", text="def load():\n    return None\n")
    refuse_secrets(tmp_path, package_files(tmp_path))
