"""A K5-era kohya_ss GUI JSON, the command line the GUI prints for it (accelerate launch + the
config_lora-<datetime>.toml it writes), and the same run as a Windows .bat with ``^`` continuations
must give the same canonical option values (provenance differs)."""

from __future__ import annotations

from typing import Any

from lora_compat.config.load import load_config

from shared_data import FIXTURES

EQ = FIXTURES / "dialects" / "equivalence"


def values(cfg) -> dict[str, Any]:
    """Option values sd-scripts receives; false flags, empty lists and None mean "not passed"."""
    out = {}
    for name, setting in cfg.options.items():
        v = setting.value
        if v is None or v is False or v == []:
            continue
        if name == "config_file":   # the printed command line names the TOML; the options it holds are compared
            continue
        out[name] = v
    return out


def test_gui_json_equals_printed_command_line():
    gui = load_config(str(EQ / "k5_lora.json"))
    printed = load_config(str(EQ / "k5_lora_printed.sh"))
    assert gui.dialect == "kohya-gui" and gui.era == "K5"
    assert printed.dialect == "command-line"
    assert values(gui) == values(printed)


def test_gui_json_equals_expanded_bat():
    gui = load_config(str(EQ / "k5_lora.json"))
    bat = load_config(str(EQ / "k5_lora_expanded.bat"))
    assert bat.dialect == "command-line"
    a, b = values(gui), values(bat)
    # dynamo_backend only reaches sd-scripts through the GUI's TOML; the .bat passes it to accelerate only
    a.pop("dynamo_backend", None)
    assert a == b


def test_equivalence_is_not_vacuous():
    gui = values(load_config(str(EQ / "k5_lora.json")))
    # the values that needed a conversion in the GUI reader are present and right
    assert gui["lr_warmup_steps"] == 0.1
    assert gui["text_encoder_lr"] == [5e-05, 5e-05]
    assert gui["resolution"] == "768,768"
    assert gui["sdpa"] is True
    assert gui["optimizer_args"] == ["weight_decay=0.01", "betas=0.9,0.99"]
    assert gui["wandb_run_name"] == "mylora"
    assert len(gui) > 40
