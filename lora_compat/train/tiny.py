"""Tiny Stable Diffusion models with the real SD1.x / SD2.x / SDXL module topology.

Tests, the demo and the benchmark need real models but must never download weights.  These
builders create randomly initialised diffusers/transformers models whose *module names* equal
the real checkpoints' (same block layout, same transformer-layer counts per block, same text
encoder layer counts, channel changes in the same places so ``conv_shortcut`` modules exist
where they do in the real UNet), while every width is tiny.  Therefore the kohya LoRA key
names that sd-scripts would create on the real model (golden ``kohya_lora_keys.json``) are
exactly the names we create on these models; only tensor widths differ.

Heavy libraries are imported inside functions so importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lora_compat.atomic import atomic_dir
from lora_compat.resources import DATA_DIR

Arch = Literal["sd1", "sd2", "sdxl"]
ARCHES: tuple[str, ...] = ("sd1", "sd2", "sdxl")

#: Shipped byte-level CLIP BPE vocabulary (512 byte tokens + 2 specials, no merges):
#: enough to tokenize any text offline with the real CLIPTokenizer class.
TINY_TOKENIZER_DIR = DATA_DIR / "models" / "tiny-clip-tokenizer"
TINY_VOCAB_SIZE = 514
BOS_ID, EOS_ID = 512, 513

# Real models: SD1 TE 12 layers (quick_gelu), SD2 OpenCLIP-H as used by diffusers 23 layers
# (gelu; the 24th layer is dropped in the converted checkpoints), SDXL TE1 12 layers, TE2
# 32 layers.  The layer counts are kept because kohya key names enumerate them.
_TE_LAYERS = {"sd1": [12], "sd2": [23], "sdxl": [12, 32]}
_TE_ACT = {"sd1": ["quick_gelu"], "sd2": ["gelu"], "sdxl": ["quick_gelu", "gelu"]}
# Tiny hidden widths (real: 768 / 1024 / 768+1280).
_TE_HIDDEN = {"sd1": [32], "sd2": [32], "sdxl": [32, 48]}

# Scheduler config of the real SD checkpoints (scaled_linear betas, 1000 steps).
_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}


@dataclass
class TinyComponents:
    """The parts of a tiny pipeline, ready for training."""

    unet: Any
    vae: Any
    text_encoders: list[Any]
    tokenizers: list[Any]
    noise_scheduler: Any
    arch: str
    extra: dict[str, Any] = field(default_factory=dict)


def _check_arch(arch: str) -> None:
    if arch not in ARCHES:
        raise ValueError(f"unknown tiny model architecture {arch!r}; expected one of {', '.join(ARCHES)}")


def tiny_unet_config(arch: str) -> dict[str, Any]:
    """UNet2DConditionModel config with the real block layout of ``arch`` and tiny widths."""
    _check_arch(arch)
    te_hidden = _TE_HIDDEN[arch]
    if arch in ("sd1", "sd2"):
        # Real: (320, 640, 1280, 1280); SD1 8 heads with conv proj_in/out, SD2 head counts [5, 10, 20, 20]
        # with linear proj_in/out. Channel doubling kept at the same places so conv_shortcut modules exist
        # where sd-scripts expects them.
        return {
            "sample_size": 8,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "block_out_channels": (16, 32, 64, 64),
            "layers_per_block": 2,
            "norm_num_groups": 8,
            "cross_attention_dim": te_hidden[0],
            "attention_head_dim": 8 if arch == "sd1" else (2, 4, 8, 8),
            "use_linear_projection": arch == "sd2",
        }
    # SDXL: real (320, 640, 1280), transformer layers [1, 2, 10] (mid block 10), heads
    # [5, 10, 20], text_time additional embedding from TE2's pooled output + 6 size numbers.
    time_dim = 8
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": (16, 32, 64),
        "layers_per_block": 2,
        "norm_num_groups": 8,
        "transformer_layers_per_block": (1, 2, 10),
        "cross_attention_dim": sum(te_hidden),
        "attention_head_dim": (2, 4, 8),
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": time_dim,
        "projection_class_embeddings_input_dim": te_hidden[1] + 6 * time_dim,
    }


def tiny_text_encoder_configs(arch: str) -> list[dict[str, Any]]:
    """CLIPTextConfig kwargs for each text encoder of ``arch`` (real layer counts, tiny widths)."""
    _check_arch(arch)
    out = []
    for layers, act, hidden in zip(_TE_LAYERS[arch], _TE_ACT[arch], _TE_HIDDEN[arch], strict=True):
        out.append(
            {
                "vocab_size": TINY_VOCAB_SIZE,
                "hidden_size": hidden,
                "intermediate_size": hidden * 2,
                "num_hidden_layers": layers,
                "num_attention_heads": 4,
                "max_position_embeddings": 77,
                "hidden_act": act,
                "projection_dim": hidden,
                "bos_token_id": BOS_ID,
                "eos_token_id": EOS_ID,
                "pad_token_id": EOS_ID,
            }
        )
    return out


def tiny_vae_config(arch: str = "sd1") -> dict[str, Any]:
    """AutoencoderKL config: 4 levels like the real SD VAE (8x downscale), tiny widths."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (8, 8, 16, 16),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "latent_channels": 4,
        "sample_size": 64,
        "scaling_factor": 0.13025 if arch == "sdxl" else 0.18215,  # the real VAEs' factors
    }


def load_tiny_tokenizer(pad_token: str = "<|endoftext|>") -> Any:
    """Build a real ``CLIPTokenizer`` offline from the shipped byte-level vocabulary."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(
        vocab=str(TINY_TOKENIZER_DIR / "vocab.json"),
        merges=str(TINY_TOKENIZER_DIR / "merges.txt"),
        pad_token=pad_token,
        model_max_length=77,
    )


def tiny_components(arch: str, seed: int = 0, *, prediction_type: str = "epsilon") -> TinyComponents:
    """Build tiny UNet, VAE, text encoder(s), tokenizer(s) and DDPM scheduler for ``arch``.

    Deterministic for a given ``seed``.  ``prediction_type`` ("epsilon" or "v_prediction")
    configures the scheduler the way a v-prediction SD2 checkpoint would.
    """
    _check_arch(arch)
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**tiny_unet_config(arch))
    vae = AutoencoderKL(**tiny_vae_config(arch))
    text_encoders = []
    tokenizers = []
    for i, te_kwargs in enumerate(tiny_text_encoder_configs(arch)):
        cfg = CLIPTextConfig(**te_kwargs)
        # SDXL's second encoder is CLIPTextModelWithProjection (its pooled, projected output
        # feeds the UNet's text_time embedding); every other encoder is a plain CLIPTextModel.
        cls = CLIPTextModelWithProjection if (arch == "sdxl" and i == 1) else CLIPTextModel
        text_encoders.append(cls(cfg))
        # SDXL's second tokenizer pads with "!" (id 0) like the real one.
        tokenizers.append(load_tiny_tokenizer("!" if (arch == "sdxl" and i == 1) else "<|endoftext|>"))
    for module in (unet, vae, *text_encoders):
        module.eval()
    sched_cfg = dict(_SCHEDULER_CONFIG, prediction_type=prediction_type)
    # The training scheduler sd-scripts builds: DDPM, scaled_linear, no sample clipping.
    noise_scheduler = DDPMScheduler(**sched_cfg, clip_sample=False)
    return TinyComponents(unet, vae, text_encoders, tokenizers, noise_scheduler, arch)


def save_tiny_pipeline(arch: str, path: str | os.PathLike[str], seed: int = 0, *,
                       prediction_type: str = "epsilon") -> Path:
    """Write a diffusers pipeline folder for the tiny ``arch`` model at ``path``.

    The folder loads offline with ``StableDiffusionPipeline.from_pretrained`` (sd1/sd2) or
    ``StableDiffusionXLPipeline.from_pretrained`` (sdxl).  Written to a temporary sibling and
    renamed into place so a crash never leaves a half-written model folder.
    """
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    comps = tiny_components(arch, seed, prediction_type=prediction_type)
    scheduler = EulerDiscreteScheduler(**dict(_SCHEDULER_CONFIG, prediction_type=prediction_type),
                                       steps_offset=1)
    if arch == "sdxl":
        pipe = StableDiffusionXLPipeline(
            vae=comps.vae, text_encoder=comps.text_encoders[0], text_encoder_2=comps.text_encoders[1],
            tokenizer=comps.tokenizers[0], tokenizer_2=comps.tokenizers[1], unet=comps.unet,
            scheduler=scheduler)
    else:
        pipe = StableDiffusionPipeline(
            vae=comps.vae, text_encoder=comps.text_encoders[0], tokenizer=comps.tokenizers[0],
            unet=comps.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
    dest = Path(path)
    with atomic_dir(dest, replace=True) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        # A marker so tools can tell which architecture a tiny folder holds without loading it.
        (tmp / "lora_compat_tiny.json").write_text(json.dumps({"arch": arch, "seed": seed}))
    return dest
