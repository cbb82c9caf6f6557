"""`plan` shows exactly what `train` runs: for presets of four dialects, `plan --format json` and the run record of
`train --format json` (read by the engine from its live objects) agree on steps, epochs, batches, optimizer, LR
groups, schedule, adapters, seed and every metadata value the plan predicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402

from shared_data import CORPUS, requires_corpus  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _json(args: list[str]) -> dict:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def _plan_and_run(config: Path, extra: list[str]) -> tuple[dict, dict]:
    plan = _json(["plan", str(config), "--format", "json", *extra])
    run = _json(["train", str(config), "--format", "json", "--quiet", *extra])
    return plan, run


def _assert_same(plan: dict, summary: dict) -> None:
    run = summary["run"]
    assert not plan["unsupported"] or not any(u["refused"] for u in plan["unsupported"])
    assert run["family"] == plan["family"] and run["steps"]["num_processes"] == 1
    ps, rs = plan["steps"], run["steps"]
    assert ps["steps_per_epoch_exact"], ps["explanation"]
    for key in ("max_train_steps", "epochs", "steps_per_epoch", "optimizer_steps_per_epoch",
                "gradient_accumulation_steps", "dataset_batch_sizes"):
        assert ps[key] == rs[key], (key, ps[key], rs[key], ps["explanation"])
    assert summary["global_step"] == ps["max_train_steps"] == summary["max_train_steps"]
    assert summary["total_batch_size"] == ps["effective_batch_size"]
    opt = plan["optimizer"]
    assert run["optimizer"]["class"] == opt["class_path"] and run["optimizer"]["ss_optimizer"] == opt["ss_optimizer"]
    assert run["optimizer"]["initial_lrs"] == [g["lr"] for g in plan["param_groups"]]
    assert run["scheduler"] == {"name": plan["scheduler"]["name"],
                                "lr_warmup_steps": plan["scheduler"]["lr_warmup_steps"]}
    if plan["seed"] is not None:
        assert run["seed"] == plan["seed"]
    planned = {a["part"]: a for a in plan["adapters"]}
    assert [a["part"] for a in run["adapters"]] == list(planned)
    for a in run["adapters"]:
        p = planned[a["part"]]
        kw = p["peft_kwargs"]
        assert a["kind"] == p["kind"] and a["lr"] == p["lr"] and a["targets"] == sorted(kw["target_modules"])
        assert a["ranks"] == {t: kw["rank_pattern"].get(t, kw["r"]) for t in kw["target_modules"]}
    md = run["metadata"]
    for key, value in plan["outputs"]["metadata"].items():
        assert key in md, key
        if value is not None:
            assert md[key] == value, (key, value, md[key])
    assert md["ss_max_train_steps"] == str(ps["max_train_steps"]) and md["ss_num_epochs"] == str(ps["epochs"])
    assert md["ss_num_batches_per_epoch"] == str(ps["steps_per_epoch"])


@requires_corpus
def test_kohya_gui_preset_with_epochs_and_percent_warmup(tmp_path):
    """The GUI passes `epoch` as max_train_epochs (sd-scripts: epochs x batches per epoch), its `lr_warmup` is a
    percent of its own step estimate: train runs those numbers (not sd-scripts' 1600-step default)."""
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=5)   # 20 samples
    preset = CORPUS / "kohya_ss" / "lion.json"                                  # epoch 2, lr_warmup 10 %, batch 4
    plan, run = _plan_and_run(preset, ["--base-model", "tiny:sd1", "--train-data", str(data), "--output",
                                       str(tmp_path / "o"), "--set", "resolution=64", "--set", "network_dim=4",
                                       "--set", "seed=5"])
    assert plan["steps"]["length_from"] == "max_train_epochs" and plan["steps"]["max_train_steps"] == 10
    # the percent is carried as a ratio that sd-scripts resolves against its step count: int(0.1 x 10) = 1
    assert plan["scheduler"]["lr_warmup_steps"] == 0.1 and plan["steps"]["warmup_steps"] == 1
    assert plan["optimizer"]["class_path"] == "lion_pytorch.lion_pytorch.Lion"
    _assert_same(plan, run)


@requires_corpus
def test_kohya_gui_lycoris_preset_with_epochs(tmp_path):
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=1, size=32)
    preset = CORPUS / "kohya_ss" / "loha-sd15.json"                  # LoHa, epoch 2, batch 1, grad accumulation 4
    plan, run = _plan_and_run(preset, ["--base-model", "tiny:sd1", "--train-data", str(data), "--output",
                                       str(tmp_path / "o"), "--set", "resolution=32", "--set", "network_dim=4",
                                       "--set", "network_alpha=2", "--set", "min_bucket_reso=32"])
    # ceil(4 images / batch 1 / accumulation 4 x epoch 2) = 2 steps: one optimizer step per epoch
    assert plan["adapters"][0]["kind"] == "loha" and plan["steps"]["max_train_steps"] == 2
    assert plan["steps"]["epochs"] == 2 and plan["steps"]["gradient_accumulation_steps"] == 4
    _assert_same(plan, run)


@requires_corpus
def test_derrian_toml_with_epochs_and_warmup_ratio(tmp_path):
    """Derrian's UI turns warmup_ratio into steps of its own estimate; the dataset-level batch_size is the batch."""
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=2)    # 8 samples, batch 2: 4 per epoch
    preset = CORPUS / "easy_training_scripts" / "README.md__example_config__ae5ce073.toml"
    # the preset's dataset-level resolution 768 wins over --resolution (sd-scripts' dataset config); without
    # upscaling the 64 px images stay in a 64 px bucket (at 768 px the tiny UNet takes ~17 s a step on a CPU)
    plan, run = _plan_and_run(preset, ["--base-model", "tiny:sd1", "--train-data", str(data), "--output",
                                       str(tmp_path / "o"), "--set", "resolution=64", "--set", "optimizer_type=AdamW",
                                       "--set", "max_token_length=75", "--set", "bucket_no_upscale=true"])
    s = plan["steps"]
    assert s["dataset_batch_sizes"] == [2] and s["train_batch_size"] == 2 and s["max_train_steps"] == 8
    assert plan["scheduler"]["lr_warmup_steps"] == 0 == s["warmup_steps"]   # round(8 x 0.05) = 0
    _assert_same(plan, run)


def _image(path: Path, w: int, h: int, color: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), color).save(path)
    path.with_suffix(".txt").write_text("a plain picture", encoding="utf-8")


def test_sd_scripts_toml_with_buckets_counts_batches_per_bucket(tmp_path):
    """Images of two aspect ratios land in two buckets: 3 + 2 samples at batch 2 are 2 + 1 batches, not
    ceil(5 / 2) = 3 ... the plan counts them bucket by bucket, as the engine batches them."""
    for i in range(3):
        _image(tmp_path / "img" / "1_wide" / f"w{i}.png", 96, 64, (200, 40 * i, 40))
    for i in range(2):
        _image(tmp_path / "img" / "1_tall" / f"t{i}.png", 64, 96, (40, 40 * i, 200))
    conf = tmp_path / "config.toml"
    conf.write_text(f"""pretrained_model_name_or_path = "tiny:sd1"
train_data_dir = '{tmp_path / "img"}'
output_dir = '{tmp_path / "out"}'
output_name = "buckets"
resolution = "64,64"
enable_bucket = true
min_bucket_reso = 32
max_bucket_reso = 128
bucket_reso_steps = 32
caption_extension = ".txt"
train_batch_size = 2
network_dim = 4
optimizer_type = "AdamW"
lr_scheduler = "cosine"
lr_warmup_steps = 0.25
max_train_epochs = 2
seed = 11
""")
    plan, run = _plan_and_run(conf, [])
    assert plan["steps"]["steps_per_epoch"] == 3 and plan["steps"]["max_train_steps"] == 6
    assert plan["outputs"]["metadata"]["ss_min_bucket_reso"] == "32"
    _assert_same(plan, run)
