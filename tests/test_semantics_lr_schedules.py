"""LR schedules against sd-scripts' get_scheduler_fix (golden/lr_schedules.json) plus its error cases."""

from __future__ import annotations

import pytest

from lora_compat.semantics import lr_lambda, lr_schedule, warmup_steps

from shared_data import golden

EXPECTED_CASES = 12


def test_every_golden_schedule() -> None:
    cases = golden("lr_schedules.json")["cases"]
    assert len(cases) == EXPECTED_CASES
    for case in cases:
        args = dict(case["args"])
        name = args.pop("lr_scheduler")
        got = lr_schedule(case["base_lr"], case["max_train_steps"], name, **args)
        expected = case["lr_per_scheduler_step"]
        assert len(got) == len(expected), case["name"]
        for step, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert abs(g - e) <= 1e-9, (case["name"], step, g, e)


def test_warmup_float_is_ratio_int_is_steps() -> None:
    assert warmup_steps(0.1, 100) == 10
    assert warmup_steps(1.0, 100) == 100       # a float 1.0 means 100 % warmup
    assert warmup_steps(1, 100) == 1
    assert warmup_steps(0.1, 100, num_processes=2) == 20
    assert warmup_steps(None, 100) == 0


def test_constant_with_warmup_raises() -> None:
    with pytest.raises(ValueError):
        lr_lambda("constant", 100, lr_warmup_steps=5)


def test_unknown_scheduler_and_adafactor_raise() -> None:
    with pytest.raises(ValueError):
        lr_lambda("cosine_annealing", 100)
    with pytest.raises(ValueError):
        lr_lambda("adafactor:1e-3", 100)


def test_polynomial_needs_lr_above_lr_end() -> None:
    with pytest.raises(ValueError):
        lr_lambda("polynomial", 100, learning_rate=1e-8)


def test_cosine_ignores_num_cycles() -> None:
    a = lr_schedule(1.0, 50, "cosine")
    b = lr_schedule(1.0, 50, "cosine", lr_scheduler_num_cycles=4)
    assert a == b


def test_cosine_with_min_lr_floor_and_requirement() -> None:
    with pytest.raises(ValueError):
        lr_lambda("cosine_with_min_lr", 100)
    lrs = lr_schedule(1.0, 100, "cosine_with_min_lr", lr_scheduler_min_lr_ratio=0.1)
    assert lrs[0] == pytest.approx(1.0) and min(lrs) >= 0.1 - 1e-12
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_warmup_stable_decay_without_decay_drops_to_min_at_end() -> None:
    f = lr_lambda("warmup_stable_decay", 100, lr_warmup_steps=10, lr_scheduler_min_lr_ratio=0.2)
    assert f(0) == pytest.approx(0.2) and f(50) == 1.0 and f(99) == 1.0 and f(100) == pytest.approx(0.2)
    g = lr_lambda("warmup_stable_decay", 100, lr_decay_steps=20)
    assert g(79) == 1.0 and g(80) == 1.0 and 0.0 < g(90) < 1.0 and g(100) == 0.0


def test_piecewise_constant_rules() -> None:
    f = lr_lambda("piecewise_constant", 100, lr_scheduler_args={"step_rules": "1:10,0.1:20,0.01"})
    assert [f(0), f(9), f(10), f(19), f(20), f(99)] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    for bad in (None, {"step_rules": "fast"}):
        with pytest.raises(ValueError):
            lr_lambda("piecewise_constant", 100, lr_scheduler_args=bad)


def test_inverse_sqrt_after_warmup() -> None:
    f = lr_lambda("inverse_sqrt", 100, lr_warmup_steps=10)
    assert f(10) == pytest.approx(1.0) and f(40) == pytest.approx(0.5)
