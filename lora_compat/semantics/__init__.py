"""sd-scripts' training rules as pure functions (stdlib only: no torch, no numpy), one topic per module.

Each function mirrors a function of kohya-ss/sd-scripts closely enough that the golden vectors in
``../shared/golden/`` are reproduced, and each rule is computed here once, so lint, plan and the training
engine cannot disagree:

* :mod:`.captions` — ``process_caption`` (``BaseDataset.process_caption``), token warmup.
* :mod:`.buckets` — ``make_bucket_resolutions``, ``BucketSelector`` / ``select_bucket``, ``crop_ltrb``.
* :mod:`.loss_weights` — the DDPM schedule, SNR and min-SNR / debiased / v-pred loss weights (float32 emulated).
* :mod:`.schedules` — learning-rate schedules (``get_scheduler_fix``), warmup ratio -> steps, warmup refusal.
* :mod:`.optimizers` — the optimizer catalogue and the effective optimizer with its keyword arguments.
* :mod:`.steps` — batches, optimizer steps and epochs; the front-ends' own step estimates.
* :mod:`.args` — ``network_args`` / ``optimizer_args`` / ``lr_scheduler_args`` ``key=value`` lists.
* :mod:`.prompts` — weighted captions and ``max_token_length`` chunking.

``from lora_compat.semantics import X`` works for every public name; the contract is in ``docs/api.md``.
"""

from __future__ import annotations

from lora_compat.semantics.args import (
    ArgItem,
    ArgProblem,
    arg_float,
    arg_int,
    arg_items,
    arg_true,
    literal_args,
    network_arg_problems,
    network_args,
)
from lora_compat.semantics.buckets import (
    BucketSelector,
    crop_ltrb,
    make_bucket_resolutions,
    round_bucket_limits,
    select_bucket,
)
from lora_compat.semantics.captions import CaptionParams, RandomLike, effective_token_warmup_step, process_caption
from lora_compat.semantics.loss_weights import (
    all_snr,
    alphas_cumprod,
    debiased_weight,
    loss_weight,
    min_snr_weight,
    v_pred_like_weight,
    v_pred_scale,
)
from lora_compat.semantics.optimizers import (
    OPTIMIZERS,
    TORCH_FALLBACK,
    EffectiveOptimizer,
    OptimizerSpec,
    adafactor_relative_step,
    effective_optimizer,
    optimizer_spec,
)
from lora_compat.semantics.prompts import chunk_token_ids, parse_prompt_attention
from lora_compat.semantics.schedules import (
    SCHEDULER_NAMES,
    effective_scheduler,
    lr_lambda,
    lr_schedule,
    warmup_refusal,
    warmup_steps,
)
from lora_compat.semantics.steps import (
    balance_regularization,
    batches_per_epoch,
    derrian_a1_max_train_steps,
    derrian_a1_warmup_steps,
    derrian_ui_max_train_steps,
    derrian_ui_warmup_steps,
    kohya_gui_max_train_steps,
    kohya_gui_warmup_steps,
    max_train_steps_for_epochs,
    optimizer_steps_per_epoch,
    save_every_n_epochs_from_ratio,
    train_epochs,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULER_NAMES",
    "TORCH_FALLBACK",
    "ArgItem",
    "ArgProblem",
    "BucketSelector",
    "CaptionParams",
    "EffectiveOptimizer",
    "OptimizerSpec",
    "RandomLike",
    "adafactor_relative_step",
    "all_snr",
    "alphas_cumprod",
    "arg_float",
    "arg_int",
    "arg_items",
    "arg_true",
    "balance_regularization",
    "batches_per_epoch",
    "chunk_token_ids",
    "crop_ltrb",
    "debiased_weight",
    "derrian_a1_max_train_steps",
    "derrian_a1_warmup_steps",
    "derrian_ui_max_train_steps",
    "derrian_ui_warmup_steps",
    "effective_optimizer",
    "effective_scheduler",
    "effective_token_warmup_step",
    "kohya_gui_max_train_steps",
    "kohya_gui_warmup_steps",
    "literal_args",
    "loss_weight",
    "lr_lambda",
    "lr_schedule",
    "make_bucket_resolutions",
    "max_train_steps_for_epochs",
    "min_snr_weight",
    "network_arg_problems",
    "network_args",
    "optimizer_spec",
    "optimizer_steps_per_epoch",
    "parse_prompt_attention",
    "process_caption",
    "round_bucket_limits",
    "save_every_n_epochs_from_ratio",
    "select_bucket",
    "train_epochs",
    "v_pred_like_weight",
    "v_pred_scale",
    "warmup_refusal",
    "warmup_steps",
]
