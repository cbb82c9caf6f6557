"""Sample images during training on the tiny models: when (sd-scripts' rule), names, sizes, seeds, and the
training's random stream left as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402

from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.errors import UserError  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

STAMP = r"\d{14}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=2, repeats=1)


def _run(tmp_path: Path, data_dir: Path, arch: str = "sd1", **opts):
    cfg = CanonicalConfig(dialect="native", source="test")
    base = {"pretrained_model_name_or_path": f"tiny:{arch}", "output_dir": str(tmp_path), "output_name": "tst",
            "resolution": "64", "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 3,
            "optimizer_type": "AdamW", "max_train_steps": 4}
    if arch == "sdxl":
        base["sdxl"] = True
    base.update(opts)
    for k, v in base.items():
        cfg.set(k, v)
    return run_training(cfg, train_data=str(data_dir), show_progress=False)


def _pixels(path: Path) -> bytes:
    with Image.open(path) as im:
        return im.convert("RGB").tobytes()


def test_sample_images_at_sd_scripts_steps(tmp_path, data_dir):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle --d 5 --s 2 --w 64 --h 64\n"
                       "a red circle --d 5 --s 2 --w 64 --h 64\n"
                       "a blue square --n blurry --d 6 --w 80 --h 67 --s 1 --l 1 --ss euler_a\n", encoding="utf-8")
    plain = _run(tmp_path / "plain", data_dir)
    res = _run(tmp_path / "out", data_dir, sample_prompts=str(prompts), sample_at_first=True,
               sample_every_n_steps=3)
    # the samples leave the training stream alone: same losses, same weights as without them
    assert res.losses == plain.losses and res.weights_sha256 == plain.weights_sha256
    folder = tmp_path / "out" / "sample"
    names = [p.name for p in res.samples]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names) and len(names) == 6
    # before training: e000000; after step 3: 000003 (2 epochs of 2 steps: epoch ends do not sample by steps)
    want = [rf"tst_e000000_00_{STAMP}_5\.png", rf"tst_e000000_01_{STAMP}_5\.png", rf"tst_e000000_02_{STAMP}_6\.png",
            rf"tst_000003_00_{STAMP}_5\.png", rf"tst_000003_01_{STAMP}_5\.png", rf"tst_000003_02_{STAMP}_6\.png"]
    assert all(re.fullmatch(w, n) for w, n in zip(want, names, strict=True)), names
    sizes = [Image.open(p).size for p in res.samples]
    assert sizes == [(64, 64), (64, 64), (80, 64)] * 2   # --w/--h rounded down to a multiple of 8
    first, again, other = (_pixels(p) for p in res.samples[:3])
    assert first == again                                 # same seed, same image
    assert len(set(first)) > 1 and len(set(other)) > 1    # not blank
    assert _pixels(res.samples[3]) != first               # the LoRA has been trained in between


def test_sample_every_n_epochs_ignores_steps(tmp_path, data_dir):
    prompts = tmp_path / "p.json"
    prompts.write_text('[{"prompt": "x", "seed": 1, "sample_steps": 1, "width": 64, "height": 64}]',
                       encoding="utf-8")
    res = _run(tmp_path, data_dir, sample_prompts=str(prompts), sample_every_n_epochs=2, sample_every_n_steps=1,
               output_name=None)
    assert [p.name[:11] for p in res.samples] == ["e000002_00_"]
    again = _run(tmp_path / "again", data_dir, sample_prompts=str(prompts), sample_every_n_epochs=2,
                 output_name=None)
    assert _pixels(again.samples[0]) == _pixels(res.samples[0])   # a run is reproducible


def test_sdxl_samples(tmp_path, data_dir):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a (red:1.3) circle --d 2 --s 1 --w 64 --h 64\n", encoding="utf-8")
    res = _run(tmp_path, data_dir, arch="sdxl", sample_prompts=str(prompts), sample_at_first=True, max_train_steps=1)
    assert len(res.samples) == 1 and Image.open(res.samples[0]).size == (64, 64)


def test_a_family_without_a_sampler_refuses_before_training(tmp_path, data_dir, monkeypatch):
    from lora_compat.train import sd_unet
    from lora_compat.train.family import TrainingFamily

    monkeypatch.setattr(sd_unet.SDUNetFamily, "open_sampler", TrainingFamily.open_sampler)
    prompts = tmp_path / "p.txt"
    prompts.write_text("x\n", encoding="utf-8")
    with pytest.raises(UserError, match="sample images are not made for"):
        _run(tmp_path, data_dir, sample_prompts=str(prompts), sample_every_n_steps=100)
    assert not list(tmp_path.glob("*.safetensors"))


def test_split_train_val_as_sd_scripts():
    from lora_compat.config.inventory import split_train_val

    paths = [f"{i}.png" for i in range(10)]
    train = split_train_val(paths, 0.25, 7, 0, validation=False)
    val = split_train_val(paths, 0.25, 7, 0, validation=True)
    assert len(train) == 8 and len(val) == 2 and not set(train) & set(val)   # ceil(7.5) / round(2.5) = 2
    assert sorted(train + val) == sorted(paths)
    # 3 images, split 0.5: ceil(1.5) = 2 for training, round(1.5) = 2 for validation: one image in both
    assert len(set(split_train_val(paths[:3], 0.5, 1, 0, validation=False))
               & set(split_train_val(paths[:3], 0.5, 1, 0, validation=True))) == 1


def test_validation_loss_and_loss_png(tmp_path):
    from tests.test_plots import png_facts

    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=1)
    opts = {"validation_split": 0.5, "validation_seed": 1, "validate_every_n_steps": 2}
    quiet = _run(tmp_path / "quiet", data, max_validation_steps=0, **opts)
    res = _run(tmp_path / "out", data, max_validation_steps=1, **opts)
    assert res.losses == quiet.losses and res.weights_sha256 == quiet.weights_sha256   # training unchanged
    assert quiet.validation == []
    # 2 training images (2 steps an epoch): after step 2, at the end of epoch 1, after step 4, end of epoch 2
    assert [s for s, _ in res.validation] == [2, 2, 4, 4]
    (_, v2), (_, v2e), (_, v4), (_, v4e) = res.validation
    assert v2 == v2e and v4 == v4e    # same weights, same fixed timesteps and noise: the same loss
    assert v2 != v4 and all(0 < v < 10 for _, v in res.validation)
    assert res.loss_plot == tmp_path / "out" / "loss.png"
    size, colours = png_facts(res.loss_plot)
    assert size[0] > 500 and colours > 20


def test_validation_of_a_fine_tune_dataset_uses_the_training_images(tmp_path):
    """sd-scripts' FineTuningDataset takes validation_split but splits nothing: its validation dataset is the
    training images again (with their repeats); the loss is still measured at the fixed timesteps."""
    import json

    from accelerate.state import AcceleratorState, GradientState

    from lora_compat.train.engine import RunOptions, Training, training_plan

    data = make_synthetic_dataset(tmp_path / "data", n_images=3, repeats=1)
    images = data / "1_shapes"
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({p.name: {"caption": p.with_suffix(".txt").read_text(encoding="utf-8")}
                                for p in sorted(images.glob("*.png"))}), encoding="utf-8")
    cfg = CanonicalConfig(dialect="native", source="test")
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "out"),
                 "resolution": "64", "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 3,
                 "optimizer_type": "AdamW", "max_train_steps": 3, "train_data_dir": str(images),
                 "in_json": str(meta), "validation_split": 0.5, "validate_every_n_steps": 3,
                 "validate_every_n_epochs": 5}.items():
        cfg.set(k, v)
    said: list[str] = []
    training = Training(training_plan(cfg), RunOptions(show_progress=False, log=said.append))
    try:
        res = training.run()
    finally:
        AcceleratorState._reset_state()
        GradientState._reset_state()
    assert [ds.kind for ds in training.dataset.datasets] == ["finetune"]
    train_keys = sorted(training.dataset.datasets[0].images)
    assert sorted(training.val_dataset.datasets[0].images) == train_keys and len(train_keys) == 3   # no split
    assert [s for s, _ in res.validation] == [3] and 0 < res.validation[0][1] < 10
    assert any("measured on the training images" in m for m in said)
