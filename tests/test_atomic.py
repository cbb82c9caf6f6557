"""Atomic outputs: complete or absent, never half-written."""

from __future__ import annotations

import os
import signal

import pytest

from lora_compat.atomic import TEMP_MARK, Terminated, atomic_dir, atomic_writer, staged_file, write_text
from lora_compat.errors import UserError


def test_write_replaces_whole_file(tmp_path) -> None:
    p = tmp_path / "out.toml"
    p.write_text("old")
    write_text(p, "new content")
    assert p.read_text() == "new content"
    assert [x.name for x in tmp_path.iterdir()] == ["out.toml"]


def test_failure_leaves_old_file_and_no_temp(tmp_path) -> None:
    p = tmp_path / "out.bin"
    p.write_bytes(b"original")
    with pytest.raises(RuntimeError), atomic_writer(p) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert p.read_bytes() == b"original"
    assert [x.name for x in tmp_path.iterdir()] == ["out.bin"]


def test_failure_without_previous_file_leaves_nothing(tmp_path) -> None:
    with pytest.raises(ValueError), atomic_writer(tmp_path / "new.bin") as fh:
        fh.write(b"x")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_complete_or_absent(tmp_path) -> None:
    d = tmp_path / "peft"
    with pytest.raises(OSError), atomic_dir(d) as tmp:
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


# --- umask, one-line errors, SIGTERM (#12.5, #10.9) -----------------------------------------------------------



@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_new_outputs_honour_the_umask(tmp_path) -> None:
    old = os.umask(0o077)
    try:
        write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_text("1")
        with staged_file(tmp_path / "s.bin") as tmp:
            tmp.write_bytes(b"1")
        os.umask(0o002)
        write_text(tmp_path / "b.txt", "x")
        with atomic_dir(tmp_path / "e") as tmp:
            pass
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"a.txt": 0o600, "d": 0o700, "s.bin": 0o600, "b.txt": 0o664, "e": 0o775}


def test_write_failures_are_user_errors_naming_the_destination(tmp_path) -> None:
    (tmp_path / "f").write_text("a file")
    with pytest.raises(UserError, match=r"f/sub/x\.txt: cannot write: a parent of this path is a file"):
        write_text(tmp_path / "f" / "sub" / "x.txt", "x")
    with pytest.raises(UserError, match="cannot write"), atomic_dir(tmp_path / "f" / "d"):
        pass
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        write_text(tmp_path / "dir", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "f"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_sigterm_during_a_write_removes_the_temporary(tmp_path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), atomic_writer(tmp_path / "x.bin") as fh:
        fh.write(b"partial")
        assert next(p.name for p in tmp_path.iterdir()).startswith(f".x.bin.{TEMP_MARK}-")
        os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == before   # a library caller's handler is restored
    # Terminated is a KeyboardInterrupt: Ctrl-C cleanup paths apply
    with pytest.raises(KeyboardInterrupt), atomic_dir(tmp_path / "d") as tmp:
        (tmp / "a").write_text("1")
        os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_without_replace_leaves_an_existing_folder_alone(tmp_path) -> None:
    d = tmp_path / "out"
    d.mkdir()
    (d / "mine").write_text("keep")
    with pytest.raises(UserError, match="already exists"), atomic_dir(d) as tmp:
        (tmp / "new").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (d / "mine").read_text() == "keep"
