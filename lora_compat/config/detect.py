"""Dialect detection from file content (reference legacy-dialects.md §1, all nine steps).

First match wins. Era/tab classification of the legacy front-end dialects is owned by their reader
modules: ``classify(data) -> (era, tab, reasons)`` of ``dialects/kohya_gui.py``, ``derrian_argstore.py``
and ``derrian_toml.py`` (markers of legacy-dialects.md §2.2/§3.2/§4.1) is called here. Native configs are
recognised by ``dialects/native.py: looks_native``. Files that are recognised but are not training configs
get ``training=False`` and a ``what`` for the refusal message.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from lora_compat.config import dialects
from lora_compat.config.detection import Detection
from lora_compat.config.document import CMDLINE, TOML, Document

ARGSTORE_MARKERS = ("base_model", "img_folder", "output_folder", "net_dim", "train_resolution", "test_seed",
                    "max_clip_token_length", "json_load_skip_list", "list_of_json_to_run", "save_json_only",
                    "shuffle_captions", "buckets")
KOHYA_GUI_MARKERS = ("max_resolution", "lr_warmup", "epoch", "model_list", "LoRA_type",
                     "num_cpu_threads_per_process", "stop_text_encoder_training", "noise_offset_type",
                     "save_as_bool")
DERRIAN_SECTIONS = ("general_args", "network_args", "optimizer_args", "saving_args", "bucket_args", "noise_args",
                    "sample_args", "logging_args", "flux_args", "textual_inversion_args", "extra_args")
K_SET_SECTIONS = ("settings", "basic", "advanced", "accelerate_launch")
PR_3451_SECTIONS = ("general", "model", "training", "folders", "advanced")
CAPTION_METADATA_KEYS = {"caption", "tags", "train_resolution", "train_resolution_bucket"}
LECO_PROMPT_KEYS = {"target", "positive", "unconditional", "neutral", "action", "guidance_scale"}


def detect_document(doc: Document) -> Detection:
    """Classify a parsed document. Never raises; an unknown file gives ``dialect=None`` with reasons."""
    if doc.fmt == CMDLINE:
        script = doc.meta.get("script", "train_network.py")
        return Detection(dialects.COMMAND_LINE, reasons=[f"command line running {script}"])
    data = doc.data
    if not isinstance(data, dict):
        kind = type(data).__name__
        kind = {"list": "an array", "str": "a string", "int": "a number", "float": "a number",
                "bool": "a boolean", "NoneType": "null"}.get(kind, kind)
        return Detection(None, reasons=[f"top level is {kind}, a config is an object of keys"])
    if doc.fmt == TOML:
        if not data and _OWN_CONFIG_FILE.search(doc.text):
            # lora-compat's own --config_file of a command line without options: every option at its default
            return Detection(dialects.SD_SCRIPTS_TOML,
                             reasons=["a --config_file written by lora-compat (no options set)"])
        return _detect_toml(data)
    return _detect_json(data)


# the marker line migrate writes into every sd-scripts --config_file (migrate/sd_scripts.py)
_OWN_CONFIG_FILE = re.compile(r"^# lora-compat: script = \"[A-Za-z0-9_.]+\"\s*$", re.M)


def era_and_tab(dialect: str, data: dict[str, Any]) -> tuple[str | None, str | None, list[str]]:
    """Era, tab and reasons from the ``classify(data)`` of ``dialect``'s reader module (it owns its eras)."""
    module = dialects.READERS[dialect].split(":")[0]
    mod = importlib.import_module(f"lora_compat.config.dialects.{module}")
    fn = getattr(mod, "classify", None)
    if fn is None:
        return None, None, []
    era, tab, reasons = fn(data)
    return era, tab, list(reasons)


def _looks_native(data: dict[str, Any]) -> bool:
    """The native reader decides what a native config looks like (``dialects/native.py: looks_native``)."""
    from lora_compat.config.dialects.native import looks_native

    return bool(looks_native(data))


def _config_file_options_beside_datasets(data: dict[str, Any]) -> bool:
    """A TOML whose keys outside ``[general]``/``[[datasets]]`` include sd-scripts options that are not dataset
    parameters (``pretrained_model_name_or_path``, ``network_module`` ...): a ``--config_file``."""
    from lora_compat.config.dialects.sd_scripts_toml import flatten_config_toml
    from lora_compat.config.options import dataset_spec, is_option

    rest = {k: v for k, v in data.items() if k.lower() not in ("general", "datasets")}
    return any(is_option(k) and dataset_spec(k) is None for k in flatten_config_toml(rest))


def _detect_toml(data: dict[str, Any]) -> Detection:
    keys = set(data)
    if _looks_native(data):
        return Detection(dialects.NATIVE, reasons=["lora-compat native config markers"])
    # 1. Derrian UI TOML
    derrian_tables = [k for k in keys if k.endswith("_args") and isinstance(data[k], dict)
                      and ("args" in data[k] or "dataset_args" in data[k])]
    if isinstance(data.get("subsets"), list) or derrian_tables:
        reasons = ["top-level [[subsets]]" if isinstance(data.get("subsets"), list) else
                   f"sections with .args sub-tables: {', '.join(sorted(derrian_tables))}"]
        era, tab, more = era_and_tab(dialects.DERRIAN_TOML, data)
        return Detection(dialects.DERRIAN_TOML, era=era, tab=tab, reasons=reasons + more)
    # 2. sd-scripts dataset config — unless training options sit beside [[datasets]]: sd-scripts reads such a
    # file as a --config_file (read_config_from_file flattens its sections; the datasets key is ignored there)
    lower = {k.lower() for k in keys}
    if (isinstance(data.get("datasets"), list) or (isinstance(data.get("general"), dict)
                                                   and lower <= {"general", "datasets"})) \
            and not _config_file_options_beside_datasets(data):
        return Detection(dialects.SD_SCRIPTS_DATASET, reasons=["[general] / [[datasets]] tables"])
    # 3. kohya_ss GUI settings file (the first 2024-03 versions were flat: models_dir at top level)
    if (isinstance(data.get("model"), dict) and "models_dir" in data["model"]) or "models_dir" in keys or \
            len(keys & set(K_SET_SECTIONS)) >= 2:
        return Detection(None, era="K-set", training=False,
                         what="a kohya_ss GUI settings file (config.toml: defaults for GUI fields), "
                              "not a training config",
                         reasons=["[model] models_dir / [settings] [basic] [advanced] sections"])
    # LECO prompts (sd-scripts train_leco.py)
    prompts = data.get("prompts")
    if isinstance(prompts, list) and prompts and all(isinstance(p, dict) for p in prompts) and \
            any(LECO_PROMPT_KEYS & set(p) for p in prompts):
        return Detection(None, training=False,
                         what="an sd-scripts LECO prompts file (train_leco.py --prompts_file), "
                              "not a LoRA training config",
                         reasons=["[[prompts]] with target/positive/action"])
    # 4. K-gen / plain --config_file
    from lora_compat.config.dialects.sd_scripts_toml import flatten_config_toml
    from lora_compat.config.options import is_option

    flat = flatten_config_toml(data)
    known = [k for k in flat if is_option(k)]
    if not known:
        return Detection(None, reasons=["TOML without any sd-scripts option, Derrian section or dataset table"])
    reasons = [f"{len(known)} of {len(flat)} keys are sd-scripts options"]
    leftovers = [k for k in ("epoch", "noise_offset_type") if k in flat]
    listy = [k for k in ("optimizer_args", "network_args") if isinstance(flat.get(k, (None,))[0], list)]
    if "network_module" in flat and leftovers:
        reasons.append(f"kohya_ss GUI leftovers: {', '.join(leftovers)}" +
                       (f"; list-valued {', '.join(listy)}" if listy else ""))
        return Detection(dialects.SD_SCRIPTS_TOML, era="K-gen", reasons=reasons)
    return Detection(dialects.SD_SCRIPTS_TOML, reasons=reasons)


def _detect_json(data: dict[str, Any]) -> Detection:
    keys = set(data)
    if not keys:
        return Detection(None, reasons=["empty JSON object"])
    values = list(data.values())
    # 5. Derrian block-weight presets
    if all(isinstance(v, dict) and ("down_lr_weight" in v or "up_lr_weight" in v) for v in values):
        return Detection(None, era="A-BW", training=False,
                         what="a Derrian block-weight preset file (named down/mid/up_lr_weight presets), "
                              "not a training config",
                         reasons=["every value is an object with down_lr_weight/up_lr_weight"])
    # sd-scripts fine-tuning metadata (captions per image)
    if all(isinstance(v, dict) and set(v) and set(v) <= CAPTION_METADATA_KEYS for v in values):
        return Detection(None, training=False,
                         what="sd-scripts fine-tuning metadata (captions/tags per image, the --in_json file), "
                              "not a training config",
                         reasons=["every value is an object of caption/tags/train_resolution"])
    # 7 (checked before 6: XTI files also carry the ArgStore junk keys). Derrian XTI JSON
    if {"token_string", "init_word"} <= keys and keys & {"list_of_json_to_run", "save_json_only"}:
        era, tab, more = era_and_tab(dialects.DERRIAN_ARGSTORE, data)
        return Detection(dialects.DERRIAN_ARGSTORE, era=era, tab=tab,
                         reasons=["token_string + init_word + ArgStore keys", *more])
    # 6. Derrian ArgStore JSON
    found = [k for k in ARGSTORE_MARKERS if k in keys]
    if found:
        reasons = [f"Derrian ArgStore keys: {', '.join(found[:4])}"]
        era, tab, more = era_and_tab(dialects.DERRIAN_ARGSTORE, data)
        return Detection(dialects.DERRIAN_ARGSTORE, era=era, tab=tab, reasons=reasons + more)
    # 8. kohya_ss GUI JSON
    found = [k for k in KOHYA_GUI_MARKERS if k in keys]
    if found:
        reasons = [f"kohya_ss GUI keys: {', '.join(found[:4])}"]
        era, tab, more = era_and_tab(dialects.KOHYA_GUI, data)
        return Detection(dialects.KOHYA_GUI, era=era, tab=tab, reasons=reasons + more)
    # 9. unmerged kohya_ss PR #3451 nested format
    nested = [k for k in PR_3451_SECTIONS if isinstance(data.get(k), dict)]
    if len(nested) >= 3:
        return Detection(None, training=False,
                         what="a nested-sections JSON from an unmerged kohya_ss pull request (#3451); no kohya_ss "
                              "GUI version can load it — rewrite it as a GUI preset, sd-scripts TOML or native config",
                         reasons=[f"nested objects {', '.join(nested)}"])
    from lora_compat.config.options import is_option

    known = [k for k in keys if is_option(k)]
    if known and len(known) * 2 >= len(keys):
        return Detection(None, reasons=[
            f"a JSON object of sd-scripts option names ({', '.join(sorted(known)[:3])} ...) without kohya_ss GUI "
            "markers; if it is a kohya_ss GUI preset pass --dialect kohya-gui"])
    return Detection(None, reasons=["no marker of kohya_ss GUI JSON (max_resolution, lr_warmup, epoch, LoRA_type ...)"
                                    " or Derrian ArgStore JSON (base_model, img_folder, net_dim ...)"])
