"""Ctrl-C saves a state folder; resuming from it ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.errors import UserError  # noqa: E402
from lora_compat.train import state as st  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _cfg(out: Path, **extra) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="test")
    opts = {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(out), "output_name": "r", "resolution": "64",
            "network_dim": 4, "network_alpha": 2.0, "learning_rate": 2e-3, "text_encoder_lr": 1e-3, "seed": 7,
            "optimizer_type": "AdamW", "train_batch_size": 2, "lr_scheduler": "cosine", "lr_warmup_steps": 2,
            "shuffle_caption": True, "noise_offset": 0.05, "max_grad_norm": 1.0}
    opts.update(extra)
    for k, v in opts.items():
        cfg.set(k, v)
    return cfg


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize("stop_at", [3, 4])  # mid-epoch, and the last batch of epoch 2 (epoch save due)
def test_sigint_then_resume_equals_uninterrupted(tmp_path, stop_at):
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=1)  # 2 steps per epoch
    full = run_training(_cfg(tmp_path / "a", save_every_n_epochs=1), train_data=str(data), max_steps=7,
                        show_progress=False)
    assert full.global_step == 7 and full.epochs == 4

    def interrupt(step: int, loss: float) -> None:
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGINT)

    part = run_training(_cfg(tmp_path / "b", save_every_n_epochs=1), train_data=str(data), max_steps=7,
                        show_progress=False, on_step=interrupt)
    assert part.interrupted and part.global_step == stop_at and part.final_model is None
    assert part.state_dir == tmp_path / "b" / f"r-step0000000{stop_at}-state"
    assert st.read_train_state(part.state_dir)["current_step"] == stop_at
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    resumed = run_training(_cfg(tmp_path / "b", save_every_n_epochs=1), train_data=str(data), max_steps=7,
                           show_progress=False, resume=str(part.state_dir))
    assert resumed.global_step == 7 and not resumed.interrupted
    a, b = _tensors(full.final_model), _tensors(resumed.final_model)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and training did move the weights (lora_up starts at zero)
    assert any(k.endswith("lora_up.weight") and a[k].abs().sum() > 0 for k in a)
    # every epoch save of the uninterrupted run exists after interrupt + resume, with the same weights
    epochs_a = sorted(p.name for p in (tmp_path / "a").glob("r-0*.safetensors"))
    epochs_b = sorted(p.name for p in (tmp_path / "b").glob("r-0*.safetensors"))
    assert epochs_a == epochs_b == ["r-000001.safetensors", "r-000002.safetensors", "r-000003.safetensors"]
    for name in epochs_a:
        ea, eb = _tensors(tmp_path / "a" / name), _tensors(tmp_path / "b" / name)
        assert all(torch.equal(ea[k], eb[k]) for k in ea), name
    # a config naming a state folder is refused: loading one unpickles, and configs never run code
    with pytest.raises(UserError, match="pass --resume DIR"):
        run_training(_cfg(tmp_path / "c", resume=str(part.state_dir)), train_data=str(data), max_steps=7,
                     show_progress=False)


def test_step_saves_keep_last_n_and_names(tmp_path):
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=1)
    res = run_training(_cfg(tmp_path / "o", save_every_n_steps=1, save_last_n_steps=2, save_state=True),
                       train_data=str(data), max_steps=6, show_progress=False)
    names = sorted(p.name for p in (tmp_path / "o").iterdir() if p.name != "loss.png")  # loss.png: ours
    # sd-scripts get_remove_step_no: at step s remove save (s - 2 - 1): steps 1..3 are gone at 4..6; like
    # sd-scripts the last step also gets a step save (a duplicate of the final model)
    assert names == ["r-state"] + [f"r-step0000000{i}{sfx}" for i in (4, 5, 6)
                                   for sfx in ("-state", ".safetensors")] + ["r.safetensors"]
    assert [p.name for p in res.saved_models] == [f"r-step0000000{i}.safetensors" for i in range(1, 7)] \
        + ["r.safetensors"]


def test_cli_ctrl_c_exits_130_with_a_resumable_state(tmp_path):
    """A real SIGINT to `lora-compat train`: one-line message, exit 130, state folder, no final model."""
    import subprocess
    import sys
    import time

    data = make_synthetic_dataset(tmp_path / "data", n_images=2, repeats=1)
    out = tmp_path / "out"
    conf = tmp_path / "c.toml"
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sd1"\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{out}\'\noutput_name = "r"\nresolution = "64"\nnetwork_dim = 4\n'
                    'save_every_n_steps = 1\nmax_train_steps = 500\n')
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "lora_compat", "train", str(conf), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not list(out.glob("r-step*.safetensors")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted at step" in stderr
    states = list(out.glob("r-step*-state"))
    assert len(states) == 1 and st.read_train_state(states[0])["current_step"] >= 1
    assert not (out / "r.safetensors").exists()


def test_resume_from_a_step_save_without_seed_with_loader_worker_lag(tmp_path):
    """No seed in the config (the drawn seed is kept in the state), 4 batches per epoch served by sd-scripts'
    2 emulated loader workers (worker lag), resumed mid-epoch from a regular save_state folder."""
    data = make_synthetic_dataset(tmp_path / "data", n_images=4, repeats=1)

    def cfg(out):
        c = _cfg(out, save_every_n_steps=2, save_state=True, train_batch_size=1, max_data_loader_n_workers=2)
        c.options.pop("seed")
        return c

    full = run_training(cfg(tmp_path / "a"), train_data=str(data), max_steps=4, show_progress=False)
    state = tmp_path / "a" / "r-step00000002-state"
    assert str(st.read_train_state(state)["seed"]) == full.metadata["ss_seed"] and "seed" not in cfg(tmp_path).options
    resumed = run_training(cfg(tmp_path / "b"), train_data=str(data), max_steps=4, show_progress=False,
                           resume=str(state))
    assert resumed.losses == full.losses[2:]
    assert resumed.weights_sha256 == full.weights_sha256
