"""The build cache against a local folder store: lookups, verification, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.build import cache as C
from layerkit.build.archive import write_zip
from layerkit.build.manifest import ArtifactRecord
from layerkit.errors import CacheError, SpecError

KEY = C.CacheKey("layer", "base", "layers/base.zip", "python3.9-x86_64", "ab" * 32)


def built(out: Path, tmp: Path) -> ArtifactRecord:
    tree = tmp / "tree"
    (tree / "python" / "six").mkdir(parents=True, exist_ok=True)
    (tree / "python" / "six" / "__init__.py").write_text("VERSION = 1\n" * 50)
    (tree / "python" / "six" / "core.py").write_text("x = 2\n")
    info = write_zip(tree, out / KEY.path)
    return ArtifactRecord(
        kind="layer",
        name="base",
        target=KEY.target,
        path=KEY.path,
        sha256=info.sha256,
        zipped_bytes=info.zipped_bytes,
        unzipped_bytes=info.unzipped_bytes,
        files=info.files,
        input_hash=KEY.input_hash,
        distributions={"six": "1.17.0"},
    )


class Notes(list):
    def __call__(self, step: str, detail: str) -> None:
        self.append((step, detail))

    def warnings(self) -> list[str]:
        return [d for s, d in self if s == "warning"]


@pytest.fixture
def store(tmp_path: Path) -> C.FolderStore:
    return C.FolderStore(tmp_path / "cache")


@pytest.fixture
def shared(tmp_path: Path, store: C.FolderStore) -> ArtifactRecord:
    """An entry in the store, as a build on another machine left it."""
    other = tmp_path / "other" / "dist"
    record = built(other, tmp_path / "other")
    assert C.share(store, other, KEY, record, Notes())
    return record


def test_an_entry_is_restored_byte_for_byte_with_its_record(tmp_path, store, shared):
    out, notes = tmp_path / "dist", Notes()
    found, record = C.restore(store, out, KEY, notes)
    assert found is C.Lookup.HIT
    assert record == shared
    assert (out / KEY.path).read_bytes() == (tmp_path / "other" / "dist" / KEY.path).read_bytes()
    assert notes.warnings() == []
    assert [p.name for p in (out / "layers").iterdir()] == ["base.zip"]  # no temporary left


def test_no_entry_is_a_plain_miss_without_warning(tmp_path, store):
    notes = Notes()
    assert C.restore(store, tmp_path / "dist", KEY, notes) == (C.Lookup.MISS, None)
    assert notes.warnings() == []
    assert not (tmp_path / "dist" / KEY.path).exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda z: z.write_bytes(z.read_bytes()[:-10]), "bytes, its record says"),
        (lambda z: z.write_bytes(b"PK" + z.read_bytes()[2:][::-1]), "sha256"),
    ],
    ids=["truncated", "altered"],
)
def test_a_corrupt_zip_is_ignored_with_a_warning_and_never_lands(
    tmp_path, store, shared, damage, reason
):
    damage(store.root / KEY.zip_key)
    out, notes = tmp_path / "dist", Notes()
    assert C.restore(store, out, KEY, notes) == (C.Lookup.IGNORED, None)
    (warning,) = notes.warnings()
    assert "corrupt cache entry" in warning
    assert reason in warning
    assert list((out / "layers").iterdir()) == []


def test_a_record_that_does_not_match_its_zip_is_ignored(tmp_path, store, shared):
    record_file = store.root / KEY.record_key
    record_file.write_text(record_file.read_text().replace('"files": 2', '"files": 3'))
    notes = Notes()
    assert C.restore(store, tmp_path / "dist", KEY, notes)[0] is C.Lookup.IGNORED
    assert "holds 2 files" in notes.warnings()[0]


def test_a_record_for_another_artifact_is_ignored(tmp_path, store, shared):
    other = C.CacheKey("layer", "top", "layers/top.zip", KEY.target, KEY.input_hash)
    (store.root / other.record_key).parent.mkdir(parents=True)
    (store.root / KEY.record_key).rename(store.root / other.record_key)
    (store.root / KEY.zip_key).rename(store.root / other.zip_key)
    notes = Notes()
    assert C.restore(store, tmp_path / "dist", other, notes)[0] is C.Lookup.IGNORED
    assert "describes layers/base.zip" in notes.warnings()[0]


@pytest.mark.parametrize("missing", ["zip", "record"])
def test_a_partial_entry_is_ignored_with_a_warning(tmp_path, store, shared, missing):
    (store.root / (KEY.zip_key if missing == "zip" else KEY.record_key)).unlink()
    notes = Notes()
    assert C.restore(store, tmp_path / "dist", KEY, notes) == (C.Lookup.IGNORED, None)
    (warning,) = notes.warnings()
    assert "partial cache entry" in warning
    assert not (tmp_path / "dist" / KEY.path).exists()


def test_a_record_that_is_not_json_is_ignored(tmp_path, store, shared):
    (store.root / KEY.record_key).write_text("{not json")
    notes = Notes()
    assert C.restore(store, tmp_path / "dist", KEY, notes)[0] is C.Lookup.IGNORED
    assert "not a layerkit manifest record" in notes.warnings()[0]


def test_an_unreachable_store_is_a_warning_for_reads_and_writes(tmp_path):
    class Broken:
        def where(self, key: str) -> str:
            return f"broken://{key}"

        def get(self, key: str, dest: Path) -> bool:
            raise CacheError("connection refused")

        exists = get

        def put(self, key: str, source: Path) -> None:
            raise CacheError("access denied")

    notes, out = Notes(), tmp_path / "dist"
    record = built(out, tmp_path)
    assert C.restore(Broken(), out, KEY, notes) == (C.Lookup.IGNORED, None)
    assert C.share(Broken(), out, KEY, record, notes) is False
    assert ["could not be read" in w for w in notes.warnings()] == [True, False]
    assert "could not upload" in notes.warnings()[1]


def test_through_builds_on_a_miss_and_shares_what_it_built(tmp_path, store):
    out, calls = tmp_path / "dist", []

    def build() -> ArtifactRecord:
        calls.append(1)
        return built(out, tmp_path)

    record, found = C.through(store, out, KEY, build, Notes())
    assert (found, calls) == (C.Lookup.MISS, [1])
    assert (store.root / KEY.zip_key).read_bytes() == (out / KEY.path).read_bytes()
    (out / KEY.path).unlink()
    again, found = C.through(store, out, KEY, build, Notes())
    assert (found, calls, again) == (C.Lookup.HIT, [1], record)
    _, found = C.through(store, out, KEY, build, Notes(), lookup=False)
    assert (found, calls) == (None, [1, 1])
    assert C.through(None, out, KEY, build, Notes())[1] is None


def test_cache_url_option_beats_environment_beats_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.layerkit]\ncache = "s3://team/cache"\n')
    env = {"LAYERKIT_CACHE": "s3://ci/cache"}
    assert C.cache_url(tmp_path, "s3://mine/x", env) == ("s3://mine/x", "--cache")
    assert C.cache_url(tmp_path, None, env) == ("s3://ci/cache", "LAYERKIT_CACHE")
    assert C.cache_url(tmp_path, None, {})[0] == "s3://team/cache"
    assert C.cache_url(tmp_path, "none", env)[0] is None
    assert C.cache_url(tmp_path / "nowhere", None, {})[0] is None


def test_a_cache_setting_that_is_not_a_string_names_the_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.layerkit]\ncache = 3\n")
    with pytest.raises(SpecError, match=r"pyproject.toml: \[tool.layerkit\] cache must be"):
        C.cache_url(tmp_path, None, {})


def test_open_store_knows_s3_file_and_folders_and_refuses_the_rest(tmp_path):
    s3 = C.open_store("s3://bucket/some/prefix/", s3_client=object())
    assert isinstance(s3, C.S3Store)
    assert s3.where(KEY.zip_key) == f"s3://bucket/some/prefix/{KEY.zip_key}"
    assert C.open_store(tmp_path.as_uri()) == C.FolderStore(tmp_path)
    assert C.open_store(str(tmp_path)) == C.FolderStore(tmp_path)
    with pytest.raises(SpecError, match="names no bucket"):
        C.open_store("s3:///prefix", s3_client=object())
    with pytest.raises(SpecError, match=r"--cache: 'https://x/y' is not a cache"):
        C.open_store("https://x/y")
