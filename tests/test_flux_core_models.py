"""FLUX.1 model loading offline: a diffusers folder and the single files users have (BFL-layout DiT, ae, clip_l,
t5xxl fp16/fp8) written here from the tiny models, each tensor identical after loading; the DiT adapter's T5
mask; prompt encoding; latent normalisation."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

from test_train_single_file import vae_to_ldm  # noqa: E402

from lora_compat.errors import UserError  # noqa: E402
from lora_compat.train.flux import text  # noqa: E402
from lora_compat.train.flux.models import decode_latents, diffusers_dit, encode_latents, load_flux_models  # noqa: E402
from lora_compat.train.flux.packing import pack_latents, prepare_img_ids  # noqa: E402
from lora_compat.train.flux.tiny import save_tiny_flux_pipeline  # noqa: E402

from flux_layouts import diffusers_to_bfl_transformer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return save_tiny_flux_pipeline(tmp_path_factory.mktemp("flux") / "tiny-flux1-dev", "dev")


def _same(loaded, original, what: str) -> None:
    a, b = loaded.state_dict(), original.state_dict()
    assert sorted(a) == sorted(b), what
    for k in b:
        assert torch.equal(a[k].to(b[k].dtype), b[k]), f"{what}: {k}"


def _config_only(src: Path, dest: Path) -> Path:
    for f in src.rglob("*.json"):
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    return dest


def test_diffusers_folder(tiny_folder) -> None:
    comps = load_flux_models(str(tiny_folder))
    ref = load_flux_models("tiny:flux1-dev")
    assert comps.variant == "dev" and comps.extra.get("tiny")
    for name in ("transformer", "vae", "clip_l", "t5xxl"):
        _same(getattr(comps, name), getattr(ref, name), name)
    assert comps.t5_tokenizer("a cat").input_ids == ref.t5_tokenizer("a cat").input_ids


def test_single_files_in_the_layouts_users_have(tiny_folder, tmp_path) -> None:
    from safetensors.torch import save_file

    ref = load_flux_models(str(tiny_folder))
    files = tmp_path / "models"
    files.mkdir()
    bfl = diffusers_to_bfl_transformer(ref.transformer.state_dict())
    save_file({k: v.contiguous() for k, v in bfl.items()}, files / "flux1-dev.safetensors")
    ae = {k.removeprefix("first_stage_model."): v.contiguous()
          for k, v in vae_to_ldm(ref.vae.state_dict(), len(ref.vae.config.up_block_types)).items()}
    save_file(ae, files / "ae.safetensors")
    clip = {("text_model." + k if not k.startswith("text_model.") else k): v.contiguous()
            for k, v in ref.clip_l.state_dict().items()}
    save_file(clip, files / "clip_l.safetensors")
    t5 = {k: v.contiguous() for k, v in ref.t5xxl.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(t5, files / "t5xxl_fp16.safetensors")
    save_file({k: v.to(torch.float8_e4m3fn) if v.ndim == 2 else v for k, v in t5.items()},
              files / "t5xxl_fp8_e4m3fn.safetensors")
    for tok in ("tokenizer", "tokenizer_2"):
        shutil.copytree(tiny_folder / tok, files / tok)
    configs = _config_only(tiny_folder, tmp_path / "configs")

    comps = load_flux_models(str(files / "flux1-dev.safetensors"), ae=str(files / "ae.safetensors"),
                             clip_l=str(files / "clip_l.safetensors"), t5xxl=str(files / "t5xxl_fp16.safetensors"),
                             config_dir=configs)
    for name in ("transformer", "vae", "clip_l", "t5xxl"):
        _same(getattr(comps, name), getattr(ref, name), name)
    assert comps.variant == "dev"
    fp8 = load_flux_models(str(files / "flux1-dev.safetensors"), ae=str(files / "ae.safetensors"),
                           clip_l=str(files / "clip_l.safetensors"),
                           t5xxl=str(files / "t5xxl_fp8_e4m3fn.safetensors"), config_dir=configs)
    q = fp8.t5xxl.encoder.block[0].layer[0].SelfAttention.q.weight
    assert q.dtype == torch.float8_e4m3fn
    ref_q = ref.t5xxl.encoder.block[0].layer[0].SelfAttention.q.weight
    assert torch.equal(q.float(), ref_q.to(torch.float8_e4m3fn).float())

    # errors are one line and name what is wrong
    with pytest.raises(UserError, match="set ae, clip_l, t5xxl"):
        load_flux_models(str(files / "flux1-dev.safetensors"))
    with pytest.raises(UserError, match=r"widths differ.*config_dir"):
        load_flux_models(str(files / "flux1-dev.safetensors"), ae=str(files / "ae.safetensors"),
                         clip_l=str(files / "clip_l.safetensors"), t5xxl=str(files / "t5xxl_fp16.safetensors"))
    (files / "model.ckpt").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="pickled"):
        load_flux_models(str(files / "model.ckpt"), ae="a", clip_l="b", t5xxl="c")
    shutil.rmtree(files / "tokenizer_2")
    with pytest.raises(UserError, match="tokenizer_2"):
        load_flux_models(str(files / "flux1-dev.safetensors"), ae=str(files / "ae.safetensors"),
                         clip_l=str(files / "clip_l.safetensors"), t5xxl=str(files / "t5xxl_fp16.safetensors"),
                         config_dir=configs)


def test_t5_mask_hides_padding_from_the_image_like_sd_scripts() -> None:
    comps = load_flux_models("tiny:flux1-dev")
    dit = diffusers_dit(comps.transformer)
    g = torch.Generator().manual_seed(0)
    img = pack_latents(torch.randn(2, 16, 4, 4, generator=g))
    txt = torch.randn(2, 6, 32, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    other = txt.clone()
    other[0, 3:] += 5.0
    other[1, 5:] -= 5.0
    kw = {"img_ids": prepare_img_ids(2, 2, 2), "txt_ids": torch.zeros(2, 6, 3), "y": torch.randn(2, 32, generator=g),
          "timesteps": torch.tensor([0.5, 0.9]), "guidance": torch.tensor([3.5, 3.5])}
    with torch.no_grad():
        a = dit(img=img, txt=txt, txt_attention_mask=mask, **kw)
        b = dit(img=img, txt=other, txt_attention_mask=mask, **kw)
        c = dit(img=img, txt=other, txt_attention_mask=None, **kw)
    assert torch.allclose(a, b, atol=1e-6)           # padded text tokens never reach the image tokens
    assert not torch.allclose(a, c, atol=1e-3)       # without the mask they do


def test_prompt_encoding_and_latents() -> None:
    comps = load_flux_models("tiny:flux1-schnell")
    tokens = text.tokenize(comps.clip_tokenizer, comps.t5_tokenizer, ["a red cube", "x"], 16)
    assert tokens[0].shape == (2, 77) and tokens[1].shape == (2, 16) and tokens[2][1].sum() == 3  # ▁ x </s>
    with torch.no_grad():
        pooled, t5_out, txt_ids, mask = text.encode(comps.clip_l, comps.t5xxl, tokens, apply_t5_attn_mask=False)
        _, masked_out, _, _ = text.encode(comps.clip_l, comps.t5xxl, tokens, apply_t5_attn_mask=True)
    assert pooled.shape == (2, 32) and t5_out.shape == (2, 16, 32) and txt_ids.abs().sum() == 0
    assert torch.equal(mask, tokens[2])
    assert not torch.allclose(t5_out[1, :3], masked_out[1, :3])  # the mask changes the encoder's attention
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    with torch.no_grad():
        latents = encode_latents(comps.vae, images)
        torch.manual_seed(0)
        z = comps.vae.encode(images).latent_dist.sample()
        assert latents.shape == (1, 16, 4, 4)
        assert torch.allclose(latents, (z - 0.1159) * 0.3611)
        assert decode_latents(comps.vae, latents).shape == (1, 3, 32, 32)


def test_flux_loss_step_trains_the_lora_through_the_diffusers_dit() -> None:
    """The pieces together: tiny schnell DiT + sd-scripts' LoRA + flux_loss_step; one fixed sample (same noise and
    timestep every step) is fitted."""
    from lora_compat.semantics.flux_options import FluxOptions
    from lora_compat.train.flux.lora import create_flux_network
    from lora_compat.train.flux.loss import flux_loss_step
    from lora_compat.train.flux.network_spec import parse_network_args, select_modules
    from lora_compat.train.flux.sampling import make_flow_scheduler

    comps = load_flux_models("tiny:flux1-schnell")
    t = comps.transformer
    args = parse_network_args(8, 8, {})
    net = create_flux_network(args, select_modules(args, variant="flux1-schnell", num_double=2, num_single=4,
                                                   network_train_unet_only=True), {"transformer": t})
    groups, _ = net.param_groups(None, None, 1e-2)
    opt = torch.optim.AdamW(groups)
    g = torch.Generator().manual_seed(3)
    latents = torch.randn(2, 16, 8, 8, generator=g)
    conds = (torch.randn(2, 32, generator=g), torch.randn(2, 6, 32, generator=g), torch.zeros(2, 6, 3),
             torch.ones(2, 6))
    options = FluxOptions(model_prediction_type="raw", timestep_sampling="sigmoid")
    sched, dit = make_flow_scheduler(1.0), diffusers_dit(t)
    t.train()
    losses = []
    for _ in range(12):
        torch.manual_seed(0)
        step = flux_loss_step(dit, latents, conds, options, sched, weight_dtype=torch.float32)
        opt.zero_grad()
        step.loss.backward()
        opt.step()
        losses.append(step.loss.item())
    assert losses[-1] < 0.85 * losses[0] and all(b < a for a, b in itertools.pairwise(losses)), losses
