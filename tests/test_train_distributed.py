"""`accelerate launch` with 2 CPU processes (gloo): both ranks end with identical weights and the effective
batch doubles (so an epoch-based run takes half the optimizer steps, reference §4.7)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lora_compat.demo import make_synthetic_dataset

pytestmark = pytest.mark.slow


def _accelerate() -> list[str]:
    exe = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if exe is None:
        pytest.skip("accelerate CLI not found")
    return [exe]


def test_two_cpu_processes_stay_in_sync_and_double_the_batch(tmp_path):
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=1)  # 4 batches of 1 per epoch
    conf = tmp_path / "c.toml"
    conf.write_text(f"""pretrained_model_name_or_path = "tiny:sd1"
train_data_dir = '{data}'
output_dir = '{tmp_path / "out"}'
resolution = "64"
network_dim = 4
learning_rate = 1e-3
optimizer_type = "AdamW"
max_train_epochs = 2
caption_extension = ".txt"
seed = 5
""")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [*_accelerate(), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "-m", "lora_compat", "train", str(conf), "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["process_index"] for r in ranks) == [0, 1]
    assert all(r["num_processes"] == 2 for r in ranks)
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    # one process would run 2 epochs x 4 batches = 8 steps; two processes share each epoch
    assert all(r["global_step"] == 4 and r["max_train_steps"] == 4 for r in ranks)
    assert all(r["total_batch_size"] == 2 for r in ranks)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "out" / "last.safetensors"), "pt") as f:
        md = f.metadata()
    assert md["ss_total_batch_size"] == "2" and md["ss_num_batches_per_epoch"] == "2"
