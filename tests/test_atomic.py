"""Atomic outputs: complete or absent, never half-written."""

from __future__ import annotations

import pytest

from lora_compat.atomic import atomic_dir, atomic_writer, write_text


def test_write_replaces_whole_file(tmp_path) -> None:
    p = tmp_path / "out.toml"
    p.write_text("old")
    write_text(p, "new content")
    assert p.read_text() == "new content"
    assert [x.name for x in tmp_path.iterdir()] == ["out.toml"]


def test_failure_leaves_old_file_and_no_temp(tmp_path) -> None:
    p = tmp_path / "out.bin"
    p.write_bytes(b"original")
    with pytest.raises(RuntimeError):
        with atomic_writer(p) as fh:
            fh.write(b"partial")
            raise RuntimeError("boom")
    assert p.read_bytes() == b"original"
    assert [x.name for x in tmp_path.iterdir()] == ["out.bin"]


def test_failure_without_previous_file_leaves_nothing(tmp_path) -> None:
    with pytest.raises(ValueError):
        with atomic_writer(tmp_path / "new.bin") as fh:
            fh.write(b"x")
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_complete_or_absent(tmp_path) -> None:
    d = tmp_path / "peft"
    with pytest.raises(OSError):
        with atomic_dir(d) as tmp:
            (tmp / "a").write_text("1")
            raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(d) as tmp:
        (tmp / "a").write_text("1")
    assert (d / "a").read_text() == "1"
    with atomic_dir(d, replace=True) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(x.name for x in d.iterdir()) == ["b"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["peft"]


def test_atomic_dir_replaces_a_file_without_leftovers(tmp_path) -> None:
    d = tmp_path / "out"
    d.write_text("a file where the folder goes")
    with atomic_dir(d, replace=True) as tmp:
        (tmp / "x").write_text("1")
    assert (d / "x").read_text() == "1"
    assert [x.name for x in tmp_path.iterdir()] == ["out"]
