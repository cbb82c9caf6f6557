"""Schedule-free optimizers (``AdamWScheduleFree`` ...) as sd-scripts runs them: ``optimizer.train()`` before the
first step, ``optimizer.eval()`` around samples, validation and saves, the final model saved at the averaged (eval)
point."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("schedulefree")

from safetensors.torch import load_file  # noqa: E402

from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.train.engine import RunOptions, Training, training_plan  # noqa: E402
from lora_compat.train.saving import weights_digest  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _train(tmp_path, **opts):
    from accelerate.state import AcceleratorState, GradientState

    data = make_synthetic_dataset(tmp_path / "data", n_images=2, repeats=1)
    cfg = CanonicalConfig(dialect="native", source="test")
    base = {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "out"), "resolution": "64",
            "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-2, "seed": 5,
            "optimizer_type": "AdamWScheduleFree", "max_train_steps": 3}
    base.update(opts)
    for k, v in base.items():
        cfg.set(k, v)
    training = Training(training_plan(cfg, train_data=str(data)), RunOptions(show_progress=False))
    try:
        return training, training.run()
    finally:
        AcceleratorState._reset_state()
        GradientState._reset_state()


def test_schedule_free_trains_and_saves_the_averaged_weights(tmp_path):
    training, res = _train(tmp_path, validation_split=0.5, validate_every_n_steps=1)
    assert res.global_step == 3 and all(torch.isfinite(torch.tensor(res.losses)))
    assert res.validation and all(0 < v < 10 for _, v in res.validation)
    opt = training.optimizer.optimizer
    assert type(opt).__name__ == "AdamWScheduleFree"
    assert not opt.param_groups[0]["train_mode"]            # left in eval mode, as sd-scripts ends
    saved = load_file(str(res.final_model))
    live = training.family.state_dict(training.nets, None)
    assert weights_digest(saved) == weights_digest(live) == res.weights_sha256
    # the train point (y) differs from the averaged point (x) the file holds
    opt.train()
    assert weights_digest(training.family.state_dict(training.nets, None)) != res.weights_sha256


def test_the_optimizer_is_in_eval_mode_while_saving(tmp_path, monkeypatch):
    modes: list[bool] = []
    original = Training._save_model

    def spy(self, name, epoch):
        modes.append(self.optimizer.optimizer.param_groups[0]["train_mode"])
        return original(self, name, epoch)

    monkeypatch.setattr(Training, "_save_model", spy)
    _, res = _train(tmp_path, save_every_n_steps=1, optimizer_type="RAdamScheduleFree")
    assert len(modes) == 4 and not any(modes)   # three step saves and the final one, all at the eval point
    assert len(res.saved_models) == 4


def test_ctrl_c_and_resume_equal_an_uninterrupted_schedule_free_run(tmp_path):
    """The state is saved at the eval point with the optimizer in eval mode; the resumed run switches back to
    train mode before its first step, so it ends with the uninterrupted run's weights."""
    import os
    import signal

    from lora_compat.train.engine import run_training

    data = make_synthetic_dataset(tmp_path / "data", n_images=2, repeats=1)

    def cfg(out):
        c = CanonicalConfig(dialect="native", source="test")
        for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(out), "resolution": "64",
                     "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-2, "seed": 5,
                     "optimizer_type": "AdamWScheduleFree", "max_train_steps": 3}.items():
            c.set(k, v)
        return c

    def interrupt(step: int, loss: float) -> None:
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    full = run_training(cfg(tmp_path / "a"), train_data=str(data), show_progress=False)
    part = run_training(cfg(tmp_path / "b"), train_data=str(data), show_progress=False, on_step=interrupt)
    assert part.interrupted and part.global_step == 1
    resumed = run_training(cfg(tmp_path / "b"), train_data=str(data), show_progress=False,
                           resume=str(part.state_dir))
    assert resumed.global_step == 3 and resumed.losses == full.losses[1:]
    assert resumed.weights_sha256 == full.weights_sha256
