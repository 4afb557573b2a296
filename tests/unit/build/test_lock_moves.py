"""Private indexes, hashes, version moves and sizes in the lock (issue 20), with fakes only."""

from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.build import lock as L
from layerkit.build.uv import INDEX_STRATEGY, Index, Indexes
from layerkit.errors import LockError, SpecError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target

H = "ab" * 32


def pkg(
    name: str, version: str, *required_by: str, size: int = 10, sha: str = H, index: str = ""
) -> L.LockedPackage:
    return L.LockedPackage(
        name,  # type: ignore[arg-type]
        version,
        f"https://files/{name}-{version}-py3-none-any.whl",
        sha,
        size,
        required_by,
        index,
    )


def lock_of(inputs: dict[str, str], *packages: L.LockedPackage) -> L.Lock:
    return L.Lock(Target("python3.9"), inputs, tuple(sorted(packages, key=lambda p: p.name)))


# ---------------------------------------------------------------- moves


def _new_layer_project(make_project: Callable[..., Path]) -> tuple[L.Project, L.Lock, L.Lock]:
    project = load_project(
        make_project(
            {"base": ([], "six\n"), "top": (["base"], "pytz\n"), "extra": ([], "six==1.16.0\n")}
        )
    )
    after_inputs = L.input_hashes(project)
    before_inputs = {k: v for k, v in after_inputs.items() if k != "layer:extra"}
    before = lock_of(
        before_inputs, pkg("six", "1.17.0", "layer:base"), pkg("pytz", "2024.1", "layer:top")
    )
    after = lock_of(
        after_inputs,
        pkg("six", "1.16.0", "layer:base", "layer:extra"),
        pkg("pytz", "2024.1", "layer:top"),
    )
    return project, before, after


def test_diff_lists_every_move_per_layer_with_the_line_behind_it(
    make_project: Callable[..., Path],
) -> None:
    project, before, after = _new_layer_project(make_project)
    diff = L.diff_locks(project, before, after)
    assert [(m.label, m.name, m.before, m.after, m.kind) for m in diff.moves] == [
        ("base", "six", "1.17.0", "1.16.0", L.MoveKind.DOWNGRADED),
        ("extra", "six", "", "1.16.0", L.MoveKind.ADDED),
    ]
    cause = "layers/extra/requirements.txt:1 (six==1.16.0)"
    assert all(m.cause == cause for m in diff.moves)
    assert diff.rows()[0] == ["python3.9-x86_64", "base", "six", "1.17.0", "1.16.0", cause]
    assert L.diff_locks(project, None, after).moves == ()  # a first lock moves nothing
    assert L.diff_locks(project, after, after).moves == ()


def test_a_move_in_an_unchanged_layer_is_refused_naming_the_pin(
    make_project: Callable[..., Path],
) -> None:
    project, before, after = _new_layer_project(make_project)
    diff = L.diff_locks(project, before, after)
    with pytest.raises(LockError) as caught:
        L.refuse_silent_moves(project, diff, upgrade=False)
    message = str(caught.value)
    assert "would move six in base (1.17.0 -> 1.16.0)" in message
    assert "the pin layers/extra/requirements.txt:1 (six==1.16.0) forces it" in message
    assert "--upgrade-package six" in message
    assert "\n" not in message
    # accepted explicitly: no refusal
    L.refuse_silent_moves(project, diff, upgrade=False, upgrade_packages=["Six"])
    L.refuse_silent_moves(project, diff, upgrade=True)


def test_a_function_pin_that_moves_a_layers_distribution_names_both(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"base": ([], "numpy\n"), "top": (["base"], "pytz\n")})
    (root / "functions" / "fn" / "requirements.txt").write_text("numpy==1.26.4\n")
    project = load_project(root)
    after_inputs = L.input_hashes(project)
    before_inputs = {**after_inputs, "function:fn": "0" * 64}
    before = lock_of(
        before_inputs, pkg("numpy", "2.0.2", "layer:base"), pkg("pytz", "1", "layer:top")
    )
    after = lock_of(
        after_inputs,
        pkg("numpy", "1.26.4", "layer:base", "function:fn"),
        pkg("pytz", "1", "layer:top"),
    )
    diff = L.diff_locks(project, before, after)
    with pytest.raises(LockError) as caught:
        L.refuse_silent_moves(project, diff, upgrade=False)
    message = str(caught.value)
    assert "functions/fn/requirements.txt:1 (numpy==1.26.4)" in message
    assert "conflicts with the numpy 2.0.2 that base carries" in message


def test_a_move_in_a_layer_whose_own_lines_changed_is_allowed(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(
        make_project({"base": ([], "six==1.16.0\n"), "top": (["base"], "pytz\n")})
    )
    after_inputs = L.input_hashes(project)
    before = lock_of(
        {**after_inputs, "layer:base": "0" * 64},
        pkg("six", "1.17.0", "layer:base"),
        pkg("pytz", "1", "layer:top"),
    )
    after = lock_of(after_inputs, pkg("six", "1.16.0", "layer:base"), pkg("pytz", "1", "layer:top"))
    diff = L.diff_locks(project, before, after)
    assert [m.owner_changed for m in diff.moves] == [True]
    L.refuse_silent_moves(project, diff, upgrade=False)


# ---------------------------------------------------------------- sizes


def test_sizes_are_estimated_and_a_layer_certain_to_exceed_is_refused(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(make_project({"base": ([], "torch\n"), "top": (["base"], "pytz\n")}))
    inputs = L.input_hashes(project)
    lock = lock_of(
        inputs,
        pkg("torch", "2.5.0", "layer:base", size=900_000_000),
        pkg("nvidia-cudnn-cu12", "9.1", "torch", size=2_100_000_000),
        pkg("pytz", "1", "layer:top", size=500_000),
    )
    sizes = {e.owner: e for e in L.estimate_sizes(project, lock)}
    assert sizes["layer:base"].zipped == 3_000_000_000
    assert sizes["layer:base"].unzipped == 9_000_000_000
    assert sizes["layer:base"].biggest[0] == ("nvidia-cudnn-cu12==9.1", 2_100_000_000)
    assert sizes["layer:base"].certainly_over
    assert not sizes["layer:top"].certainly_over
    with pytest.raises(LockError) as caught:
        L.refuse_oversized(project, lock, tuple(sizes.values()))
    message = str(caught.value)
    assert message.startswith("base on python3.9-x86_64 cannot fit in Lambda")
    assert "nvidia-cudnn-cu12==9.1 (2,100.0 MB)" in message
    assert "another index" in message
    assert "container image" in message
    assert "nothing was downloaded" in message


def test_a_small_lock_passes_the_size_check(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    lock = lock_of(
        L.input_hashes(project), pkg("six", "1.17.0", "layer:base"), pkg("pytz", "1", "layer:top")
    )
    L.refuse_oversized(project, lock, L.estimate_sizes(project, lock))


# ---------------------------------------------------------------- hashes


def test_a_hash_that_does_not_match_the_locked_wheel_is_one_paragraph(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(
        make_project(
            {
                "base": ([], f"six==1.17.0 \\\n  --hash=sha256:{'cd' * 32}\n"),
                "top": (["base"], "pytz\n"),
            }
        )
    )
    good = lock_of(
        L.input_hashes(project),
        pkg("six", "1.17.0", "layer:base", sha="cd" * 32),
        pkg("pytz", "1", "layer:top"),
    )
    L.check_hashes(project, good)
    bad = lock_of(
        L.input_hashes(project), pkg("six", "1.17.0", "layer:base"), pkg("pytz", "1", "layer:top")
    )
    with pytest.raises(
        LockError, match=r"^layers/base/requirements.txt:1: six==1.17.0 allows 1 hash"
    ):
        L.check_hashes(project, bad)


# ---------------------------------------------------------------- indexes


def test_indexes_pool_the_projects_and_the_layers_with_the_safe_strategy(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(
        {
            "base": ([], "--extra-index-url https://u:tok@private.example/simple\nsix\n"),
            "top": (
                ["base"],
                "-f wheels\n--extra-index-url https://u:tok@private.example/simple\npytz\n",
            ),
        }
    )
    (root / "pyproject.toml").write_text(
        '[tool.layerkit]\nindex-url = "mirror=https://mirror.example/simple"\n'
    )
    project = load_project(root)
    indexes = L.target_indexes(project, Target("python3.9"))
    assert indexes.default == Index(
        "https://mirror.example/simple", "pyproject.toml [tool.layerkit] index-url", "mirror"
    )
    assert [i.url for i in indexes.extra] == ["https://u:tok@private.example/simple"]
    assert indexes.find_links[0].url == str(root / "layers" / "top" / "wheels")
    args = indexes.args()
    assert args[:2] == ["--index-strategy", INDEX_STRATEGY]
    assert INDEX_STRATEGY == "first-index"
    assert args[2:6] == [
        "--default-index",
        "mirror=https://mirror.example/simple",
        "--index",
        "https://u:tok@private.example/simple",
    ]
    assert "tok" not in indexes.shown()
    assert "project:indexes" in L.input_hashes(project)


def test_two_default_indexes_are_refused_naming_both(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "base": ([], "-i https://a:pw@one.example/simple\nsix\n"),
            "top": (["base"], "--index-url https://two.example/simple\npytz\n"),
        }
    )
    with pytest.raises(SpecError) as caught:
        L.target_indexes(load_project(root), Target("python3.9"))
    message = str(caught.value)
    assert "layers/top/requirements.txt:1" in message
    assert "layers/base/requirements.txt:1" in message
    assert "pw" not in message


def test_an_index_url_reads_its_variables_from_the_environment() -> None:
    index = Index.parse("https://__token__:${PRIVATE_TOKEN}@private.example/simple", "x:1")
    assert index.arg({"PRIVATE_TOKEN": "t0k"}) == "https://__token__:t0k@private.example/simple"
    with pytest.raises(SpecError, match=r"x:1: .*\$\{PRIVATE_TOKEN\}, which is not set"):
        index.arg({})
    assert index.shown == "https://***@private.example/simple"


def test_the_lock_records_the_index_without_credentials() -> None:
    lock = lock_of(
        {},
        pkg("private-only", "1.0", "layer:base", index="http://127.0.0.1:8080/simple/"),
        pkg("six", "1.17.0", "layer:base"),
    )
    text = L.render_lock(lock)
    assert text.count("index = ") == 1  # nothing for what came from PyPI: old locks read alike
    assert L.parse_lock(text, Path("x.toml")) == lock
    compiled = "six==1.17.0\n    # via -r a.txt\n    # from https://u:p@private.example/simple\n"
    assert L.index_annotations(compiled) == {"six": "https://***@private.example/simple"}
    assert L.parse_compiled(compiled, {"a.txt": "layer:a"})["six"] == ("1.17.0", ("layer:a",))


# ---------------------------------------------------------------- unreachable indexes

WRONG_PASSWORD = """\
  x No solution found when resolving dependencies:
  `-> Because privonly was not found in the package registry and you require privonly, we can conclude that your requirements are unsatisfiable.

      hint: An index URL (http://127.0.0.1:8080/simple/) returned a 403 Forbidden error. Check that the index URL is correct and the credentials are valid.
"""
UNREACHABLE = """\
error: Request failed after 3 retries in 9.0s
  Caused by: Failed to fetch: `http://u:secret@127.0.0.1:1/simple/six/`
  Caused by: error sending request for url (http://u:secret@127.0.0.1:1/simple/six/)
  Caused by: client error (Connect)
  Caused by: tcp connect error
  Caused by: Connection refused (os error 111)
"""
OFFLINE = """\
error: Failed to fetch: `https://pypi.org/simple/six/`
  Caused by: Network connectivity is disabled, but the requested data wasn't found in the cache for: `https://pypi.org/simple/six/`
"""


@pytest.mark.parametrize(
    ("stderr", "words"),
    [
        (WRONG_PASSWORD, "refused layerkit's request for python3.9-x86_64 with HTTP 403"),
        (UNREACHABLE, "could not be reached while resolving python3.9-x86_64"),
        (OFFLINE, "uv runs offline (UV_OFFLINE is set)"),
    ],
)
def test_an_index_that_refuses_or_cannot_be_reached_is_not_a_clash(stderr: str, words: str) -> None:
    indexes = Indexes(
        extra=(Index("http://u:secret@127.0.0.1:8080/simple/", "layers/a/requirements.txt:1"),)
    )
    error = L.index_failure(stderr, indexes, Target("python3.9"), Path("dist/logs/lock.log"))
    assert error is not None
    message = str(error)
    assert words in message
    assert "secret" not in message
    assert "Relax or align" not in message
    assert "\n" not in message


def test_the_wrong_password_names_the_index_and_where_it_is_set() -> None:
    indexes = Indexes(
        extra=(Index("http://u:secret@127.0.0.1:8080/simple/", "layers/a/requirements.txt:1"),)
    )
    error = L.index_failure(WRONG_PASSWORD, indexes, Target("python3.9"), Path("x.log"))
    assert "the index http://***@127.0.0.1:8080/simple/ (layers/a/requirements.txt:1)" in str(error)
    assert "UV_INDEX_<NAME>_USERNAME" in str(error)


def test_a_real_clash_is_not_taken_for_an_index_failure() -> None:
    stderr = "  x No solution found\n  `-> Because six==1.0 and six==2.0 conflict ...\n"
    assert L.index_failure(stderr, Indexes(), Target("python3.9"), Path("x.log")) is None


def test_lock_output_prints_the_moves_as_a_table() -> None:
    from layerkit.commands import LockedTarget, LockOutput

    move = L.VersionMove(
        "layer:base", "six", "1.17.0", "1.16.0", "layers/x/requirements.txt:1 (six==1.16.0)", False
    )  # type: ignore[arg-type]
    diff = L.LockDiff("python3.9-x86_64", (move,))
    big = L.SizeEstimate("layer:base", 80_000_000, (("torch==2.5.0", 80_000_000),))
    text = LockOutput((LockedTarget("locks/python3.9-x86_64.toml", 3, (), diff, (big,)),)).render()
    assert "1 locked version(s) changed:" in text
    assert "six           1.17.0  1.16.0  layers/x/requirements.txt:1 (six==1.16.0)" in text
    assert "base is about 80.0 MB zipped and 240.0 MB unzipped" in text
    quiet = LockOutput((LockedTarget("locks/python3.9-x86_64.toml", 3, (), L.LockDiff("t", ())),))
    assert quiet.render().endswith("no locked version changed")


def test_upgrade_replaces_an_unreadable_lock_and_a_plain_relock_names_it(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "python3.9-x86_64.toml"
    path.parent.mkdir()
    path.write_text("version = 0\n")
    assert L._lock_on_disk(path, tolerant=True) is None
    with pytest.raises(LockError, match="lock format 0"):
        L._lock_on_disk(path, tolerant=False)
    assert L._lock_on_disk(tmp_path / "none.toml", tolerant=False) is None
