"""Training on real-world inputs: fp16 model folders, unknown network modules, state folders that are not ours or
of another rank, Ctrl-C during start-up, metadata as sd-scripts writes it, and states without the frozen base."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.cli import main  # noqa: E402
from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.errors import UserError  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=2, repeats=1, size=32)


def _cfg(out: Path, **extra) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="test")
    opts = {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(out), "output_name": "r", "resolution": "32",
            "network_dim": 4, "learning_rate": 1e-3, "optimizer_type": "AdamW", "seed": 3, "caption_extension": ".txt"}
    opts.update(extra)
    for k, v in opts.items():
        cfg.set(k, v)
    return cfg


def _cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    return code, capsys.readouterr().err


def test_fp32_training_from_an_fp16_diffusers_folder(tmp_path, data):
    """An fp16 diffusers folder (the common download) trains in fp32: every model loads in float32 (transformers
    5 would keep the text encoder in fp16 while diffusers loads the UNet in fp32: 'expected m1 and m2 to have the
    same dtype')."""
    from diffusers import StableDiffusionPipeline

    from lora_compat.train.tiny import save_tiny_pipeline

    src = save_tiny_pipeline("sd1", tmp_path / "fp32")
    fp16 = tmp_path / "fp16"
    StableDiffusionPipeline.from_pretrained(src).to(torch.float16).save_pretrained(fp16)
    res = run_training(_cfg(tmp_path / "o", mixed_precision="no"), base_model=str(fp16), train_data=str(data),
                       max_steps=1, show_progress=False)
    from safetensors import safe_open

    with safe_open(str(res.final_model), "pt") as f:
        assert f.get_tensor("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight").dtype == torch.float32
    assert res.record["mixed_precision"] == "no"


def test_unknown_network_module_is_refused_naming_it(tmp_path, data, capsys):
    conf = tmp_path / "c.toml"
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sd1"\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{tmp_path / "o"}\'\nresolution = "32"\nnetwork_module = "os"\n')
    code, err = _cli(capsys, "train", str(conf), "--quiet")
    assert code == 2 and err.count("\n") == 1 and "network_module" in err and "'os'" in err
    assert not (tmp_path / "o").exists()


def test_resume_refuses_other_folders_and_changed_ranks(tmp_path, data):
    first = run_training(_cfg(tmp_path / "a", save_state=True), train_data=str(data), max_steps=1,
                         show_progress=False)
    state = first.state_dir
    assert state is not None and state.is_dir()
    # only what training changes: adapter tensors (no frozen UNet / text-encoder weight), + optimizer etc.
    from safetensors import safe_open

    with safe_open(str(state / "model.safetensors"), "pt") as f:
        unet_keys = list(f.keys())
    assert unet_keys and all(".lora_A." in k or ".lora_B." in k for k in unet_keys)
    assert len(unet_keys) == 2 * 192   # every UNet LoRA module of sd-scripts' SD1 set, down and up
    with pytest.raises(UserError, match="not a lora-compat state folder"):
        run_training(_cfg(tmp_path / "b"), train_data=str(data), max_steps=2, show_progress=False,
                     resume=str(data))
    with pytest.raises(UserError, match=r"saved with shape \[4, .*this network has \[8, .*network_dim"):
        run_training(_cfg(tmp_path / "c", network_dim=8), train_data=str(data), max_steps=2, show_progress=False,
                     resume=str(state))
    resumed = run_training(_cfg(tmp_path / "d"), train_data=str(data), max_steps=2, show_progress=False,
                           resume=str(state))
    assert resumed.global_step == 2


def test_resume_cli_error_is_one_line(tmp_path, data, capsys):
    conf = tmp_path / "c.toml"
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sd1"\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{tmp_path / "o"}\'\nresolution = "32"\n')
    code, err = _cli(capsys, "train", str(conf), "--quiet", "--resume", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "not a lora-compat state folder" in err


def test_metadata_as_sd_scripts_writes_it_and_a_new_session_each_run(tmp_path, data):
    a = run_training(_cfg(tmp_path / "a"), train_data=str(data), max_steps=1, show_progress=False).metadata
    b = run_training(_cfg(tmp_path / "b"), train_data=str(data), max_steps=1, show_progress=False).metadata
    assert a["ss_seed"] == b["ss_seed"] == "3"
    assert a["ss_session_id"] != b["ss_session_id"]   # drawn before seeding, as sd-scripts
    assert a["ss_resolution"] == "(32, 32)" and a["ss_min_bucket_reso"] == "None" and a["ss_max_bucket_reso"] == "None"
    assert a["ss_text_encoder_lr"] == "None" and a["ss_unet_lr"] == "None" and a["ss_learning_rate"] == "0.001"
    assert a["ss_optimizer"] == "torch.optim.adamw.AdamW" and a["ss_mixed_precision"] == "no"


def test_ctrl_c_during_start_up_is_one_line_exit_130(tmp_path, data):
    """SIGINT while the models load (after the start-up warnings, before the loop): one line, exit 130, no
    traceback, nothing written."""
    conf = tmp_path / "c.toml"
    out = tmp_path / "o"
    # huggingface_repo_id is not run by the engine: its warning is printed at start, before the models load
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sdxl"\nsdxl = true\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{out}\'\nresolution = "32"\nhuggingface_repo_id = "me/x"\n')
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "lora_compat", "train", str(conf), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    deadline = time.time() + 300
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "huggingface_repo_id" in line:
            proc.send_signal(signal.SIGINT)
            break
    _out, rest = proc.communicate(timeout=300)
    err = "".join(lines) + rest
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith("error: interrupted during start-up") or last == "interrupted", err[-2000:]
    assert not list(out.glob("*.safetensors"))


def test_plan_json_of_a_run_is_what_train_records(tmp_path, data, capsys):
    """The CLI `run` record is JSON-clean and names the optimizer class it imported."""
    conf = tmp_path / "c.toml"
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sd1"\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{tmp_path / "o"}\'\nresolution = "32"\nnetwork_dim = 4\nseed = 1\n')
    try:
        main(["train", str(conf), "--quiet", "--max-steps", "1", "--format", "json"])
    except SystemExit as exc:
        assert not exc.code
    summary = json.loads(capsys.readouterr().out)
    assert summary["run"]["optimizer"]["class"] == "torch.optim.adamw.AdamW"
    assert summary["run"]["steps"]["max_train_steps"] == 1 == summary["global_step"]
