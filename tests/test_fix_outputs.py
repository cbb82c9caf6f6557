"""``lint --fix`` outputs through the one atomic writer (#12.5): never the input without --in-place, never an
existing output without --force, one line when the destination cannot be written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lora_compat.cli import main

from shared_data import FIXTURES

BAD_TOML = FIXTURES / "lint" / "sdscripts_bad.toml"


def run(argv: list, capsys) -> tuple[object, str, str]:
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    p = tmp_path / "cfg.toml"
    shutil.copy(BAD_TOML, p)
    return p


def test_output_same_as_input_needs_in_place(src: Path, capsys) -> None:
    before = src.read_bytes()
    for same in (src, src.parent / "." / src.name):
        code, _, err = run(["lint", src, "--fix", "-o", same], capsys)
        assert code == 2 and "use --in-place" in err and err.count("\n") == 1, err
    assert src.read_bytes() == before
    assert sorted(p.name for p in src.parent.iterdir()) == ["cfg.toml"]


def test_existing_fixed_copy_is_replaced_only_with_force(src: Path, capsys) -> None:
    fixed = src.parent / "cfg.fixed.toml"
    fixed.write_text("my own notes\n")
    code, out, err = run(["lint", src, "--fix"], capsys)
    assert code == 2 and "already exists; pass --force" in out + err
    assert fixed.read_text() == "my own notes\n"
    other = src.parent / "out.toml"
    other.write_text("keep\n")
    code, out, err = run(["lint", src, "--fix", "-o", other], capsys)
    assert code == 2 and err == f"error: {other}: already exists; pass --force to replace it\n"
    assert other.read_text() == "keep\n"
    code, _, err = run(["lint", src, "--fix", "--force"], capsys)
    assert code != 2, err
    assert 'save_model_as = "safetensors"' in fixed.read_text()


def test_unwritable_output_is_one_line_error(src: Path, capsys) -> None:
    blocker = src.parent / "file"
    blocker.write_text("a file where a folder should be")
    code, out, err = run(["lint", src, "--fix", "-o", blocker / "out.toml"], capsys)
    assert code == 2 and "Traceback" not in out + err
    assert "cannot write" in out + err
    assert sorted(p.name for p in src.parent.iterdir()) == ["cfg.toml", "file"]
