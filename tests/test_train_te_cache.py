"""SDXL ``cache_text_encoder_outputs_to_disk``: sd-scripts' ``<image>_te_outputs.npz`` files beside the images,
read back by the next run (no text-encoder forward, the same losses), encoded again when a caption or a setting
changes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

import numpy as np  # noqa: E402

from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.train import models as mdl  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402
from lora_compat.train.tiny import tiny_text_encoder_configs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _run(tmp_path, data, name, **opts):
    cfg = CanonicalConfig(dialect="native", source="test")
    base = {"pretrained_model_name_or_path": "tiny:sdxl", "sdxl": True, "output_dir": str(tmp_path / name),
            "resolution": "64", "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 3,
            "optimizer_type": "AdamW", "max_train_steps": 3, "network_train_unet_only": True,
            "cache_text_encoder_outputs_to_disk": True, "caption_extension": ".txt",
            "max_data_loader_n_workers": 0}
    base.update(opts)
    for k, v in base.items():
        cfg.set(k, v)
    return run_training(cfg, train_data=str(data), show_progress=False)


@pytest.fixture
def encodes(monkeypatch):
    """Captions the text encoders ran on, in order."""
    seen: list[int] = []
    real = mdl.encode_sdxl

    def counting(te1, te2, ids1, ids2):
        seen.append(ids1.shape[0])
        return real(te1, te2, ids1, ids2)

    monkeypatch.setattr(mdl, "encode_sdxl", counting)
    return seen


def test_second_run_reads_the_disk_cache(tmp_path, encodes):
    data = make_synthetic_dataset(tmp_path / "data", n_images=3, repeats=1)
    memory = _run(tmp_path, data, "memory", cache_text_encoder_outputs_to_disk=False,
                  cache_text_encoder_outputs=True)
    assert not list(data.rglob("*.npz"))                              # in memory: nothing written
    seen = sum(encodes)
    encodes.clear()

    first = _run(tmp_path, data, "first")
    files = sorted((data / "1_shapes").glob("*_te_outputs.npz"))
    # each image the run met has its file (named as sd-scripts names it), each caption encoded once
    assert sum(encodes) == seen == len(files) >= 2
    assert all((f.parent / (f.name[:-len("_te_outputs.npz")] + ".png")).is_file() for f in files)
    w1, w2 = (c["hidden_size"] for c in tiny_text_encoder_configs("sdxl"))
    with np.load(files[0]) as npz:   # sd-scripts' keys and per-sample shapes: (tokens, width) of each encoder
        assert {"hidden_state1", "hidden_state2", "pool2"} <= set(npz.files)
        assert npz["hidden_state1"].shape == (77, w1) and npz["hidden_state2"].shape == (77, w2)
        assert npz["pool2"].shape == (w2,) and npz["hidden_state1"].dtype == np.float32
        caption = files[0].parent / (files[0].name[:-len("_te_outputs.npz")] + ".txt")
        assert str(npz["lc_caption"]) == caption.read_text(encoding="utf-8")
    assert first.losses == memory.losses and first.weights_sha256 == memory.weights_sha256
    encodes.clear()

    second = _run(tmp_path, data, "second")
    assert encodes == []                                              # no text-encoder forward at all
    assert second.losses == first.losses and second.weights_sha256 == first.weights_sha256

    # a changed caption is encoded again (sd-scripts would reuse the stale file); the others are read
    caption.write_text("shapes, something else entirely", encoding="utf-8")
    stamps = [f.stat().st_mtime_ns for f in files[1:]]
    _run(tmp_path, data, "third")
    assert sum(encodes) == 1 and [f.stat().st_mtime_ns for f in files[1:]] == stamps
    with np.load(files[0]) as npz:
        assert str(npz["lc_caption"]) == "shapes, something else entirely"
    encodes.clear()

    # another setting the outputs depend on (max_token_length): the file is encoded again
    _run(tmp_path, data, "fourth", max_token_length=150, max_train_steps=1)
    assert sum(encodes) == 1
    shapes = []
    for f in files:
        with np.load(f) as npz:
            shapes.append(npz["hidden_state1"].shape)
    assert (152, w1) in shapes   # sd-scripts' 2 chunks joined: 75 x 2 tokens + BOS + EOS


def test_files_without_a_record_stale_or_damaged_are_not_read(tmp_path):
    from lora_compat.train.te_cache import load_te_outputs, save_te_outputs

    path = str(tmp_path / "img_te_outputs.npz")
    np.savez(path, hidden_state1=np.zeros((77, 32), np.float32), hidden_state2=np.zeros((77, 64), np.float32),
             pool2=np.zeros(64, np.float32))
    assert load_te_outputs(path, "x", "{}") is None         # no record of what it was made from: encoded again
    save_te_outputs(path, (torch.ones(77, 32, dtype=torch.bfloat16), torch.ones(77, 64), torch.ones(64)), "x", "{}")
    hs1, hs2, pool2 = load_te_outputs(path, "x", "{}")
    assert hs1.dtype == np.float32 and float(hs1.sum()) == 77 * 32          # bf16 stored as float32
    assert hs2.shape == (77, 64) and pool2.shape == (64,)
    assert load_te_outputs(path, "y", "{}") is None and load_te_outputs(path, "x", '{"a": 1}') is None
    (tmp_path / "img_te_outputs.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert load_te_outputs(path, "x", "{}") is None
