"""What the install step leaves in a ``--target`` folder, and that it never writes through links."""

from __future__ import annotations

import os
from pathlib import Path

from layerkit.build.install import drop_script_entries, requirement_lines, tidy_target
from layerkit.build.lock import LockedPackage


def test_tidy_replaces_a_linked_record_and_leaves_the_cache_alone(tmp_path: Path) -> None:
    cache, dest = tmp_path / "uv-cache", tmp_path / "python"
    (dest / "pkg-1.0.dist-info").mkdir(parents=True)
    (dest / "bin").mkdir()
    (dest / "bin" / "tool").write_text("#!/host/python\n")
    (dest / ".lock").write_text("")
    cache.mkdir()
    text = "pkg/__init__.py,sha256=x,1\nbin/tool,sha256=y,2\n"
    (cache / "RECORD").write_text(text)
    os.link(cache / "RECORD", dest / "pkg-1.0.dist-info" / "RECORD")  # as uv links it
    tidy_target(dest)
    assert (dest / "pkg-1.0.dist-info" / "RECORD").read_text() == "pkg/__init__.py,sha256=x,1\n"
    assert (cache / "RECORD").read_text() == text  # uv's cache is as it was
    assert not (dest / "bin").exists()
    assert not (dest / ".lock").exists()


def test_records_keep_everything_but_scripts() -> None:
    assert drop_script_entries("a.py,,\nbin/x,,\nb/bin/y,,\n") == "a.py,,\nb/bin/y,,\n"


def test_requirement_lines_pin_every_hash() -> None:
    pkg = LockedPackage("six", "1.16.0", "https://x/six.whl", "a" * 64, 10, ("root",))
    assert requirement_lines([pkg]) == f"six==1.16.0 --hash=sha256:{'a' * 64}\n"
