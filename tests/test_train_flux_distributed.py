"""FLUX.1 LoRA training under `accelerate launch` with 2 CPU processes (gloo), as tests/test_train_distributed.py does
it for SD: the ranks stay in sync, rank 0 alone writes the file, and the result is the single-process result with
the same global batch.

Why the comparison is built this way: sd-scripts seeds every rank with the same ``--seed`` (``set_seed`` before
``prepare_accelerator``), so both ranks draw the same noise and timesteps for their own image. A single process with
``--train_batch_size 2`` draws different noise for its second image, so it is not the same computation. What is the
same: one SGD step (plain SGD, no clipping, so the update is linear in the gradient) of the two ranks equals the mean
of two single-process steps, one on each image, each drawing the rank's noise. So the 2-process weights must equal
``(w_a + w_b) / 2`` of two one-image runs, within float32 rounding."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402

pytestmark = pytest.mark.slow

ARGS = ["--network_dim", "4", "--network_alpha", "4", "--network_train_unet_only", "--learning_rate", "0.5",
        "--optimizer_type", "SGD", "--max_grad_norm", "0", "--train_batch_size", "1", "--max_train_steps", "1",
        "--seed", "11", "--save_model_as", "safetensors", "--output_name", "dist", "--resolution", "64",
        "--t5xxl_max_token_length", "16"]


def _accelerate() -> str:
    exe = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if exe is None:
        pytest.skip("accelerate CLI not found")
    return exe


def _command(tmp_path: Path, flux_dir: Path, data: Path, out: Path) -> Path:
    cmd = tmp_path / f"train_{data.name}.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path "
                   f"{flux_dir} --network_module networks.lora_flux --train_data_dir {data} --output_dir {out} "
                   + " ".join(ARGS) + "\n")
    return cmd


def _single(tmp_path: Path, flux_dir: Path, data: Path) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    out = tmp_path / f"out_{data.name}"
    res = CliRunner().invoke(cli, ["train", str(_command(tmp_path, flux_dir, data, out)), "--quiet", "--format",
                                   "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    return summary, load_file(summary["final_model"])


def test_two_cpu_processes_equal_the_single_process_global_batch(tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    from lora_compat.train.flux.tiny import save_tiny_flux_pipeline

    flux_dir = save_tiny_flux_pipeline(tmp_path / "tiny-flux1-dev", "dev", seed=0)
    both = make_synthetic_dataset(tmp_path / "both", n_images=2, repeats=1)   # 2 batches of 1: one per rank
    images = sorted((both / "1_shapes").glob("*.png"))
    assert len(images) == 2
    singles = []
    for i, image in enumerate(images):   # the same image folder layout with one image each
        one = tmp_path / f"only{i}" / "1_shapes"
        one.mkdir(parents=True)
        shutil.copy(image, one / image.name)
        singles.append(_single(tmp_path, flux_dir, one.parent))

    out = tmp_path / "out_dist"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [_accelerate(), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "-m", "lora_compat", "train",
           str(_command(tmp_path, flux_dir, both, out)), "--quiet", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = sorted((json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")),
                   key=lambda r: r["process_index"])
    assert [r["process_index"] for r in ranks] == [0, 1] and all(r["num_processes"] == 2 for r in ranks)
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]   # DDP kept the ranks in sync
    assert all(r["global_step"] == 1 and r["total_batch_size"] == 2 for r in ranks)
    assert ranks[0]["run"]["family"] == "flux1"

    # written once, by rank 0 only
    assert ranks[0]["saved_models"] == [str(out / "dist.safetensors")] and ranks[1]["saved_models"] == []
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".safetensors") == ["dist.safetensors"]
    with safe_open(str(out / "dist.safetensors"), "pt") as f:
        md = f.metadata()
    assert md["ss_total_batch_size"] == "2" and md["ss_num_batches_per_epoch"] == "1"

    # the result: the mean of the two one-image steps; the loss: the mean of their losses
    got = load_file(str(out / "dist.safetensors"))
    (res_a, a), (res_b, b) = singles
    assert got.keys() == a.keys() == b.keys()
    moved = 0.0
    for key, value in got.items():
        want = (a[key].float() + b[key].float()) / 2
        assert torch.allclose(value.float(), want, rtol=1e-5, atol=1e-7), key
        moved = max(moved, (a[key].float() - b[key].float()).abs().max().item())
    assert moved > 1e-4   # the two images moved the weights differently: the mean is not trivially either one
    assert ranks[0]["first_loss"] == pytest.approx((res_a["first_loss"] + res_b["first_loss"]) / 2, rel=1e-5)
