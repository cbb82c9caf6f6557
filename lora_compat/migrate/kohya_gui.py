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

from lora_compat.arch.families import FLUX_FAMILIES
from lora_compat.config import options
from lora_compat.config.dialects.kohya_gui import gui_prompt_text
from lora_compat.config.model import DEFAULT, DERIVED, CanonicalConfig
from lora_compat.config.secrets import is_secret_key
from lora_compat.migrate.report import DROPPED, NO_EQUIVALENT, MigrationReport, lost, written
from lora_compat.migrate.sd_scripts import script_for

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
    ("networks.lora_flux", None): "Flux1", ("networks.oft_flux", None): "Flux1 OFT",
}
# LoRA types the GUI accepts with flux1_checkbox (lora_gui.py train_model refuses the others for FLUX.1)
_FLUX_LORA_TYPES = ("Flux1", "Flux1 OFT")
# networks.lora_flux network_args with a GUI field of their own (lora_gui.py: passed only when non-empty)
FLUX_ARG_FIELDS = ("img_attn_dim", "img_mlp_dim", "img_mod_dim", "single_dim", "txt_attn_dim", "txt_mlp_dim",
                   "txt_mod_dim", "single_mod_dim", "in_dims", "train_double_block_indices",
                   "train_single_block_indices")
# lora_flux flags read as `value == "True"` (any other text is off); the GUI writes "True" for a checked box
_FLUX_TRUE_FLAGS = ("split_qkv", "train_t5xxl")
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
LORAPLUS_ARGS = ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
_BOOL_ARGS = ("use_tucker", "use_scalar", "rank_dropout_scale", "train_norm", "bypass_mode", "dora_wd", "rescaled",
              "decompose_both", "use_cp", "train_on_input")
# FLUX.1 options written by _flux_model (the GUI's FLUX checkboxes differ from a plain field); for Chroma also
# the fields the GUI's Chroma branch overrides
_FLUX_SPECIAL = {"cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk", "split_mode", "max_token_length"}
_CHROMA_SPECIAL = {"clip_l", "apply_t5_attn_mask", "guidance_scale"}
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


def _argparse_refusal(tokens: list[str], *, script: str) -> str | None:
    """argparse's error for ``tokens`` as ``script`` (train_network.py, flux_train_network.py ...) would parse
    them, or None when accepted."""
    from lora_compat.config.cmdline import ArgparseError, Token, parse_sd_scripts_args

    try:
        parse_sd_scripts_args([Token(t, 1, 1) for t in tokens], script=script)
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
        refusal = _argparse_refusal(tokens, script=script_for(cfg))
        if refusal:
            # e.g. dynamo_backend "no": fine in a --config_file TOML (unchecked), refused on a command line
            report.add(lost(name, s.prov if s else None, NO_EQUIVALENT,
                            f"{why}, but sd-scripts' command line refuses {' '.join(tokens)}: {refusal}", value))
            return
        extra.extend(tokens)
        report.add(written(name, s.prov if s else None, "additional_parameters", " ".join(tokens),
                           conversion=f"{why}: passed as additional_parameters {' '.join(tokens)}"))

    flux = cfg.family in FLUX_FAMILIES
    sdxl_only = {"no_half_vae", "cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk"}
    # plain fields: every GUI field of a known option gets the effective value (config or sd-scripts default)
    for option, key in sorted(by_option.items(), key=lambda kv: kv[1]):
        if option in _SPECIAL or is_secret_key(option) or options.spec(option) is None:
            continue
        if flux and (option in _FLUX_SPECIAL or (cfg.family == "chroma" and option in _CHROMA_SPECIAL)):
            continue
        value = cfg.effective(option)
        spec = fields[key]
        if spec.get("x-requires") == "flux1_checkbox" and not flux:
            gui[key] = _unset_value(spec)      # FLUX.1 fields: the GUI passes them only with flux1_checkbox
            if option in cfg.options and value is not None and not _zero_like(value) \
                    and value != options.default(option, cfg.family):
                to_extra(option, value, f"the GUI passes its {key} field only with flux1_checkbox")
            continue
        if option in sdxl_only and not cfg.is_sdxl:
            # the GUI passes its sdxl_* checkboxes only with the SDXL checkbox on
            gui[key] = _unset_value(spec)
            if value and option in cfg.options:
                to_extra(option, value, "the GUI passes this only for SDXL")
            continue
        if value is None:
            gui[key] = _unset_value(spec)
            _explicit_default(cfg, report, option, key, spec, gui[key])
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
            _explicit_default(cfg, report, option, key, spec, value)

    # the GUI emits the multires keys only with noise_offset_type "Multires", the others with "Original"
    gui["noise_offset_type"] = "Multires" if cfg.get("multires_noise_iterations") else "Original"
    _model_and_length(cfg, gui, put, report)
    _flux_model(cfg, gui, put, to_extra, report)
    _network(cfg, gui, put, report)
    _learning_rates(cfg, gui, put, report)
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


def _explicit_default(cfg: CanonicalConfig, report: MigrationReport, option: str, key: str, spec: dict[str, Any],
                      value: Any) -> None:
    """A report line where the config leaves ``option`` unset and the GUI's own default for ``key`` would mean
    something else than the training script's default (modern-archs.md §5.5: the GUI's t5xxl_max_token_length
    512 against flux_train_network.py's None = 256 for schnell): the field is written explicitly."""
    from lora_compat.migrate.report import ReportEntry

    gui_default = spec.get("default")
    if gui_default is None or isinstance(gui_default, bool) != isinstance(value, bool):
        return
    same = (_zero_like(gui_default) and _zero_like(value)) or gui_default == value
    if same:
        return
    script = script_for(cfg)
    meant = options.default(option, cfg.family)
    what = "the GUI passes nothing, so " + (f"{script}'s default {meant!r} applies" if meant is not None
                                            else f"{script}'s own default applies")
    if not _zero_like(value):
        what = f"{script}'s default"
    report.add(ReportEntry(DEFAULT, option, None, None, None, key, value,
                           f"unset: written as {value!r} ({what}); the GUI's own default {gui_default!r} would "
                           "change the setting"))


def _flux_model(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, to_extra: Any,
                report: MigrationReport) -> None:
    """``flux1_checkbox`` and the FLUX.1 fields whose GUI handling is more than a plain field (lora_gui.py
    train_model; the reader's counterpart is ``KohyaGuiReader.flux``): the ``flux1_*`` text-encoder caching boxes,
    ``split_mode`` (the box also forces network_args ``train_blocks=single``), and for Chroma ``clip_l`` (not
    passed), ``apply_t5_attn_mask`` (forced on) and ``guidance_scale`` (0.0 kept)."""
    from lora_compat.arch.families import display_name
    from lora_compat.config.dialects.native import parse_network_args
    from lora_compat.migrate.report import ReportEntry

    flux = cfg.family in FLUX_FAMILIES
    gui["flux1_checkbox"] = flux
    if not flux:
        return
    report.add(ReportEntry(DERIVED, "family", None, None, None, "flux1_checkbox", True,
                           f"family {display_name(cfg.family)} (from {cfg.family_source}) -> flux1_checkbox true "
                           "(the GUI runs flux_train_network.py)"))
    for option, key in (("cache_text_encoder_outputs", "flux1_cache_text_encoder_outputs"),
                        ("cache_text_encoder_outputs_to_disk", "flux1_cache_text_encoder_outputs_to_disk")):
        gui[key] = False
        if option in cfg.options and cfg.get(option) is not None:
            put(key, cfg.get(option), option, f"{option} -> {key} (the GUI's FLUX.1 checkbox)")
    gui["sdxl_cache_text_encoder_outputs"] = False
    # the GUI passes max_token_length (CLIP) only without flux1_checkbox; FLUX reads t5xxl_max_token_length
    gui["max_token_length"] = 75
    if cfg.get("max_token_length") is not None:
        to_extra("max_token_length", cfg.get("max_token_length"), "the GUI does not pass its max_token_length "
                 "field with flux1_checkbox")
    args = parse_network_args(cfg.get("network_args"))
    single = args.get("train_blocks", "").strip() == "single" and \
        cfg.effective("network_module") == "networks.lora_flux"
    gui["split_mode"] = False
    if cfg.get("split_mode"):
        if single:
            put("split_mode", True, "split_mode",
                "split_mode with network_args train_blocks=single -> split_mode (the GUI box passes both)")
        else:
            to_extra("split_mode", True, "the GUI's split_mode box also forces network_args train_blocks=single")
    if cfg.family != "chroma":
        return
    gui["clip_l"] = ""
    s = cfg.options.get("clip_l")
    if s is not None and s.value:
        report.add(lost("clip_l", s.prov, DROPPED, "Chroma has no CLIP-L: the GUI does not pass clip_l and "
                        "flux_train_network.py does not load it for model_type chroma", s.value, loss=False))
    gui["apply_t5_attn_mask"] = True
    s = cfg.options.get("apply_t5_attn_mask")
    if s is not None and s.value is False:
        report.add(lost("apply_t5_attn_mask", s.prov, NO_EQUIVALENT, "the GUI forces apply_t5_attn_mask on for "
                        "Chroma (flux_train_network.py asserts it)", s.value))
    elif s is not None:
        put("apply_t5_attn_mask", s.value, "apply_t5_attn_mask")
    guidance = cfg.effective("guidance_scale")
    gui["guidance_scale"] = guidance
    if "guidance_scale" in cfg.options:
        put("guidance_scale", guidance, "guidance_scale",
            "Chroma: the GUI passes guidance_scale even when 0.0" if not guidance else None)


def _flux_network_args(cfg: CanonicalConfig, gui: dict[str, Any], args: dict[str, str], lora_type: str,
                       report: MigrationReport) -> None:
    """networks.lora_flux / networks.oft_flux ``network_args`` -> the GUI's FLUX fields (the GUI builds
    network_args from them; a key it has no field for cannot be passed and is reported)."""
    from lora_compat.config.dialects.coerce import is_zero_like

    s_args = cfg.options.get("network_args")
    prov = s_args.prov if s_args else None
    for f in (*FLUX_ARG_FIELDS, "ggpo_sigma", "ggpo_beta"):
        gui[f] = ""
    for f in (*_FLUX_TRUE_FLAGS, "train_lora_ggpo", "enable_all_linear"):
        gui[f] = False
    gui["train_blocks"] = "all"
    ggpo = [a for a in ("ggpo_sigma", "ggpo_beta") if a in args]
    for arg, value in args.items():
        where = f"network_args.{arg}"
        if lora_type == "Flux1" and arg in FLUX_ARG_FIELDS:
            if not _token_ok(value) or is_zero_like(value):
                report.add(lost(where, prov, NO_EQUIVALENT, f"the GUI passes {arg} only when it is a non-empty, "
                                "non-zero text without spaces", value))
                continue
            gui[arg] = value
            report.add(written(where, prov, arg, value, conversion=f'network_args "{arg}={value}" -> {arg}'))
        elif lora_type == "Flux1" and arg in _FLUX_TRUE_FLAGS:
            on = value == "True"
            gui[arg] = on
            if on:
                report.add(written(where, prov, arg, True, conversion=f'network_args "{arg}=True" -> {arg} true'))
            else:
                report.add(lost(where, prov, DROPPED, f'networks.lora_flux reads only "True" as on, so {arg}='
                                f"{value} is off, as the GUI's unchecked box", value, loss=False))
        elif lora_type == "Flux1" and arg in ggpo:
            try:
                number: Any = float(value)
            except ValueError:
                report.add(lost(where, prov, NO_EQUIVALENT, "the GUI's GGPO field holds a number", value))
                continue
            if number == 0 or len(ggpo) < 2:
                report.add(lost(where, prov, NO_EQUIVALENT, "the GUI passes ggpo_sigma and ggpo_beta together, "
                                "and only when non-zero", value))
                continue
            gui["train_lora_ggpo"] = True
            gui[arg] = int(number) if number.is_integer() and "." not in value else number
            report.add(written(where, prov, arg, gui[arg],
                               conversion=f'network_args "{arg}={value}" -> train_lora_ggpo + {arg}'))
        elif lora_type == "Flux1" and arg == "train_blocks":
            if value.strip() == "all":
                report.add(lost(where, prov, DROPPED, "train_blocks=all is networks.lora_flux's default",
                                value, loss=False))
            elif value.strip() == "single" and gui.get("split_mode"):
                report.add(written(where, prov, "split_mode", True,
                                   conversion="network_args train_blocks=single -> split_mode (the GUI box passes "
                                   "both --split_mode and train_blocks=single)"))
            else:
                report.add(lost(where, prov, NO_EQUIVALENT, "the GUI passes train_blocks only as "
                                "train_blocks=single with its split_mode box (which also passes --split_mode)",
                                value))
        elif lora_type == "Flux1 OFT" and arg == "enable_all_linear":
            gui[arg] = value == "True"
            report.add(written(where, prov, arg, gui[arg], conversion=f'network_args "{arg}={value}" -> {arg}'))
        elif arg in LORAPLUS_ARGS:
            typed = _typed_number(value)
            gui[arg] = typed
            report.add(written(where, prov, arg, typed, conversion=f'network_args "{arg}={value}" -> {arg}'))
        else:
            report.add(lost(where, prov, NO_EQUIVALENT,
                            f"the kohya_ss GUI has no field for network_args {arg!r} with LoRA_type {lora_type}",
                            value))


def _typed_number(value: str) -> Any:
    typed: Any = value
    with contextlib.suppress(ValueError):
        typed = float(value) if any(c in value for c in ".eE") else int(value)
    return typed


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
    if cfg.family in FLUX_FAMILIES and lora_type in _FLUX_LORA_TYPES:
        _flux_network_args(cfg, gui, args, lora_type, report)
        return
    if cfg.family in FLUX_FAMILIES and not lora_type.startswith("LyCORIS/"):
        report.add(lost("network_module", s_mod.prov if s_mod else None, NO_EQUIVALENT,
                        f"LoRA_type {lora_type!r} with flux1_checkbox: the GUI accepts only Flux1, Flux1 OFT and "
                        "LyCORIS types for FLUX.1", module))
    if cfg.family not in FLUX_FAMILIES and lora_type in _FLUX_LORA_TYPES:
        report.add(lost("network_module", s_mod.prov if s_mod else None, NO_EQUIVALENT,
                        f"{module} is a FLUX.1 network; this config is {cfg.family}", module))
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


def _learning_rates(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, report: MigrationReport) -> None:
    lr = cfg.effective("learning_rate")
    put("learning_rate", lr, "learning_rate") if "learning_rate" in cfg.options else gui.__setitem__(
        "learning_rate", lr)
    te = cfg.get("text_encoder_lr")
    gui["t5xxl_lr"] = 0
    if isinstance(te, list):
        if cfg.family in FLUX_FAMILIES and len(te) >= 2 and te[1] != te[0]:
            _t5xxl_lr(cfg, gui, put, report, te)
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


def _t5xxl_lr(cfg: CanonicalConfig, gui: dict[str, Any], put: Any, report: MigrationReport, te: list[Any]) -> None:
    """FLUX.1 ``text_encoder_lr [clip_l, t5xxl]`` -> the GUI's ``t5xxl_lr`` (it passes ``[text_encoder_lr,
    t5xxl_lr or text_encoder_lr]``, so a zero T5 rate or a zero CLIP-L rate with a T5 rate cannot be written)."""
    s = cfg.options["text_encoder_lr"]
    if not te[0] or not te[1] or len(te) > 2:
        report.add(lost("text_encoder_lr", s.prov, NO_EQUIVALENT, f"text_encoder_lr {te!r}: the GUI passes "
                        "[text_encoder_lr, t5xxl_lr] with both non-zero (a zero t5xxl_lr means text_encoder_lr)", te))
        return
    put("t5xxl_lr", te[1], "text_encoder_lr", f"text_encoder_lr {te!r} -> text_encoder_lr {te[0]!r} (CLIP-L) + "
        f"t5xxl_lr {te[1]!r} (T5-XXL)")


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
