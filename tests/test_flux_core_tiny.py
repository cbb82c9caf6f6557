"""The tiny FLUX.1 models: real module topology at tiny width, offline tokenizers, a loadable pipeline folder."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.train.flux.tiny import (  # noqa: E402
    AE_SCALING_FACTOR,
    AE_SHIFT_FACTOR,
    TINY_T5_TOKENIZER_DIR,
    build_tiny_t5_tokenizer_json,
    save_tiny_flux_pipeline,
    tiny_flux_components,
)


def test_shipped_t5_tokenizer_is_the_builders() -> None:
    assert (TINY_T5_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8").strip() == \
        build_tiny_t5_tokenizer_json().strip()


def test_topology_and_tokenizers() -> None:
    dev = tiny_flux_components("dev")
    schnell = tiny_flux_components("schnell")
    names = {n for n, _ in dev.transformer.named_modules()}
    assert {"transformer_blocks.1.attn.add_q_proj", "single_transformer_blocks.3.proj_mlp",
            "time_text_embed.guidance_embedder.linear_1", "norm_out.linear"} <= names
    assert not any("guidance_embedder" in n for n, _ in schnell.transformer.named_modules())
    assert dev.transformer.config.in_channels == 64 and dev.vae.config.latent_channels == 16
    assert dev.vae.config.scaling_factor == AE_SCALING_FACTOR and dev.vae.config.shift_factor == AE_SHIFT_FACTOR
    assert dev.clip_l.config.num_hidden_layers == 12
    assert dev.t5xxl.config.num_layers == 24 and dev.t5xxl.config.is_gated_act
    ids = dev.t5_tokenizer(["a cat", "a photo of a dog"], max_length=12, padding="max_length", truncation=True,
                           return_tensors="pt")
    assert ids.input_ids.shape == (2, 12) and ids.input_ids[0, 6].item() == 1       # </s> after ▁ a ▁ c a t
    assert ids.attention_mask[0].tolist() == [1] * 7 + [0] * 5 and ids.input_ids[0, 7:].eq(0).all()
    assert dev.t5_tokenizer.convert_ids_to_tokens(ids.input_ids[0, :5].tolist()) == ["\u2581", "a", "\u2581", "c", "a"]


def test_pipeline_folder_loads_offline(tmp_path) -> None:
    from diffusers import FluxPipeline

    path = save_tiny_flux_pipeline(tmp_path / "tiny-flux", "schnell")
    pipe = FluxPipeline.from_pretrained(path, local_files_only=True)
    assert pipe.transformer.config.guidance_embeds is False
    assert pipe.tokenizer_2("a cat").input_ids[-1] == 1
