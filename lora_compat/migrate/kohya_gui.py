"""Canonical config -> kohya_ss GUI JSON of the current era (K5, LoRA tab).

The GUI's loader overlays a JSON on its current fields, so the file holds every mapped field: the value the
config sets, else sd-scripts' default written the way the GUI passes it (the GUI drops ``0``, ``""`` and
``false``, so those mean "sd-scripts' default"). Which GUI key maps to which option comes from
``schemas/kohya-gui.schema.json`` (``x-canonical``). What the GUI has no field for goes into
``additional_parameters`` as command-line tokens (the GUI appends them after its own arguments), unless the
value cannot survive the GUI's whitespace split.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from lora_compat.config import options
from lora_compat.config.dialects.kohya_gui import gui_prompt_text
from lora_compat.config.model import CanonicalConfig
from lora_compat.config.secrets import is_secret_key
from lora_compat.migrate.report import DROPPED, NO_EQUIVALENT, MigrationReport, lost, written

GUI_SCHEMA = "kohya-gui.schema.json"
ERA = "K5"

# network_module (+ algo) -> LoRA_type
_LORA_TYPES = {
    ("networks.lora", None): "Standard", ("networks.lora", "conv"): "Kohya LoCon",
    ("networks.lora_fa", None): "LoRA-FA", ("networks.dylora", None): "Kohya DyLoRA",
    ("networks.loha", None): "Kohya LoHa", ("networks.lokr", None): "Kohya LoKr",
    ("lycoris.kohya", "lora"): "LyCORIS/LoCon", ("lycoris.kohya", "locon"): "LyCORIS/LoCon",
    ("lycoris.kohya", "loha"): "LyCORIS/LoHa", ("lycoris.kohya", "lokr"): "LyCORIS/LoKr",
    ("lycoris.kohya", "ia3"): "LyCORIS/iA3", ("lycoris.kohya", "dylora"): "LyCORIS/DyLoRA",
    ("lycoris.kohya", "glora"): "LyCORIS/GLoRA", ("lycoris.kohya", "diag-oft"): "LyCORIS/Diag-OFT",
    ("lycoris.kohya", "boft"): "LyCORIS/BOFT", ("lycoris.kohya", "full"): "LyCORIS/Native Fine-Tuning",
}
# network_args keys the GUI has a field for: arg -> GUI key (LyCORIS flags are booleans in the GUI)
_ARG_FIELDS = {
    "conv_dim": "conv_dim", "conv_alpha": "conv_alpha", "rank_dropout": "rank_dropout",
    "module_dropout": "module_dropout", "down_lr_weight": "down_lr_weight", "mid_lr_weight": "mid_lr_weight",
    "up_lr_weight": "up_lr_weight", "block_lr_zero_threshold": "block_lr_zero_threshold",
    "block_dims": "block_dims", "block_alphas": "block_alphas", "conv_block_dims": "conv_block_dims",
    "conv_block_alphas": "conv_block_alphas", "loraplus_lr_ratio": "loraplus_lr_ratio",
    "loraplus_unet_lr_ratio": "loraplus_unet_lr_ratio",
    "loraplus_text_encoder_lr_ratio": "loraplus_text_encoder_lr_ratio",
    "preset": "LyCORIS_preset", "unit": "unit", "block_size": "unit", "factor": "factor", "constraint": "constrain",
    "constrain": "constrain",
}
_BOOL_ARGS = ("use_tucker", "use_scalar", "rank_dropout_scale", "train_norm", "bypass_mode", "dora_wd", "rescaled",
              "decompose_both", "use_cp", "train_on_input")
# handled by dedicated code
_SPECIAL = {"sdxl", "network_module", "network_args", "resolution", "lr_warmup_steps", "max_train_steps",
            "max_train_epochs", "text_encoder_lr", "unet_lr", "learning_rate", "network_train_unet_only",
            "network_train_text_encoder_only", "optimizer_args", "lr_scheduler_args", "xformers", "sdpa",
            "train_data_dir", "reg_data_dir", "dataset_config", "sample_prompts", "config_file", "output_config"}


@cache
def gui_fields() -> dict[str, dict[str, Any]]:
    """GUI key -> schema property, for the keys of the current era."""
    from lora_compat.resources import load_schema

    props = load_schema(GUI_SCHEMA)["properties"]
    return {k: v for k, v in props.items() if ERA in v.get("x-eras", [])}


@cache
def gui_key_of_option() -> dict[str, str]:
    """Canonical option -> GUI key for plain 1:1 fields (the key named like the option wins a tie)."""
    out: dict[str, str] = {}
    for key, spec in gui_fields().items():
        canon = spec.get("x-canonical")
        if not isinstance(canon, str) or spec.get("x-frontend-only") or spec.get("x-conversion"):
            continue
        if canon == "network_args" or (canon in out and out[canon] == canon):
            continue
        out[canon] = key
    return out


def _int_value(value: Any) -> int | None:
    """An int for a numeric option value, None for anything else (ill-typed values are the validator's job)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _unset_value(spec: dict[str, Any]) -> Any:
    """How the GUI writes "not passed": its loader and emitter treat 0, "" and false as absent."""
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "boolean" in types:
        return False
    if "integer" in types or "number" in types:
        return 0
    return ""


def _zero_like(value: Any) -> bool:
    return value is False or value == "" or (isinstance(value, (int, float)) and value == 0)


def _token_ok(text: str) -> bool:
    return text != "" and not any(c.isspace() for c in text) and '"' not in text


def _cli_tokens(name: str, value: Any) -> list[str] | None:
    """Command-line tokens for ``--name value`` (None when the GUI's whitespace split would break them)."""
    if value is True:
        return [f"--{name}"]
    if isinstance(value, list):
        items = [str(v) for v in value]
        return [f"--{name}", *items] if items and all(_token_ok(i) for i in items) else None
    text = str(value)
    return [f"--{name}={text}"] if _token_ok(text) else None


def _argparse_refusal(tokens: list[str], *, sdxl: bool) -> str | None:
    """argparse's error for ``tokens`` as sd-scripts would parse them, or None when accepted."""
    from lora_compat.config.cmdline import ArgparseError, Token, parse_sd_scripts_args

    try:
        parse_sd_scripts_args([Token(t, 1, 1) for t in tokens], sdxl=sdxl)
    except ArgparseError as exc:
        return exc.message
    return None


def to_kohya_gui(cfg: CanonicalConfig, report: MigrationReport, dataset_path: str | None) -> dict[str, Any]:
    """The GUI JSON object for ``cfg``."""
    fields = gui_fields()
    by_option = gui_key_of_option()
    gui: dict[str, Any] = {}
    extra: list[str] = []

    def put(key: str, value: Any, option: str, conversion: str | None = None) -> None:
        gui[key] = value
        s = cfg.options.get(option)
        report.add(written(option, s.prov if s else None, key, value, conversion=conversion))

    def to_extra(name: str, value: Any, why: str) -> None:
        s = cfg.options.get(name)
        tokens = _cli_tokens(name, value)
        if tokens is None:
            report.add(lost(name, s.prov if s else None, NO_EQUIVALENT,
                            f"{why}, and the value cannot survive the GUI's whitespace split of "
                            "additional_parameters", value))
            return
        refusal = _argparse_refusal(tokens, sdxl=cfg.is_sdxl)
        if refusal:
            # e.g. dynamo_backend "no": fine in a --config_file TOML (unchecked), refused on a command line
            report.add(lost(name, s.prov if s else None, NO_EQUIVALENT,
                            f"{why}, but sd-scripts' command line refuses {' '.join(tokens)}: {refusal}", value))
            return
        extra.extend(tokens)
        report.add(written(name, s.prov if s else None, "additional_parameters", " ".join(tokens),
                           conversion=f"{why}: passed as additional_parameters {' '.join(tokens)}"))

    sdxl_only = {"no_half_vae", "cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk"}
    # plain fields: every GUI field of a known option gets the effective value (config or sd-scripts default)
    for option, key in sorted(by_option.items(), key=lambda kv: kv[1]):
        if option in _SPECIAL or is_secret_key(option) or options.spec(option) is None:
            continue
        value = cfg.effective(option)
        spec = fields[key]
        if option in sdxl_only and not cfg.is_sdxl:
            # the GUI passes its sdxl_* checkboxes only with the SDXL checkbox on
            gui[key] = _unset_value(spec)
            if value and option in cfg.options:
                to_extra(option, value, "the GUI passes this only for SDXL")
            continue
        if value is None:
            gui[key] = _unset_value(spec)
            continue
        if option in cfg.options and _zero_like(value) and options.default(option) not in (None, value) \
                and not (value is False and options.default(option) in (None, False)):
            # the GUI drops an explicit zero: pass it on the command line instead
            gui[key] = _unset_value(spec)
            to_extra(option, value, "the GUI drops zero values")
            continue
        if option in cfg.options:
            put(key, value, option)
        else:
            gui[key] = value

    # the GUI emits the multires keys only with noise_offset_type "Multires", the others with "Original"
    gui["noise_offset_type"] = "Multires" if cfg.get("multires_noise_iterations") else "Original"
    _model_and_length(cfg, gui, put, report)
    _network(cfg, gui, put, report)
    _learning_rates(cfg, gui, put)
    _args_strings(cfg, gui, put, report)
    _data(cfg, gui, put, report, dataset_path)

    # everything else the config sets: no GUI field
    for name, s in cfg.options.items():
        if name in gui or name in by_option or name in _SPECIAL:
            continue
        if is_secret_key(name):
            report.add(lost(name, s.prov, DROPPED, "credential: never written by lora-compat", s.value,
                            loss=False))
            continue
        option_spec = options.spec(name)
        if option_spec is None:
            report.add(lost(name, s.prov, NO_EQUIVALENT, "not an sd-scripts option"
                            + (" (a PEFT-only field of the native config)" if name.startswith("peft.") else ""),
                            s.value))
            continue
        if s.value is None or option_spec.get("x-pseudo") or s.value == options.default(name):
            continue
        to_extra(name, s.value, "no kohya_ss GUI field")
    for name in ("config_file", "output_config"):
        kept = cfg.options.get(name)
        if kept is not None:
            report.add(lost(name, kept.prov, DROPPED, "not a training option", kept.value, loss=False))
    gui["additional_parameters"] = " ".join(extra)
    return dict(sorted(gui.items()))


def _model_and_length(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, report: MigrationReport) -> None:
    put("sdxl", cfg.is_sdxl, "sdxl", None)
    xf, sdpa = cfg.effective("xformers"), cfg.effective("sdpa")
    gui["xformers"] = "xformers" if xf else ("sdpa" if sdpa else "none")
    for opt in ("xformers", "sdpa"):
        if opt in cfg.options:
            put("xformers", gui["xformers"], opt, f"{opt} = {cfg.get(opt)!r} -> xformers \"{gui['xformers']}\"")
    res = cfg.get("resolution")
    gui["max_resolution"] = ""
    if res is not None:
        text = str(res) if isinstance(res, str) else None
        if text is not None and "," not in text:
            text = f"{text},{text}"
        put("max_resolution", text or "", "resolution",
            None if text == res else f"resolution {res!r} -> max_resolution \"{text}\"")
    epochs = _int_value(cfg.get("max_train_epochs"))
    steps = _int_value(cfg.effective("max_train_steps")) or 1600
    gui["epoch"] = int(epochs) if epochs else 1
    if epochs:
        put("max_train_epochs", int(epochs), "max_train_epochs")
        # max_train_epochs decides the length in sd-scripts; max_train_steps 0 lets the GUI's own count (from the
        # same `epoch`) stand aside instead of writing a step count that would only be overridden
        gui["max_train_steps"] = 0
        s_steps = cfg.options.get("max_train_steps")
        if s_steps is not None:
            report.add(lost("max_train_steps", s_steps.prov, DROPPED, "max_train_epochs is set and overrides it in "
                            "sd-scripts", s_steps.value, loss=False))
    else:
        gui["max_train_epochs"] = 0
        # a non-zero max_train_steps keeps the GUI from computing its own length from `epoch`
        put("max_train_steps", int(steps), "max_train_steps",
            None if "max_train_steps" in cfg.options else "sd-scripts' default length, written so the GUI does not "
            "derive one from 'epoch'")
    w = cfg.get("lr_warmup_steps")
    s = cfg.options.get("lr_warmup_steps")
    gui["lr_warmup"], gui["lr_warmup_steps"] = 0, 0
    if isinstance(w, bool) or w is None:
        return
    if isinstance(w, int):
        put("lr_warmup_steps", w, "lr_warmup_steps", f"lr_warmup_steps {w} (steps) -> GUI lr_warmup_steps {w}")
    elif isinstance(w, float):
        pct = w * 100
        if abs(pct - round(pct)) < 1e-9:
            put("lr_warmup", round(pct), "lr_warmup_steps",
                f"lr_warmup_steps {w!r} (ratio) -> lr_warmup {round(pct)} (percent; the GUI passes "
                f"{round(pct)}/100 to sd-scripts)")
        else:
            report.add(lost("lr_warmup_steps", s.prov if s else None, NO_EQUIVALENT,
                            f"ratio {w!r} is {pct:g}%, and the GUI's lr_warmup holds whole percents", w))


def _network(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, report: MigrationReport) -> None:
    from lora_compat.config.dialects.native import parse_network_args

    module = cfg.effective("network_module") or "networks.lora"
    if not isinstance(module, str):
        module = repr(module)
    s_args = cfg.options.get("network_args")
    args = parse_network_args(cfg.get("network_args"))
    algo = args.pop("algo", None)
    key: tuple[str, str | None]
    if module == "lycoris.kohya":
        key = (module, (algo or "lora").lower())
    elif module in ("networks.lora", "sd_scripts.networks.lora"):
        module = "networks.lora"
        key = (module, "conv" if args.get("conv_dim") else None)
    else:
        key = (module, None)
    lora_type = _LORA_TYPES.get(key)
    s_mod = cfg.options.get("network_module")
    if lora_type is None:
        report.add(lost("network_module", s_mod.prov if s_mod else None, NO_EQUIVALENT,
                        f"the kohya_ss GUI has no LoRA_type for {module!r}"
                        + (f" with algo={algo}" if algo else "") + "; written as Standard", module))
        lora_type = "Standard"
    else:
        put("LoRA_type", lora_type, "network_module", f"network_module {module}"
            + (f" + algo={algo}" if algo else "") + f" -> LoRA_type \"{lora_type}\"")
    for arg, value in args.items():
        field = _ARG_FIELDS.get(arg)
        if field is not None:
            typed: Any = value
            with contextlib.suppress(ValueError):
                typed = float(value) if any(c in value for c in ".eE") else int(value)
            if field in ("LyCORIS_preset", "down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_dims",
                         "block_alphas", "conv_block_dims", "conv_block_alphas"):
                typed = value
            gui[field] = typed
            renamed = " (the current GUI passes it as constraint=, the name LyCORIS reads)" \
                if arg == "constrain" else ""
            report.add(written(f"network_args.{arg}", s_args.prov if s_args else None, field, typed,
                               conversion=f"network_args \"{arg}={value}\" -> {field}{renamed}"))
        elif arg in _BOOL_ARGS:
            gui[arg] = value.strip().lower() in ("true", "1", "yes")
            report.add(written(f"network_args.{arg}", s_args.prov if s_args else None, arg, gui[arg],
                               conversion=f"network_args \"{arg}={value}\" -> {arg} {gui[arg]}"))
        else:
            report.add(lost(f"network_args.{arg}", s_args.prov if s_args else None, NO_EQUIVALENT,
                            f"the kohya_ss GUI has no field for network_args {arg!r}", value))


def _learning_rates(cfg: CanonicalConfig, gui: dict[str, Any], put: Any) -> None:
    lr = cfg.effective("learning_rate")
    put("learning_rate", lr, "learning_rate") if "learning_rate" in cfg.options else gui.__setitem__(
        "learning_rate", lr)
    te = cfg.get("text_encoder_lr")
    if isinstance(te, list):
        te = te[0] if te else None
    unet = cfg.get("unet_lr")
    # the GUI has no train-part flags: a zero LR makes it pass network_train_*_only (legacy-dialects §2.6)
    if cfg.effective("network_train_unet_only"):
        put("text_encoder_lr", 0, "network_train_unet_only", "network_train_unet_only -> text_encoder_lr 0")
    else:
        put("text_encoder_lr", te if te is not None else lr, "text_encoder_lr",
            None if te is not None and te == cfg.get("text_encoder_lr") else
            ("text_encoder_lr list -> first value (the only one sd-scripts LoRA uses)" if te is not None
             else "unset: learning_rate"))
    if cfg.effective("network_train_text_encoder_only"):
        put("unet_lr", 0, "network_train_text_encoder_only", "network_train_text_encoder_only -> unet_lr 0")
    else:
        put("unet_lr", unet if unet is not None else lr, "unet_lr",
            None if unet is not None else "unset: learning_rate")


def _args_strings(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, report: MigrationReport) -> None:
    for option, key in (("optimizer_args", "optimizer_args"), ("lr_scheduler_args", "lr_scheduler_args")):
        value = cfg.get(option)
        gui[key] = ""
        if not value:
            continue
        items = [str(v) for v in value] if isinstance(value, list) else str(value).split()
        if all(_token_ok(i) for i in items):
            put(key, " ".join(items), option, f"{option} list -> space-separated string")
        else:
            s = cfg.options[option]
            report.add(lost(option, s.prov, NO_EQUIVALENT, "an item contains spaces or quotes, which the GUI's "
                            "whitespace split breaks", value))


def _data(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, report: MigrationReport,
          dataset_path: str | None) -> None:
    from lora_compat.migrate.sd_scripts import folder_mode

    for opt in ("train_data_dir", "reg_data_dir"):
        gui[opt] = cfg.get(opt) or ""
        if cfg.get(opt):
            put(opt, cfg.get(opt), opt)
    gui["dataset_config"] = ""
    if dataset_path is not None and (cfg.datasets or cfg.general) and not folder_mode(cfg):
        put("dataset_config", dataset_path, "dataset_config",
            "datasets -> the migrated dataset config written beside the GUI file")
    elif cfg.get("dataset_config"):
        put("dataset_config", cfg.get("dataset_config"), "dataset_config")
    s = cfg.options.get("sample_prompts")
    gui["sample_prompts"] = ""
    inline = gui_prompt_text(cfg)
    if inline is not None:
        put("sample_prompts", inline, "sample_prompts", "the GUI file's own prompt text, kept as text")
    elif s is not None and s.value:
        path = Path(str(s.value))
        # only a small .txt prompt file is embedded: a config must not make migrate copy arbitrary files
        ok = path.suffix.lower() == ".txt" and path.is_file() and path.stat().st_size <= 64 * 1024
        text = None
        if ok:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = None
        if text is not None:
            put("sample_prompts", text, "sample_prompts", f"prompt file {s.value} -> its text (the GUI field "
                "holds prompt text and writes the file itself)")
        else:
            report.add(lost("sample_prompts", s.prov, NO_EQUIVALENT, "the GUI field holds the prompt text; the "
                            f"prompt file {s.value!r} is not a readable .txt file of at most 64 KB here", s.value))


def dumps_kohya_gui(cfg: CanonicalConfig, report: MigrationReport,
                    dataset_path: str | None = None) -> str:
    """The GUI JSON text (sorted keys, indent 2, like the GUI's own writer)."""
    return json.dumps(to_kohya_gui(cfg, report, dataset_path), indent=2, ensure_ascii=False) + "\n"
