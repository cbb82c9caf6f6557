"""Build the optimizer the plan resolved (:class:`lora_compat.plan.parts.OptimizerPlan`).

Only classes of sd-scripts' own catalogue (:mod:`lora_compat.semantics.optimizers`) are imported; the plan
refuses any other name, so a config can never make us import an arbitrary module.
"""

from __future__ import annotations

from typing import Any

from lora_compat.errors import UserError
from lora_compat.semantics.optimizers import ss_optimizer


def build_optimizer(choice: Any, param_groups: list[dict[str, Any]]) -> tuple[Any, str]:
    """Construct ``choice`` (an :class:`~lora_compat.plan.parts.OptimizerPlan`) over ``param_groups``; returns
    (optimizer, ``ss_optimizer`` as sd-scripts writes it: the class's defining module and name, then the
    recorded keyword arguments)."""
    import importlib

    if choice.module is None or choice.cls is None:
        raise UserError(f"optimizer_type {choice.name!r} is not supported (sd-scripts would import it by name; a "
                        "config never makes lora-compat import code)", key="optimizer_type")
    lr = choice.learning_rate
    if choice.relative_step:
        # sd-scripts: relative_step discards every configured LR (groups lose theirs, lr=None)
        lr = None
        for g in param_groups:
            g.pop("lr", None)
    try:
        module = importlib.import_module(choice.module)
    except ImportError:
        pip = choice.package or choice.module.split(".")[0]
        raise UserError(f"optimizer_type {choice.name!r} needs the Python package {pip!r}, which is not "
                        f"installed (pip install {pip})", key="optimizer_type") from None
    cls = getattr(module, choice.cls)
    try:
        opt = cls(param_groups, lr=lr, **choice.call_kwargs)
    except TypeError as exc:
        raise UserError(f"optimizer_args for {choice.cls}: {exc}", key="optimizer_args") from None
    return opt, ss_optimizer(f"{cls.__module__}.{cls.__name__}", choice.kwargs)
