"""Single-file (original LDM/SGM layout) base models load with exactly the weights they hold.

No real checkpoint exists offline, so the tiny diffusers model is written into one ``.safetensors`` file with the
original key layout (the inverse of diffusers' ``convert_ldm_unet_checkpoint`` / ``convert_ldm_vae_checkpoint`` /
``convert_ldm_clip_checkpoint`` / ``convert_open_clip_checkpoint`` mappings, written here from those facts) and
loaded through ``load_models`` with the tiny model's configs (``config_dir=``), whose folder holds no weights, so
every tensor must come from the checkpoint.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

from lora_compat.train.models import load_models  # noqa: E402
from lora_compat.train.tiny import (  # noqa: E402
    TINY_TOKENIZER_DIR,
    save_tiny_pipeline,
    tiny_components,
)

# diffusers ResnetBlock2D name -> LDM ResBlock name (UNet)
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
                "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
# diffusers VAE Attention name -> LDM AttnBlock name (1x1 convolutions there)
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet_rest(rest: str, table: dict[str, str]) -> str:
    head, _, tail = rest.partition(".")
    return f"{table.get(head, head)}.{tail}"


def unet_to_ldm(sd: dict[str, Any], layers_per_block: int) -> dict[str, Any]:
    """diffusers UNet2DConditionModel state dict -> ``model.diffusion_model.*`` keys."""
    per = layers_per_block + 1  # LDM numbers resnets+attention pairs and the down/upsampler consecutively
    up_has_attn = {int(m.group(1)) for k in sd if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out = {}
    for key, t in sd.items():
        module, _, param = key.rpartition(".")
        if module in _UNET_TOP:
            new = f"{_UNET_TOP[module]}.{param}"
        elif m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"input_blocks.{1 + int(m[1]) * per + int(m[2])}.0.{_resnet_rest(m[3], _UNET_RESNET)}"
        elif m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
            new = f"input_blocks.{1 + int(m[1]) * per + int(m[2])}.1.{m[3]}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            new = f"input_blocks.{1 + int(m[1]) * per + layers_per_block}.0.op.{m[2]}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.+)", key):
            new = f"middle_block.{2 * int(m[1])}.{_resnet_rest(m[2], _UNET_RESNET)}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.+)", key):
            new = f"middle_block.1.{m[1]}"
        elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"output_blocks.{int(m[1]) * per + int(m[2])}.0.{_resnet_rest(m[3], _UNET_RESNET)}"
        elif m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
            new = f"output_blocks.{int(m[1]) * per + int(m[2])}.1.{m[3]}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            # the upsampler follows the attention when the block has one
            slot = 2 if int(m[1]) in up_has_attn else 1
            new = f"output_blocks.{int(m[1]) * per + layers_per_block}.{slot}.conv.{m[2]}"
        else:
            raise AssertionError(f"unmapped UNet key {key}")
        out["model.diffusion_model." + new] = t
    return out


def vae_to_ldm(sd: dict[str, Any], num_up_blocks: int) -> dict[str, Any]:
    """diffusers AutoencoderKL state dict -> ``first_stage_model.*`` keys."""
    out = {}
    for key, t in sd.items():
        new = key
        if m := re.match(r"(encoder|decoder)\.conv_norm_out\.(.+)", key):
            new = f"{m[1]}.norm_out.{m[2]}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            new = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            # LDM numbers decoder levels from the lowest resolution up: reversed
            new = (f"decoder.up.{num_up_blocks - 1 - int(m[1])}.block.{m[2]}."
                   f"{m[3].replace('conv_shortcut', 'nin_shortcut')}")
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            new = f"decoder.up.{num_up_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
            new = f"{m[1]}.mid.attn_1.{_VAE_ATTN[m[2]]}.{m[3]}"
            if t.ndim == 2:  # LDM's attention projections are 1x1 convolutions
                t = t[:, :, None, None]
        out["first_stage_model." + new] = t
    return out


def clip_to_ldm(sd: dict[str, Any], prefix: str) -> dict[str, Any]:
    """HF CLIPTextModel state dict -> ``<prefix>text_model.*`` (the checkpoints keep the transformers-4 layout)."""
    return {prefix + "text_model." + k.removeprefix("text_model."): t for k, t in sd.items()}


def open_clip_to_ldm(sd: dict[str, Any], prefix: str) -> dict[str, Any]:
    """HF CLIPTextModelWithProjection state dict -> OpenCLIP ``<prefix>*`` keys (fused q/k/v, transposed
    text_projection)."""
    top = {"embeddings.position_embedding.weight": "positional_embedding",
           "embeddings.token_embedding.weight": "token_embedding.weight",
           "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
    layer = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
             "self_attn.out_proj": "attn.out_proj"}
    out: dict[str, Any] = {}
    qkv: dict[str, dict[str, Any]] = {}
    for key, t in sd.items():
        if key == "text_projection.weight":
            out[prefix + "text_projection"] = t.T.contiguous()
            continue
        k = key.removeprefix("text_model.")
        if k in top:
            out[prefix + top[k]] = t
            continue
        m = re.match(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", k)
        assert m, f"unmapped CLIP key {key}"
        base = f"{prefix}transformer.resblocks.{m[1]}."
        if mm := re.fullmatch(r"self_attn\.([qkv])_proj", m[2]):
            qkv.setdefault(f"{base}attn.in_proj_{m[3]}", {})[mm[1]] = t
        else:
            out[f"{base}{layer[m[2]]}.{m[3]}"] = t
    for name, parts in qkv.items():
        out[name] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def _config_only_copy(src: Path, dest: Path) -> Path:
    """The tiny pipeline's configs without any weight file: a component the checkpoint failed to supply cannot
    be filled in from here."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "tokenizer*"))
    assert not list(dest.rglob("*.safetensors"))
    return dest


def _assert_same_tensors(loaded: Any, original: Any, what: str) -> None:
    a, b = loaded.state_dict(), original.state_dict()
    assert set(a) == set(b), f"{what}: key sets differ: {sorted(set(a) ^ set(b))[:5]}"
    for key in b:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


@pytest.mark.parametrize("arch", ["sd1", "sdxl"])
def test_tiny_single_file_checkpoint_loads_every_tensor_exactly(arch, tmp_path, one_thread):
    from safetensors.torch import save_file

    seed = 3
    folder = save_tiny_pipeline(arch, tmp_path / "tiny", seed=seed)
    orig = tiny_components(arch, seed)
    ckpt: dict[str, Any] = {}
    ckpt.update(unet_to_ldm(orig.unet.state_dict(), orig.unet.config.layers_per_block))
    ckpt.update(vae_to_ldm(orig.vae.state_dict(), len(orig.vae.config.up_block_types)))
    if arch == "sdxl":
        ckpt.update(clip_to_ldm(orig.text_encoders[0].state_dict(), "conditioner.embedders.0.transformer."))
        ckpt.update(open_clip_to_ldm(orig.text_encoders[1].state_dict(), "conditioner.embedders.1.model."))
    else:
        ckpt.update(clip_to_ldm(orig.text_encoders[0].state_dict(), "cond_stage_model.transformer."))
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in ckpt.items()}, str(path))
    config_dir = _config_only_copy(folder, tmp_path / "configs")
    # the loader wants the slow tokenizer's vocab.json (transformers 5 saves only tokenizer.json): the shipped one
    for name in ("tokenizer", "tokenizer_2"):
        shutil.copytree(TINY_TOKENIZER_DIR, tmp_path / "tok" / name)

    comps = load_models(str(path), arch, tokenizer_dir=str(tmp_path / "tok"), config_dir=config_dir)

    assert comps.arch == arch and len(comps.text_encoders) == len(orig.text_encoders)
    _assert_same_tensors(comps.unet, orig.unet, "unet")
    _assert_same_tensors(comps.vae, orig.vae, "vae")
    for i, (te, te0) in enumerate(zip(comps.text_encoders, orig.text_encoders, strict=True)):
        _assert_same_tensors(te, te0, f"text_encoder {i}")
    # the same numbers also compute the same thing (no config drift such as head counts or projections)
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=gen)
    ctx = torch.randn(1, 77, orig.unet.config.cross_attention_dim, generator=gen)
    kwargs: dict[str, Any] = {}
    if arch == "sdxl":
        pooled = torch.randn(1, orig.text_encoders[1].config.projection_dim, generator=gen)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": torch.tensor([[64., 64, 0, 0, 64, 64]])}
    with torch.no_grad():
        want = orig.unet(sample, 10, ctx, **kwargs).sample
        got = comps.unet(sample, 10, ctx, **kwargs).sample
    # the tensors are identical (checked above); the forward pass may take another SIMD path (the loaded tensors
    # can sit at unaligned offsets of the mmapped file) and round differently in the last bits, so compare within
    # float32 rounding: a config drift (head counts, projections) changes the output by far more
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_config_dir_without_model_index_is_a_user_error(tmp_path):
    from lora_compat.errors import UserError

    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(UserError, match="not a diffusers config folder"):
        load_models(str(ckpt), "sd1", config_dir=tmp_path)
