from layerkit.build.uv import target_args
from layerkit.runtime.target import Target


def test_target_args_carry_the_patch_version_and_the_covering_platform() -> None:
    args = target_args(Target("python3.9"))
    assert args[args.index("--python-version") + 1] == Target("python3.9").python_full_version
    assert args[args.index("--python-platform") + 1] == "x86_64-manylinux_2_28"
    assert args[args.index("--only-binary") + 1] == ":all:"
    assert "--no-binary" not in args


def test_allowed_sdists_are_exempt_from_wheels_only() -> None:
    args = target_args(Target("python3.12"), ["typed-ast", "docopt"])
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "--no-binary"]
    assert pairs == ["docopt", "typed-ast"]


def test_uvs_output_comes_back_without_credentials(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    from pathlib import Path

    from layerkit.build import uv

    def fake_run(args, **kwargs):  # type: ignore[no-untyped-def]
        return subprocess.CompletedProcess(
            args, 2, "via http://u:hunter2@h.example/simple\n", "error: `https://t0k@h/x` 401"
        )

    monkeypatch.setattr(uv, "uv_binary", lambda: "uv")
    monkeypatch.setattr(uv.subprocess, "run", fake_run)
    proc = uv.run_uv(["pip", "compile", "--index", "https://u:hunter2@h.example/simple"], Path())
    shown = f"{proc.args} {proc.stdout} {proc.stderr}"
    assert "hunter2" not in shown
    assert "t0k" not in shown
    assert "https://***@h.example/simple" in shown
    assert proc.returncode == 2


def test_index_args_keep_the_order_uv_asks_and_expand_variables() -> None:
    from layerkit.build.uv import Index, Indexes

    indexes = Indexes(
        Index("https://mirror.example/simple", "a:1"),
        (Index("https://u:${TOK}@p.example/simple", "b:2", "private"),),
        (Index("/srv/wheels", "c:3"),),
    )
    assert indexes.args({"TOK": "x"}) == [
        "--index-strategy",
        "first-index",
        "--default-index",
        "https://mirror.example/simple",
        "--index",
        "private=https://u:x@p.example/simple",
        "--find-links",
        "/srv/wheels",
    ]
    assert indexes.shown() == (
        "https://***@p.example/simple, then https://mirror.example/simple, then /srv/wheels "
        "(find-links)"
    )
    assert Indexes().args() == ["--index-strategy", "first-index"]
    assert Indexes().default_url == "https://pypi.org/simple"


def test_uv_is_told_a_width_at_which_it_never_wraps(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    from pathlib import Path

    from layerkit.build import uv

    seen = {}

    def fake_run(args, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal, or an xdist worker's 80
    monkeypatch.setattr(uv, "uv_binary", lambda: "uv")
    monkeypatch.setattr(uv.subprocess, "run", fake_run)
    uv.run_uv(["pip", "compile"], Path())
    # uv wraps its messages at COLUMNS, and layerkit reads them (e.g. "was not found")
    assert int(seen["COLUMNS"]) >= 10_000
