"""Index settings in [tool.layerkit] and layer.toml (issue 20)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.config import parse_config
from layerkit.project.requirements import LineKind
from layerkit.project.spec import load_project


def test_tool_layerkit_takes_index_settings() -> None:
    config = parse_config(
        {
            "index-url": "https://mirror.example/simple",
            "extra-index-urls": ["private=https://p.example/simple"],
            "find-links": ["wheels"],
        },
        "pyproject.toml",
    )
    assert config.index_url == "https://mirror.example/simple"
    assert config.extra_index_urls == ("private=https://p.example/simple",)
    assert config.find_links == ("wheels",)


def test_a_wrong_index_setting_type_does_not_echo_the_value() -> None:
    with pytest.raises(SpecError, match="extra-index-urls must be a list") as caught:
        parse_config({"extra-index-urls": "https://u:hunter2@p.example/simple"}, "pyproject.toml")
    assert "hunter2" not in str(caught.value)


def test_layer_toml_index_keys_become_index_lines_at_their_line(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(
        toml.read_text()
        + 'extra-index-urls = ["https://u:pw1@p.example/simple"]\nfind-links = ["wheels"]\n'
    )
    layer = load_project(root).layer("base")
    index_lines = [(r.kind, r.text, r.where) for r in layer.requirements if r.kind.is_index]
    lines = toml.read_text().splitlines()
    extra_at = lines.index('extra-index-urls = ["https://u:pw1@p.example/simple"]') + 1
    assert index_lines == [
        (
            LineKind.EXTRA_INDEX_URL,
            "https://u:pw1@p.example/simple",
            f"layers/base/layer.toml:{extra_at}",
        ),
        (LineKind.FIND_LINKS, "wheels", f"layers/base/layer.toml:{extra_at + 1}"),
    ]
    digest = layer.config_sha256
    toml.write_text(toml.read_text().replace("pw1", "pw2"))
    # a new password is not a new layer: digests read the URL without credentials
    assert load_project(root).layer("base").config_sha256 == digest
