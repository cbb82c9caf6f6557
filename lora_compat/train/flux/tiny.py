"""Tiny FLUX.1 models with the real module topology: the DiT, the 16-channel AE, CLIP-L and T5-XXL.

Like :mod:`lora_compat.train.tiny` for SD, these are randomly initialised diffusers / transformers models whose
module names equal the real checkpoints' while every width is tiny:

* ``FluxTransformer2DModel``: double-stream (``transformer_blocks``) and single-stream
  (``single_transformer_blocks``) blocks, 64 packed input channels (16 latent channels x 2x2), a guidance
  embedder for dev and none for schnell. Block counts default to a few; pass the real 19 / 38 to get every
  kohya module name sd-scripts creates on the real model.
* ``AutoencoderKL`` shaped like FLUX's ``ae``: 4 levels (8x down-scale), 16 latent channels, no quant convs,
  FLUX's ``scaling_factor`` 0.3611 and ``shift_factor`` 0.1159.
* CLIP-L (``CLIPTextModel``, 12 layers; its pooled output conditions the DiT) with the shipped byte-level CLIP
  vocabulary, and T5-XXL (``T5EncoderModel``, 24 gated-GELU layers) with a shipped character-level Unigram
  tokenizer (``lora_compat/data/models/tiny-t5-tokenizer``): everything works offline.

Heavy libraries are imported inside functions.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_compat.arch import flux as arch_flux
from lora_compat.atomic import atomic_dir
from lora_compat.resources import DATA_DIR
from lora_compat.train.tiny import BOS_ID, EOS_ID, TINY_VOCAB_SIZE, load_tiny_tokenizer

VARIANTS = arch_flux.TINY_VARIANTS
TINY_T5_TOKENIZER_DIR = DATA_DIR / "models" / "tiny-t5-tokenizer"

#: The real FLUX.1 AE's latent normalisation (diffusers' vae config, BFL ``AutoEncoderParams``).
AE_SCALING_FACTOR = 0.3611
AE_SHIFT_FACTOR = 0.1159
LATENT_CHANNELS = 16

# Real: 24 heads x 128 (inner 3072), rope axes (16, 56, 56); T5 4096, CLIP-L pooled 768.
TINY_HEADS, TINY_HEAD_DIM, TINY_ROPE_AXES = 2, 16, (4, 6, 6)
TINY_CLIP_HIDDEN = 32
TINY_T5_D_MODEL = 32
DEFAULT_DOUBLE_BLOCKS, DEFAULT_SINGLE_BLOCKS = arch_flux.TINY_DOUBLE_BLOCKS, arch_flux.TINY_SINGLE_BLOCKS
REAL_DOUBLE_BLOCKS, REAL_SINGLE_BLOCKS = arch_flux.FLUX_WIDTHS.double, arch_flux.FLUX_WIDTHS.single
CLIP_L_LAYERS, T5_XXL_LAYERS = arch_flux.CLIP_L.layers, arch_flux.T5_XXL.layers


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown FLUX.1 variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def tiny_transformer_config(variant: str = "dev", num_layers: int = DEFAULT_DOUBLE_BLOCKS,
                            num_single_layers: int = DEFAULT_SINGLE_BLOCKS) -> dict[str, Any]:
    """``FluxTransformer2DModel`` kwargs: FLUX.1's layout at tiny width (guidance embedder for dev only)."""
    _check_variant(variant)
    return {"patch_size": 1, "in_channels": LATENT_CHANNELS * 4, "num_layers": num_layers,
            "num_single_layers": num_single_layers, "attention_head_dim": TINY_HEAD_DIM,
            "num_attention_heads": TINY_HEADS, "joint_attention_dim": TINY_T5_D_MODEL,
            "pooled_projection_dim": TINY_CLIP_HIDDEN, "guidance_embeds": variant == "dev",
            "axes_dims_rope": TINY_ROPE_AXES}


def tiny_vae_config() -> dict[str, Any]:
    """``AutoencoderKL`` kwargs shaped like FLUX's AE (16 latent channels, no quant convs, FLUX factors)."""
    return {"in_channels": 3, "out_channels": 3, "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4, "block_out_channels": (8, 8, 16, 16),
            "layers_per_block": 1, "norm_num_groups": 4, "latent_channels": LATENT_CHANNELS, "sample_size": 64,
            "scaling_factor": AE_SCALING_FACTOR, "shift_factor": AE_SHIFT_FACTOR, "use_quant_conv": False,
            "use_post_quant_conv": False, "mid_block_add_attention": True}


def tiny_clip_config() -> dict[str, Any]:
    """``CLIPTextConfig`` kwargs: CLIP-L's 12 layers at tiny width, the shipped byte-level vocabulary."""
    return {"vocab_size": TINY_VOCAB_SIZE, "hidden_size": TINY_CLIP_HIDDEN,
            "intermediate_size": TINY_CLIP_HIDDEN * 2, "num_hidden_layers": CLIP_L_LAYERS, "num_attention_heads": 4,
            "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": TINY_CLIP_HIDDEN,
            "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": EOS_ID}


def tiny_t5_vocab() -> list[tuple[str, float]]:
    """The tiny T5 Unigram vocabulary: T5's ``<pad>``=0, ``</s>``=1, ``<unk>``=2, the word-start ``▁``, then one
    piece per printable ASCII character (any ASCII text tokenizes, character by character)."""
    chars = [c for c in string.printable if c not in string.whitespace]
    return [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)] + [(c, -3.0) for c in chars]


def tiny_t5_config() -> dict[str, Any]:
    """``T5Config`` kwargs: T5-XXL (v1.1: gated GELU, untied head) with its 24 layers at tiny width."""
    return {"vocab_size": len(tiny_t5_vocab()), "d_model": TINY_T5_D_MODEL, "d_kv": 8,
            "d_ff": TINY_T5_D_MODEL * 2, "num_layers": T5_XXL_LAYERS, "num_decoder_layers": T5_XXL_LAYERS,
            "num_heads": 4, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
            "dropout_rate": 0.0, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "gated-gelu",
            "tie_word_embeddings": False, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}


def build_tiny_t5_tokenizer_json() -> str:
    """The ``tokenizer.json`` of the shipped tiny T5 tokenizer (T5's Metaspace pre-tokenizer, ``</s>`` appended)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(tiny_t5_vocab(), unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"],
                                                       special_tokens=[("</s>", 1)])
    return tok.to_str(pretty=True)


def load_tiny_t5_tokenizer() -> Any:
    """The shipped tiny T5 tokenizer as transformers' ``T5TokenizerFast`` (offline)."""
    from transformers import T5TokenizerFast

    return T5TokenizerFast.from_pretrained(str(TINY_T5_TOKENIZER_DIR))


@dataclass
class FluxComponents:
    """The parts of a FLUX.1 pipeline ready for training (``clip_l`` is None for Chroma)."""

    transformer: Any
    vae: Any
    clip_l: Any
    t5xxl: Any
    clip_tokenizer: Any
    t5_tokenizer: Any
    variant: str                      # "dev" | "schnell"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_schnell(self) -> bool:
        """True for FLUX.1 schnell (no guidance embedder)."""
        return self.variant == "schnell"


def tiny_flux_components(variant: str = "dev", seed: int = 0, *, num_layers: int = DEFAULT_DOUBLE_BLOCKS,
                         num_single_layers: int = DEFAULT_SINGLE_BLOCKS) -> FluxComponents:
    """Build the tiny DiT, AE, CLIP-L, T5-XXL and both tokenizers (deterministic for ``seed``, eval mode)."""
    _check_variant(variant)
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**tiny_transformer_config(variant, num_layers, num_single_layers))
    vae = AutoencoderKL(**tiny_vae_config())
    clip_l = CLIPTextModel(CLIPTextConfig(**tiny_clip_config()))
    t5 = T5EncoderModel(T5Config(**tiny_t5_config()))
    for module in (transformer, vae, clip_l, t5):
        module.eval()
    return FluxComponents(transformer, vae, clip_l, t5, load_tiny_tokenizer(), load_tiny_t5_tokenizer(), variant)


def save_tiny_flux_pipeline(path: str | os.PathLike[str], variant: str = "dev", seed: int = 0, *,
                            num_layers: int = DEFAULT_DOUBLE_BLOCKS,
                            num_single_layers: int = DEFAULT_SINGLE_BLOCKS) -> Path:
    """Write a diffusers ``FluxPipeline`` folder for the tiny model at ``path`` (atomically).

    The folder loads offline with ``FluxPipeline.from_pretrained`` and with
    :func:`lora_compat.train.flux.models.load_flux_models`.
    """
    from diffusers import FluxPipeline

    comps = tiny_flux_components(variant, seed, num_layers=num_layers, num_single_layers=num_single_layers)
    from lora_compat.train.flux.sampling import make_flow_scheduler

    scheduler = make_flow_scheduler(3.0 if variant == "dev" else 1.0)
    pipe = FluxPipeline(scheduler=scheduler, vae=comps.vae, text_encoder=comps.clip_l,
                        tokenizer=comps.clip_tokenizer, text_encoder_2=comps.t5xxl, tokenizer_2=comps.t5_tokenizer,
                        transformer=comps.transformer)
    dest = Path(path)
    with atomic_dir(dest, replace=True) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        (tmp / "lora_compat_tiny.json").write_text(json.dumps({"family": "flux1", "variant": variant,
                                                               "seed": seed}))
    return dest
