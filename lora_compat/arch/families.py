"""The model families lora-compat knows, as data: ids, names, sd-scripts scripts and network modules, metadata
strings, the options only some scripts accept, and which stages of the tool support each family today.

Light module (stdlib only; no torch, no ``lora_compat.weights``): the config spine, lint, plan, train and the
weights wing all read it. A family is decided once per input (``lora_compat.config.family`` for configs; the
weights wing for LoRA files) from what the input says; this module holds the facts those decisions use and the
small functions that read a base model's name, its diffusers folder or its safetensors header.

Facts come from sd-scripts 48d368f (the ``setup_parser`` of each training script and the ``add_*_arguments`` it
calls, ``library/sai_model_spec.py``, ``library/*_utils.py``), the kohya_ss GUI (``kohya_gui/lora_gui.py``: the
checkbox that picks the script) and diffusers' single-file key table (``CHECKPOINT_KEY_NAMES``).

Support lands stage by stage: a family's ``supported`` set is the one place to flip when a stage starts to
handle it (``config``: show/lint read its options; ``migrate``; ``plan``; ``train``; ``weights``: convert,
inspect, check). An unsupported stage refuses the family by name (``lora_compat.config.family.require_family``).
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CONFIG, MIGRATE, PLAN, TRAIN, WEIGHTS = "config", "migrate", "plan", "train", "weights"
#: Stages of the tool a family can be supported by (``config`` = show/lint understand its options).
STAGES: tuple[str, ...] = (CONFIG, MIGRATE, PLAN, TRAIN, WEIGHTS)
ALL_STAGES = frozenset(STAGES)

#: Network modules of sd-scripts' SD1/SD2/SDXL scripts (``networks/*.py`` that target the UNet + CLIP).
SD_NETWORK_MODULES = ("networks.lora", "networks.lora_fa", "networks.dylora", "networks.oft")


@dataclass(frozen=True)
class Family:
    """One model family: what names it in configs, in LoRA metadata and in base models, and what supports it."""

    id: str                                   # stable id used in --format json ("family") and everywhere else
    name: str                                 # display name: "FLUX.1"
    scripts: tuple[str, ...]                  # sd-scripts LoRA scripts that train it (the script's family default)
    network_modules: tuple[str, ...] = ()     # sd-scripts network modules written for it
    base_model_versions: tuple[str, ...] = ()  # ss_base_model_version values (sd-scripts, then other writers)
    modelspec_architectures: tuple[str, ...] = ()  # modelspec.architecture prefixes (before "/lora")
    supported: frozenset[str] = frozenset()   # stages that handle it today (see STAGES)
    sd: bool = False                          # a UNet family (SD1/SD2/SDXL): the SD code paths handle it
    note: str = ""                            # one line shown with the family where it helps ("detected only")

    def supports(self, stage: str) -> bool:
        """True when ``stage`` (one of :data:`STAGES`) handles this family today."""
        if stage not in ALL_STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        return stage in self.supported

    @property
    def script(self) -> str | None:
        """The LoRA training script named in messages (``flux_train_network.py``), None for detection-only."""
        return self.scripts[0] if self.scripts else None

    @property
    def label(self) -> str:
        """``FLUX.1 (flux_train_network.py)``: the name users see in refusals and lint."""
        return f"{self.name} ({self.script})" if self.script else self.name


_FAMILIES: tuple[Family, ...] = (
    Family("sd1", "SD1.x", ("train_network.py",), SD_NETWORK_MODULES, ("sd_v1", "sd_v1_v"),
           ("stable-diffusion-v1",), ALL_STAGES, sd=True),
    Family("sd2", "SD2.x", ("train_network.py",), SD_NETWORK_MODULES, ("sd_v2", "sd_v2_v"),
           ("stable-diffusion-v2",), ALL_STAGES, sd=True, note="train_network.py with --v2"),
    Family("sdxl", "SDXL", ("sdxl_train_network.py",), SD_NETWORK_MODULES, ("sdxl_base_v1-0",),
           ("stable-diffusion-xl",), ALL_STAGES, sd=True),
    # FLUX.1 support lands in this wave stage by stage (flux-config: config/migrate; flux-train: plan/train;
    # flux-weights: weights): each flips its stage here.
    Family("flux1", "FLUX.1", ("flux_train_network.py",), ("networks.lora_flux", "networks.oft_flux"),
           ("flux1", "flux.1"), ("flux-1",), frozenset({CONFIG, MIGRATE, PLAN, TRAIN, WEIGHTS})),
    Family("chroma", "Chroma", ("flux_train_network.py",), ("networks.lora_flux", "networks.oft_flux"),
           ("chroma",), ("chroma",), frozenset({CONFIG, MIGRATE, PLAN, WEIGHTS}),
           note="flux_train_network.py --model_type chroma"),
    Family("sd3", "SD3/SD3.5", ("sd3_train_network.py",), ("networks.lora_sd3",),
           ("medium", "5-large", "5-medium", "sd_3", "sd3"), ("stable-diffusion-3",), frozenset({WEIGHTS})),
    Family("lumina2", "Lumina-Image 2.0", ("lumina_train_network.py",), ("networks.lora_lumina",),
           ("lumina2",), ("lumina-2", "lumina"), frozenset()),
    Family("hunyuan_image", "HunyuanImage-2.1", ("hunyuan_image_train_network.py",),
           ("networks.lora_hunyuan_image",), ("hunyuan-image-2.1",), ("hunyuan-image",), frozenset()),
    Family("anima", "Anima", ("anima_train_network.py",), ("networks.lora_anima",), ("anima",),
           ("anima",), frozenset()),
    # Not trained by sd-scripts (musubi-tuner trains it): known so that a FLUX.2 base model or LoRA is named as
    # such instead of being taken for FLUX.1 (modern-archs.md §10 item 20, §11.1).
    Family("flux2", "FLUX.2", (), (), ("flux2", "flux.2"), ("flux-2",), frozenset(),
           note="not trained by sd-scripts"),
)

FAMILIES: dict[str, Family] = {f.id: f for f in _FAMILIES}
FAMILY_IDS: tuple[str, ...] = tuple(FAMILIES)
SD_FAMILIES: frozenset[str] = frozenset(f.id for f in _FAMILIES if f.sd)
FLUX_FAMILIES: frozenset[str] = frozenset({"flux1", "chroma"})


def family(family_id: str) -> Family:
    """The :class:`Family` of ``family_id``; ValueError for an unknown id."""
    try:
        return FAMILIES[family_id]
    except KeyError:
        raise ValueError(f"unknown model family {family_id!r}; expected one of {', '.join(FAMILY_IDS)}") from None


def display_name(family_id: str | None) -> str:
    """``FLUX.1`` for ``flux1``; the id itself when unknown; ``unknown`` for None."""
    if family_id is None:
        return "unknown"
    f = FAMILIES.get(family_id)
    return f.name if f else family_id


def is_supported(family_id: str, stage: str) -> bool:
    """True when ``stage`` handles ``family_id`` today."""
    return family(family_id).supports(stage)


def supported_families(stage: str) -> tuple[str, ...]:
    """Ids of the families ``stage`` handles today, in registry order."""
    return tuple(f.id for f in _FAMILIES if f.supports(stage))


# --- what a config says ---------------------------------------------------------------------------------------

#: sd-scripts LoRA training scripts -> the families they can train. One script may train several (the script's
#: options choose: ``--v2``, ``--model_type chroma``); the first is what the script trains by default.
SCRIPT_FAMILIES: dict[str, tuple[str, ...]] = {
    "train_network.py": ("sd1", "sd2"),
    "sdxl_train_network.py": ("sdxl",),
    "flux_train_network.py": ("flux1", "chroma"),
    "sd3_train_network.py": ("sd3",),
    "lumina_train_network.py": ("lumina2",),
    "hunyuan_image_train_network.py": ("hunyuan_image",),
    "anima_train_network.py": ("anima",),
}

#: sd-scripts network modules -> families they are written for. ``lycoris.kohya`` (any family) names none.
#: ``networks.loha``/``networks.lokr`` (kohya_ss' pinned sd-scripts): "native LoHa/LoKr only support SDXL and
#: Anima" (kohya_gui/lora_gui.py).
NETWORK_MODULE_FAMILIES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(SD_NETWORK_MODULES, ("sd1", "sd2", "sdxl")),
    "networks.lora_flux": ("flux1", "chroma"),
    "networks.oft_flux": ("flux1", "chroma"),
    "networks.lora_sd3": ("sd3",),
    "networks.lora_lumina": ("lumina2",),
    "networks.lora_hunyuan_image": ("hunyuan_image",),
    "networks.lora_anima": ("anima",),
    "networks.loha": ("sdxl", "anima"),
    "networks.lokr": ("sdxl", "anima"),
}

#: kohya_ss GUI checkboxes in the order the GUI picks the script (``lora_gui.py``: the first true one wins);
#: none set = train_network.py (``v2`` then picks SD2).
KOHYA_GUI_CHECKBOXES: tuple[tuple[str, str], ...] = (
    ("sdxl", "sdxl_train_network.py"),
    ("flux1_checkbox", "flux_train_network.py"),
    ("sd3_checkbox", "sd3_train_network.py"),
    ("hunyuan_image_checkbox", "hunyuan_image_train_network.py"),
    ("anima_checkbox", "anima_train_network.py"),
    ("lumina_checkbox", "lumina_train_network.py"),
)

#: Derrian UI TOML sections whose presence (non-empty) switches the script: the backend runs
#: flux_train_network.py for ``[flux_args]``; ``[anima_args]`` comes from forks that train Anima.
DERRIAN_SECTIONS: dict[str, str] = {
    "flux_args": "flux_train_network.py",
    "anima_args": "anima_train_network.py",
}

# Options each DiT script adds to train_network.py's parser (sd-scripts 48d368f; the three SDXL shares --
# cache_text_encoder_outputs, cache_text_encoder_outputs_to_disk, disable_mmap_load_safetensors -- are left out:
# sdxl_train_network.py accepts them too, so they name no single family).
_DIT_COMMON = ("text_encoder_batch_size", "weighting_scheme", "logit_mean", "logit_std", "mode_scale",
               "blocks_to_swap")
_SCRIPT_OPTIONS: dict[str, tuple[str, ...]] = {
    "flux_train_network.py": (
        *_DIT_COMMON, "clip_l", "t5xxl", "ae", "controlnet_model_name_or_path", "t5xxl_max_token_length",
        "apply_t5_attn_mask", "guidance_scale", "timestep_sampling", "sigmoid_scale", "model_prediction_type",
        "discrete_flow_shift", "model_type", "split_mode"),
    "sd3_train_network.py": (
        *_DIT_COMMON, "clip_l", "clip_g", "t5xxl", "save_clip", "save_t5xxl", "t5xxl_device", "t5xxl_dtype",
        "t5xxl_max_token_length", "apply_lg_attn_mask", "apply_t5_attn_mask", "clip_l_dropout_rate",
        "clip_g_dropout_rate", "t5_dropout_rate", "pos_emb_random_crop_rate", "enable_scaled_pos_embed",
        "training_shift"),
    "lumina_train_network.py": (
        *_DIT_COMMON, "gemma2", "ae", "gemma2_max_token_length", "timestep_sampling", "sigmoid_scale",
        "model_prediction_type", "discrete_flow_shift", "use_flash_attn", "use_sage_attn", "system_prompt",
        "sample_batch_size"),
    "hunyuan_image_train_network.py": (
        *_DIT_COMMON, "text_encoder", "byt5", "timestep_sampling", "sigmoid_scale", "model_prediction_type",
        "discrete_flow_shift", "fp8_scaled", "fp8_vl", "text_encoder_cpu", "vae_chunk_size", "attn_mode",
        "split_attn"),
    "anima_train_network.py": (
        *_DIT_COMMON, "qwen3", "llm_adapter_path", "llm_adapter_lr", "self_attn_lr", "cross_attn_lr", "mlp_lr",
        "mod_lr", "t5_tokenizer_path", "qwen3_max_token_length", "t5_max_token_length", "discrete_flow_shift",
        "timestep_sampling", "sigmoid_scale", "attn_mode", "split_attn", "vae_chunk_size", "vae_disable_cache",
        "unsloth_offload_checkpointing"),
}


def _option_families() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for script, names in _SCRIPT_OPTIONS.items():
        for name in names:
            for fam in SCRIPT_FAMILIES[script]:
                if fam not in out.setdefault(name, []):
                    out[name].append(fam)
    return {k: tuple(v) for k, v in out.items()}


#: Options that train_network.py and sdxl_train_network.py do not accept -> the families whose script does
#: (``guidance_scale`` -> FLUX.1/Chroma; ``clip_l`` -> FLUX.1/Chroma/SD3; ``ae`` -> FLUX.1/Chroma/Lumina).
FAMILY_OPTIONS: dict[str, tuple[str, ...]] = _option_families()

#: Values of flux_train_network.py's ``--model_type`` -> family.
FLUX_MODEL_TYPES: dict[str, str] = {"flux": "flux1", "chroma": "chroma"}


def script_families(script: str) -> tuple[str, ...]:
    """Families a LoRA training script (a file name) can train, default first; () for other scripts."""
    return SCRIPT_FAMILIES.get(script, ())


def network_module_families(module: str) -> tuple[str, ...]:
    """Families an sd-scripts network module is written for; () when it names none (lycoris.kohya, unknown)."""
    return NETWORK_MODULE_FAMILIES.get(module.strip(), ())


def family_of_script(script: str, *, v2: bool = False, model_type: str | None = None) -> str | None:
    """The family a LoRA script trains given its family switches (``--v2``, ``--model_type``); None if unknown."""
    fams = script_families(script)
    if not fams:
        return None
    if fams == ("sd1", "sd2"):
        return "sd2" if v2 else "sd1"
    if fams == ("flux1", "chroma"):
        return FLUX_MODEL_TYPES.get(str(model_type or "flux").lower(), "flux1")
    return fams[0]


# --- what a base model's name says (a hint) -------------------------------------------------------------------

# Most specific first: DiT families before SDXL (whose "xl" would also match "t5xxl"), SDXL before SD2/SD1.
_NAME_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((fam, re.compile(rx, re.I)) for fam, rx in (
    ("flux2", r"flux[-_. ]?2(?![0-9])"),
    ("chroma", r"(?<![a-z])chroma"),
    ("flux1", r"flux"),
    ("sd3", r"(?<![a-z])sd[-_]?3|stable[-_ ]?diffusion[-_ ]?3"),
    ("lumina2", r"lumina"),
    ("hunyuan_image", r"hunyuan[-_ ]?image"),
    ("anima", r"(?<![a-z])anima(?![a-z])"),
    ("sdxl", r"(?<![a-z])sd[-_]?xl|stable[-_ ]?diffusion[-_ ]?xl|xl(?![a-z])|(?<![a-z])pony"),
    ("sd2", r"(?<![a-z])sd[-_]?v?2(?![0-9])|(?<![a-z0-9])v2[-_.]?[01](?![0-9])|stable[-_ ]?diffusion[-_ ]?2"
            r"(?![0-9])|768[-_]v(?![a-z])"),
    ("sd1", r"(?<![a-z])sd[-_]?v?1[-_.]?[45](?![0-9])|(?<![a-z0-9])v1[-_.][45](?![0-9])"
            r"|stable[-_ ]?diffusion[-_ ]?v?1[-_.]?[45]"),
))


@dataclass(frozen=True)
class NameHint:
    """A family suggested by a base model's name (weak evidence: names lie, files do not)."""

    family: str
    text: str          # the part of the name that matched, e.g. "flux1-dev.safetensors"
    where: str         # "name" (the file/folder itself, or a hub id) or "folder name" (the folder holding it)


def family_from_model_name(name: str) -> NameHint | None:
    """The family a base model's file/folder name or hub id suggests (``sd_xl_base_1.0`` -> sdxl,
    ``flux1-dev.safetensors`` -> flux1, ``sd3.5_large`` -> sd3, ``black-forest-labs/FLUX.1-dev`` -> flux1).

    Only the last path component is read, then the folder holding it; None when neither names a family.
    """
    text = str(name or "").strip().strip("\"'")
    if not text:
        return None
    parts = [p for p in re.split(r"[\\/]", text) if p]
    if not parts:
        return None
    candidates = [(parts[-1], "name")] + ([(parts[-2], "folder name")] if len(parts) > 1 else [])
    for part, where in candidates:
        for fam, rx in _NAME_HINTS:
            if rx.search(part):
                return NameHint(fam, part, where)
    return None


# --- what a base model's content says ------------------------------------------------------------------------

@dataclass(frozen=True)
class ContentFamily:
    """The family a base model's files show, and why (``transformer/config.json: FluxTransformer2DModel``)."""

    family: str
    why: str
    variant: str | None = None   # "dev" / "schnell" (FLUX.1), "5-large" (SD3) ... when the files tell


_PIPELINE_CLASSES: tuple[tuple[str, str | None], ...] = (
    # (class-name prefix, family); None = SD1 or SD2, decided by the UNet / text-encoder width
    ("StableDiffusionXL", "sdxl"), ("StableDiffusion3", "sd3"), ("StableDiffusion", None),
    ("Flux2", "flux2"), ("Flux", "flux1"), ("Chroma", "chroma"), ("Lumina2", "lumina2"),
    ("HunyuanImage", "hunyuan_image"), ("AnimaModular", "anima"), ("AnimaPipeline", "anima"),
)
_TRANSFORMER_CLASSES: dict[str, str] = {
    "FluxTransformer2DModel": "flux1", "ChromaTransformer2DModel": "chroma", "Flux2Transformer2DModel": "flux2",
    "SD3Transformer2DModel": "sd3", "Lumina2Transformer2DModel": "lumina2",
    "HunyuanImageTransformer2DModel": "hunyuan_image",
}
#: UNet cross-attention width -> SD family (the text encoder's hidden size the UNet attends to).
_CROSS_ATTENTION_DIMS: dict[int, str] = {768: "sd1", 1024: "sd2", 2048: "sdxl"}


def family_from_model_index(index: dict[str, Any], unet_config: dict[str, Any] | None = None,
                            text_encoder_config: dict[str, Any] | None = None) -> str | None:
    """Family of a diffusers pipeline from its ``model_index.json`` (``_class_name``); SD1 vs SD2 from the UNet and
    text-encoder configs (:func:`sd_family_from_configs`). None when the class names no known family, or names
    ``StableDiffusionPipeline`` and the configs do not tell SD1 from SD2."""
    cls = str(index.get("_class_name") or "")
    for prefix, fam in _PIPELINE_CLASSES:
        if cls.startswith(prefix):
            return fam if fam is not None else sd_family_from_configs(unet_config, text_encoder_config)
    if "text_encoder_2" in index and "unet" in index:
        return "sdxl"
    return None


def sd_family_from_configs(unet_config: dict[str, Any] | None,
                           text_encoder_config: dict[str, Any] | None) -> str | None:
    """SD1 or SD2 of a ``StableDiffusionPipeline``: the UNet's ``cross_attention_dim`` (768 / 1024), else the text
    encoder's ``hidden_size``, else the UNet's ``use_linear_projection`` (SD2's transformer blocks project with
    Linear layers, SD1's with 1x1 convs; the rule that also holds for narrow test models), else the text encoder's
    activation (OpenCLIP ``gelu`` vs CLIP ViT-L ``quick_gelu``)."""
    unet = unet_config or {}
    te = text_encoder_config or {}
    fam = family_from_unet_config(unet) if unet else None
    if fam in ("sd1", "sd2"):
        return fam
    if te.get("hidden_size") in (768, 1024):
        return "sd1" if te["hidden_size"] == 768 else "sd2"
    if isinstance(unet.get("use_linear_projection"), bool):
        return "sd2" if unet["use_linear_projection"] else "sd1"
    act = te.get("hidden_act")
    return {"gelu": "sd2", "quick_gelu": "sd1"}.get(act) if isinstance(act, str) else None


def family_from_unet_config(config: dict[str, Any]) -> str | None:
    """SD family of a diffusers ``UNet2DConditionModel`` config (``cross_attention_dim`` 768/1024/2048)."""
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    dim = config.get("cross_attention_dim")
    return _CROSS_ATTENTION_DIMS.get(dim) if isinstance(dim, int) else None


def family_from_transformer_config(config: dict[str, Any]) -> str | None:
    """Family of a diffusers transformer from its ``config.json`` ``_class_name`` (FluxTransformer2DModel ...)."""
    return _TRANSFORMER_CLASSES.get(str(config.get("_class_name") or ""))


# Checkpoint key signatures (single-file base models), after removing a ``model.diffusion_model.`` / ``net.``
# prefix. Sources: sd-scripts flux_utils.analyze_checkpoint_state, sd3_utils.analyze_state_dict_state, the model
# classes of chroma/lumina/hunyuan_image/anima, diffusers' CHECKPOINT_KEY_NAMES. Order: most specific first.
_KEY_SIGNATURES: tuple[tuple[str, tuple[tuple[str, ...], ...], str], ...] = (
    # (family, alternatives: each a tuple of key prefixes that must all be present, why)
    ("flux2", (("single_stream_modulation.lin.",), ("double_stream_modulation_img.",)), "FLUX.2 shared modulation"),
    ("chroma", (("distilled_guidance_layer.",),), "Chroma's distilled_guidance_layer"),
    ("hunyuan_image", (("byt5_in.",), ("context_embedder_2.",), ("time_guidance_embed.",)),
     "HunyuanImage's ByT5 embedder"),
    ("flux1", (("double_blocks.0.img_attn.qkv.",),
               ("transformer_blocks.0.attn.add_k_proj.", "single_transformer_blocks.0.")),
     "FLUX.1 double/single blocks"),
    ("sd3", (("joint_blocks.0.",), ("pos_embed.proj.", "transformer_blocks.0.attn.add_k_proj.")), "SD3 joint blocks"),
    ("lumina2", (("cap_embedder.",), ("context_refiner.0.",)), "Lumina 2 cap_embedder/context_refiner"),
    ("anima", (("llm_adapter.",),), "Anima's llm_adapter"),
)
_STRIP_PREFIXES = ("model.diffusion_model.", "net.", "model.")


def family_from_checkpoint_keys(keys: Iterable[str], shapes: Mapping[str, Iterable[int]] | None = None
                                ) -> ContentFamily | None:
    """Family of a single-file base model from its tensor names (and shapes, which tell SD1 from SD2 in a bare UNet).

    Recognises BFL/ComfyUI FLUX.1 (dev/schnell), Chroma, FLUX.2, SD3/3.5, Lumina 2, HunyuanImage-2.1, Anima, and
    LDM/SGM SD1/SD2/SDXL checkpoints (and diffusers UNet/transformer files). None when nothing matches.
    """
    keys = list(keys)
    shapes = shapes or {}
    stripped = set()
    for k in keys:
        for p in _STRIP_PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
                break
        stripped.add(k)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in stripped)

    if any(k.startswith("conditioner.embedders.") for k in keys) or has("label_emb.") or has("add_embedding."):
        return ContentFamily("sdxl", "SDXL keys (conditioner.embedders / label_emb)")
    for fam, alternatives, why in _KEY_SIGNATURES:
        if any(all(has(p) for p in alt) for alt in alternatives):
            variant = None
            if fam == "flux1":
                dev = has("guidance_in.") or has("time_text_embed.guidance_embedder.")
                variant = "dev" if dev else "schnell"
                why += f" ({'guidance_in present: dev' if dev else 'no guidance_in: schnell'})"
            elif fam == "sd3":
                variant = ("5-medium" if has("joint_blocks.0.x_block.attn2.") or any(
                    ".x_block.attn2." in k for k in stripped) else
                    "5-large" if has("joint_blocks.0.context_block.attn.ln_k.") else "medium")
            return ContentFamily(fam, why, variant)
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return ContentFamily("sd2", "OpenCLIP text encoder (cond_stage_model.model)")
    for name, shape in shapes.items():
        if name.endswith("attn2.to_k.weight"):
            dims = list(shape)
            width_family = _CROSS_ATTENTION_DIMS.get(dims[-1]) if dims else None
            if width_family:
                return ContentFamily(width_family, f"cross-attention width {dims[-1]} ({name})")
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return ContentFamily("sd1", "CLIP ViT-L text encoder (cond_stage_model.transformer)")
    if has("input_blocks.") or has("down_blocks."):
        return ContentFamily("sd1", "SD UNet keys without an SD2/SDXL marker")
    return None


_METADATA_VERSION = {v: f.id for f in _FAMILIES for v in f.base_model_versions}


def family_from_metadata(metadata: dict[str, str]) -> str | None:
    """Family named by a LoRA's or model's safetensors metadata: ``ss_base_model_version`` (sd-scripts:
    ``sd_v1``, ``sdxl_base_v1-0``, ``flux1``, ``chroma``, SD3's bare ``medium``/``5-large``; ai-toolkit:
    ``flux.1``, ``sd_3``), else ``modelspec.architecture`` (``flux-1-dev/lora``, ``stable-diffusion-3-medium``)."""
    version = str(metadata.get("ss_base_model_version") or "").strip()
    if version:
        if version in _METADATA_VERSION:
            return _METADATA_VERSION[version]
        for prefix, fam in (("sdxl", "sdxl"), ("sd_v2", "sd2"), ("sd_v1", "sd1"), ("flux.2", "flux2"),
                            ("flux2", "flux2"), ("flux", "flux1"), ("hunyuan-image", "hunyuan_image"),
                            ("lumina", "lumina2")):
            if version.startswith(prefix):
                return fam
    arch = str(metadata.get("modelspec.architecture") or "").strip().split("/")[0]
    if arch:
        # longest prefix first: "stable-diffusion-xl" before "stable-diffusion-v1"
        table = sorted(((p, f.id) for f in _FAMILIES for p in f.modelspec_architectures), key=lambda t: -len(t[0]))
        for prefix, fam in table:
            if arch.startswith(prefix):
                return fam
    if metadata.get("ss_v2") in ("True", "False"):
        return "sd2" if metadata["ss_v2"] == "True" else "sd1"
    return None


# --- reading a base model on this machine (no torch: JSON files and the safetensors header) ---------------------

MAX_HEADER_BYTES = 100 * 1024 * 1024


def read_safetensors_keys(path: str) -> tuple[dict[str, list[int]], dict[str, str]] | None:
    """``({tensor name: shape}, metadata)`` from a safetensors header, or None when the file is not one.

    A deliberately small reader (8-byte length + JSON): ``arch/`` must not import ``lora_compat.weights``, whose
    :func:`~lora_compat.weights.safetensors_io.read_header` also validates every offset for conversion. Here a
    bad file is just "no answer" (the caller falls back to the name hint).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n <= 1 or n > MAX_HEADER_BYTES:
                return None
            raw = fh.read(n)
        header = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.pop("__metadata__", None)
    shapes = {k: list(v.get("shape") or []) for k, v in header.items() if isinstance(v, dict)}
    return shapes, (meta if isinstance(meta, dict) else {})


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def family_of_model_path(path: str) -> ContentFamily | None:
    """The family of a base model on this machine: a diffusers folder (``model_index.json``, or a component's
    ``config.json``: ``transformer/``, ``unet/``) or a ``.safetensors`` file (header keys, then metadata).

    None when the path does not exist or its files do not tell (a pickled ``.ckpt`` is never opened: reading one
    can run code). Reads only JSON and the safetensors header, never tensors.
    """
    if not path:
        return None
    if os.path.isdir(path):
        return _family_of_folder(path)
    if not os.path.isfile(path) or not path.lower().endswith(".safetensors"):
        return None
    found = read_safetensors_keys(path)
    if found is None:
        return None
    shapes, meta = found
    result = family_from_checkpoint_keys(shapes, shapes)
    if result is not None:
        return ContentFamily(result.family, f"{os.path.basename(path)}: {result.why}", result.variant)
    fam = family_from_metadata(meta)
    if fam is not None:
        return ContentFamily(fam, f"{os.path.basename(path)}: metadata names {display_name(fam)}")
    return None


def _family_of_folder(path: str) -> ContentFamily | None:
    join = os.path.join
    index = _read_json(join(path, "model_index.json"))
    unet = _read_json(join(path, "unet", "config.json"))
    if index is not None:
        fam = family_from_model_index(index, unet, _read_json(join(path, "text_encoder", "config.json")))
        if fam is not None:
            return ContentFamily(fam, f"model_index.json: {index.get('_class_name')}")
    for sub in ("transformer", ""):
        cfg = _read_json(join(path, sub, "config.json")) if sub else _read_json(join(path, "config.json"))
        if cfg is None:
            continue
        fam = family_from_transformer_config(cfg) or family_from_unet_config(cfg)
        if fam is not None:
            where = f"{sub}/config.json" if sub else "config.json"
            return ContentFamily(fam, f"{where}: {cfg.get('_class_name') or 'cross_attention_dim'}")
    if unet is not None:
        fam = family_from_unet_config(unet)
        if fam is not None:
            return ContentFamily(fam, f"unet/config.json: cross_attention_dim {unet.get('cross_attention_dim')}")
    return None

