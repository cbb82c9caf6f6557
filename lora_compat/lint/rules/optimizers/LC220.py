"""LC220 optimizer-arg-not-accepted: optimizer_args key that the optimizer's constructor does not accept (TypeError)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import optimizer_name
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import kv_items
from lora_compat.lint.registry import Rule, register

# Constructor keyword arguments of the optimizers sd-scripts builds (reference §4.10; torch/bitsandbytes/
# transformers/prodigyopt/dadaptation/lion-pytorch signatures at the pinned versions). Unknown optimizers are
# not checked.
_ADAM = {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable", "differentiable",
         "fused"}
_BNB = {"lr", "betas", "eps", "weight_decay", "amsgrad", "optim_bits", "args", "min_8bit_size",
        "percentile_clipping", "block_wise", "is_paged"}
_DADAPT = {"lr", "betas", "eps", "weight_decay", "log_every", "decouple", "use_bias_correction", "d0",
           "growth_rate", "fsdp_in_use", "momentum", "bias_correction", "no_prox"}
OPTIMIZER_KWARGS: dict[str, set[str]] = {
    "adamw": _ADAM,
    "adamw8bit": _BNB,
    "pagedadamw8bit": _BNB,
    "pagedadamw": _BNB,
    "pagedadamw32bit": _BNB,
    "lion": {"lr", "betas", "weight_decay", "use_triton", "decoupled_weight_decay"},
    "lion8bit": {"lr", "betas", "weight_decay", "optim_bits", "args", "min_8bit_size", "percentile_clipping",
                 "block_wise", "is_paged"},
    "sgdnesterov": {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                    "differentiable", "fused"},
    "prodigy": {"lr", "betas", "beta3", "eps", "weight_decay", "decouple", "use_bias_correction",
                "safeguard_warmup", "d0", "d_coef", "growth_rate", "fsdp_in_use", "slice_p"},
    "dadaptation": _DADAPT, "dadaptadam": _DADAPT, "dadaptadampreprint": _DADAPT, "dadaptlion": _DADAPT,
    "dadaptadagrad": _DADAPT, "dadaptadan": _DADAPT, "dadaptadanip": _DADAPT, "dadaptsgd": _DADAPT,
    "adafactor": {"lr", "eps", "clip_threshold", "decay_rate", "beta1", "weight_decay", "scale_parameter",
                  "relative_step", "warmup_init"},
}


@register
class OptimizerArgNotAccepted(Rule):
    """An ``optimizer_args`` key that the chosen optimizer does not take.

    sd-scripts passes every ``optimizer_args`` item as a keyword argument to the optimizer's constructor
    (sd-scripts-reference.md §1.5, §4.10); an unknown keyword stops training with ``TypeError: unexpected keyword
    argument``. Classic cases: ``betas`` for Adafactor (it takes ``beta1``; Derrian's scripts drop ``betas`` for
    Adafactor for this reason, legacy-dialects.md §3.3), ``decouple`` for plain AdamW (a DAdaptation/Prodigy
    argument).

    **Anti-pattern**

    ```toml
    optimizer_type = "AdamW"
    optimizer_args = ["decouple=True"]
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["decouple=True", "weight_decay=0.01"]
    ```
    """

    code, name, severity = "LC220", "optimizers.optimizer_arg_not_accepted", "error"
    groups = ("optimizers",)
    summary = "optimizer_args key that the optimizer's constructor does not accept (TypeError)."
    message = "optimizer_args {key!r} is not an argument of {opt}: sd-scripts stops with TypeError"
    reference = "sd-scripts-reference.md §1.5, §4.10; legacy-dialects.md §3.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        opt = optimizer_name(cfg)
        allowed = OPTIMIZER_KWARGS.get(opt)
        if allowed is None:
            return
        shown = cfg.get("optimizer_type") or opt
        for k, _v in kv_items(cfg.get("optimizer_args")):
            if k and k not in allowed:
                yield self.finding(cfg, option="optimizer_args", key=k, opt=shown)
