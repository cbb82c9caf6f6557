"""Build lora_compat/schemas/sd-scripts.schema.json from the reference option tables plus hand-written annotations.

The committed JSON is what users and the code read; this script records how it was derived. argparse
facts come from the reference option tables (sd-scripts-reference.md §1) and are cross-checked against
/work/shared/golden/cmdline_parse.json (types and defaults after parsing); meanings, mappings and
misconceptions come from sd_scripts_annotations.py; the options flux_train_network.py adds (and the defaults that
differ per script) from dit_options.py; which script accepts an option from lora_compat.arch.families.
Run: python scripts/schemas/build_sd_scripts_schema.py > lora_compat/schemas/sd-scripts.schema.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import dit_options as dit
import sd_scripts_annotations as ann

from lora_compat.arch import families

SECTION_GROUP = {
    "1.1": "logging", "1.2": "model", "1.3": "dataset", "1.4": "training", "1.5": "optimizer",
    "1.6": "loss", "1.7": "network", "1.8": "masked_loss", "1.9": "deepspeed", "1.10": "metadata",
    "1.11": "sdxl",
}
# finer groups for the big "training" table (§1.4)
GROUP_OVERRIDE = {
    **dict.fromkeys(("output_dir", "output_name", "save_precision", "save_every_n_epochs", "save_every_n_steps",
                     "save_n_epoch_ratio", "save_last_n_epochs", "save_last_n_epochs_state", "save_last_n_steps",
                     "save_last_n_steps_state", "save_state", "save_state_on_train_end", "resume", "save_model_as",
                     "no_metadata", "training_comment"), "saving"),
    **dict.fromkeys(("mixed_precision", "full_fp16", "full_bf16", "fp8_base", "fp8_base_unet", "no_half_vae", "lowram",
                     "highvram", "gradient_checkpointing", "cpu_offload_checkpointing"), "precision"),
    **dict.fromkeys(("mem_eff_attn", "xformers", "sdpa", "torch_compile", "dynamo_backend"), "attention"),
    **dict.fromkeys(("logging_dir", "log_with", "log_prefix", "log_tracker_name", "wandb_run_name",
                     "log_tracker_config", "wandb_api_key", "log_config"), "logging"),
    **dict.fromkeys(("noise_offset", "noise_offset_random_strength", "multires_noise_iterations",
                     "multires_noise_discount", "ip_noise_gamma", "ip_noise_gamma_random_strength",
                     "adaptive_noise_scale", "zero_terminal_snr", "min_timestep", "max_timestep"), "noise"),
    **dict.fromkeys(("loss_type", "huber_schedule", "huber_c", "huber_scale", "prior_loss_weight"), "loss"),
    **dict.fromkeys(("sample_every_n_steps", "sample_every_n_epochs", "sample_at_first", "sample_prompts",
                     "sample_sampler"), "sampling"),
    **dict.fromkeys(("huggingface_repo_id", "huggingface_repo_type", "huggingface_path_in_repo", "huggingface_token",
                     "huggingface_repo_visibility", "save_state_to_huggingface", "resume_from_huggingface",
                     "async_upload"), "huggingface"),
    **dict.fromkeys(("config_file", "output_config"), "config"),
    **dict.fromkeys(("ddp_timeout", "ddp_gradient_as_bucket_view", "ddp_static_graph"), "distributed"),
    **dict.fromkeys(("validation_seed", "validation_split", "validate_every_n_steps", "validate_every_n_epochs",
                     "max_validation_steps"), "validation"),
    **dict.fromkeys(("skip_until_initial_step", "initial_epoch", "initial_step"), "resume"),
    **dict.fromkeys(("unet_lr", "text_encoder_lr"), "optimizer"),
    "clip_skip": "model", "max_token_length": "dataset", "weighted_captions": "dataset",
    "disable_mmap_load_safetensors": "model", "seed": "training", "dataset_config": "dataset",
    "lr_scheduler": "scheduler", "lr_scheduler_type": "scheduler", "lr_scheduler_args": "scheduler",
    "lr_warmup_steps": "scheduler", "lr_decay_steps": "scheduler", "lr_scheduler_num_cycles": "scheduler",
    "lr_scheduler_power": "scheduler", "lr_scheduler_timescale": "scheduler",
    "lr_scheduler_min_lr_ratio": "scheduler",
}
NARGS_STAR = {"optimizer_args": "str", "lr_scheduler_args": "str", "network_args": "str",
              "text_encoder_lr": "float", "base_weights": "str", "base_weights_multiplier": "float"}
CHOICES_WITH_NONE = {"save_precision", "save_model_as", "max_token_length", "offload_optimizer_device",
                     "offload_param_device"}
EXTRA = {  # options not in a reference table (§1.9, §1.10, CU add_config_arguments)
    "dataset_config": ("1.3", "str", None, None, "Path of the dataset config TOML (§3). When given, "
                       "train_data_dir, reg_data_dir and in_json are ignored (warning)."),
    "deepspeed": ("1.9", "flag", False, None, "Enable DeepSpeed training."),
    "zero_stage": ("1.9", "int", 2, [0, 1, 2, 3], "DeepSpeed ZeRO stage."),
    "offload_optimizer_device": ("1.9", "str", None, [None, "cpu", "nvme"], "DeepSpeed optimizer offload device."),
    "offload_optimizer_nvme_path": ("1.9", "str", None, None, "NVMe path for DeepSpeed optimizer offload."),
    "offload_param_device": ("1.9", "str", None, [None, "cpu", "nvme"], "DeepSpeed parameter offload device."),
    "offload_param_nvme_path": ("1.9", "str", None, None, "NVMe path for DeepSpeed parameter offload."),
    "zero3_init_flag": ("1.9", "flag", False, None, "DeepSpeed ZeRO-3 init flag."),
    "zero3_save_16bit_model": ("1.9", "flag", False, None, "DeepSpeed ZeRO-3: save a 16-bit model."),
    "fp16_master_weights_and_gradients": ("1.9", "flag", False, None, "DeepSpeed fp16 master weights and gradients."),
    **{f"metadata_{k}": ("1.10", "str", None, None, f"Model-spec metadata `modelspec.{k}` (§7.3) only.")
       for k in ("title", "author", "description", "license", "tags", "usage_hint", "thumbnail",
                 "merged_from", "trigger_phrase", "preprocessor", "is_negative_embedding")},
}


def clean(text: str) -> str:
    text = text.replace("**", "").replace("\\|", "|")
    return re.sub(r"\s+", " ", text).strip()


# argparse registration order of train_network.py's setup_parser (reference §0 step 1; within each helper the
# order of sd-scripts' add_argument calls). argparse lists ambiguous-prefix matches in this order.
REGISTRATION_ORDER = ["console_log_level", "console_log_file", "console_log_simple", "v2", "v_parameterization",
                      "pretrained_model_name_or_path", "tokenizer_cache_dir", "metadata_title", "metadata_author",
                      "metadata_description", "metadata_license", "metadata_tags", "metadata_usage_hint",
                      "metadata_thumbnail", "metadata_merged_from", "metadata_trigger_phrase", "metadata_preprocessor",
                      "metadata_is_negative_embedding", "train_data_dir", "cache_info", "shuffle_caption",
                      "caption_separator", "caption_extension", "caption_extention", "keep_tokens",
                      "keep_tokens_separator", "secondary_separator", "enable_wildcard", "caption_prefix",
                      "caption_suffix", "color_aug", "flip_aug", "face_crop_aug_range", "random_crop", "debug_dataset",
                      "resolution", "cache_latents", "vae_batch_size", "cache_latents_to_disk", "skip_cache_check",
                      "enable_bucket", "min_bucket_reso", "max_bucket_reso", "bucket_reso_steps", "bucket_no_upscale",
                      "resize_interpolation", "token_warmup_min", "token_warmup_step", "alpha_mask", "dataset_class",
                      "caption_dropout_rate", "caption_dropout_every_n_epochs", "caption_tag_dropout_rate",
                      "reg_data_dir", "in_json", "dataset_repeats", "output_dir", "output_name", "huggingface_repo_id",
                      "huggingface_repo_type", "huggingface_path_in_repo", "huggingface_token",
                      "huggingface_repo_visibility", "save_state_to_huggingface", "resume_from_huggingface",
                      "async_upload", "save_precision", "save_every_n_epochs", "save_every_n_steps",
                      "save_n_epoch_ratio", "save_last_n_epochs", "save_last_n_epochs_state", "save_last_n_steps",
                      "save_last_n_steps_state", "save_state", "save_state_on_train_end", "resume", "train_batch_size",
                      "max_token_length", "mem_eff_attn", "torch_compile", "dynamo_backend", "xformers", "sdpa", "vae",
                      "max_train_steps", "max_train_epochs", "max_data_loader_n_workers",
                      "persistent_data_loader_workers", "seed", "gradient_checkpointing",
                      "gradient_accumulation_steps", "mixed_precision", "full_fp16", "full_bf16", "fp8_base",
                      "ddp_timeout", "ddp_gradient_as_bucket_view", "ddp_static_graph", "clip_skip", "logging_dir",
                      "log_with", "log_prefix", "log_tracker_name", "wandb_run_name", "log_tracker_config",
                      "wandb_api_key", "log_config", "noise_offset", "noise_offset_random_strength",
                      "multires_noise_iterations", "ip_noise_gamma", "ip_noise_gamma_random_strength",
                      "multires_noise_discount", "adaptive_noise_scale", "zero_terminal_snr", "min_timestep",
                      "max_timestep", "loss_type", "huber_schedule", "huber_c", "huber_scale", "lowram", "highvram",
                      "sample_every_n_steps", "sample_at_first", "sample_every_n_epochs", "sample_prompts",
                      "sample_sampler", "config_file", "output_config", "prior_loss_weight", "conditioning_data_dir",
                      "masked_loss", "deepspeed", "zero_stage", "offload_optimizer_device",
                      "offload_optimizer_nvme_path", "offload_param_device", "offload_param_nvme_path",
                      "zero3_init_flag", "zero3_save_16bit_model", "fp16_master_weights_and_gradients",
                      "optimizer_type", "use_8bit_adam", "use_lion_optimizer", "learning_rate", "max_grad_norm",
                      "optimizer_args", "lr_scheduler_type", "lr_scheduler_args", "lr_scheduler", "lr_warmup_steps",
                      "lr_decay_steps", "lr_scheduler_num_cycles", "lr_scheduler_power", "lr_scheduler_timescale",
                      "lr_scheduler_min_lr_ratio", "fused_backward_pass", "dataset_config", "min_snr_gamma",
                      "scale_v_pred_loss_like_noise_pred", "v_pred_like_loss", "debiased_estimation_loss",
                      "weighted_captions", "cpu_offload_checkpointing", "no_metadata", "save_model_as", "unet_lr",
                      "text_encoder_lr", "fp8_base_unet", "network_weights", "network_module", "network_dim",
                      "network_alpha", "network_dropout", "network_args", "network_train_unet_only",
                      "network_train_text_encoder_only", "training_comment", "dim_from_weights", "scale_weight_norms",
                      "base_weights", "base_weights_multiplier", "no_half_vae", "skip_until_initial_step",
                      "initial_epoch", "initial_step", "validation_seed", "validation_split", "validate_every_n_steps",
                      "validate_every_n_epochs", "max_validation_steps", *list(dit.DIT_ORDER)]
# train_network.py's own registration ends above; sdxl_train_network.py adds dit.SDXL_SHARED, flux_train_network.py
# adds dit.DIT_ORDER (both in that relative order), so each script's order is this order filtered by x-scripts.


def option_scripts(name: str) -> list[str] | None:
    """The LoRA scripts whose parser has ``name`` when train_network.py's has not (None: every script's parser,
    which all extend train_network.py's). From lora_compat.arch.families, plus the three SDXL shares."""
    found = [script for script, names in families._SCRIPT_OPTIONS.items() if name in names]
    if name in dit.SDXL_SHARED:
        found = ["sdxl_train_network.py", *families._SCRIPT_OPTIONS]
    if name == "split_mode":
        found = ["flux_train_network.py"]
    return found or None


def compose_description(name: str, meaning: str) -> str:
    """One paragraph: what the option is, then how sd-scripts really uses it (reference table text)."""
    text = ann.MEANING_OVERRIDE.get(name, meaning)
    text = re.sub(r"^DS-fallback for `(\w+)`", r"Command-line fallback for the dataset-config key `\1`", text)
    text = re.sub(r"^DS-fallback for \*?\*?`?(\w+)`?", r"Command-line fallback for `\1`", text)
    text = text.replace("DS-fallback (dataset level).",
                        "Command-line fallback for the dataset-level key of the same name (§3.3).")
    text = text.replace("DS-fallback.", "Command-line fallback for the dataset-config key of the same name "
                        "(subset, dataset and [general] values win, §3.3).")
    text = re.sub(r"(^|\. )(§[\d.]+)\.", r"\1Details: \2.", text)
    text = text.replace("Upload.", "")
    if text.startswith(("Model-spec metadata", "DeepSpeed", "Enable DeepSpeed")):
        text = ""
    text = text.replace("Path of the dataset config TOML (§3). ", "").replace("The LoRA alpha. ", "")
    parts = [ann.WHAT.get(name, ""), text.strip(), ann.EXTRA_TEXT.get(name, ""), dit.FLUX_TEXT.get(name, "")]
    out = " ".join(x for x in parts if x)
    if not ann.WHAT.get(name):
        raise SystemExit(f"no WHAT text for {name}")
    return re.sub(r"\s+", " ", out).strip()


def annotate(name: str, p: dict) -> None:
    """Merge the x-* annotations of ``name`` into its property ``p``."""
    if name in ann.SINCE:
        p["x-since"] = ann.SINCE[name]
    if name in ann.SINCE_NOTE:
        p["x-since-note"] = ann.SINCE_NOTE[name]
    if name in ann.ARCH:
        p["x-arch"] = ann.ARCH[name]
    if name in ann.ARCH_NOTE:
        p["x-arch-note"] = ann.ARCH_NOTE[name]
    scripts = option_scripts(name)
    if scripts is not None:
        p["x-scripts"] = scripts
    if name in dit.FAMILY_DEFAULTS:
        p["x-defaults"] = dit.FAMILY_DEFAULTS[name]
    if name in dit.RECOMMENDED:
        p["x-recommended"] = dit.RECOMMENDED[name]
    if name in dit.SD_ONLY:
        p.setdefault("x-arch", ["sd1", "sd2", "sdxl"])
        p["x-arch-note"] = " ".join(x for x in (p.get("x-arch-note"), dit.SD_ONLY[name]) if x)
        p["x-ignored-by"] = {"flux_train_network.py": dit.SD_ONLY[name]}
    if name in ann.PEFT:
        p["x-peft"] = ann.PEFT[name]
    if name in ann.DIFFUSERS:
        p["x-diffusers"] = ann.DIFFUSERS[name]
    if name in ann.MISCONCEPTIONS:
        p["x-misconception"] = ann.MISCONCEPTIONS[name]
    if name in ann.SECRET:
        p["x-secret"] = True
    if name in ann.STRICT_FLOAT_OPTIONS:
        p["x-strict-float"] = True
    if name in ann.SECURITY:
        p["x-security"] = ann.SECURITY[name]


def parse_rows(ref: str) -> dict[str, dict]:
    lines = ref.split("\n")
    start = next(i for i, text in enumerate(lines) if text.startswith("## 1. Option reference"))
    end = next(i for i, text in enumerate(lines) if text.startswith("### 1.12"))
    sec, hdr, rows = None, None, {}
    for line in lines[start:end]:
        m = re.match(r"### (1\.\d+) ", line)
        if m:
            sec, hdr = m.group(1), None
            continue
        if line.startswith("| dest"):
            hdr = [x.strip() for x in line.strip("|").split("|")]
            continue
        if line.startswith("|---") or not (line.startswith("|") and hdr):
            continue
        cells = [x.strip() for x in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        d = dict(zip(hdr, cells, strict=False))
        for n in re.split(r"\s*[,/]\s*", d["dest"]):
            rows[n.strip("` ")] = {"sec": sec, **d}
    return rows


def py_default(text: str):
    text = clean(text).strip("`")
    if text.startswith("1 (an int"):
        return 1
    if text in ("None",):
        return None
    if text == "False":
        return False
    if text == '""':
        return ""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


FACTS = Path(__file__).resolve().parent / "sd_scripts_options.json"


def extract_facts(shared: Path) -> list[dict]:
    """Each option's facts from the reference tables (§1) plus EXTRA, cross-checked against the golden parse."""
    ref = (shared / "reference" / "sd-scripts-reference.md").read_text(encoding="utf-8")
    gold = json.loads((shared / "golden" / "cmdline_parse.json").read_text(encoding="utf-8"))
    cases = {c["name"]: c for c in gold["cases"]}
    gtypes = cases["sdxl_minimal"]["types"]
    # defaults: a case that sets nothing on the command line (only a TOML with 3 unrelated keys)
    gargs = {k: v for k, v in cases["config_types_not_converted"]["args"].items()
             if k not in ("network_dim", "learning_rate", "max_train_epochs")}
    facts = []
    for name, r in parse_rows(ref).items():
        kind = clean(r["type"]).split(" ")[0]
        choices = [c.strip() for c in r.get("choices", "").split(",") if c.strip()] or None
        facts.append({"name": name, "section": r["sec"], "kind": kind, "default": py_default(r["default"]),
                      "choices": choices, "meaning": clean(r.get("meaning / constraints", r.get("meaning", "")))})
    for name, (sec, kind, dflt, choices, desc) in EXTRA.items():
        facts.append({"name": name, "section": sec, "kind": kind, "default": dflt, "choices": choices,
                      "meaning": desc})
    for f in facts:
        if f["name"] in gargs and gargs[f["name"]] != f["default"]:
            raise SystemExit(f"default mismatch for {f['name']}: reference {f['default']!r} "
                             f"golden {gargs[f['name']]!r}")
    missing = set(gtypes) - {f["name"] for f in facts}
    if missing:
        raise SystemExit(f"options in golden but not in reference tables: {sorted(missing)}")
    return facts


def build(facts: list[dict] | None = None) -> dict:
    """The schema from ``facts`` (default: the committed ``sd_scripts_options.json``) and the annotations."""
    if facts is None:
        facts = json.loads(FACTS.read_text(encoding="utf-8"))
    props: dict[str, dict] = {}
    entries = [(f["name"], f["section"], f["kind"], f["default"], f["choices"], f["meaning"]) for f in facts]
    for name, (_group, kind, dflt, choices, _sec, _what, _how) in dit.DIT_OPTIONS.items():
        entries.append((name, "dit", kind, dflt, choices, ""))
    for name, sec, kind, dflt, choices, desc in entries:
        cli: dict = {"type": None, "action": "store", "nargs": None, "choices": None, "const": None}
        if kind == "flag":
            cli.update(type="bool", action="store_true")
            jtype: list | str = "boolean"
        elif name in NARGS_STAR:
            cli.update(type=NARGS_STAR[name], nargs="*")
            item = {"type": "string"} if NARGS_STAR[name] == "str" else {"type": "number"}
            jtype = ["array", "null"]
        elif kind.startswith("int_or_float"):
            cli["type"] = "int_or_float"
            jtype = "number"
        elif kind.startswith("int"):
            cli["type"] = "int"
            jtype = "integer"
        elif kind.startswith("float"):
            cli["type"] = "float"
            jtype = "number"
        else:
            cli["type"] = "str"
            jtype = "string"
        if choices:
            conv = {"int": int, "float": float}.get(cli["type"], str)
            vals = [None if c == "None" else conv(c) for c in choices]
            if name in CHOICES_WITH_NONE and None not in vals:
                vals.insert(0, None)
            cli["choices"] = vals
        if name == "save_model_as":
            cli["choices"] = [None, "ckpt", "pt", "safetensors"]
        if dflt is None and jtype != ["array", "null"]:
            jtype = [jtype, "null"]
        p: dict = {"type": jtype}
        if jtype == ["array", "null"]:
            p["items"] = item
        if name == "text_encoder_lr":  # a TOML scalar is accepted too (§1.7)
            p["type"] = ["array", "number", "null"]
        p["default"] = dflt
        if cli["choices"]:
            p["enum"] = cli["choices"]
            if dflt is None and None not in p["enum"]:
                p["enum"] = p["enum"] + [None]
        if name in ann.ENUM_EXTRA:
            p["enum"] = p["enum"] + [v for v in ann.ENUM_EXTRA[name] if v not in p["enum"]]
        if name == "max_token_length":  # from a TOML (no argparse choices) 75 is accepted and means None
            p["enum"] = [None, 75, 150, 225]
        if name in dit.DIT_OPTIONS:
            group, _k, _d, _c, ref_sec, what, how = dit.DIT_OPTIONS[name]
            p["description"] = " ".join(x for x in (what, how, dit.FLUX_TEXT.get(name, "")) if x)
            p.update(ann.RANGES.get(name, {}))
            p["x-group"] = group
            p["x-ref"] = f"{dit.REF} {ref_sec}"
        else:
            p["description"] = compose_description(name, desc)
            p.update(ann.RANGES.get(name, {}))
            p["x-group"] = GROUP_OVERRIDE.get(name, SECTION_GROUP[sec])
            p["x-ref"] = f"sd-scripts-reference.md §{sec}"
        p["x-cli"] = cli
        annotate(name, p)
        if "DS-fallback" in desc:
            # the dataset-config key this option is the lowest-priority fallback for (§3.3 renames two)
            p["x-dataset-key"] = {"train_batch_size": "batch_size", "dataset_repeats": "num_repeats"}.get(name, name)
        props[name] = p
    pseudo = {
        "type": "boolean", "default": False,
        "description": "Pseudo-option: true means the config is for sdxl_train_network.py (SDXL base model), "
                       "false means train_network.py (SD1.x/SD2.x). Not an argparse option.",
        "x-group": "model", "x-pseudo": True, "x-ref": "sd-scripts-reference.md §1",
        "x-cli": None,
    }
    if set(REGISTRATION_ORDER) != set(props) or len(REGISTRATION_ORDER) != len(props):
        raise SystemExit(f"REGISTRATION_ORDER mismatch: {sorted(set(REGISTRATION_ORDER) ^ set(props))}")
    props = {name: props[name] for name in REGISTRATION_ORDER}
    props["sdxl"] = pseudo
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lora-compat.dev/schemas/sd-scripts.schema.json",
        "title": "sd-scripts train_network.py / sdxl_train_network.py / flux_train_network.py options",
        "description": "Every command-line option of kohya-ss/sd-scripts train_network.py, "
                       "sdxl_train_network.py and flux_train_network.py (snapshot 48d368f), with argparse facts "
                       "(x-cli), the scripts that accept an option train_network.py lacks (x-scripts), defaults "
                       "that differ per model family's script (x-defaults), real meaning, and mapping notes. "
                       "Values are the parsed Python values (as in a --config_file TOML).",
        "type": "object",
        "properties": props,
    }


def render(schema: dict) -> str:
    """The committed file's text."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--refresh-facts":
        FACTS.write_text(json.dumps(extract_facts(Path(sys.argv[2])), indent=1, ensure_ascii=False) + "\n",
                         encoding="utf-8")
        sys.exit(0)
    if len(sys.argv) != 1:
        raise SystemExit(__doc__)
    sys.stdout.write(render(build()))
