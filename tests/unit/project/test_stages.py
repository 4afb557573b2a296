"""stages.toml: parsing, validation messages, naming; clients refuse to run without credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.deploy.clients import clients_for
from layerkit.deploy.releases import (
    FunctionRelease,
    Release,
    previous_release_id,
    release_from_json,
)
from layerkit.errors import DeployError, SpecError
from layerkit.project.stages import Stage, get_stage, load_stages, parse_stages

REPO = Path(__file__).resolve().parents[3]
ROLE = "arn:aws:iam::111122223333:role/r"


def test_the_repository_stages_file_has_local_staging_and_prod():
    stages = load_stages(REPO)
    assert set(stages) >= {"local", "staging", "prod"}
    assert stages["local"].local
    assert not stages["staging"].local
    assert stages["staging"].layer_name("core-data-science") == "staging-core-data-science"
    # template.yaml names functions "${Stage}-data-validation"
    assert stages["staging"].function_name("data_validation") == "staging-data-validation"


def test_defaults_and_keys():
    stage = parse_stages(
        {"stages": {"dev": {"bucket": "b", "alias": "live", "role": ROLE}}}, "stages.toml"
    )["dev"]
    assert stage == Stage(name="dev", bucket="b", alias="live", role=ROLE)
    assert stage.region is None  # the AWS chain decides
    assert stage.health_check
    assert stage.lock_key == "locks/dev.lock"
    assert stage.releases_prefix == "releases/dev/"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"bucket": "b", "alias": "live"}, r"\[stages\.dev\]: set role"),
        ({"bucket": "b", "alias": "live", "role": ROLE, "regoin": "x"}, "unknown key.*regoin"),
        ({"bucket": "b", "alias": "123", "role": ROLE}, "not a valid Lambda alias"),
        ({"bucket": "b", "alias": "live", "role": "admin"}, "not an IAM role ARN"),
        ({"bucket": "b", "alias": "live", "role": ROLE, "local": "yes"}, "true or false"),
        ({"bucket": 5, "alias": "live", "role": ROLE}, "bucket must be a string"),
    ],
)
def test_invalid_stage_settings_name_the_stage_and_the_fix(table, message):
    with pytest.raises(SpecError, match=message):
        parse_stages({"stages": {"dev": table}}, "stages.toml")


def test_unknown_stage_lists_the_known_ones_and_suggests_local():
    with pytest.raises(SpecError, match=r"no stage 'qa'.*local, staging, prod.*--stage=local"):
        get_stage(REPO, "qa")


def test_missing_stages_file(tmp_path):
    with pytest.raises(SpecError, match=r"stages\.toml not found"):
        load_stages(tmp_path)


def test_no_credentials_suggests_the_local_stage(monkeypatch, tmp_path):
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    with pytest.raises(DeployError, match=r"no AWS credentials were found.*--stage=local"):
        clients_for(get_stage(REPO, "staging"))


def test_region_and_endpoint_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    stage = Stage(name="dev", bucket="b", alias="live", role=ROLE)  # no region in stages.toml
    clients = clients_for(stage)
    assert clients.lambda_.meta.region_name == "ap-south-1"
    assert clients.s3.meta.endpoint_url == "http://127.0.0.1:4566"
    pinned = clients_for(Stage(name="p", bucket="b", alias="live", role=ROLE, region="eu-west-1"))
    assert pinned.lambda_.meta.region_name == "eu-west-1"


# ------------------------------------------------------------------ release history (pure parts)


def _release(rid: str, kind: str = "deploy", to: str | None = None) -> Release:
    fn = FunctionRelease(
        function="one",
        function_name="dev-one",
        version="1",
        code_sha256="ab" * 32,
        layers=(),
        handler="h",
        runtime="python3.9",
        architecture="x86_64",
        memory_size=1,
        timeout=1,
        role=ROLE,
        environment=(),
    )
    return Release(rid, "dev", "t", None, kind, (fn,), rolled_back_to=to)


def test_previous_release_walks_back_through_rollbacks():
    r1, r2, r3 = _release("20260101"), _release("20260102"), _release("20260103")
    assert previous_release_id((r1, r2, r3)) == "20260102"
    back = _release("20260104", "rollback", to="20260102")
    assert previous_release_id((r1, r2, r3, back)) == "20260101"
    with pytest.raises(DeployError, match="only deploy, so there is nothing older") as one:
        previous_release_id((r1,))
    assert "--release" not in str(one.value)  # there is no other release to name
    assert "inv deploy" in str(one.value)
    back_to_first = _release("20260104", "rollback", to="20260101")
    with pytest.raises(DeployError, match="oldest deploy") as oldest:
        previous_release_id((r1, r2, back_to_first))
    assert "--release (e.g. 20260102" in str(oldest.value)  # a newer one can be named
    with pytest.raises(DeployError, match="no recorded release"):
        previous_release_id(())


def test_release_json_round_trip_and_unknown_schema():
    release = _release("20260101T000000.000000Z-abcdef12")
    assert release_from_json(release.to_json(), "k") == release
    with pytest.raises(DeployError, match="cannot be read"):
        release_from_json('{"schema": 99}', "releases/dev/x.json")


GOOD = '[stages.dev]\nbucket = "b"\nalias = "live"\nrole = "arn:aws:iam::111122223333:role/r"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD[:30], "invalid TOML"),  # truncated
        ("", "define at least one stage"),  # empty
        ("null", "invalid TOML"),  # null
        ("stages = [1, 2]", "define at least one stage"),  # wrong shape
        ("[stages]\ndev = 3\n", r"\[stages\.dev\]: must be a table"),  # wrong shape, deeper
        ("version = 2\n" + GOOD, "another layerkit version"),  # from another version
        (b"\xff\xfe[stages]", "not UTF-8 text"),  # not text at all
    ],
    ids=["truncated", "empty", "null", "wrong-shape", "wrong-shape-deep", "other-version",
         "binary"],
)  # fmt: skip
def test_a_damaged_stages_file_is_one_paragraph_naming_it_and_the_fix(tmp_path, text, message):
    path = tmp_path / "stages.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(SpecError, match=message) as info:
        load_stages(tmp_path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert "[stages." in str(info.value)  # says what a stage looks like


def test_missing_stages_file_and_missing_stage_say_layerkit_init(tmp_path):
    with pytest.raises(SpecError, match=r"run `layerkit init` \(or `inv init`\)") as caught:
        get_stage(tmp_path, "staging")
    assert "layerkit repository" not in str(caught.value)
    (tmp_path / "stages.toml").write_text(
        '[stages.dev]\nbucket = "b"\nalias = "live"\nrole = "arn:aws:iam::111122223333:role/r"\n'
    )
    with pytest.raises(SpecError, match=r"Add a \[stages.prod\] table there .*`layerkit init`"):
        get_stage(tmp_path, "prod")


def test_init_writes_a_commented_stages_file_that_loads_and_refuses_to_overwrite(tmp_path):
    from layerkit import commands
    from layerkit.project.stages import STAGE_KEYS

    out = commands.init(tmp_path)
    assert out.path == tmp_path / "stages.toml"
    text = out.path.read_text()
    for key in STAGE_KEYS:  # every key is explained in the file
        assert f"# {key.name} " in text
    assert load_stages(tmp_path)["local"].local is True
    out.path.write_text(text + "# mine\n")
    with pytest.raises(SpecError, match="exists already; `init` does not overwrite it"):
        commands.init(tmp_path)
    assert out.path.read_text().endswith("# mine\n")


def test_readme_documents_every_stages_key():
    from layerkit.project.stages import STAGE_KEYS
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for key in STAGE_KEYS:
        assert f"| `{key.name}` | {key.type} | {key.default} |" in readme, key.name
