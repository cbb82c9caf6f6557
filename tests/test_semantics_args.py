"""key=value argument lists: the one splitter every reader, lint rule, the plan and the engine use."""

from __future__ import annotations

from lora_compat.semantics import arg_float, arg_int, arg_items, literal_args, network_arg_problems, network_args


def test_network_args_split_on_the_first_equals_and_stay_strings():
    assert network_args(["conv_dim=4", "algo=locon", "down_lr_weight=a=b", "flag"]) == \
        {"conv_dim": "4", "algo": "locon", "down_lr_weight": "a=b", "flag": ""}
    assert network_args("conv_dim=4 conv_alpha=1") == {"conv_dim": "4", "conv_alpha": "1"}
    assert network_args({"conv_dim": 4, "x": None}) == {"conv_dim": "4", "x": ""}
    assert network_args(["a=1", "a=2"]) == {"a": "2"}   # a repeated key keeps the last value (a dict)
    assert network_args(42) == {} and network_args(None) == {}
    assert [p.item for p in network_arg_problems(["conv_dim=4", "flag"])] == ["flag"]


def test_literal_args_follow_split_and_literal_eval():
    """optimizer_args / lr_scheduler_args: split("=") and ast.literal_eval, so 'true' is not a value."""
    args, problems = literal_args(["betas=0.9,0.99", "weight_decay=0.1", "relative_step=False", "d_coef='x'"])
    assert args == {"betas": (0.9, 0.99), "weight_decay": 0.1, "relative_step": False, "d_coef": "x"}
    assert problems == []
    args, problems = literal_args(["relative_step=true", "novalue", "a=b=c", "x=__import__('os')", "ok=1"])
    assert args == {"ok": 1}
    assert [p.item for p in problems] == ["relative_step=true", "novalue", "a=b=c", "x=__import__('os')"]
    assert "literal" in problems[0].reason and "key=value" in problems[1].reason and "'='" in problems[2].reason


def test_items_keep_order_and_mark_missing_values():
    items = arg_items(["a=1", " b = 2 ", "c", "d=e=f"])
    # sd-scripts' split("=", 1) strips nothing: " b " is the key a network module would be given
    assert [(i.key, i.value) for i in items] == [("a", "1"), (" b ", " 2 "), ("c", None), ("d", "e=f")]


def test_spaced_keys_are_problems_sd_scripts_does_not_report():
    problems = network_arg_problems(["conv_dim = 4", "conv_alpha=1", "algo"])
    assert [(p.item, p.reason.split(":")[0]) for p in problems] == [
        ("conv_dim = 4", "the key has spaces around it"), ("algo", "not key=value")]
    assert "'conv_dim '" in problems[0].reason and "conv_dim=4" in problems[0].reason
    parsed, bad = literal_args(["lr = 1e-3", "weight_decay=0.01", "eps= 1e-8"])
    assert parsed == {"weight_decay": 0.01, "eps": 1e-8}   # literal_eval takes the leading space of a value
    assert [p.item for p in bad] == ["lr = 1e-3"] and "optimizer" in bad[0].reason


def test_numeric_network_args():
    args = {"conv_dim": "8", "conv_alpha": "0.5", "bad": "x", "none": "None", "big": "inf"}
    assert arg_int(args, "conv_dim") == 8 and arg_float(args, "conv_alpha") == 0.5
    assert arg_int(args, "bad") is None and arg_int(args, "none") is None and arg_int(args, "missing") is None
    assert arg_int(args, "big") is None and arg_float(args, "big") == float("inf")
