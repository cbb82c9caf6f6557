"""Oracle tests (the slow part of the weights tests): real consumers load our converted files.

Tiny models with the real SD1/SDXL topology (lora_compat.train.tiny). A kohya LoCon with per-module ranks and alphas
is written with the *safetensors library* (not our writer); the reference is a plain merge W + alpha/r * up@down.
Our diffusers output loaded by diffusers' ``load_lora_weights`` and our PEFT output loaded by
``PeftModel.from_pretrained`` must give the same UNet and text-encoder outputs (max abs diff <= 1e-5, fp32).
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
st = pytest.importorskip("safetensors.torch")

from lora_compat import arch as archmod  # noqa: E402
from lora_compat.weights.convert import ConvertOptions, convert  # noqa: E402

pytestmark = pytest.mark.slow
TOL = 1e-5


@pytest.fixture(scope="module", params=["sd1", "sdxl"])
def tiny(request):
    from lora_compat.train.tiny import tiny_components

    return tiny_components(request.param, seed=0)


_NAMED: dict[int, dict] = {}


def _module_of(comps, info):
    if info.part == "unet":
        root, path = comps.unet, info.diffusers_path
    else:
        root = comps.text_encoders[0 if info.part == "te1" else 1]
        path = info.te_path(5) if not hasattr(root, "text_model") else info.diffusers_path
    if id(root) not in _NAMED:
        _NAMED[id(root)] = (root, dict(root.named_modules()))  # keep root alive so its id stays unique
    return _NAMED[id(root)][1][path]


def _make_kohya(comps, path, *, with_alpha: bool = True, uniform: bool = False):
    """Random LoCon over sd-scripts' module set; returns {kohya name: (scale, up, down)}.

    Like a real file: network_dim/alpha for Linears, conv_dim/conv_alpha for 3x3 convs, plus one module in five
    with its own rank and alpha (so rank_pattern/alpha_pattern are exercised without making PEFT's per-pattern
    regex matching dominate the run time).
    """
    gen = torch.Generator().manual_seed(1)
    tensors = {}
    ref = {}
    for info in archmod.kohya_modules(comps.arch, "locon"):
        mod = _module_of(comps, info)
        w = mod.weight
        conv3 = w.ndim == 4 and w.shape[-1] > 1
        r, alpha = (1, 0.5) if conv3 else (2, 1.0)
        if not uniform and float(torch.rand(1, generator=gen)) < 0.2:
            r = int(torch.randint(1, 5, (1,), generator=gen))
            alpha = float(torch.randint(1, 9, (1,), generator=gen)) / 2
        if w.ndim == 2:
            down = torch.randn(r, w.shape[1], generator=gen) * 0.1
            up = torch.randn(w.shape[0], r, generator=gen) * 0.1
        else:
            down = torch.randn(r, w.shape[1], w.shape[2], w.shape[3], generator=gen) * 0.1
            up = torch.randn(w.shape[0], r, 1, 1, generator=gen) * 0.1
        tensors[f"{info.kohya_name}.lora_down.weight"] = down
        tensors[f"{info.kohya_name}.lora_up.weight"] = up
        if with_alpha:
            tensors[f"{info.kohya_name}.alpha"] = torch.tensor(alpha)
        ref[info.kohya_name] = ((alpha / r) if with_alpha else 1.0, up, down)
    st.save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return ref


def _merged(comps, ref):
    out = copy.deepcopy(comps)
    for info in archmod.kohya_modules(comps.arch, "locon"):
        scale, up, down = ref[info.kohya_name]
        mod = _module_of(out, info)
        with torch.no_grad():
            mod.weight += scale * (up.flatten(1) @ down.flatten(1)).reshape(mod.weight.shape)
    return out


def _pipeline(c):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if c.arch == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=c.vae, text_encoder=c.text_encoders[0], text_encoder_2=c.text_encoders[1],
                                         tokenizer=c.tokenizers[0], tokenizer_2=c.tokenizers[1], unet=c.unet,
                                         scheduler=c.noise_scheduler)
        return pipe, [pipe.text_encoder, pipe.text_encoder_2]
    pipe = StableDiffusionPipeline(vae=c.vae, text_encoder=c.text_encoders[0], tokenizer=c.tokenizers[0],
                                   unet=c.unet, scheduler=c.noise_scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    return pipe, [pipe.text_encoder]


def _inputs(comps):
    g = torch.Generator().manual_seed(2)
    cross = comps.unet.config.cross_attention_dim
    kw = {}
    if comps.arch == "sdxl":
        emb = comps.unet.config.projection_class_embeddings_input_dim - 6 * comps.unet.config.addition_time_embed_dim
        kw["added_cond_kwargs"] = {"text_embeds": torch.randn(1, emb, generator=g),
                                   "time_ids": torch.tensor([[8.0, 8.0, 0.0, 0.0, 8.0, 8.0]])}
    sample = torch.randn(1, 4, 8, 8, generator=g)
    ctx = torch.randn(1, 7, cross, generator=g)
    ids = torch.randint(0, 500, (1, 7), generator=g)
    return sample, ctx, ids, kw


def _outputs(unet, tes, inputs):
    sample, ctx, ids, kw = inputs
    with torch.no_grad():
        u = unet(sample, 10, encoder_hidden_states=ctx, **kw).sample
        t = [te(ids)[0] for te in tes]
    return u, t


def _assert_close(got, want):
    (gu, gt), (wu, wt) = got, want
    assert (gu - wu).abs().max().item() <= TOL
    for a, b in zip(gt, wt, strict=True):
        assert (a - b).abs().max().item() <= TOL


def test_diffusers_and_peft_load_our_outputs_exactly(tiny, tmp_path):
    comps = tiny
    src = tmp_path / "kohya.safetensors"
    ref = _make_kohya(comps, src)
    inputs = _inputs(comps)
    want = _outputs(*(lambda m: (m.unet, m.text_encoders))(_merged(comps, ref)), inputs)
    base = _outputs(comps.unet, comps.text_encoders, inputs)
    assert (base[0] - want[0]).abs().max().item() > 1e-3  # the LoRA really changes the output

    # diffusers: pipeline-level load_lora_weights of our diffusers file (alphas through lora_adapter_metadata)
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    pipe, tes = _pipeline(copy.deepcopy(comps))
    pipe.load_lora_weights(str(tmp_path / "d.safetensors"))
    _assert_close(_outputs(pipe.unet, tes, inputs), want)

    # PEFT: PeftModel.from_pretrained on each component folder of our PEFT output
    from peft import PeftModel

    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    c = copy.deepcopy(comps)
    unet = PeftModel.from_pretrained(c.unet, str(tmp_path / "p" / "unet"))
    dirs = ["text_encoder", "text_encoder_2"]
    tes = [PeftModel.from_pretrained(te, str(tmp_path / "p" / d)) for te, d in zip(c.text_encoders, dirs, strict=False)]
    _assert_close(_outputs(unet, tes, inputs), want)

    # and back: PEFT -> kohya gives the original module scales (checked through the reference merge)
    convert(tmp_path / "p", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    back = st.load_file(str(tmp_path / "k.safetensors"))
    for name, (scale, up, down) in ref.items():
        r = down.shape[0]
        assert back[f"{name}.alpha"].item() / r == pytest.approx(scale, rel=1e-7)
        assert torch.equal(back[f"{name}.lora_up.weight"], up)


def test_diffusers_kohya_loader_reads_our_kohya_output(tiny, tmp_path):
    """Our kohya output (SGM names for SDXL, lora_te1_/te2_) through diffusers' own kohya path, uniform alphas."""
    comps = tiny
    src = tmp_path / "kohya.safetensors"
    ref = _make_kohya(comps, src, uniform=True)
    inputs = _inputs(comps)
    merged = _merged(comps, ref)
    want = _outputs(merged.unet, merged.text_encoders, inputs)
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    convert(tmp_path / "p", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    pipe, tes = _pipeline(copy.deepcopy(comps))
    pipe.load_lora_weights(str(tmp_path / "k.safetensors"))
    _assert_close(_outputs(pipe.unet, tes, inputs), want)


def _lyco_reference(comps, algo: str, path):
    """A LoHa / LoKr / DoRA kohya file on a few SD1 modules (Linear, 1x1 conv, 3x3 conv, TE) and its merged model."""
    from peft.tuners.lokr.layer import factorization  # PEFT's own split: the shapes PEFT will rebuild

    gen = torch.Generator().manual_seed(5)
    names = ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
             "lora_unet_down_blocks_1_attentions_0_proj_in", "lora_unet_down_blocks_0_resnets_0_conv1",
             "lora_te_text_model_encoder_layers_0_mlp_fc1"]
    tensors = {}
    merged = copy.deepcopy(comps)
    for name in names:
        info = archmod.lookup_kohya(name, "sd1")
        w = _module_of(comps, info).weight
        out_f, in_f = w.shape[0], w.shape[1]
        k = w.shape[2] if w.ndim == 4 else 1

        def rnd(*s):
            return torch.randn(*s, generator=gen) * 0.2
        alpha, r = 3.0, 2
        if algo == "loha-tucker" and k > 1:  # LyCORIS Tucker conv: what PEFT's use_effective_conv2d builds
            fac = []
            for i in ("1", "2"):
                t, wa, wb = rnd(r, r, k, k), rnd(r, out_f), rnd(r, in_f)
                tensors.update({f"{name}.hada_t{i}": t, f"{name}.hada_w{i}_a": wa, f"{name}.hada_w{i}_b": wb})
                fac.append(torch.einsum("ijhw,ip,jr->prhw", t, wa, wb))
            delta = fac[0] * fac[1] * (alpha / r)
        elif algo.startswith("loha"):
            w1a, w1b, w2a, w2b = rnd(out_f, r), rnd(r, in_f * k * k), rnd(out_f, r), rnd(r, in_f * k * k)
            tensors.update({f"{name}.hada_w1_a": w1a, f"{name}.hada_w1_b": w1b, f"{name}.hada_w2_a": w2a,
                            f"{name}.hada_w2_b": w2b})
            delta = ((w1a @ w1b) * (w2a @ w2b)).reshape(w.shape) * (alpha / r)
        elif algo == "lokr":
            a, c = factorization(out_f, -1)
            b, d = factorization(in_f, -1)
            r = 1
            w1, w2a, w2b = rnd(a, b), rnd(c, r), rnd(r, d * k * k)
            tensors.update({f"{name}.lokr_w1": w1, f"{name}.lokr_w2_a": w2a, f"{name}.lokr_w2_b": w2b})
            w2 = (w2a @ w2b).reshape(c, d, k, k) if w.ndim == 4 else w2a @ w2b
            w1x = w1[:, :, None, None] if w.ndim == 4 else w1
            delta = torch.kron(w1x, w2) * (alpha / r)
        else:  # DoRA, output axis (LyCORIS wd_on_output): W' = m * V / ||V||_rows, V = W + s*B@A
            down = rnd(r, in_f, k, k) if w.ndim == 4 else rnd(r, in_f)
            up = rnd(out_f, r, 1, 1) if w.ndim == 4 else rnd(out_f, r)
            mag = torch.rand(out_f, generator=gen) + 0.5
            tensors.update({f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up,
                            f"{name}.dora_scale": mag.reshape(out_f, *([1] * (w.ndim - 1)))})
            v = w + (up.flatten(1) @ down.flatten(1)).reshape(w.shape) * (alpha / r)
            norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (w.ndim - 1)))
            delta = mag.reshape(-1, *([1] * (w.ndim - 1))) * v / norm - w
        tensors[f"{name}.alpha"] = torch.tensor(alpha)
        with torch.no_grad():
            _module_of(merged, info).weight += delta
    st.save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return merged


@pytest.mark.parametrize("algo", ["loha", "loha-tucker", "lokr", "dora"])
def test_peft_loads_our_loha_lokr_dora(algo, tmp_path):
    if not hasattr(test_peft_loads_our_loha_lokr_dora, "comps"):
        from lora_compat.train.tiny import tiny_components

        test_peft_loads_our_loha_lokr_dora.comps = tiny_components("sd1", seed=0)
    comps = test_peft_loads_our_loha_lokr_dora.comps
    src = tmp_path / f"{algo}.safetensors"
    merged = _lyco_reference(comps, algo, src)
    inputs = _inputs(comps)
    want = _outputs(merged.unet, merged.text_encoders, inputs)
    base = _outputs(comps.unet, comps.text_encoders, inputs)
    assert (base[0] - want[0]).abs().max().item() > 1e-4 and (base[1][0] - want[1][0]).abs().max().item() > 1e-4
    from peft import PeftModel

    convert(src, tmp_path / "p", ConvertOptions(to="peft", arch="sd1"))
    c = copy.deepcopy(comps)
    unet = PeftModel.from_pretrained(c.unet, str(tmp_path / "p" / "unet"))
    te = PeftModel.from_pretrained(c.text_encoders[0], str(tmp_path / "p" / "text_encoder"))
    _assert_close(_outputs(unet, [te], inputs), want)
