"""Learning-rate schedules: ``train_util.get_scheduler_fix`` and the transformers/diffusers schedule
functions it calls (golden/lr_schedules.json)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

SCHEDULER_NAMES = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
    "piecewise_constant",
    "adafactor",
)
"""Scheduler names ``--lr_scheduler`` accepts (transformers' SchedulerType values sd-scripts can build,
plus diffusers' piecewise_constant and sd-scripts' ``adafactor[:lr]``)."""


def warmup_steps(value: int | float | None, max_train_steps: int, num_processes: int = 1) -> int:
    """``lr_warmup_steps`` / ``lr_decay_steps`` in scheduler steps: a Python float is a ratio of
    ``max_train_steps * num_processes`` (truncated), an int a step count (``get_scheduler_fix``)."""
    if value is None:
        return 0
    if isinstance(value, float):
        return int(value * max_train_steps * num_processes)
    return int(value)


def effective_scheduler(lr_scheduler: str, *, relative_step: bool = False, learning_rate: float | None = None) -> str:
    """The scheduler name ``get_scheduler_fix`` sees: Adafactor with ``relative_step`` rewrites it to
    ``adafactor:<learning_rate>`` (``get_optimizer`` does, reference §4.10)."""
    return f"adafactor:{learning_rate}" if relative_step else lr_scheduler


def warmup_refusal(lr_scheduler: str, warmup: int | None, *, lr_scheduler_type: str | None = None,
                   relative_step: bool = False, schedule_free: bool = False) -> str | None:
    """Why ``get_scheduler_fix`` raises ``ValueError`` for a non-zero warmup, or None (reference §4.11, E20).

    ``warmup`` is the warmup in scheduler steps (:func:`warmup_steps`). ``constant``, ``adafactor[:lr]`` and a
    custom ``lr_scheduler_type`` refuse any warmup; Adafactor with ``relative_step`` forces ``adafactor:<lr>``;
    schedule-free optimizers get a dummy scheduler before any check."""
    if not warmup or schedule_free:
        return None
    if lr_scheduler_type:
        return f"a custom lr_scheduler_type ({lr_scheduler_type})"
    if relative_step:
        return "the 'adafactor:<lr>' schedule that Adafactor's relative_step=True forces"
    if lr_scheduler == "constant" or lr_scheduler.startswith("adafactor"):
        return f"lr_scheduler {lr_scheduler!r}"
    return None


def _parse_piecewise_rules(rules: str) -> tuple[dict[int, float], float]:
    # diffusers get_piecewise_constant_schedule: "1:10,0.1:20,0.01" -> {10: 1.0, 20: 0.1}, last 0.01
    parts = rules.split(",")
    table: dict[int, float] = {}
    for part in parts[:-1]:
        value, steps = part.split(":")
        table[int(steps)] = float(value)
    return table, float(parts[-1])


def lr_lambda(
    lr_scheduler: str,
    max_train_steps: int,
    *,
    lr_warmup_steps: int | float | None = 0,
    lr_decay_steps: int | float | None = 0,
    lr_scheduler_num_cycles: int | None = 1,
    lr_scheduler_power: float | None = 1.0,
    lr_scheduler_timescale: int | None = None,
    lr_scheduler_min_lr_ratio: float | None = None,
    lr_scheduler_args: Mapping[str, Any] | None = None,
    learning_rate: float = 2e-6,
    num_processes: int = 1,
) -> Callable[[int], float]:
    """The multiplier ``f(t)`` of the scheduler sd-scripts builds (``get_scheduler_fix``).

    ``t`` counts scheduler steps (``num_processes`` per optimizer step); the LR of a parameter group is
    ``group_lr * f(t)``. ``learning_rate`` matters only for ``polynomial`` (its ``lr_init``).
    Raises ``ValueError`` exactly where sd-scripts/transformers would (unknown name, warmup with
    ``constant``, ``cosine_with_min_lr`` without a min lr, ``polynomial`` with lr <= lr_end,
    ``adafactor`` which depends on optimizer state).
    """
    name = lr_scheduler
    args = dict(lr_scheduler_args or {})
    n = max_train_steps * num_processes
    w = warmup_steps(lr_warmup_steps, max_train_steps, num_processes)
    d = warmup_steps(lr_decay_steps, max_train_steps, num_processes)
    cycles = lr_scheduler_num_cycles if lr_scheduler_num_cycles is not None else 1
    power = lr_scheduler_power if lr_scheduler_power is not None else 1.0

    def lin(t: int) -> float:
        return float(t) / float(max(1, w))

    if name.startswith("adafactor"):
        raise ValueError("the adafactor schedule is computed by the Adafactor optimizer from its state; "
                         "it has no closed form")
    if name == "piecewise_constant":
        rules = args.get("step_rules")
        if rules is None:
            raise ValueError("piecewise_constant needs step_rules in lr_scheduler_args, e.g. "
                             "step_rules=\"1:100,0.1:200,0.01\" (diffusers fails without it)")
        try:
            table, last = _parse_piecewise_rules(str(rules))
        except ValueError:
            raise ValueError(f"step_rules {rules!r} is not 'mult:step,...,last_mult'") from None

        def piecewise(t: int) -> float:
            for boundary in sorted(table):
                if t < boundary:
                    return table[boundary]
            return last

        return piecewise
    if name not in SCHEDULER_NAMES:
        raise ValueError(f"unknown lr_scheduler {name!r}; expected one of {', '.join(SCHEDULER_NAMES)}")

    if name == "constant":
        refusal = warmup_refusal(name, w)
        if refusal:
            raise ValueError(f"{refusal} does not accept a warmup (lr_warmup_steps={lr_warmup_steps!r})")
        return lambda t: 1.0
    if name == "constant_with_warmup":
        return lambda t: lin(t) if t < w else 1.0
    if name == "linear":
        return lambda t: lin(t) if t < w else max(0.0, float(n - t) / float(max(1, n - w)))
    if name == "cosine":
        # sd-scripts does not pass num_cycles to plain cosine: transformers' default 0.5 (a half wave).
        def cosine(t: int) -> float:
            if t < w:
                return lin(t)
            progress = float(t - w) / float(max(1, n - w))
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))

        return cosine
    if name == "cosine_with_restarts":
        def restarts(t: int) -> float:
            if t < w:
                return lin(t)
            progress = float(t - w) / float(max(1, n - w))
            if progress >= 1.0:
                return 0.0
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(cycles) * progress) % 1.0))))

        return restarts
    if name == "polynomial":
        lr_end = float(args.get("lr_end", 1e-7))
        lr_init = float(learning_rate)
        if not lr_init > lr_end:
            raise ValueError(f"lr_end ({lr_end}) must be smaller than the initial lr ({lr_init})")

        def polynomial(t: int) -> float:
            if t < w:
                return lin(t)
            if t > n:
                return lr_end / lr_init
            pct_remaining = 1 - (t - w) / (n - w)
            return ((lr_init - lr_end) * pct_remaining ** power + lr_end) / lr_init

        return polynomial
    if name == "inverse_sqrt":
        timescale = lr_scheduler_timescale or args.get("timescale") or (w or 10_000)

        def inverse_sqrt(t: int) -> float:
            if t < w:
                return lin(t)
            shift = timescale - w
            return 1.0 / math.sqrt((t + shift) / timescale)

        return inverse_sqrt
    if name == "cosine_with_min_lr":
        m = lr_scheduler_min_lr_ratio if lr_scheduler_min_lr_ratio is not None else args.get("min_lr_rate")
        if m is not None and args.get("min_lr") is not None:
            raise ValueError("give either lr_scheduler_min_lr_ratio or min_lr (transformers refuses both)")
        if m is None and args.get("min_lr") is not None:
            m = float(args["min_lr"]) / float(learning_rate)
        if m is None:
            raise ValueError("cosine_with_min_lr needs lr_scheduler_min_lr_ratio (or min_lr in lr_scheduler_args)")
        min_ratio = float(m)
        half = cycles / 2

        def cosine_min(t: int) -> float:
            if t < w:
                return lin(t)
            progress = float(t - w) / float(max(1, n - w))
            f = 0.5 * (1.0 + math.cos(math.pi * float(half) * 2.0 * progress))
            return max(0.0, f * (1.0 - min_ratio) + min_ratio)

        return cosine_min
    # warmup_stable_decay (transformers get_wsd_schedule)
    m = float(lr_scheduler_min_lr_ratio or 0.0)
    stable = n - w - d
    half = cycles / 2
    warmup_type = args.get("warmup_type", "linear")
    decay_type = args.get("decay_type", "cosine")

    def wsd(t: int) -> float:
        if t < w:
            progress = float(t) / float(max(1, w))
            if warmup_type == "linear":
                factor = progress
            elif warmup_type == "cosine":
                factor = 0.5 * (1.0 - math.cos(math.pi * progress))
            else:  # "1-sqrt"
                factor = 1.0 - math.sqrt(1.0 - progress)
            return max(0.0, factor * (1.0 - m) + m)
        if t < w + stable:
            return 1.0
        if t < w + stable + d:
            progress = float(t - w - stable) / float(max(1, d))
            if decay_type == "linear":
                factor = 1.0 - progress
            elif decay_type == "cosine":
                factor = 0.5 * (1.0 + math.cos(math.pi * float(half) * 2.0 * progress))
            else:  # "1-sqrt"
                factor = 1.0 - math.sqrt(progress)
            return max(0.0, factor * (1.0 - m) + m)
        return m

    return wsd


def lr_schedule(base_lr: float, max_train_steps: int, lr_scheduler: str, **kwargs: Any) -> list[float]:
    """The LR read before each scheduler step: ``[base_lr * f(t) for t in range(max_train_steps*num_processes)]``.

    ``kwargs`` are those of :func:`lr_lambda` (sd-scripts option names); ``learning_rate`` defaults to
    ``base_lr`` (the optimizer's default lr, which ``polynomial`` decays from).
    """
    kwargs.setdefault("learning_rate", base_lr)
    f = lr_lambda(lr_scheduler, max_train_steps, **kwargs)
    n = max_train_steps * int(kwargs.get("num_processes", 1))
    return [base_lr * f(t) for t in range(n)]
