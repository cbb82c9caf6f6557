"""Build the optimizer the plan resolved (:class:`lora_compat.semantics.optimizers.EffectiveOptimizer`).

Only names of sd-scripts' own catalogue are imported (a config can never make us import an arbitrary name):
sd-scripts falls back to ``torch.optim.<Name>`` or a dotted ``module.Class`` for unknown names; lora-compat
refuses those and lists the names it knows instead.
"""

from __future__ import annotations

from typing import Any

from lora_compat.errors import UserError
from lora_compat.semantics.optimizers import OPTIMIZERS, TORCH_FALLBACK, EffectiveOptimizer


def is_schedule_free(choice: EffectiveOptimizer) -> bool:
    """Schedule-free optimizers get a constant (dummy) LR schedule and need train()/eval() toggling."""
    return bool(choice.spec and choice.spec.schedule_free)


def build_optimizer(choice: EffectiveOptimizer, param_groups: list[dict[str, Any]], lr: float | None) -> tuple[Any, str]:
    """Construct ``choice`` over ``param_groups``; returns (optimizer, ``ss_optimizer`` as sd-scripts writes it:
    the class's defining module and name, then its recorded keyword arguments)."""
    import importlib

    spec = choice.spec
    if spec is None:
        known = sorted({s.name for s in (*OPTIMIZERS.values(), *TORCH_FALLBACK.values())})
        raise UserError(f"optimizer_type {choice.name!r} is not supported (sd-scripts would import it by name; a "
                        f"config never makes lora-compat import code); known: {', '.join(known)}",
                        key="optimizer_type")
    if choice.conflict:
        raise UserError(choice.conflict, key=choice.source)
    if choice.problems:
        bad = choice.problems[0]
        raise UserError(f"optimizer_args item {bad.item!r}: {bad.reason}", key="optimizer_args")
    kwargs = choice.call_kwargs
    if choice.relative_step:
        # sd-scripts: relative_step discards every configured LR (groups lose theirs, lr=None)
        lr = None
        for g in param_groups:
            g.pop("lr", None)
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        pip = spec.package or spec.module.split(".")[0]
        raise UserError(f"optimizer_type {choice.name!r} needs the Python package {pip!r}, which is not "
                        f"installed (pip install {pip})", key="optimizer_type") from None
    cls = getattr(module, spec.cls)
    try:
        opt = cls(param_groups, lr=lr, **kwargs)
    except TypeError as exc:
        raise UserError(f"optimizer_args for {spec.cls}: {exc}", key="optimizer_args") from None
    return opt, choice.ss_optimizer(f"{cls.__module__}.{cls.__name__}")
