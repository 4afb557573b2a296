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
