"""End-to-end training from legacy configs on tiny models (CPU): loss falls, kohya output loads in diffusers,
keys/shapes equal sd-scripts' (golden), metadata as sd-scripts writes it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402
from lora_compat.train.tiny import save_tiny_pipeline  # noqa: E402

from shared_data import CORPUS, golden, requires_corpus  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def sd1_model(tmp_path_factory):
    return save_tiny_pipeline("sd1", tmp_path_factory.mktemp("model") / "tiny-sd1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=4, repeats=10)


def _run_cli(args: list[str]) -> dict:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def _denoise_loss(pipe, data_dir: Path) -> float:
    """Mean epsilon MSE of ``pipe.unet`` on the training images at fixed noise and timesteps."""
    import numpy as np
    from PIL import Image

    from lora_compat.train.noise import make_noise_scheduler

    sched = make_noise_scheduler()
    imgs = sorted(next(data_dir.iterdir()).glob("*.png"))
    caps = [p.with_suffix(".txt").read_text() for p in imgs]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 127.5 - 1)
                     .permute(2, 0, 1) for p in imgs])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        lat = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
        ids = pipe.tokenizer(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ctx = pipe.text_encoder(ids)[0]
        total = 0.0
        for t in (100, 300, 500, 700, 900):
            noise = torch.randn(lat.shape, generator=g)
            tt = torch.full((lat.shape[0],), t)
            pred = pipe.unet(sched.add_noise(lat, noise, tt), tt, ctx).sample
            total += torch.nn.functional.mse_loss(pred, noise).item()
    return total / 5


@requires_corpus
def test_kohya_gui_preset_from_corpus_trains_and_loads_in_diffusers(sd1_model, data_dir, tmp_path):
    """(a) a real kohya_ss GUI preset, paths/size overridden: the denoising loss on the training set falls,
    and the kohya file loads in diffusers' load_lora_weights and changes the UNet output."""
    from diffusers import StableDiffusionPipeline

    preset = CORPUS / "kohya_ss" / "sd15 - EDG_LoraOptiSettings.json"
    out = tmp_path / "out"
    summary = _run_cli(["train", str(preset), "--base-model", str(sd1_model), "--train-data", str(data_dir),
                        "--output", str(out), "--max-steps", "30", "--format", "json",
                        "--set", "resolution=64", "--set", "optimizer_type=AdamW", "--set", "network_dim=8",
                        "--set", "network_alpha=8", "--set", "unet_lr=0.005", "--set", "text_encoder_lr=0",
                        "--set", "train_batch_size=4", "--set", "seed=3", "--set", "save_every_n_epochs=100"])
    assert summary["global_step"] == 30 and not summary["interrupted"]
    lora = Path(summary["final_model"])
    assert lora.name == "last.safetensors"  # the preset has no output_name: sd-scripts' default name

    pipe = StableDiffusionPipeline.from_pretrained(sd1_model)
    before = _denoise_loss(pipe, data_dir)
    pipe.load_lora_weights(str(lora))
    after = _denoise_loss(pipe, data_dir)
    assert after < before * 0.9, (before, after)


def _argstore_file(tmp_path: Path) -> Path:
    files = sorted((CORPUS / "easy_training_scripts" / "argstore").glob("*ArgsList.json"))
    if not files:
        pytest.skip("no ArgStore defaults in the corpus")
    dest = tmp_path / "config-1684600000.0.json"
    shutil.copy(files[-1], dest)
    return dest


@requires_corpus
def test_derrian_argstore_json_trains(sd1_model, data_dir, tmp_path):
    """(b) a Derrian ArgStore JSON (A2 defaults: fp16 on CPU falls back to fp32, AdamW8bit overridden)."""
    cfg_file = _argstore_file(tmp_path)
    out = tmp_path / "out"
    summary = _run_cli(["train", str(cfg_file), "--base-model", str(sd1_model), "--train-data", str(data_dir),
                        "--output", str(out), "--max-steps", "4", "--format", "json", "--set", "resolution=64",
                        "--set", "optimizer_type=AdamW", "--set", "network_dim=4",
                        "--set", "enable_bucket=false"])
    from safetensors import safe_open

    with safe_open(summary["final_model"], "pt") as f:
        keys = set(f.keys())
        md = f.metadata()
        alpha = f.get_tensor("lora_unet_down_blocks_0_attentions_0_proj_in.alpha")
        down = f.get_tensor("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight")
    gold = golden("kohya_lora_keys.json")["cases"]["sd1/lora_dim8_alpha4"]
    assert keys == set(gold)
    assert down.shape[0] == 4 and down.dtype == torch.float16  # save_precision fp16 from the ArgStore file
    assert alpha.dtype == torch.float16 and float(alpha) == 16.0
    assert md["ss_network_dim"] == "4" and md["ss_network_alpha"] == "16.0"
    assert md["ss_mixed_precision"] == "fp16" and md["ss_clip_skip"] == "2"
    # command-line dataset mode (kohya folder): per-run dataset keys, no bucketing -> null bucket info
    assert md["ss_batch_size_per_device"] == "1" and md["ss_bucket_info"] == "null"
    assert json.loads(md["ss_dataset_dirs"]) == {"10_shapes": {"n_repeats": 10, "img_count": 4}}


def test_sd_scripts_toml_with_dataset_toml_trains(sd1_model, data_dir, tmp_path):
    """(c) an sd-scripts --config_file TOML + dataset TOML (no overrides: everything from the files)."""
    img_dir = next(data_dir.iterdir())
    ds = tmp_path / "dataset.toml"
    ds.write_text(f"""[general]
caption_extension = ".txt"
shuffle_caption = true
keep_tokens = 1

[[datasets]]
resolution = 64
batch_size = 2

  [[datasets.subsets]]
  image_dir = '{img_dir}'
  num_repeats = 3
""")
    out = tmp_path / "out"
    conf = tmp_path / "config.toml"
    conf.write_text(f"""pretrained_model_name_or_path = '{sd1_model}'
dataset_config = '{ds}'
output_dir = '{out}'
output_name = "toml_lora"
network_module = "networks.lora"
network_dim = 4
learning_rate = 5e-3
optimizer_type = "AdamW"
lr_scheduler = "constant_with_warmup"
lr_warmup_steps = 2
max_train_epochs = 2
save_every_n_epochs = 1
seed = 42
""")
    summary = _run_cli(["train", str(conf), "--format", "json"])
    # 4 images x 3 repeats / batch 2 = 6 steps per epoch, 2 epochs (reference §4.7)
    assert summary["max_train_steps"] == 12 and summary["global_step"] == 12
    assert [Path(p).name for p in summary["saved_models"]] == ["toml_lora-000001.safetensors",
                                                                "toml_lora.safetensors"]
    from safetensors import safe_open

    with safe_open(str(out / "toml_lora-000001.safetensors"), "pt") as f:
        md = f.metadata()
        alpha = f.get_tensor("lora_unet_mid_block_attentions_0_proj_in.alpha")
    assert md["ss_epoch"] == "1" and md["ss_steps"] == "6"
    # network_alpha left out: sd-scripts' int 1 -> int64 alpha tensors and "1" in metadata (reference §12.1)
    assert alpha.dtype == torch.int64 and int(alpha) == 1 and md["ss_network_alpha"] == "1"
    assert md["ss_num_train_images"] == "12" and md["ss_lr_scheduler"] == "constant_with_warmup"
    # dataset-config mode: ss_datasets instead of the command-line dataset keys (reference §7.1)
    ds_meta = json.loads(md["ss_datasets"])
    assert "ss_batch_size_per_device" not in md and len(ds_meta) == 1
    assert ds_meta[0]["batch_size_per_device"] == 2 and ds_meta[0]["resolution"] == [64, 64]
    sub = ds_meta[0]["subsets"][0]
    assert sub["img_count"] == 4 and sub["num_repeats"] == 3 and sub["shuffle_caption"] is True
    assert sub["keep_tokens"] == 1 and sub["image_dir"] == img_dir.name and sub["is_reg"] is False
    assert md["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert md["sshs_model_hash"] and len(md["sshs_legacy_hash"]) == 8
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(sd1_model)
    before = _denoise_loss(pipe, data_dir)
    pipe.load_lora_weights(summary["final_model"])
    assert _denoise_loss(pipe, data_dir) < before  # the fit on the training images improved


def _one_step(arch: str, tmp_path: Path, data_dir: Path, conv: bool) -> Path:
    cfg = CanonicalConfig(dialect="native", source="test")
    opts = {"pretrained_model_name_or_path": f"tiny:{arch}", "output_dir": str(tmp_path), "resolution": "64",
            "network_dim": 8, "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 0, "optimizer_type": "AdamW"}
    if conv:
        opts["network_args"] = ["conv_dim=4", "conv_alpha=1"]
    if arch == "sdxl":
        opts["sdxl"] = True
    if arch == "sd2":
        opts["v2"] = True
    for k, v in opts.items():
        cfg.set(k, v)
    return run_training(cfg, train_data=str(data_dir), max_steps=1, show_progress=False).final_model


@pytest.mark.golden
@pytest.mark.parametrize("arch", ["sd1", "sd2", "sdxl"])
@pytest.mark.parametrize("kind", ["lora_dim8_alpha4", "locon_dim8_conv4"])
def test_output_keys_and_shapes_equal_sd_scripts(arch, kind, tmp_path, data_dir):
    """Names equal golden exactly; ranks, tensor ranks (2-D/4-D) and kernel sizes equal golden's shapes
    (widths differ: the tiny models are narrow)."""
    from safetensors import safe_open

    gold = golden("kohya_lora_keys.json")["cases"][f"{arch}/{kind}"]
    path = _one_step(arch, tmp_path, data_dir, conv=kind.startswith("locon"))
    with safe_open(str(path), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - safe_open is no mapping
    assert set(shapes) == set(gold)
    for key, gshape in gold.items():
        ours = shapes[key]
        assert len(ours) == len(gshape), key
        if key.endswith("lora_down.weight"):
            assert ours[0] == gshape[0] and ours[2:] == gshape[2:], key
        elif key.endswith("lora_up.weight"):
            assert ours[1:] == gshape[1:], key


def test_block_dims_and_train_unet_only(tmp_path, data_dir):
    """network_train_unet_only drops TE modules; block_dims rank 0 drops a block's modules (§6.6)."""
    from safetensors import safe_open

    cfg = CanonicalConfig(dialect="native", source="test")
    dims = ["4"] * 25
    dims[12] = "0"   # mid block
    dims[1] = "2"    # down_blocks_0 attentions_0
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path), "resolution": "64",
                 "network_dim": 4, "learning_rate": 1e-3, "network_train_unet_only": True, "optimizer_type": "AdamW",
                 "network_args": ["block_dims=" + ",".join(dims)]}.items():
        cfg.set(k, v)
    path = run_training(cfg, train_data=str(data_dir), max_steps=1, show_progress=False).final_model
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        r_b1 = f.get_slice("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight").get_shape()[0]
        r_b2 = f.get_slice("lora_unet_down_blocks_0_attentions_1_proj_in.lora_down.weight").get_shape()[0]
    assert not any(k.startswith("lora_te") for k in keys)
    assert not any("mid_block" in k for k in keys)
    assert (r_b1, r_b2) == (2, 4)
    assert len({re.sub(r"\.(alpha|lora_down\.weight|lora_up\.weight)$", "", k) for k in keys}) == 192 - 12
