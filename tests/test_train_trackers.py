"""Experiment trackers as sd-scripts sets them up (``--log-with``, ``--logging-dir``, ``log_prefix``,
``log_tracker_name``, ``wandb_run_name``, ``wandb_api_key``) and the ``train --format json`` result fields."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from lora_compat.cli import main  # noqa: E402
from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.plan import make_plan  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

SECRET = "wandb-sekrit-0123456789abcdef"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=2, repeats=1)


def _config(tmp_path: Path, data_dir: Path, **extra) -> Path:
    """An sd-scripts --config_file TOML for a 2-step tiny SD1 run."""
    opts = {"pretrained_model_name_or_path": "tiny:sd1", "train_data_dir": str(data_dir),
            "output_dir": str(tmp_path / "out"), "output_name": "tst", "resolution": "64", "network_dim": 4,
            "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 3, "optimizer_type": "AdamW",
            "max_train_steps": 2, "network_module": "networks.lora", **extra}
    lines = [f"{k} = {json.dumps(v)}" for k, v in opts.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(capsys, args: list[str]) -> tuple[int, str, str]:
    """``lora-compat train ARGS`` through the console entry point: exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        main(["train", "--quiet", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_tensorboard_logs_and_the_json_result(tmp_path, data_dir, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle --d 5 --s 1 --w 64 --h 64\n", encoding="utf-8")
    config = _config(tmp_path, data_dir, log_prefix="pre-", log_tracker_name="habits", sample_prompts=str(prompts),
                     sample_every_n_steps=2, validation_split=0.5, validation_seed=1, validate_every_n_steps=1,
                     validate_every_n_epochs=9, log_config=True, huggingface_token=SECRET)
    code, out, err = _train(capsys, [str(config), "--logging-dir", str(tmp_path / "logs"), "--format", "json"])
    assert code == 0, err
    summary = json.loads(out)
    # sd-scripts: <logging_dir>/<log_prefix><YYYYmmddHHMMSS>, tracker project = log_tracker_name
    log_dir = Path(summary["log_dir"])
    assert log_dir.parent == tmp_path / "logs" and re.fullmatch(r"pre-\d{14}", log_dir.name)
    assert summary["trackers"] == ["tensorboard"]
    assert [Path(p).parent for p in summary["samples"]] == [tmp_path / "out" / "sample"]
    assert all(Path(p).is_file() for p in summary["samples"])
    # one training image (split 0.5 of 2), validated after steps 1 and 2
    assert [v["step"] for v in summary["validation"]] == [1, 2] and all(v["loss"] > 0 for v in summary["validation"])
    assert summary["loss_plot"] == str(tmp_path / "out" / "loss.png") and Path(summary["loss_plot"]).is_file()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir / "habits")).Reload()
    losses = events.Scalars("loss/current")
    assert [e.step for e in losses] == [1, 2]
    assert [e.value for e in losses] == pytest.approx([summary["first_loss"], summary["last_loss"]])
    assert [e.step for e in events.Scalars("loss/validation/step_average")] == [1, 2]
    # sd-scripts' names: the moving average, each group's LR by its description, the epoch average at the epoch
    assert events.Scalars("loss/average")[0].value == pytest.approx(summary["first_loss"])
    assert [e.value for e in events.Scalars("lr/unet")] == pytest.approx([1e-3, 1e-3])
    assert [e.step for e in events.Scalars("lr/textencoder")] == [1, 2]
    assert [e.step for e in events.Scalars("loss/epoch_average")] == [1, 2]   # one step per epoch: epochs 1, 2
    assert [e.step for e in events.Images("sample_0")] == [2]                 # the sample image after step 2
    # log_config: the run's options go to the trackers, without credentials and paths (sd-scripts' sanitizing)
    (hparams_file,) = (log_dir / "habits").glob("*/hparams.yml")   # accelerate's copy beside the events
    hparams = hparams_file.read_text(encoding="utf-8")
    assert "network_dim: 4" in hparams and "log_prefix: pre-" in hparams
    assert SECRET not in hparams and "huggingface_token" not in hparams
    assert "output_dir" not in hparams and str(data_dir) not in hparams and "train_data_dir" not in hparams


def test_a_missing_tracker_package_is_one_line_before_models_load(tmp_path, data_dir, capsys, monkeypatch):
    import importlib.util

    from lora_compat.semantics import trackers

    real = importlib.util.find_spec
    monkeypatch.setattr(trackers.importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    config = _config(tmp_path, data_dir, log_with="wandb")
    code, out, err = _train(capsys, [str(config)])
    assert code == 2 and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "'wandb'" in lines[0] and "pip install wandb" in lines[0], err
    assert not (tmp_path / "out").exists()        # refused before anything was loaded or written
    # plan says the same; log_with tensorboard without logging_dir is sd-scripts' ValueError
    cfg = CanonicalConfig(dialect="native", source="t")
    cfg.set("log_with", "wandb")
    assert any("'wandb'" in u.why for u in make_plan(cfg).refusals)
    cfg.set("log_with", "tensorboard")
    assert any("needs logging_dir" in u.why for u in make_plan(cfg).refusals)


def test_the_wandb_key_is_redacted_in_the_plan():
    cfg = CanonicalConfig(dialect="native", source="t")
    cfg.set("wandb_api_key", SECRET)
    cfg.set("log_with", "wandb")
    plan = make_plan(cfg)
    assert SECRET not in json.dumps(plan.to_json()) and SECRET not in repr(plan)
    assert plan.outputs.wandb_api_key == SECRET and "wandb_api_key" not in {u.option for u in plan.ignored}


def test_wandb_offline_run_with_name_and_key(tmp_path, data_dir, capsys, monkeypatch):
    pytest.importorskip("wandb")
    for name, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true"), ("WANDB_DIR", "unset"),
                        ("WANDB_API_KEY", "unset")):
        monkeypatch.setenv(name, value)   # restored after the test (the run sets WANDB_DIR / WANDB_API_KEY)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle --d 5 --s 1 --w 64 --h 64\n", encoding="utf-8")
    config = _config(tmp_path, data_dir, log_with="wandb", wandb_run_name="habits-run", wandb_api_key=SECRET,
                     sample_prompts=str(prompts), sample_every_n_steps=2)
    code, out, err = _train(capsys, [str(config), "--logging-dir", str(tmp_path / "logs"), "--format", "json"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["trackers"] == ["wandb"]
    runs = list(Path(summary["log_dir"]).glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    record = runs[0].read_bytes()
    assert b"habits-run" in record and b"loss/current" in record     # the run's name and the step losses
    assert b"lr/unet" in record and b"global_step" in record          # sd-scripts' wandb logs (no step, the keys)
    assert list(Path(summary["log_dir"]).glob("wandb/offline-run-*/files/media/images/sample_0_*.png"))
    assert b"network_train" in record                                # the project: log_tracker_name's default
    import os

    assert os.environ["WANDB_API_KEY"] == SECRET                     # wandb gets the key from this process only
    # the key is never printed, logged or written anywhere (but in the config that holds it)
    assert SECRET not in out + err
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != config:
            assert SECRET.encode() not in path.read_bytes(), path


def test_log_tracker_config_replaces_the_init_arguments(tmp_path, monkeypatch):
    from lora_compat.errors import UserError
    from lora_compat.plan.parts import OutputPlan
    from lora_compat.train.trackers import prepare_trackers, read_tracker_config

    path = tmp_path / "trackers.toml"
    path.write_text('[wandb]\ntags = ["a"]\n[tensorboard]\nflush_secs = 5\n', encoding="utf-8")
    monkeypatch.setenv("WANDB_API_KEY", "unset")
    monkeypatch.setenv("WANDB_DIR", "unset")
    out = OutputPlan(logging_dir=str(tmp_path / "logs"), log_with="tensorboard", wandb_run_name="lost",
                     log_tracker_config=str(path))
    setup = prepare_trackers(out)
    assert setup.init_kwargs == {"wandb": {"tags": ["a"]}, "tensorboard": {"flush_secs": 5}}   # as sd-scripts
    path.write_text("[wandb\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"trackers\.toml: .*line 1"):
        read_tracker_config(str(path))
    path.write_text("tags = 1\n", encoding="utf-8")
    with pytest.raises(UserError, match="not a table"):
        read_tracker_config(str(path))
    with pytest.raises(UserError, match="cannot read"):
        read_tracker_config(str(tmp_path / "absent.toml"))
