"""Reader of kohya_ss GUI JSON files (dialect ``kohya-gui``, eras K0..K5) into the canonical model.

Reference: legacy-dialects.md §2. What this reproduces, in order:

1. the GUI loader (``update_my_data``): legacy keys renamed (``lora_network_weights``, ``cache_latent`` ...),
   ``use_8bit_adam`` -> optimizer, ``LoRA_type "LoCon"``, ``xformers`` booleans, ``use_wandb`` bug,
   ``save_model_as`` forced to safetensors; partial presets overlay the GUI defaults (schema ``default``);
2. the GUI's train function: ``max_resolution`` -> ``resolution``, GUI ``epoch`` -> ``max_train_steps`` with
   its bucket-agnostic formula (image folders counted when present), percent warmup (K0-K4: absolute steps,
   K5: a ratio), ``LoRA_type`` -> ``network_module`` + ``network_args``, args strings split, train-part flags
   from zero learning rates, zero/empty values dropped, ``additional_parameters`` appended last.

Key -> canonical option mapping and the GUI defaults live in ``schemas/kohya-gui.schema.json``
(``x-canonical``, ``default``, ``x-eras``); the code handles the keys whose conversion is more than a rename.

Detection: ``classify(data)`` gives ``(era, tab, reasons)``; ``lora_compat.config.detect`` calls it once it
has recognised the dialect.
"""

from __future__ import annotations

import os
import shlex
from functools import cache
from typing import Any

from lora_compat.config.dialects.coerce import (
    BOOL,
    FLOAT,
    INT,
    NUMBER,
    STR,
    UNSET,
    Normalizer,
    canonical_kind,
    coerce,
    coerce_like_python_int,
    is_zero_like,
    show,
    split_args_string,
)
from lora_compat.config.model import CONVERTED, DEFAULT, DERIVED, FRONTEND, KEPT, RENAMED, CanonicalConfig
from lora_compat.resources import load_schema
from lora_compat.semantics.steps import kohya_gui_max_train_steps, kohya_gui_warmup_steps

#: The note that carries the GUI's inline sample prompt text (read back by :func:`gui_prompt_text`).
PROMPT_TEXT_NOTE = "kohya-gui-sample-prompts-text"

DIALECT = "kohya-gui"
SCHEMA = "kohya-gui.schema.json"
ERAS = ("K0", "K1", "K2", "K3", "K4", "K5")
PARTIAL_PRESET_KEYS = 60   # presets with fewer keys are overlays on the GUI state (reference §2.1)

# ---- era markers (reference §2.2); first match from the newest era wins ---------------------------------
_K5_MARKERS = ("lr_warmup_steps", "skip_cache_check", "save_last_n_epochs", "save_last_n_epochs_state",
               "huber_scale", "train_lora_ggpo", "ggpo_sigma", "ggpo_beta", "show_timesteps", "train_inpainting",
               "model_type")
_K5_PREFIXES = ("hunyuan_", "anima_", "lumina_", "lllite_", "leco_")
_K4_MARKERS = ("flux1_checkbox", "ae", "clip_l", "t5xxl", "discrete_flow_shift", "model_prediction_type",
               "timestep_sampling", "split_mode", "train_blocks", "guidance_scale", "highvram", "lowvram",
               "fp8_base_unet", "t5xxl_lr", "blocks_to_swap", "sd3_checkbox")
_K3_MARKERS = ("save_as_bool", "huggingface_repo_id", "huggingface_token", "dynamo_backend", "metadata_author",
               "log_with", "network_weights", "loraplus_lr_ratio", "log_config", "lr_scheduler_type")
_K2_MARKERS = ("sdxl", "sdxl_cache_text_encoder_outputs", "sdxl_no_half_vae", "min_timestep", "max_timestep",
               "full_bf16", "conv_block_dims", "v_pred_like_loss", "max_train_steps", "lr_scheduler_args", "vae",
               "debiased_estimation_loss", "LyCORIS_preset", "max_grad_norm", "fp8_base", "multi_gpu",
               "dataset_config", "masked_loss", "ip_noise_gamma", "bypass_mode", "dora_wd", "wandb_run_name",
               "log_tracker_name", "loss_type", "network_dropout", "rank_dropout", "module_dropout",
               "scale_weight_norms", "factor", "use_cp", "decompose_both", "train_on_input")
_K1_MARKERS = ("LoRA_type", "optimizer", "sample_every_n_epochs", "sample_sampler", "sample_prompts",
               "additional_parameters", "vae_batch_size", "down_lr_weight", "unit", "save_every_n_steps",
               "min_snr_gamma", "cache_latents_to_disk", "multires_noise_iterations", "use_wandb",
               "noise_offset_type", "adaptive_noise_scale", "dim_from_weights")
# keys only strings held in K0..K2 and ints from K3 (2024-04-15) on
_STRING_NUMERIC_KEYS = ("seed", "keep_tokens", "clip_skip", "max_token_length", "max_data_loader_n_workers")

# ---- tab markers (reference §1 step 8) ------------------------------------------------------------------
_TAB_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("leco", ("prompts_file", "max_denoising_steps")),
    ("controlnet-lllite", ("cond_emb_dim", "conditioning_data_dir")),
    ("ti", ("token_string", "num_vectors_per_token", "template", "weights", "init_word")),
    ("finetune", ("train_dir", "image_folder", "caption_metadata_filename", "latent_metadata_filename",
                  "dataset_repeats", "use_latent_files", "train_text_encoder")),
    ("lora", ("LoRA_type", "network_dim", "lora_network_weights", "network_weights")),
    ("dreambooth", ("learning_rate_te", "learning_rate_te1", "learning_rate_te2", "no_token_padding",
                    "stop_text_encoder_training")),
)

ACCELERATE_KEYS = ("num_cpu_threads_per_process", "num_processes", "num_machines", "multi_gpu", "gpu_ids",
                   "main_process_port", "dynamo_backend", "dynamo_mode", "dynamo_use_fullgraph",
                   "dynamo_use_dynamic", "extra_accelerate_launch_args")

# LoRA_type -> (network_module, family); families decide which network_args are emitted (§2.5)
LORA_TYPES: dict[str, tuple[str, str]] = {
    "Standard": ("networks.lora", "kohya"),
    "Kohya LoCon": ("networks.lora", "kohya-locon"),
    "LoRA-FA": ("networks.lora_fa", "kohya"),
    "Kohya DyLoRA": ("networks.dylora", "kohya-dylora"),
    "LyCORIS/LoCon": ("lycoris.kohya", "locon"),
    "LyCORIS/LoHa": ("lycoris.kohya", "loha"),
    "LyCORIS/LoKr": ("lycoris.kohya", "lokr"),
    "LyCORIS/iA3": ("lycoris.kohya", "ia3"),
    "LyCORIS/DyLoRA": ("lycoris.kohya", "dylora"),
    "LyCORIS/GLoRA": ("lycoris.kohya", "glora"),
    "LyCORIS/Diag-OFT": ("lycoris.kohya", "diag-oft"),
    "LyCORIS/BOFT": ("lycoris.kohya", "boft"),
    "LyCORIS/Native Fine-Tuning": ("lycoris.kohya", "full"),
    "Flux1": ("networks.lora_flux", "flux"),
    "Flux1 OFT": ("networks.oft_flux", "flux-oft"),
    "Kohya LoHa": ("networks.loha", "kohya-native"),
    "Kohya LoKr": ("networks.lokr", "kohya-native"),
    "Anima": ("networks.lora_anima", "dropout-only"),
    "Lumina": ("networks.lora_lumina", "dropout-only"),
    "HunyuanImage-2.1": ("networks.lora_hunyuan_image", "dropout-only"),
}
BLOCK_KEYS = ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold", "block_dims",
              "block_alphas", "conv_block_dims", "conv_block_alphas")
LORAPLUS_KEYS = ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
# LyCORIS argument lists per algo, in the GUI's order (HEAD form)
_LYCORIS_ARGS: dict[str, tuple[str, ...]] = {
    "locon": ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode", "dora_wd",
              "module_dropout", "use_tucker", "use_scalar", "rank_dropout_scale", "algo", "train_norm"),
    "loha": ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode", "dora_wd",
             "module_dropout", "use_tucker", "use_scalar", "rank_dropout_scale", "algo", "train_norm"),
    "lokr": ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode", "dora_wd",
             "module_dropout", "factor", "use_cp", "use_scalar", "decompose_both", "rank_dropout_scale", "algo",
             "train_norm"),
    "ia3": ("preset", "conv_dim", "conv_alpha", "train_on_input", "algo"),
    "dylora": ("preset", "conv_dim", "conv_alpha", "use_tucker", "block_size", "rank_dropout", "module_dropout",
               "algo", "train_norm"),
    "glora": ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "module_dropout",
              "rank_dropout_scale", "algo", "train_norm"),
    "diag-oft": ("preset", "conv_dim", "conv_alpha", "module_dropout", "use_tucker", "rank_dropout",
                 "rank_dropout_scale", "constraint", "rescaled", "algo", "train_norm"),
    "boft": ("preset", "conv_dim", "conv_alpha", "module_dropout", "use_tucker", "rank_dropout",
             "rank_dropout_scale", "algo", "train_norm"),
    "full": ("preset", "rank_dropout", "module_dropout", "rank_dropout_scale", "algo", "train_norm"),
}
# GUI field feeding each LyCORIS argument when the names differ
_LYCORIS_SOURCE = {"preset": "LyCORIS_preset", "block_size": "unit", "constraint": "constrain"}
_LYCORIS_DEFAULTS = {"LyCORIS_preset": "full", "conv_dim": 1, "conv_alpha": 1, "use_tucker": False,
                     "rank_dropout": 0, "bypass_mode": False, "dora_wd": False, "module_dropout": 0,
                     "use_scalar": False, "rank_dropout_scale": False, "train_norm": False, "factor": -1,
                     "use_cp": False, "decompose_both": False, "train_on_input": True, "unit": 1, "constrain": 0.0,
                     "rescaled": False}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")   # what the GUI counts (case-insensitive)


@cache
def _props() -> dict[str, dict[str, Any]]:
    return load_schema(SCHEMA).get("properties", {})


# =========================================================================================================
# classification
# =========================================================================================================
def classify(data: dict[str, Any]) -> tuple[str, str, list[str]]:
    """Era (K0..K5) and GUI tab of a kohya_ss GUI JSON object, with the reasons (marker keys) found.

    Called by ``lora_compat.config.detect`` once the dialect is known to be ``kohya-gui``.
    """
    keys = set(data)
    reasons: list[str] = []

    def hits(markers: tuple[str, ...]) -> list[str]:
        return [m for m in markers if m in keys]

    k5 = hits(_K5_MARKERS) + sorted(k for k in keys if k.startswith(_K5_PREFIXES))
    k4, k3, k2, k1 = hits(_K4_MARKERS), hits(_K3_MARKERS), hits(_K2_MARKERS), hits(_K1_MARKERS)
    if k5:
        era, found = "K5", k5
    elif k4:
        era, found = "K4", k4
    elif k3 or _typed_numbers(data):
        era, found = "K3", k3 or ["typed integer fields (2024-04-15 on)"]
    elif k2:
        era, found = "K2", k2
    elif k1:
        era, found = "K1", k1
    else:
        era, found = "K0", [m for m in ("use_8bit_adam", "cache_latent", "caption_extention", "network_train")
                           if m in keys] or ["no marker of a later era"]
    reasons.append(f"era {era}: " + ", ".join(found[:6]))
    tab = "dreambooth"
    for name, markers in _TAB_RULES:
        present = [m for m in markers if m in keys]
        if present:
            tab = name
            reasons.append(f"tab {name}: " + ", ".join(present[:4]))
            break
    else:
        reasons.append("tab dreambooth: no LoRA/finetune/TI marker")
    if len(keys) < PARTIAL_PRESET_KEYS:
        reasons.append(f"partial preset ({len(keys)} keys)")
    return era, tab, reasons


def _typed_numbers(data: dict[str, Any]) -> bool:
    """K3 typed the previously-string fields (``seed``, ``keep_tokens`` ...) as ints (2024-04-15)."""
    present = [k for k in _STRING_NUMERIC_KEYS if k in data]
    return bool(present) and "save_as_bool" in data and all(isinstance(data[k], int) for k in present)


def _era_index(era: str | None) -> int:
    return ERAS.index(era) if era in ERAS else len(ERAS) - 1


# =========================================================================================================
# reading
# =========================================================================================================
class _GuiReader:
    """One read of one file. ``state`` = the GUI fields after loading (file values over GUI defaults)."""

    def __init__(self, doc: Any, era: str, tab: str):
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.era, self.tab = era, tab
        self.cmdline_era = _era_index(era) <= _era_index("K2")   # before the 2024-04-14 TOML switch
        self.cfg = CanonicalConfig(dialect=DIALECT, source=doc.path, era=era, tab=tab, files=[doc.path])
        self.n = Normalizer(doc, self.cfg)
        self.handled: set[str] = set()
        self.state: dict[str, Any] = {}         # GUI field -> raw value (file or default)
        self.from_default: set[str] = set()      # fields whose value is the GUI default (partial preset)
        self.key_of: dict[str, str] = {}         # GUI field -> key as written in the file (legacy renames)

    # ---- helpers ---------------------------------------------------------------------------------------
    def has(self, field: str) -> bool:
        return field in self.state

    def raw(self, field: str, default: Any = None) -> Any:
        return self.state.get(field, default)

    def num(self, field: str, kind: str = FLOAT, default: Any = 0) -> Any:
        c = coerce_like_python_int(self.state.get(field), kind)  # the GUI's int() of "0.5" or 1.9: truncate
        if not c.ok:
            return default
        return default if c.value is UNSET else c.value

    def flag(self, field: str) -> bool:
        c = coerce(self.state.get(field), BOOL)
        return bool(c.value) if c.ok and c.value is not UNSET else bool(self.state.get(field))

    def text(self, field: str) -> str:
        v = self.state.get(field)
        return "" if v is None else str(v)

    def key(self, field: str) -> str:
        return self.key_of.get(field, field)

    def kind_for(self, field: str, renamed: bool = False) -> str:
        if field in self.from_default:
            return DEFAULT
        return RENAMED if renamed else KEPT

    def put(self, name: str, value: Any, *, fields: list[str] | str, kind: str | None = None,
            conversion: str | None = None) -> None:
        fields = [fields] if isinstance(fields, str) else fields
        keys = [self.key(f) for f in fields if f in self.data or self.key(f) in self.data]
        if kind is None:
            kind = DEFAULT if fields and all(f in self.from_default for f in fields) else CONVERTED
        if kind == DEFAULT and conversion is None:
            conversion = f"{fields[0]} absent from the preset: GUI default {show(self.state.get(fields[0]))}"
        self.n.put(name, value, kind=kind, keys=keys or None, conversion=conversion)

    def put_field(self, name: str, field: str, *, value_kind: str | None = None, drop_zero: bool = True,
                  note: str | None = None) -> Any:
        """Coerce GUI field ``field`` to option ``name``; 0/false/"" dropped like the GUI (with a note when
        sd-scripts' default differs). Returns the value set, or UNSET/None."""
        self.handled.add(field)
        if field not in self.state:
            return UNSET
        raw = self.state[field]
        vk = value_kind or canonical_kind(name)
        if vk == BOOL and isinstance(raw, str) and raw.strip() and not self.cmdline_era:
            # a text field holding "False" (TI-AdamW8bit-SDXL.json: resume_from_huggingface) is written into
            # the GUI's TOML as a string; sd-scripts does not type-check TOML values, so any non-empty string
            # switches the flag on
            self.n.put(name, True, kind=FRONTEND, keys=self.key(field),
                       conversion=f"{self.key(field)} {show(raw)} (non-empty string in the TOML) -> {name} true")
            self.n.note("kohya-gui-truthy-string", f"{self.key(field)} holds the string {show(raw)}: sd-scripts "
                        "reads it as a true flag", self.key(field), value=raw)
            return True
        c = coerce_like_python_int(raw, vk)   # the GUI's int(): 1.9 -> 1 (reference §2.1)
        if not c.ok:
            self.n.invalid(name, self.key(field), raw, c.error or "invalid value")
            return None
        value = c.value
        if value is UNSET:
            if self.key(field) in self.data:
                self.cfg.consumed.append((self.n.origin(self.key(field)), f"{show(raw)}: empty, the GUI passes "
                                          "nothing for it"))
            return UNSET
        if drop_zero and vk != BOOL and is_zero_like(value):
            self._dropped(name, field, value)
            return UNSET
        if vk == BOOL and value is False:
            return UNSET  # a false flag is simply not passed; sd-scripts flags default to false
        if field in self.from_default:
            self.put(name, value, fields=field, kind=DEFAULT)
            return value
        key = self.key(field)
        leaf = key
        if c.changed:
            conv = f"{leaf} {show(raw)} -> {name} {show(value)}"
            if note:
                conv += f" ({note})"
            self.n.put(name, value, kind=CONVERTED, keys=key, conversion=conv)
        elif leaf != name:
            self.n.put(name, value, kind=RENAMED, keys=key,
                       conversion=f"{leaf} -> {name}" + (f" ({note})" if note else ""))
        else:
            self.n.put(name, value, kind=KEPT, keys=key, conversion=note)
        return value

    def _dropped(self, name: str, field: str, value: Any) -> None:
        from lora_compat.config import options

        default = options.default(name)
        gui_default = _props().get(field, {}).get("default")
        # a 0 that is also the GUI's own default (vae_batch_size, max_data_loader_n_workers ...) is the GUI's
        # "not set", not a choice the user made: only explicit zeros that lose their meaning are noted
        if default not in (None, 0, 0.0, False, "", []) and default != value and field not in self.from_default \
                and value != gui_default:
            self.n.note("kohya-gui-zero-dropped",
                        f"{self.key(field)} {show(value)} is dropped by the GUI; sd-scripts uses its default "
                        f"{name} {show(default)}", self.key(field), option=name, value=value, default=default)
        elif field in self.data or self.key(field) in self.data:
            self.cfg.consumed.append((self.n.origin(self.key(field)),
                                      f"{show(value)}: the GUI passes nothing for it, and sd-scripts' default "
                                      f"{name} {show(default)} is the same setting"))

    # ---- step 1: GUI loader ---------------------------------------------------------------------------
    def load_state(self) -> None:
        props = _props()
        for k, v in self.data.items():
            if v is None:          # null = "keep the current GUI value"
                from lora_compat.config.document import is_separator

                why = ("a section separator of the preset (no setting)" if is_separator(k) else
                       "null: the GUI keeps its current value for this field (nothing is passed)")
                self.cfg.consumed.append((self.n.origin(k), why))
                continue
            self.state[k] = v
        # legacy renames the loader (or the era's GUI) applied
        for old, new in (("cache_latent", "cache_latents"), ("caption_extention", "caption_extension"),
                         ("lora_network_weights", "network_weights")):
            if old in self.state and new not in self.state:
                self.state[new] = self.state.pop(old)
                self.key_of[new] = old
            elif old in self.state:
                self.state.pop(old)
                self.n.note("kohya-gui-key-ignored", f"{old} is superseded by {new} in the same file", old)
            if old in self.data:
                self.handled.add(old)
        if self.tab == "lora" and len(self.data) < PARTIAL_PRESET_KEYS:
            filled = []
            for k, p in props.items():
                if k in self.state or "default" not in p or self.era not in p.get("x-eras", ERAS):
                    continue
                if p.get("x-tabs") and "lora" not in p["x-tabs"]:
                    continue
                if _era_index(self.era) < _era_index(p.get("x-default-since", "K0")):
                    continue   # e.g. max_train_steps 1600 only since 2024-04-19 (before: "" = from epoch)
                if k == "optimizer" and "use_8bit_adam" in self.data:
                    continue   # update_my_data derives it from use_8bit_adam before the overlay
                self.state[k] = p["default"]
                self.from_default.add(k)
                filled.append(k)
            if filled:
                self.n.note("kohya-gui-partial-preset",
                            f"partial preset ({len(self.data)} keys): {len(filled)} fields take the GUI defaults",
                            None, defaults={k: self.state[k] for k in sorted(filled)})

    # ---- step 2: train function -----------------------------------------------------------------------
    def run(self) -> CanonicalConfig:
        self.load_state()
        if self.tab != "lora":
            self.n.note("kohya-gui-not-lora-tab",
                        f"saved from the GUI's {self.tab} tab; tab-specific keys have no LoRA equivalent",
                        None, tab=self.tab)
        self.model()
        self.flux()
        self.optimizer()
        self.network()
        self.learning_rates()
        self.length_and_warmup()
        self.noise()
        self.captions_and_misc()
        self.logging()
        self.generic()
        self.additional_parameters()
        from lora_compat.config.kohya_folder import apply_kohya_folder

        apply_kohya_folder(self.cfg)   # train_data_dir <repeats>_<name> folders -> datasets (when present)
        # fields the train function read that set nothing at their value (lr_warmup 0, an unchecked flag ...):
        # accounted for in migration reports (a more specific reason recorded earlier wins)
        from lora_compat.config.secrets import redact

        for f in sorted(self.handled):
            key = self.key(f)
            if key in self.data and self.data[key] is not None:
                self.cfg.consumed.append((self.n.origin(key), f"{show(redact(key, self.data[key]))}: at this "
                                          "value the GUI passes nothing for it"))
        return self.cfg

    def model(self) -> None:
        self.put_field("pretrained_model_name_or_path", "pretrained_model_name_or_path")
        self.handled.add("sdxl")   # model_list and other checkboxes: recorded as front-end-only by generic()
        if self.flag("sdxl"):
            self.put("sdxl", True, fields="sdxl", kind=self.kind_for("sdxl", renamed=False),
                     conversion="sdxl checkbox -> sdxl_train_network.py (pseudo-option sdxl)")
        others = [k for k in ("flux1_checkbox", "sd3_checkbox", "hunyuan_image_checkbox", "anima_checkbox",
                              "lumina_checkbox") if self.flag(k)]
        if others and not self.flag("sdxl") and not _config_supported(others[0]):
            self.n.note("kohya-gui-other-architecture", f"{others[0]} is set: the GUI runs another training script",
                        others[0], checkbox=others[0])
        for f, opt in (("sdxl_cache_text_encoder_outputs", "cache_text_encoder_outputs"),
                       ("sdxl_no_half_vae", "no_half_vae")):
            self.handled.add(f)
            if self.flag(f):
                if self.flag("sdxl"):
                    self.put(opt, True, fields=f, kind=RENAMED if f not in self.from_default else DEFAULT,
                             conversion=f"{f} -> {opt} (passed with sdxl only)")
                else:
                    self.n.note("kohya-gui-sdxl-only-ignored", f"{f} is ignored without the sdxl checkbox", f)
        # resolution: "W,H" passed through unchanged (sd-scripts splits on the comma)
        self.handled.add("max_resolution")
        if self.has("max_resolution"):
            raw = self.raw("max_resolution")
            text = str(raw).strip()
            parts = [p.strip() for p in text.split(",")]
            if isinstance(raw, str) and not text:
                # an empty field: the GUI passes no --resolution (sd-scripts' default applies), like any empty text
                self.cfg.consumed.append((self.n.origin(self.key("max_resolution")),
                                          '"": empty, the GUI passes no --resolution'))
            elif not text or not all(p.isdigit() for p in parts) or len(parts) > 2:
                self.n.invalid("resolution", self.key("max_resolution"), raw, 'expected "W,H" or "W"')
            else:
                self.put("resolution", text, fields="max_resolution",
                         kind=DEFAULT if "max_resolution" in self.from_default else
                         (RENAMED if isinstance(raw, str) else CONVERTED),
                         conversion=f"max_resolution {show(raw)} -> resolution {show(text)}")
        # save_model_as: LoRA tab forces safetensors unless ckpt
        self.handled.add("save_model_as")
        if self.has("save_model_as"):
            v = self.text("save_model_as")
            if self.tab in ("lora", "ti") and v not in ("safetensors", "ckpt"):
                self.put("save_model_as", "safetensors", fields="save_model_as", kind=FRONTEND,
                         conversion=f"save_model_as {show(v)} -> \"safetensors\" (forced by the GUI's LoRA tab)")
                self.n.note("kohya-gui-save-model-as-forced", f"save_model_as {show(v)} is replaced by safetensors",
                            self.key("save_model_as"), value=v)
            else:
                self.put_field("save_model_as", "save_model_as")
        # xformers: bool (<= 2023-08) or "xformers" / "sdpa" / "none"
        self.handled.add("xformers")
        if self.has("xformers"):
            raw = self.raw("xformers")
            mode = ("xformers" if raw else "none") if isinstance(raw, bool) else str(raw)
            if isinstance(raw, bool):
                self.n.note("kohya-gui-xformers-bool", f"xformers {show(raw)} read as {show(mode)}", "xformers")
            if mode in ("xformers", "sdpa"):
                self.put(mode, True, fields="xformers",
                         kind=DEFAULT if "xformers" in self.from_default else CONVERTED,
                         conversion=f"xformers {show(raw)}" + (f" (boolean of GUIs before 2023-08-04 = {show(mode)})"
                                                               if isinstance(raw, bool) else "") + f" -> {mode} true")
            elif mode != "none":
                self.n.invalid("xformers", "xformers", raw, 'expected "xformers", "sdpa" or "none"')

    def flux(self) -> None:
        """The FLUX.1 fields whose GUI handling is more than a rename (lora_gui.py train_model, 2024-08 .. 2026):
        ``clip_l`` is not passed for Chroma, ``model_type`` only as ``chroma``, the Chroma branch forces
        ``apply_t5_attn_mask`` and re-emits ``guidance_scale`` after the TOML filter dropped a 0, ``train_blocks``
        never reaches networks.lora_flux. The plain renames are schema-driven (``x-requires: flux1_checkbox``)."""
        self.handled.update(("clip_l", "model_type"))
        if not self.flag("flux1_checkbox"):
            for f in ("clip_l", "model_type"):
                if f in self.data and f not in self.from_default:
                    self.n.frontend_only(self.key(f), self.data[f], "only passed when flux1_checkbox is set")
            return
        chroma = self.text("model_type").strip().lower() == "chroma"
        if chroma:
            self.put("model_type", "chroma", fields="model_type", kind=self.kind_for("model_type"),
                     conversion='model_type "chroma" -> --model_type chroma (the GUI omits it for flux)')
            self.handled.update(("apply_t5_attn_mask", "guidance_scale"))
            if not self.flag("apply_t5_attn_mask"):
                self.put("apply_t5_attn_mask", True, fields="model_type", kind=FRONTEND,
                         conversion="Chroma: the GUI forces apply_t5_attn_mask on (flux_train_network.py asserts it)")
                self.n.note("kohya-gui-chroma-t5-mask", "apply_t5_attn_mask is forced on for Chroma",
                            self.key("model_type"))
            else:
                self.put_field("apply_t5_attn_mask", "apply_t5_attn_mask")
            if "guidance_scale" in self.state:
                value = self.num("guidance_scale", FLOAT, 3.5)
                self.put("guidance_scale", float(value), fields="guidance_scale",
                         kind=self.kind_for("guidance_scale"),
                         conversion="Chroma: the GUI re-emits guidance_scale after its TOML filter (0.0 kept)")
            if "clip_l" in self.data and self.text("clip_l"):
                self.n.frontend_only(self.key("clip_l"), self.data["clip_l"], "not passed for Chroma (no CLIP-L)")
        else:
            if "model_type" in self.data and self.text("model_type") not in ("", "flux"):
                self.n.invalid("model_type", "model_type", self.raw("model_type"), 'expected "flux" or "chroma"')
            self.put_field("clip_l", "clip_l")
        self.handled.add("train_blocks")
        blocks = self.text("train_blocks") or "all"
        if "train_blocks" in self.data and "train_blocks" not in self.from_default:
            self.n.frontend_only(self.key("train_blocks"), self.data["train_blocks"],
                                 "not passed to networks.lora_flux (only split_mode forces train_blocks=single)")
            if blocks != "all" and not self.flag("split_mode"):
                self.n.note("kohya-gui-flux-train-blocks-ignored",
                            f"train_blocks {show(blocks)} is never passed to networks.lora_flux: all blocks are "
                            "trained", self.key("train_blocks"), value=blocks)

    def optimizer(self) -> None:
        self.handled.update(("optimizer", "use_8bit_adam", "optimizer_args", "lr_scheduler_args"))
        if self.has("optimizer"):
            self.put_field("optimizer_type", "optimizer")
            if "use_8bit_adam" in self.data:
                self.n.note("kohya-gui-key-ignored", "use_8bit_adam is ignored once 'optimizer' exists",
                            "use_8bit_adam")
        elif "use_8bit_adam" in self.data:
            eight = self.flag("use_8bit_adam")
            opt = "AdamW8bit" if eight else "AdamW"
            if _era_index(self.era) == 0:
                # K0 GUIs passed the legacy flag itself; sd-scripts maps it to AdamW8bit (or plain AdamW)
                if eight:
                    self.put("use_8bit_adam", True, fields="use_8bit_adam", kind=KEPT)
            else:
                self.put("optimizer_type", opt, fields="use_8bit_adam", kind=CONVERTED,
                         conversion=f"use_8bit_adam {show(eight)} -> optimizer_type {show(opt)} (GUI loader)")
        for field, opt in (("optimizer_args", "optimizer_args"), ("lr_scheduler_args", "lr_scheduler_args")):
            if not self.has(field):
                continue
            raw = self.raw(field)
            if isinstance(raw, list):
                self.put_field(opt, field)
                continue
            text = "" if raw is None else str(raw)
            tokens = split_args_string(text)
            if tokens and tokens[0] == f"--{field}":
                # the option's own flag pasted into the field: command-line-era GUIs ran
                # `--optimizer_args --optimizer_args k=v` (argparse keeps the second list); since 2024-04-20
                # validate_args_setting refuses anything but `k=v k=v` and the GUI does not start
                tokens = tokens[1:]
                if self.cmdline_era:
                    self.n.note("kohya-gui-args-flag-repeated", f"{field} starts with --{field}: the GUI passed "
                                f"the flag twice and argparse kept the list after the second one", field)
                else:
                    self.n.note("kohya-gui-args-refused", f"{field} {show(text)} is not 'key=value key=value': "
                                "the GUI refuses to start (validate_args_setting)", field)
            if not tokens:
                continue
            if '"' in text or any("=" not in t for t in tokens):
                self.n.note("kohya-gui-args-string-split",
                            f"{field} {show(text)} split into {show(tokens)}", field, tokens=tokens)
            self.put(opt, tokens, fields=field,
                     conversion=f"{field} {show(text)} -> {opt} {show(tokens)} (quotes removed, split on spaces)")

    def network(self) -> None:
        net_fields = ("LoRA_type", "LyCORIS_preset", "conv_dim", "conv_alpha", "factor", "use_cp", "use_tucker",
                      "use_scalar", "decompose_both", "rank_dropout_scale", "train_norm", "rescaled", "bypass_mode",
                      "dora_wd", "train_on_input", "constrain", "unit", "rank_dropout", "module_dropout", "locon",
                      "conv_dims", "conv_alphas", "train_lora_ggpo", "ggpo_sigma", "ggpo_beta", "split_qkv",
                      "train_t5xxl", "enable_all_linear", *BLOCK_KEYS, *LORAPLUS_KEYS)
        self.handled.update(net_fields)
        self.put_field("network_dim", "network_dim")
        self.put_field("network_alpha", "network_alpha", value_kind=FLOAT)
        self.put_field("network_dropout", "network_dropout")
        self.put_field("network_weights", "network_weights")
        self.put_field("dim_from_weights", "dim_from_weights")
        self.put_field("scale_weight_norms", "scale_weight_norms")
        if self.tab != "lora":
            return
        for stale in ("conv_dims", "conv_alphas"):
            if stale in self.data and self.data[stale] not in ("", None):
                self.n.note("kohya-gui-key-ignored",
                            f"{stale} was replaced by conv_block_* (2023-07-19) and is ignored",
                            stale)
        lora_type = self.text("LoRA_type") or "Standard"
        type_key = "LoRA_type" if "LoRA_type" in self.state else None
        if lora_type == "LoCon":   # loader rewrite since 2023-03-09
            lora_type = "LyCORIS/LoCon"
        if self.flag("locon") and "LoRA_type" not in self.data:
            self.n.note("kohya-gui-locon-bool-ignored", "'locon': true loads as a Standard LoRA", "locon")
        if lora_type not in LORA_TYPES:
            self.n.invalid("network_module", "LoRA_type", self.raw("LoRA_type"),
                           f"unknown LoRA_type {show(lora_type)}; known: {', '.join(LORA_TYPES)}")
            return
        module, family = LORA_TYPES[lora_type]
        if lora_type in ("Standard", "Kohya LoCon") and self.flag("sd3_checkbox"):  # lora_gui.py: both branches
            module = "networks.lora_sd3"
        conv = f"LoRA_type {show(self.raw('LoRA_type', 'Standard'))} -> network_module {show(module)}"
        self.put("network_module", module, fields=["LoRA_type"] if type_key else [],
                 kind=(DERIVED if type_key and "LoRA_type" not in self.from_default else DEFAULT), conversion=conv)
        args: list[str] = []
        sources: list[str] = []
        if family in ("kohya", "kohya-locon", "kohya-dylora"):
            if family == "kohya-locon":
                args += [f"conv_dim={self._argval('conv_dim')}", f"conv_alpha={self._argval('conv_alpha')}"]
                sources += ["conv_dim", "conv_alpha"]
            elif family == "kohya-dylora":
                for f in ("conv_dim", "conv_alpha"):
                    if not is_zero_like(self.raw(f)):
                        args.append(f"{f}={self._argval(f)}")
                        sources.append(f)
            elif (self.has("conv_dim") or self.has("conv_alpha")) and "conv_dim" not in self.from_default \
                    and self.num("conv_dim") not in (0, 1):
                self.n.note("kohya-gui-conv-ignored", f"conv_dim is not passed for LoRA_type {show(lora_type)}",
                            "conv_dim", lora_type=lora_type)
            for f in (*BLOCK_KEYS, "rank_dropout", "module_dropout"):
                v = self.raw(f)
                if not is_zero_like(v) and not (isinstance(v, str) and not v.strip()):
                    args.append(f"{f}={self._argval(f)}")
                    sources.append(f)
            if family == "kohya-dylora" and not is_zero_like(self.raw("unit")):
                args.append(f"unit={self._argval('unit')}")
                sources.append("unit")
        elif family in _LYCORIS_ARGS:
            for a in _LYCORIS_ARGS[family]:
                if a == "algo":
                    args.append(f"algo={family}")
                    continue
                f = _LYCORIS_SOURCE.get(a, a)
                val = self.raw(f, _LYCORIS_DEFAULTS.get(f))
                if a == "constraint" and self.era != "K5":
                    # emitted as constrain= until 2024-10-06; LyCORIS reads constraint, so it had no effect
                    a = "constrain"
                    if not is_zero_like(val):
                        self.n.note("kohya-gui-constrain-spelling", f"constrain={_fmt_arg(val)} was passed under "
                                    "the old name 'constrain'", "constrain" if "constrain" in self.data else None)
                args.append(f"{a}={_fmt_arg(val)}")
                if f in self.state:
                    sources.append(f)
        elif family == "flux":
            for f in ("img_attn_dim", "img_mlp_dim", "img_mod_dim", "single_dim", "txt_attn_dim", "txt_mlp_dim",
                      "txt_mod_dim", "single_mod_dim", "in_dims", "train_double_block_indices",
                      "train_single_block_indices",
                      *(("ggpo_beta", "ggpo_sigma") if self.flag("train_lora_ggpo") else ())):
                self.handled.add(f)
                if not is_zero_like(self.raw(f)):
                    args.append(f"{f}={self._argval(f)}")
                    sources.append(f)
            if self.flag("split_mode"):
                args.append("train_blocks=single")
            if self.flag("split_qkv"):
                args.append("split_qkv=True")
            if self.flag("train_t5xxl") and self.flag("flux1_checkbox"):
                args.append("train_t5xxl=True")
        elif family == "flux-oft":
            if self.flag("enable_all_linear"):
                args.append("enable_all_linear=True")
        elif family in ("kohya-native", "dropout-only"):
            for f in ("rank_dropout", "module_dropout"):
                if not is_zero_like(self.raw(f)):
                    args.append(f"{f}={self._argval(f)}")
                    sources.append(f)
        for f in LORAPLUS_KEYS:   # appended for every type (reference §2.5)
            if is_zero_like(self.num(f, NUMBER, 0)):
                continue
            if self.era in ("K3", "K4"):
                # GUIs of 2024-05 to 2025 wrote the ratios as top-level TOML keys, which sd-scripts does not
                # read (LoRA+ is a network_args setting); a later GUI moved them into network_args
                self.n.note("kohya-gui-loraplus-ignored", f"{f} {self._argval(f)} was written as a top-level TOML "
                            "key that sd-scripts ignores: LoRA+ was not applied", f, option=f)
                continue
            args.append(f"{f}={self._argval(f)}")
            sources.append(f)
        tokens = split_args_string(" ".join(args))
        if tokens:
            self.n.put("network_args", tokens, kind=DERIVED,
                       keys=[self.key(f) for f in (["LoRA_type"] if type_key else []) + sources if f in self.data]
                       or None,
                       conversion=f"LoRA_type {show(lora_type)} + GUI fields -> network_args {show(tokens)}")

    def _argval(self, field: str) -> str:
        return _fmt_arg(self.raw(field))

    def learning_rates(self) -> None:
        self.handled.update(("learning_rate", "text_encoder_lr", "unet_lr", "t5xxl_lr"))
        lr = self.num("learning_rate")
        self.put_field("learning_rate", "learning_rate", value_kind=FLOAT)
        if self.tab != "lora":
            return
        te, unet, t5 = self.num("text_encoder_lr"), self.num("unet_lr"), self.num("t5xxl_lr")
        if "text_encoder_lr" in self.state and _invalid_number(self.raw("text_encoder_lr")):
            self.n.invalid("text_encoder_lr", "text_encoder_lr", self.raw("text_encoder_lr"), "expected a number")
        if "unet_lr" in self.state and _invalid_number(self.raw("unet_lr")):
            self.n.invalid("unet_lr", "unet_lr", self.raw("unet_lr"), "expected a number")
        if lr == 0 and te == 0 and unet == 0 and ("learning_rate" in self.state or "unet_lr" in self.state):
            self.n.note("kohya-gui-all-lr-zero", "all learning rates are 0: the GUI refuses to train", "learning_rate")
        if t5 and not te:
            self.n.note("kohya-gui-t5xxl-lr-needs-te", "t5xxl_lr is set while text_encoder_lr is 0: the GUI refuses "
                        "to start", "t5xxl_lr" if "t5xxl_lr" in self.data else None)
        if te:
            if _era_index(self.era) >= _era_index("K4"):
                value = [float(te), float(t5) if t5 else float(te)]
                self.put("text_encoder_lr", value, fields=["text_encoder_lr"] + (["t5xxl_lr"] if t5 else []),
                         kind=DEFAULT if "text_encoder_lr" in self.from_default else CONVERTED,
                         conversion=f"text_encoder_lr {show(self.raw('text_encoder_lr'))} -> text_encoder_lr "
                                    f"{show(value)} (the GUI passes a two-element list)")
                self.n.note("kohya-gui-t5xxl-lr", f"text_encoder_lr passed as {show(value)}", "text_encoder_lr"
                            if "text_encoder_lr" in self.data else None, value=value)
            else:
                self.put_field("text_encoder_lr", "text_encoder_lr", value_kind=FLOAT)
        if unet:
            self.put_field("unet_lr", "unet_lr", value_kind=FLOAT)
        if te == 0 and unet:
            self.put("network_train_unet_only", True, fields="text_encoder_lr", kind=DERIVED,
                     conversion=f"text_encoder_lr {show(self.raw('text_encoder_lr', 0))} with unet_lr "
                                f"{show(self.raw('unet_lr'))} -> network_train_unet_only")
            self.n.note("kohya-gui-train-part-from-lr", "text_encoder_lr 0 -> network_train_unet_only",
                        "text_encoder_lr", flag="network_train_unet_only")
        elif unet == 0 and te:
            self.put("network_train_text_encoder_only", True, fields="unet_lr", kind=DERIVED,
                     conversion=f"unet_lr {show(self.raw('unet_lr', 0))} with text_encoder_lr "
                                f"{show(self.raw('text_encoder_lr'))} -> network_train_text_encoder_only")
            self.n.note("kohya-gui-train-part-from-lr", "unet_lr 0 -> network_train_text_encoder_only",
                        "unet_lr", flag="network_train_text_encoder_only")

    # ---- length and warmup (reference §2.6) -----------------------------------------------------------
    def length_and_warmup(self) -> None:
        self.handled.update(("epoch", "max_train_steps", "max_train_epochs", "lr_warmup", "lr_warmup_steps",
                             "train_batch_size", "gradient_accumulation_steps", "stop_text_encoder_training",
                             "lr_scheduler", "lr_scheduler_num_cycles", "dataset_config", "train_data_dir",
                             "reg_data_dir"))
        # put_field returns UNSET (not passed) or None (invalid): the GUI's formula then uses 1
        batch = self.put_field("train_batch_size", "train_batch_size") or 1
        grad_acc = self.put_field("gradient_accumulation_steps", "gradient_accumulation_steps", value_kind=INT) or 1
        dataset_config = self.put_field("dataset_config", "dataset_config")
        train_dir = self.put_field("train_data_dir", "train_data_dir")
        reg_dir = self.put_field("reg_data_dir", "reg_data_dir")
        epochs_opt = self.put_field("max_train_epochs", "max_train_epochs", value_kind=INT)
        epoch = self.num("epoch", INT, 1) if self.has("epoch") else 1
        if self.has("epoch") and _invalid_number(self.raw("epoch")):
            self.n.invalid("max_train_steps", "epoch", self.raw("epoch"), "expected an integer")
        scheduler = self.put_field("lr_scheduler", "lr_scheduler")
        # max_train_steps: "" / 0 -> computed by the GUI from epoch (unless dataset_config)
        mts_raw = self.raw("max_train_steps")
        mts_c = coerce(mts_raw, INT) if self.has("max_train_steps") else None
        if mts_c is not None and not mts_c.ok:
            self.n.invalid("max_train_steps", "max_train_steps", mts_raw, mts_c.error or "expected an integer")
            mts_c = None
        steps: int | None = None      # the GUI's step count, when known
        if mts_c is not None and mts_c.value not in (UNSET, 0):
            steps = mts_c.value
            self.put_field("max_train_steps", "max_train_steps", value_kind=INT)
            if self.has("epoch") and epoch != 1 and "epoch" not in self.from_default:
                self.n.note("kohya-gui-epoch-ignored",
                            f"max_train_steps {steps} is set, so epoch {epoch} had no effect", "epoch",
                            epoch=epoch, max_train_steps=steps)
        elif dataset_config not in (UNSET, None):
            self.n.note("kohya-gui-dataset-config-no-steps",
                        "dataset_config with max_train_steps 0: sd-scripts trains its default 1600 steps",
                        "dataset_config")
        elif self.tab in ("lora", "dreambooth", "ti") or self.has("epoch"):
            reg_factor = 2 if reg_dir not in (UNSET, None) else 1
            era_caveat = None
            if self.era == "K0":
                # K0 GUIs (to 2023-03-04): the reg factor was commented out (2023-01-05 to 05-04) and gradient
                # accumulation was not divided out (until 2023-05-07)
                reg_factor, grad_acc = 1, 1
                era_caveat = "K0 formula: no regularisation factor, gradient accumulation not divided out"
            elif self.era == "K1":
                era_caveat = ("K1 GUIs before 2023-05-04/05-07 used no regularisation factor and did not divide "
                              "by gradient accumulation; the HEAD formula is used")
            total = _count_kohya_images(train_dir if isinstance(train_dir, str) else "", self.doc.path,
                                        self.doc.meta.get("image_counts"))
            formula = (f"ceil(images x repeats / train_batch_size {batch} / gradient_accumulation_steps "
                       f"{grad_acc} x epoch {epoch} x reg_factor {reg_factor})")
            if total is None and epochs_opt in (UNSET, None) and not self.has("epoch"):
                # no epoch in the file or the GUI defaults: the GUI used whatever its field held
                self.n.note("kohya-gui-epoch-steps-unresolved",
                            f"max_train_steps = {formula} with the GUI's current epoch field (not in this file); "
                            "the image folders of train_data_dir are not available either",
                            None, formula=formula, epoch=None, train_batch_size=batch,
                            gradient_accumulation_steps=grad_acc, reg_factor=reg_factor,
                            train_data_dir=None if train_dir is UNSET else train_dir, era_caveat=era_caveat)
            elif total is None and epochs_opt in (UNSET, None):
                # The GUI counted the images to turn `epoch` into steps; they are not here. sd-scripts' own
                # max_train_epochs keeps the meaning: it counts the same samples (regularisation images are
                # balanced to the training images, the GUI's x2), but per bucket, so the step count can differ
                # by the rounding of partial batches.
                keys: list[str] = [f for f in ("epoch", "max_train_steps") if f in self.data]
                self.put("max_train_epochs", epoch, fields=keys or ["epoch"], kind=DERIVED,
                         conversion=f"GUI epoch {epoch} -> max_train_epochs {epoch} (the GUI passed max_train_steps "
                                    f"= {formula}; the image folders are not here, and sd-scripts counts the "
                                    "same epochs itself, per bucket: steps may differ by bucket rounding)")
                self.n.note("kohya-gui-epoch-as-max-train-epochs",
                            f"epoch {epoch} carried as max_train_epochs {epoch}: the GUI's max_train_steps = "
                            f"{formula} needs the image folders (give them with --images); sd-scripts' epoch "
                            "length counts partial batches per bucket, so steps can differ slightly",
                            "epoch" if "epoch" in self.data else None, formula=formula, epoch=epoch,
                            train_batch_size=batch, gradient_accumulation_steps=grad_acc, reg_factor=reg_factor,
                            train_data_dir=None if train_dir is UNSET else train_dir, era_caveat=era_caveat)
            elif total is not None:
                steps = kohya_gui_max_train_steps(total, batch, grad_acc, epoch, reg_factor)
                fields: list[str] = [f for f in ("epoch", "train_batch_size", "gradient_accumulation_steps",
                                                 "reg_data_dir", "train_data_dir", "max_train_steps") if f in self.data]
                conv = (f"epoch {epoch}: ceil({total} images x repeats / {batch} / {grad_acc} x {epoch} x "
                        f"{reg_factor}) -> max_train_steps {steps}")
                self.put("max_train_steps", steps, fields=fields, kind=DERIVED, conversion=conv)
                self.n.note("kohya-gui-epoch-to-steps", conv, "epoch" if "epoch" in self.data else None,
                            images_times_repeats=total, max_train_steps=steps, era_caveat=era_caveat)
        if epochs_opt not in (UNSET, None):
            self.n.note("kohya-gui-max-train-epochs-wins",
                        f"max_train_epochs {epochs_opt} is passed; sd-scripts derives the length from it",
                        "max_train_epochs")
        # lr_scheduler_num_cycles: "" -> epoch
        self.handled.add("lr_scheduler_num_cycles")
        if self.has("lr_scheduler_num_cycles"):
            raw = self.raw("lr_scheduler_num_cycles")
            if isinstance(raw, str) and not raw.strip():
                self.put("lr_scheduler_num_cycles", epoch, fields=["lr_scheduler_num_cycles"] +
                         (["epoch"] if "epoch" in self.data else []), kind=DERIVED,
                         conversion=f"lr_scheduler_num_cycles \"\" -> epoch {epoch}")
                self.n.note("kohya-gui-lr-scheduler-cycles-epoch", f"empty cycles -> epoch {epoch}",
                            "lr_scheduler_num_cycles", epoch=epoch)
            else:
                self.put_field("lr_scheduler_num_cycles", "lr_scheduler_num_cycles", value_kind=INT)
        # warmup
        pct = self.num("lr_warmup", FLOAT, 0) if self.has("lr_warmup") else 0
        if self.has("lr_warmup") and _invalid_number(self.raw("lr_warmup")):
            self.n.invalid("lr_warmup_steps", "lr_warmup", self.raw("lr_warmup"), "expected a number (percent)")
        abs_steps = self.num("lr_warmup_steps", INT, 0) if self.has("lr_warmup_steps") else 0
        fraction_era = self.era == "K5" or "lr_warmup_steps" in self.data
        warm_keys: list[str] = [f for f in ("lr_warmup", "lr_warmup_steps") if f in self.data]
        if fraction_era and abs_steps > 0:
            self.put("lr_warmup_steps", abs_steps, fields="lr_warmup_steps", kind=KEPT)
            if pct:
                self.n.note("kohya-gui-warmup-steps-override",
                            f"lr_warmup_steps {abs_steps} overrides lr_warmup {pct}%", "lr_warmup_steps")
        elif pct:
            if fraction_era and not (dataset_config not in (UNSET, None) and steps):
                ratio = pct / 100
                self.put("lr_warmup_steps", ratio, fields=warm_keys or ["lr_warmup"],
                         conversion=f"lr_warmup {show(self.raw('lr_warmup'))} (percent) -> lr_warmup_steps "
                                    f"{show(ratio)} (ratio of sd-scripts' total steps)")
                self.n.note("kohya-gui-warmup-percent", f"lr_warmup {pct}% -> ratio {ratio}", "lr_warmup",
                            percent=pct, ratio=ratio)
            elif (not fraction_era and scheduler == "constant" and self.era in ("K1", "K2")):
                self.n.note("kohya-gui-warmup-dropped-constant",
                            "GUIs of 2023-05-07 to 2024-02-02 dropped the warmup with the constant scheduler",
                            "lr_warmup", percent=pct)
            elif steps:
                ws = kohya_gui_warmup_steps(pct, steps, whole_numbers=fraction_era)
                conv = (f"lr_warmup {show(self.raw('lr_warmup'))} (percent) of {steps} steps -> "
                        f"lr_warmup_steps {ws}")
                if ws:
                    self.put("lr_warmup_steps", ws, fields=warm_keys + [f for f in ("max_train_steps", "epoch")
                                                                        if f in self.data], conversion=conv)
                self.n.note("kohya-gui-warmup-percent", conv, "lr_warmup", percent=pct, steps=steps, warmup=ws)
            elif dataset_config not in (UNSET, None):
                self.n.note("kohya-gui-warmup-dropped-dataset-config",
                            f"lr_warmup {pct}% of an unknown step count (dataset_config without max_train_steps): "
                            "the GUI passed no warmup", "lr_warmup", percent=pct)
            else:
                # The GUI's step count needs the image folders; sd-scripts resolves a float below 1 against its
                # own total steps (int(ratio x steps)), which keeps the share
                ratio = pct / 100
                self.put("lr_warmup_steps", ratio, fields=warm_keys or ["lr_warmup"],
                         conversion=f"lr_warmup {show(self.raw('lr_warmup'))} (percent of the GUI's step count) -> "
                                    f"lr_warmup_steps {show(ratio)} (a ratio sd-scripts takes of its own total "
                                    "steps; the GUI rounded the percent of its bucket-agnostic count, so the warmup "
                                    "can differ by a step or the bucket rounding)")
                self.n.note("kohya-gui-warmup-percent",
                            f"lr_warmup {pct}% -> lr_warmup_steps {ratio} (ratio of sd-scripts' own step count; the "
                            "image folders the GUI counted are not here)", "lr_warmup", percent=pct, ratio=ratio,
                            approximate=True)
        # stop_text_encoder_training: LoRA ignores it; DreamBooth: percent of steps (train_db.py only)
        if self.num("stop_text_encoder_training", INT, 0) > 0 and self.tab == "lora":
            self.n.note("kohya-gui-stop-te-ignored", "stop_text_encoder_training is ignored for LoRA",
                        "stop_text_encoder_training")
        if "stop_text_encoder_training" in self.data and self.tab != "lora":
            self.n.frontend_only("stop_text_encoder_training", self.data["stop_text_encoder_training"],
                                 "DreamBooth percent of max_train_steps for train_db.py; no LoRA equivalent")

    def noise(self) -> None:
        fields = ("noise_offset_type", "noise_offset", "adaptive_noise_scale", "noise_offset_random_strength",
                  "multires_noise_iterations", "multires_noise_discount")
        self.handled.update(fields)
        ntype = self.text("noise_offset_type") or "Original"
        if ntype not in ("Original", "Multires"):
            self.n.invalid("noise_offset", "noise_offset_type", self.raw("noise_offset_type"),
                           'expected "Original" or "Multires"')
            return
        if ntype == "Original":
            no = self.put_field("noise_offset", "noise_offset", value_kind=FLOAT)
            # HEAD passes adaptive_noise_scale whenever it is non-zero; the command-line era only with an offset
            if not self.cmdline_era or (no not in (UNSET, None) and no > 0):
                self.put_field("adaptive_noise_scale", "adaptive_noise_scale", value_kind=FLOAT)
            self.put_field("noise_offset_random_strength", "noise_offset_random_strength")
            inactive = [f for f in ("multires_noise_iterations",) if self.num(f, NUMBER, 0)]
        else:
            if self.num("multires_noise_iterations", NUMBER, 0):
                self.put_field("multires_noise_iterations", "multires_noise_iterations", value_kind=INT)
                self.put_field("multires_noise_discount", "multires_noise_discount", value_kind=FLOAT)
            inactive = [f for f in ("noise_offset", "adaptive_noise_scale") if self.num(f, NUMBER, 0)]
        for f in inactive:
            if f in self.data:
                self.n.note("kohya-gui-noise-type-inactive", f"{f} is not passed with noise_offset_type {show(ntype)}",
                            f, noise_offset_type=ntype)

    def captions_and_misc(self) -> None:
        if self.flag("train_inpainting"):
            # the 2026 GUI forces latent caching off for inpainting training
            for f in ("cache_latents", "cache_latents_to_disk"):
                self.handled.add(f)
                if self.flag(f):
                    self.n.note("kohya-gui-inpainting-no-cache", f"{f} is switched off with train_inpainting",
                                self.key(f), option=f)
        self.handled.update(("caption_extension", "sample_prompts", "persistent_data_loader_workers",
                             "max_data_loader_n_workers", "clip_skip", "max_token_length", "min_snr_gamma",
                             "max_timestep", "min_timestep", "seed", "keep_tokens"))
        if self.has("caption_extension"):
            ext = self.text("caption_extension")
            if ext == "":
                self.n.note("kohya-gui-caption-extension-empty",
                            'caption_extension is empty: sd-scripts reads ".caption" files',
                            self.key("caption_extension"))
            else:
                self.put_field("caption_extension", "caption_extension")
        if self.has("sample_prompts"):
            text = self.text("sample_prompts")
            if text.strip():
                out = self.text("output_dir")
                path = f"{out}/sample/prompt.txt" if out else "sample/prompt.txt"
                self.put("sample_prompts", path, fields="sample_prompts", kind=CONVERTED,
                         conversion=f"sample_prompts (prompt text) -> written to {path}")
                self.n.note(PROMPT_TEXT_NOTE, f"prompt text is written to {path}", "sample_prompts",
                            text=text, path=path)
        if self.flag("persistent_data_loader_workers"):
            self.put_field("persistent_data_loader_workers", "persistent_data_loader_workers")
        # max_data_loader_n_workers: written even when 0 since the TOML switch (K3+); K0-K1 GUIs tested the field
        # against "" and K2 GUIs tested the (string) value's truth, so "0" was passed too; only a K2 file holding a
        # number 0 lost it. Dropping a passed 0 would turn it into sd-scripts' default of 8 workers.
        raw_workers = self.raw("max_data_loader_n_workers")
        self.put_field("max_data_loader_n_workers", "max_data_loader_n_workers", value_kind=INT,
                       drop_zero=self.era == "K2" and not isinstance(raw_workers, str))
        # command-line-era conditions (clip_skip > 1, max_token_length > 75, min_snr_gamma int >= 1, ...)
        if self.cmdline_era:
            # (name, test, why, the value that equals sd-scripts' own default when not passed)
            self._conditional("clip_skip", INT, lambda v: v > 1, "passed only when > 1", 1)
            self._conditional("max_token_length", INT, lambda v: v > 75, "passed only when > 75", 75)
            self._conditional("max_timestep", INT, lambda v: v < 1000, "passed only when < 1000", 1000)
            self.put_field("min_timestep", "min_timestep", value_kind=INT)
            if self.has("min_snr_gamma"):
                g = self.num("min_snr_gamma", FLOAT, 0)
                if g >= 1:
                    iv = int(g)
                    self.put("min_snr_gamma", float(iv), fields="min_snr_gamma",
                             kind=self.kind_for("min_snr_gamma") if g == iv else FRONTEND,
                             conversion=None if g == iv else f"min_snr_gamma {show(g)} -> {iv} (truncated by the GUI)")
                    if g != iv:
                        self.n.note("kohya-gui-cmdline-era-condition", f"min_snr_gamma {g} truncated to {iv}",
                                    "min_snr_gamma", option="min_snr_gamma")
                elif g > 0:
                    self.n.note("kohya-gui-cmdline-era-condition", f"min_snr_gamma {g} < 1 was not passed",
                                "min_snr_gamma", option="min_snr_gamma")
        else:
            self.put_field("clip_skip", "clip_skip", value_kind=INT)
            if self.flag("flux1_checkbox") and not self.flag("sdxl"):
                if "max_token_length" in self.data and "max_token_length" not in self.from_default:
                    self.n.frontend_only(self.key("max_token_length"), self.data["max_token_length"],
                                         "not passed with flux1_checkbox (FLUX.1 reads t5xxl_max_token_length)")
            else:
                self.put_field("max_token_length", "max_token_length", value_kind=INT)
            self.put_field("max_timestep", "max_timestep", value_kind=INT)
            self.put_field("min_timestep", "min_timestep", value_kind=INT)
            self.put_field("min_snr_gamma", "min_snr_gamma", value_kind=FLOAT)
        self.put_field("seed", "seed", value_kind=INT)
        self.put_field("keep_tokens", "keep_tokens", value_kind=INT)

    def _conditional(self, name: str, kind: str, passes: Any, why: str, neutral: int) -> None:
        """Command-line era: pass ``name`` only when ``passes(value)``; note a dropped non-neutral value."""
        self.handled.add(name)
        if not self.has(name):
            return
        c = coerce(self.raw(name), kind)
        if not c.ok:
            self.n.invalid(name, self.key(name), self.raw(name), c.error or "invalid")
            return
        if c.value is UNSET:
            return
        if passes(c.value):
            self.put_field(name, name, value_kind=kind)
        elif c.value != neutral and name not in self.from_default:
            self.n.note("kohya-gui-cmdline-era-condition", f"{name} {show(c.value)} not passed ({why})",
                        self.key(name), option=name, value=c.value)

    def logging(self) -> None:
        self.handled.update(("use_wandb", "log_with", "wandb_run_name", "wandb_api_key"))
        if "use_wandb" in self.data:
            raw = self.data["use_wandb"]
            if raw == "True":
                self.put("log_with", "wandb", fields="use_wandb", kind=CONVERTED,
                         conversion='use_wandb "True" -> log_with "wandb"')
            elif raw is True:
                if _era_index(self.era) >= _era_index("K3"):
                    self.n.note("kohya-gui-use-wandb-dropped",
                                "use_wandb true is dropped by the GUI's migration (2024-04-19 on)", "use_wandb")
                else:
                    self.put("log_with", "wandb", fields="use_wandb", kind=CONVERTED,
                             conversion="use_wandb true -> log_with \"wandb\" (GUI of that era)")
        self.put_field("log_with", "log_with")
        self.put_field("wandb_api_key", "wandb_api_key")
        if self.has("wandb_run_name"):
            name = self.text("wandb_run_name")
            if name:
                self.put_field("wandb_run_name", "wandb_run_name")
            elif _era_index(self.era) >= _era_index("K3") and self.text("output_name"):
                out = self.text("output_name")
                self.put("wandb_run_name", out, fields=["wandb_run_name", "output_name"], kind=DERIVED,
                         conversion=f"wandb_run_name \"\" -> output_name {show(out)}")
                self.n.note("kohya-gui-wandb-run-name-default", f"wandb_run_name empty -> {show(out)}",
                            "wandb_run_name" if "wandb_run_name" in self.data else None, value=out)

    # ---- every other key: schema-driven rename / frontend-only / unknown -------------------------------
    def generic(self) -> None:
        props = _props()
        accel = []
        for field in list(self.state):
            if field in self.handled:
                continue
            self.handled.add(field)
            raw = self.state[field]
            key = self.key(field)
            p = props.get(field)
            defaulted = field in self.from_default
            if p is None:
                self.n.unknown(key, raw, "not a kohya_ss GUI key (the GUI's loader ignores it)")
                self.n.note("kohya-gui-key-ignored", f"{key} is not a GUI field and is ignored", key)
                continue
            if field in ACCELERATE_KEYS:
                if not defaulted:
                    accel.append(key)
                    self.n.frontend_only(key, raw, p.get("x-frontend-only") or "accelerate launch option")
                if field == "dynamo_backend" and not self.cmdline_era:
                    # since the 2024-04 TOML switch the GUI also writes it into the sd-scripts config
                    self.put_field("dynamo_backend", field, value_kind=STR, note="also written into the GUI's TOML")
                continue
            canon = p.get("x-canonical")
            if not canon:
                if not defaulted:
                    reason = p.get("x-frontend-only") or "only meaningful to the GUI"
                    self.n.frontend_only(key, raw, reason)
                    if p.get("x-ignored-by-loader"):
                        self.n.note("kohya-gui-key-ignored", f"{key}: {reason}", key)
                continue
            if p.get("x-requires") and not self.flag(p["x-requires"]):
                if not defaulted:
                    self.n.frontend_only(key, raw, f"only passed when {p['x-requires']} is set")
                continue
            if isinstance(raw, str) and raw in ("False", "True") and canonical_kind(canon) == STR:
                self.n.note("kohya-gui-truthy-string", f"{key} holds the string {show(raw)}, passed on as text",
                            key, value=raw)
            self.put_field(canon, field, value_kind=p.get("x-coerce"))
        if accel:
            self.n.note("kohya-gui-accelerate-options", "accelerate launch options: " + ", ".join(accel), accel[0],
                        keys=accel)

    def script(self) -> str:
        """The sd-scripts script the GUI runs: its first model checkbox that is set, in the GUI's order (sdxl,
        flux1, sd3 ...), among the scripts lora-compat reads; train_network.py otherwise. The extra arguments are
        parsed by that script's argparse (``--weighting_scheme`` is a flux_train_network.py option)."""
        from lora_compat.arch.families import KOHYA_GUI_CHECKBOXES

        for checkbox, script in KOHYA_GUI_CHECKBOXES:
            if self.flag(checkbox):
                return script if checkbox == "sdxl" or _config_supported(checkbox) else "train_network.py"
        return "train_network.py"

    def additional_parameters(self) -> None:
        """The raw tokens the GUI appends to sd-scripts' command line, parsed by the spine's argparse emulation
        (prefix abbreviations, nargs, types): what sd-scripts would refuse is an invalid value, what it accepts
        overrides the GUI's value (legacy-dialects.md §2.4)."""
        text = self.text("additional_parameters") if "additional_parameters" in self.data else ""
        if not text.strip():
            return
        from lora_compat.config.cmdline import ArgparseError, Token, parse_sd_scripts_args

        try:
            words = shlex.split(text.replace('"', "")) if self.cmdline_era else text.replace('"', "").split()
        except ValueError:
            words = text.replace('"', "").split()
        try:   # token positions are not used: findings point at the additional_parameters key
            parsed = parse_sd_scripts_args([Token(w, 1, 1) for w in words], script=self.script())
        except ArgparseError as exc:
            from lora_compat.config.secrets import redact_words

            self.n.invalid("additional_parameters", self.key("additional_parameters"), " ".join(redact_words(words)),
                           f"sd-scripts would refuse these extra arguments: {exc.message}")
            return
        applied = []
        for g in parsed.given:
            self.n.put(g.dest, g.value, kind=CONVERTED, keys="additional_parameters",
                       conversion=f"additional_parameters {show(g.written + (' ' + ' '.join(g.raw) if g.raw else ''))}"
                                  f" -> {g.dest} {show(g.value)} (command line overrides the GUI's value)")
            applied.append(g.dest)
        if applied:
            self.n.note("kohya-gui-additional-parameters", "additional parameters override: " + ", ".join(applied),
                        "additional_parameters", options=applied)

def _config_supported(checkbox: str) -> bool:
    """True when lora-compat reads the options of the script a model checkbox selects (FLUX.1 today)."""
    from lora_compat.arch.families import CONFIG, KOHYA_GUI_CHECKBOXES, is_supported, script_families

    script = dict(KOHYA_GUI_CHECKBOXES).get(checkbox)
    if not script:
        return False
    return any(is_supported(f, CONFIG) for f in script_families(script))


def _fmt_arg(value: Any) -> str:
    """A GUI value as the GUI's f-string wrote it into network_args (Python str(): True, 0.5, 4)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _invalid_number(raw: Any) -> bool:
    return not coerce(raw, FLOAT).ok


def _count_kohya_images(train_dir: str, config_path: str, image_counts: dict[str, int] | None = None) -> int | None:
    """Σ repeats x images over ``<int>_<name>`` sub-folders, counted the GUI's way (or given by ``--images``,
    by sub-folder name); None when the folder is not here and no counts were given."""
    from lora_compat.config.kohya_folder import given_folder_total

    if not train_dir:
        return given_folder_total(image_counts)
    path = train_dir
    if not os.path.isabs(path):
        base = os.path.dirname(os.path.abspath(config_path))
        path = os.path.join(base, path) if not os.path.isdir(path) else path
    if not os.path.isdir(path):
        return given_folder_total(image_counts)
    total = 0
    for entry in sorted(os.listdir(path)):
        sub = os.path.join(path, entry)
        if not os.path.isdir(sub):
            continue
        try:
            repeats = int(entry.split("_")[0])
        except ValueError:
            continue
        given = (image_counts or {}).get(entry)
        images = int(given) if given is not None else \
            sum(1 for f in os.listdir(sub) if f.lower().endswith(IMAGE_EXTENSIONS))
        total += repeats * images
    return total


def read(doc: Any, detection: Any = None) -> CanonicalConfig:
    """Normalize a kohya_ss GUI JSON document into the canonical model (never raises for bad values)."""
    from lora_compat.errors import UserError

    if not isinstance(doc.data, dict):
        raise UserError("a kohya_ss GUI config must be a JSON object", file=doc.path)
    era = getattr(detection, "era", None)
    tab = getattr(detection, "tab", None)
    if era not in ERAS or not tab:
        c_era, c_tab, _ = classify(doc.data)
        era = era if era in ERAS else c_era
        tab = tab or c_tab
    return _GuiReader(doc, era, tab).run()


def gui_prompt_text(cfg: CanonicalConfig) -> str | None:
    """The sample prompt text a kohya_ss GUI file holds inline, when ``sample_prompts`` is the file the GUI
    would have written it to at training time (that file does not exist before the GUI runs)."""
    s = cfg.options.get("sample_prompts")
    for n in cfg.notes:
        if n.code == PROMPT_TEXT_NOTE and s is not None and n.data.get("path") == s.value \
                and isinstance(n.data.get("text"), str):
            return n.data["text"]
    return None
