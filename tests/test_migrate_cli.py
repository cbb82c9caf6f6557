"""lora-compat migrate / plan on the command line: outputs, reports, --strict, --force, atomicity, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from lora_compat.cli import cli
from lora_compat.tomlparse import tomllib

from shared_data import FIXTURES

NATIVE = FIXTURES / "migrate" / "native_full.toml"


def _run(*args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # UserError handling lives in main(); emulate it to get the exit code users see
        from lora_compat.errors import UserError

        assert isinstance(result.exception, UserError), repr(result.exception)
        return result.exception.exit_code, str(result.exception)
    return result.exit_code, result.output


def test_migrate_to_sd_scripts_writes_config_and_dataset(tmp_path: Path) -> None:
    out = tmp_path / "cfg.toml"
    code, text = _run("migrate", str(NATIVE), "--to", "sd-scripts", "-o", str(out), "--format", "json")
    assert code == 0, text
    report = json.loads(text)
    ds = tmp_path / "cfg_dataset.toml"
    assert report["outputs"] == [str(out), str(ds)]
    config = tomllib.loads(out.read_text())
    assert config["dataset_config"] == str(ds.resolve())
    assert config["network_args"][:2] == ["conv_dim=8", "conv_alpha=1.0"]
    assert config["lr_warmup_steps"] == 0.05
    assert "sdxl" not in config and 'script = "sdxl_train_network.py"' in out.read_text()
    dataset = tomllib.loads(ds.read_text())
    assert dataset["general"]["resolution"] == [1024, 1024]
    assert dataset["datasets"][0]["validation_split"] == 0.1
    kinds = {e["option"]: e["kind"] for e in report["entries"]}
    assert kinds["peft.use_rslora"] == "no-equivalent" and kinds["network_dim"] == "renamed"
    assert report["losses"] == sum(1 for e in report["entries"] if e["loss"]) >= 2


def test_strict_fails_with_exit_1_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "cfg.toml"
    code, text = _run("migrate", str(NATIVE), "--to", "sd-scripts", "-o", str(out), "--strict")
    assert code == 1 and "--strict" in text and "peft." in text
    assert not out.exists() and os.listdir(tmp_path) == []
    code, _ = _run("migrate", str(NATIVE), "--to", "native", "-o", str(out), "--strict")
    assert code == 0 and out.exists()


def test_never_overwrite_without_force_and_never_the_input(tmp_path: Path) -> None:
    out = tmp_path / "n.toml"
    out.write_text("keep me")
    code, text = _run("migrate", str(NATIVE), "--to", "native", "-o", str(out))
    assert code == 2 and "--force" in text and out.read_text() == "keep me"
    code, _ = _run("migrate", str(NATIVE), "--to", "native", "-o", str(out), "--force")
    assert code == 0 and 'format = "lora-compat/1"' in out.read_text() and out.read_text() != "keep me"
    src = tmp_path / "src.toml"
    src.write_text(NATIVE.read_text())
    before = src.read_text()
    code, text = _run("migrate", str(src), "--to", "native", "-o", str(src), "--force")
    assert code == 2 and "input" in text and src.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "lora-compat/1"\n[network]\nr = "x"\n')
    code, text = _run("migrate", str(bad), "--to", "sd-scripts", "-o", str(tmp_path / "o.toml"))
    assert code == 2 and f"{bad}:3" in text and "\n" not in text.strip()
    assert not (tmp_path / "o.toml").exists()
    code, text = _run("plan", str(bad))
    assert code == 2 and f"{bad}:3" in text


def test_text_report_names_every_kind(tmp_path: Path) -> None:
    code, text = _run("migrate", str(NATIVE), "--to", "sd-scripts", "-o", str(tmp_path / "o.toml"))
    assert code == 0
    for word in ("renamed", "converted", "no-equivalent", "kept", "wrote"):
        assert word in text
    assert "network.use_rslora" in text


def test_plan_json_and_text(tmp_path: Path) -> None:
    code, text = _run("plan", str(NATIVE), "--format", "json")
    assert code == 0
    data = json.loads(text)
    assert data["arch"] == "sdxl" and len(data["adapters"]) == 3
    unet = next(a for a in data["adapters"] if a["part"] == "unet")
    assert unet["peft_kwargs"]["use_rslora"] is True and unet["peft_kwargs"]["rank_pattern"]
    assert data["engine_options"]["network_dropout"]["p"] == 0.1
    assert [g["part"] for g in data["param_groups"]][:2] == ["text_encoder", "text_encoder"]
    code, text = _run("plan", str(NATIVE))
    assert code == 0 and "LoraConfig(" in text and "implemented by the engine" in text


def test_migrate_kohya_gui_target(tmp_path: Path) -> None:
    out = tmp_path / "gui.json"
    code, text = _run("migrate", str(NATIVE), "--to", "kohya-gui", "-o", str(out), "--format", "json")
    assert code == 0, text
    gui = json.loads(out.read_text())
    assert gui["sdxl"] is True and gui["LoRA_type"] == "Kohya LoCon"
    assert gui["network_dim"] == 16 and gui["conv_dim"] == 8
    assert gui["lr_warmup"] == 5  # percent
    assert gui["max_resolution"] == "" and gui["dataset_config"] == str((tmp_path / "gui_dataset.toml").resolve())
    assert gui["optimizer_args"] == "weight_decay=0.01 betas=0.9,0.99"
    assert gui["text_encoder_lr"] == 5e-05 and gui["unet_lr"] == 0.0001
    assert gui["caption_extension"] == ".caption"  # unset: sd-scripts' default, not the GUI's ".txt"
    assert (tmp_path / "gui_dataset.toml").exists()


def test_plan_image_counts_option(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('format = "lora-compat/1"\n[training]\nmax_train_epochs = 2\ntrain_batch_size = 2\n'
                   '[data]\ntrain_data_dir = "/elsewhere/img"\n')
    code, text = _run("plan", str(cfg), "--format", "json", "--images", "10_sks dog=5", "--images", "3_cat=2")
    assert code == 0, text
    steps = json.loads(text)["steps"]
    assert steps["steps_per_epoch"] == 28 and steps["max_train_steps"] == 56  # ceil((50 + 6) / 2) x 2 epochs
    code, text = _run("plan", str(cfg), "--images", "nonsense")
    assert code == 2 and "FOLDER=COUNT" in text


def test_help_shows_examples() -> None:
    for cmd in ("migrate", "plan"):
        code, text = _run(cmd, "--help")
        assert code == 0 and "Examples:" in text and f"lora-compat {cmd} " in text.split("Examples:")[1]


def test_output_under_a_file_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, text = _run("migrate", str(NATIVE), "--to", "native", "-o", str(blocker / "o.toml"))
    assert code == 2 and "not a folder" in text and "\n" not in text.strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_missing_output_folder_is_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "cfg.toml"
    code, text = _run("migrate", str(NATIVE), "--to", "sd-scripts", "-o", str(out))
    assert code == 0, text
    assert sorted(p.name for p in out.parent.iterdir()) == ["cfg.toml", "cfg_dataset.toml"]


def test_plan_text_prints_config_values_literally(tmp_path: Path) -> None:
    """A path with rich markup characters is printed as is (no MarkupError traceback, nothing swallowed)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('format = "lora-compat/1"\n[model]\npretrained_model_name_or_path = "/m/[/x][bold]m.ckpt"\n')
    code, text = _run("plan", str(cfg))
    assert code == 0, text
    assert "/m/[/x][bold]m.ckpt" in text


def _json_example(section: str) -> dict:
    """The ```json example of a docs/cli.md section (the documented --format json contract)."""
    import re

    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    body = docs.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```json\n(.*?)\n```", body, re.S).group(1)
    return json.loads(example.replace('"..."', '"x"'))


def _same_shape(documented, actual, where: str = "$") -> None:
    if isinstance(documented, dict) and isinstance(actual, dict):
        assert set(documented) <= set(actual), (where, set(documented) - set(actual))
        for k in documented:
            _same_shape(documented[k], actual[k], f"{where}.{k}")
    elif isinstance(documented, list) and documented and isinstance(documented[0], dict):
        assert isinstance(actual, list) and actual, where
        _same_shape(documented[0], actual[0], f"{where}[0]")


def test_json_outputs_match_the_documented_contract(tmp_path: Path) -> None:
    code, text = _run("migrate", str(NATIVE), "--to", "native", "-o", str(tmp_path / "o.toml"), "--format", "json")
    assert code == 0
    report = json.loads(text)
    documented = _json_example("migrate")
    assert set(report) == set(documented) and set(report["counts"]) == set(documented["counts"])
    _same_shape(documented, report)
    assert set(report["entries"][0]) == set(documented["entries"][0])
    code, text = _run("plan", str(NATIVE), "--format", "json")
    plan = json.loads(text)
    documented = _json_example("plan")
    assert set(plan) == set(documented)
    documented["unsupported"] = documented["ignored"] = []  # none in the fixture; the rest's shape must hold
    documented["samples"]["prompts"] = []  # no prompt file in the fixture
    _same_shape(documented, plan)
    assert set(plan["adapters"][0]) == set(documented["adapters"][0])
    assert set(plan["steps"]) == set(documented["steps"])
