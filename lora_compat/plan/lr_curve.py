"""The learning rate of every parameter group at every optimizer step of a plan (``plan --plot``).

The multiplier comes from :func:`lora_compat.semantics.lr_lambda`, the function the engine builds its
``LambdaLR`` from, so the picture is the schedule ``train`` runs (one process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lora_compat.errors import UserError
from lora_compat.plan.parts import Plan
from lora_compat.semantics.schedules import lr_lambda, warmup_steps

#: Optimizers whose configured LR multiplies a step size they adapt themselves (sd-scripts logs d*lr for them).
ADAPTIVE = ("dadapt", "prodigy")


@dataclass
class LrCurves:
    """Per group ``(description, [lr at optimizer step 1, 2, ...])``, the warmup in steps, optimizer steps per
    epoch (None: unknown) and a note on what the numbers mean."""

    groups: list[tuple[str, list[float]]] = field(default_factory=list)
    warmup_steps: int = 0
    steps_per_epoch: int | None = None
    note: str | None = None


def lr_curves(plan: Plan) -> LrCurves:
    """The LR curves of ``plan``; a UserError when they cannot be known (unknown length, Adafactor's
    relative_step, a refused schedule)."""
    steps = plan.steps.max_train_steps
    if not steps:
        raise UserError("the training length is unknown, so the schedule cannot be drawn (give the image counts "
                        "with --images, or max_train_steps)", file=plan.source or None, key="max_train_steps")
    s, o = plan.scheduler, plan.optimizer
    if o.relative_step:
        raise UserError("Adafactor with relative_step computes its learning rate inside the optimizer: there is no "
                        "schedule to draw", file=plan.source or None, key="optimizer_args")
    if o.schedule_free:
        factor = (lambda t: 1.0)  # noqa: E731  schedule-free optimizers get a constant dummy scheduler
        warm = 0
    else:
        try:
            factor = lr_lambda(s.name, steps, lr_warmup_steps=s.lr_warmup_steps, lr_decay_steps=s.lr_decay_steps,
                               lr_scheduler_num_cycles=s.num_cycles, lr_scheduler_power=s.power,
                               lr_scheduler_timescale=s.timescale, lr_scheduler_min_lr_ratio=s.min_lr_ratio,
                               lr_scheduler_args=s.args or None, learning_rate=s.learning_rate)
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"lr_scheduler {s.name!r}: {exc}", file=plan.source or None, key="lr_scheduler") from None
        warm = warmup_steps(s.lr_warmup_steps, steps)
    multipliers = [factor(t) for t in range(steps)]
    out = LrCurves(warmup_steps=warm, steps_per_epoch=plan.steps.optimizer_steps_per_epoch)
    for g in plan.param_groups:
        if g.lr:
            out.groups.append((g.description, [g.lr * m for m in multipliers]))
    if o.name.lower().startswith(ADAPTIVE):
        out.note = f"{o.name} adapts its own step size d: the LR drawn multiplies it (sd-scripts logs d*lr)"
    elif o.schedule_free:
        out.note = f"{o.name} is schedule-free: a constant scheduler, the optimizer does its own warmup"
    return out
