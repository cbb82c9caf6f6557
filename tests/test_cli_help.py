"""Every command's --help shows usage examples; the top-level help lists every command."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lora_compat.cli import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_help_has_examples(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and f"lora-compat {name}" in result.output


def test_top_level_help_lists_commands_and_version() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["--help"]).output
    assert all(name in out for name in COMMANDS)
    assert runner.invoke(cli, ["--version"]).output.startswith("lora-compat, version ")
