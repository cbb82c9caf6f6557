"""Step and epoch arithmetic (train_network.py) and the front-ends' estimates."""

from __future__ import annotations

from lora_compat.semantics import (
    batches_per_epoch,
    derrian_a1_max_train_steps,
    kohya_gui_max_train_steps,
    kohya_gui_warmup_steps,
    max_train_steps_for_epochs,
    optimizer_steps_per_epoch,
    save_every_n_epochs_from_ratio,
    train_epochs,
    warmup_refusal,
    warmup_steps,
)


def test_batches_never_mix_buckets():
    assert batches_per_epoch([5, 3, 0], 2) == 3 + 2
    assert batches_per_epoch([8], 4) == 2 and batches_per_epoch([], 4) == 0


def test_epochs_and_steps():
    # 10 batches on 2 processes with accumulation 2: ceil(ceil(10/2)/2) = 3 steps per epoch
    assert optimizer_steps_per_epoch(10, 2, 2) == 3 and optimizer_steps_per_epoch(10) == 10
    assert max_train_steps_for_epochs(4, 10, 2, 2) == 12
    assert train_epochs(25, 10, 1, 3) == 7       # ceil(25 / ceil(10 / 3))
    assert save_every_n_epochs_from_ratio(10, 3) == 3 and save_every_n_epochs_from_ratio(2, 5) == 1


def test_front_end_estimates():
    assert kohya_gui_max_train_steps(250, 2, 1, 10, 2) == 2500
    assert kohya_gui_max_train_steps(25, 4, 3, 1, 1) == 3      # ceil(25/4/3)
    assert derrian_a1_max_train_steps(25, 4, 3) == 18           # int(25/4*3)
    assert kohya_gui_warmup_steps(10, 405) == 40 and kohya_gui_warmup_steps(5, 10) == 0   # round half even


def test_warmup_ratio_and_refusal():
    assert warmup_steps(0.1, 405) == 40 and warmup_steps(40, 405) == 40 and warmup_steps(None, 5) == 0
    assert warmup_steps(0.1, 100, num_processes=2) == 20
    assert warmup_refusal("constant", 10) == "lr_scheduler 'constant'"
    assert warmup_refusal("adafactor:0.001", 10)
    assert warmup_refusal("cosine", 10, lr_scheduler_type="x.Y").startswith("a custom lr_scheduler_type")
    assert "relative_step" in warmup_refusal("cosine", 10, relative_step=True)
    assert warmup_refusal("constant", 0) is None and warmup_refusal("cosine", 10) is None
    assert warmup_refusal("constant", 10, schedule_free=True) is None   # a dummy scheduler, never checked
