"""Optimizers by a FIXED name map (reference §4.10); a config can never make us import an arbitrary name.

sd-scripts falls back to ``torch.optim.<Name>`` or a dotted ``module.Class`` for unknown names; lora-compat
refuses those (a config must never choose code to import) and lists the names it knows instead.
"""

from __future__ import annotations

import ast
from typing import Any

from lora_compat.errors import UserError

# lower-cased optimizer_type -> (import module, class name, extra default kwargs, metadata module name)
OPTIMIZERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "adamw": ("torch.optim", "AdamW", {}),
    "adam": ("torch.optim", "Adam", {}),
    "sgd": ("torch.optim", "SGD", {}),
    "sgdnesterov": ("torch.optim", "SGD", {"nesterov": True, "momentum": 0.9}),
    "adagrad": ("torch.optim", "Adagrad", {}),
    "rmsprop": ("torch.optim", "RMSprop", {}),
    "radam": ("torch.optim", "RAdam", {}),
    "adamw8bit": ("bitsandbytes.optim", "AdamW8bit", {}),
    "pagedadamw8bit": ("bitsandbytes.optim", "PagedAdamW8bit", {}),
    "pagedadamw": ("bitsandbytes.optim", "PagedAdamW", {}),
    "pagedadamw32bit": ("bitsandbytes.optim", "PagedAdamW32bit", {}),
    "lion8bit": ("bitsandbytes.optim", "Lion8bit", {}),
    "pagedlion8bit": ("bitsandbytes.optim", "PagedLion8bit", {}),
    # sd-scripts rebuilds it without nesterov: it really is plain SGD8bit with momentum 0.9 (§4.10).
    "sgdnesterov8bit": ("bitsandbytes.optim", "SGD8bit", {"momentum": 0.9}),
    "lion": ("lion_pytorch", "Lion", {}),
    "prodigy": ("prodigyopt", "Prodigy", {}),
    "dadaptation": ("dadaptation.experimental", "DAdaptAdamPreprint", {}),
    "dadaptadampreprint": ("dadaptation.experimental", "DAdaptAdamPreprint", {}),
    "dadaptadagrad": ("dadaptation", "DAdaptAdaGrad", {}),
    "dadaptadam": ("dadaptation", "DAdaptAdam", {}),
    "dadaptadan": ("dadaptation", "DAdaptAdan", {}),
    "dadaptadanip": ("dadaptation.experimental", "DAdaptAdanIP", {}),
    "dadaptlion": ("dadaptation", "DAdaptLion", {}),
    "dadaptsgd": ("dadaptation", "DAdaptSGD", {}),
    "adafactor": ("transformers.optimization", "Adafactor", {}),
    "radamschedulefree": ("schedulefree", "RAdamScheduleFree", {}),
    "adamwschedulefree": ("schedulefree", "AdamWScheduleFree", {}),
    "sgdschedulefree": ("schedulefree", "SGDScheduleFree", {}),
}
PIP_NAMES = {"bitsandbytes.optim": "bitsandbytes", "lion_pytorch": "lion-pytorch", "prodigyopt": "prodigyopt",
             "dadaptation": "dadaptation", "dadaptation.experimental": "dadaptation",
             "schedulefree": "schedulefree"}


def parse_optimizer_args(values: Any) -> dict[str, Any]:
    """``optimizer_args`` ("k=v" strings, as sd-scripts) -> kwargs; values parsed as Python literals only."""
    if not values:
        return {}
    if isinstance(values, dict):
        return dict(values)
    if isinstance(values, str):
        values = values.split()
    out: dict[str, Any] = {}
    for item in values:
        if "=" not in str(item):
            raise UserError(f"optimizer_args: {item!r} is not key=value")
        key, value = str(item).split("=", 1)
        try:
            # sd-scripts uses ast.literal_eval too; a literal can never execute code.
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def is_schedule_free(optimizer_type: str | None) -> bool:
    """Schedule-free optimizers get a constant (dummy) LR schedule and need train()/eval() toggling."""
    return (optimizer_type or "").lower().endswith("schedulefree")


def build_optimizer(optimizer_type: str | None, param_groups: list[dict[str, Any]], lr: float | None,
                    optimizer_args: Any = None) -> tuple[Any, str]:
    """Construct the optimizer; returns (optimizer, ``ss_optimizer`` metadata string)."""
    import importlib

    name = (optimizer_type or "AdamW").lower()
    if name not in OPTIMIZERS:
        raise UserError(f"optimizer_type {optimizer_type!r} is not supported; known: "
                        + ", ".join(sorted(OPTIMIZERS)), key="optimizer_type")
    module_name, cls_name, defaults = OPTIMIZERS[name]
    kwargs = dict(defaults)
    kwargs.update(parse_optimizer_args(optimizer_args))
    if name == "adafactor":
        kwargs.setdefault("relative_step", True)
        if kwargs.get("warmup_init"):
            kwargs["relative_step"] = True
        if kwargs["relative_step"]:
            kwargs.setdefault("scale_parameter", True)
            lr = None
            for g in param_groups:
                g.pop("lr", None)
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        pip = PIP_NAMES.get(module_name, module_name)
        raise UserError(f"optimizer_type {optimizer_type!r} needs the Python package {pip!r}, which is not "
                        f"installed (pip install {pip})", key="optimizer_type") from None
    cls = getattr(module, cls_name)
    try:
        opt = cls(param_groups, lr=lr, **kwargs) if lr is not None else cls(param_groups, **kwargs)
    except TypeError as exc:
        raise UserError(f"optimizer_args for {cls_name}: {exc}", key="optimizer_args") from None
    meta = f"{module_name}.{cls_name}"
    if kwargs:
        meta += "(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")"
    return opt, meta
