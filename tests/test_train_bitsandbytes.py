"""8-bit optimizers from the ``train`` extra's bitsandbytes, on CPU: 71 of 173 corpus presets use one.

bitsandbytes (>= 0.49) runs its 8-bit optimizers on CPU: states are stored as uint8 blocks for tensors of at
least ``min_8bit_size`` (4096) elements, smaller ones keep 32-bit states, exactly as on a GPU. The tests skip
where the platform has no bitsandbytes wheel (the extra leaves it out there).
"""

from __future__ import annotations

import json
import os

import pytest

# bitsandbytes >= 0.49 asks the Hugging Face Hub for optional CPU 4-bit kernels at import when the `kernels`
# package is installed; tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (no wheel for this platform)")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.plan.build import optimizer_plan  # noqa: E402
from lora_compat.semantics.optimizers import effective_optimizer  # noqa: E402
from lora_compat.train.optimizers import build_optimizer  # noqa: E402

from shared_data import CORPUS  # noqa: E402

PRESET = CORPUS / "kohya_ss" / "Standard-AdamW8bit__1d61833c.json"   # kohya_ss GUI, SD1.5 LoRA, AdamW8bit


def _fit(make_optimizer, init: torch.Tensor, target: torch.Tensor, steps: int = 10):
    p = torch.nn.Parameter(init.clone())
    opt = make_optimizer(p)
    for _ in range(steps):
        opt.zero_grad()
        ((p - target) ** 2).mean().backward()
        opt.step()
    return p.detach(), opt


def test_adamw8bit_keeps_uint8_states_on_cpu_and_tracks_adamw():
    torch.manual_seed(0)
    init, target = torch.randn(64, 128) * 0.1, torch.randn(64, 128)   # 8192 elements: 8-bit states
    plan = optimizer_plan(effective_optimizer("AdamW8bit"), 1e-2)   # what train builds from the plan
    p8, opt = _fit(lambda p: build_optimizer(plan, [{"params": [p], "lr": 1e-2}])[0], init, target)
    p32, _ = _fit(lambda p: torch.optim.AdamW([p], lr=1e-2), init, target)   # same defaults as AdamW8bit
    state = next(iter(opt.state.values()))
    assert state["state1"].dtype == torch.uint8 and state["state2"].dtype == torch.uint8
    # blockwise 8-bit moments: the update follows 32-bit AdamW closely, not exactly
    update8, update32 = p8 - init, p32 - init
    assert ((update8 - update32).norm() / update32.norm()).item() < 0.1
    assert ((p8 - target) ** 2).mean() < ((init - target) ** 2).mean() * 0.9


@pytest.mark.slow
def test_an_8bit_preset_trains_on_the_tiny_model(tmp_path):
    """A kohya_ss GUI preset with optimizer AdamW8bit (the corpus one when ../shared is there) trains two steps."""
    if PRESET.is_file():
        preset = PRESET
    else:
        preset = tmp_path / "Standard-AdamW8bit.json"
        preset.write_text(json.dumps({"LoRA_type": "Standard", "optimizer": "AdamW8bit", "learning_rate": 0.0001,
                                      "network_dim": 8, "network_alpha": 1, "max_resolution": "512,512",
                                      "train_batch_size": 1, "epoch": 1, "lr_scheduler": "constant"}))
    data = make_synthetic_dataset(tmp_path / "data", n_images=2, repeats=1)
    out = tmp_path / "out"
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = CliRunner().invoke(cli, ["train", str(preset), "--base-model", "tiny:sd1", "--train-data", str(data),
                                       "--output", str(out), "--max-steps", "2", "--format", "json", "--quiet",
                                       "--set", f"logging_dir={tmp_path / 'logs'}",   # the preset's is ./test/logs
                                       "--set", "resolution=64", "--set", "min_bucket_reso=64",
                                       "--set", "network_dim=4", "--set", "train_batch_size=1", "--set", "seed=1"],
                                 catch_exceptions=False)
    finally:
        torch.set_num_threads(old_threads)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["global_step"] == 2 and not summary["interrupted"]
    from safetensors import safe_open

    with safe_open(summary["final_model"], "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}   # noqa: SIM118 (safe_open has no __iter__)
    # sd-scripts records the class's defining module: bitsandbytes.optim.adamw, not the re-export
    assert metadata["ss_optimizer"].startswith("bitsandbytes.optim.adamw.AdamW8bit"), metadata["ss_optimizer"]
    ups = [t for k, t in tensors.items() if k.endswith("lora_up.weight")]
    assert ups and any(bool(t.abs().sum() > 0) for t in ups)   # lora_up starts at zero: the optimizer stepped
