"""sd-scripts' FLUX.1 LoRA on diffusers + PEFT: module set, parameterisation and saved layout.

* the module planner reproduces every case of golden/flux_lora_keys.json (names, order, ranks, alphas, errors);
* on the tiny models with FLUX.1's real block counts, the saved kohya state dict has sd-scripts' keys, order,
  dtypes, alpha values and shapes (real widths mapped to the tiny ones);
* a kohya file loaded into the tied-down PEFT parameterisation gives the DiT output of a reference merge of the
  fused deltas into the BFL weights (<= 1e-5);
* a trained network saved and loaded back (``create_network_from_weights``) is the same function.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("diffusers")

from lora_compat.train.flux.checkpoint import bfl_transformer_to_diffusers  # noqa: E402
from lora_compat.train.flux.lora import create_flux_network, create_flux_network_from_weights, kohya_dims_and_alphas  # noqa: E402
from lora_compat.train.flux.network_spec import parse_network_args, select_modules  # noqa: E402
from lora_compat.train.flux.packing import pack_latents, prepare_img_ids  # noqa: E402
from lora_compat.train.flux.tiny import (  # noqa: E402
    REAL_DOUBLE_BLOCKS,
    REAL_SINGLE_BLOCKS,
    TINY_CLIP_HIDDEN,
    tiny_flux_components,
    tiny_transformer_config,
)

from flux_layouts import bfl_lora_target, diffusers_to_bfl_transformer  # noqa: E402
from shared_data import golden  # noqa: E402

FIXED = 7  # golden fixed_argv length


def _network_options(argv: list[str]) -> dict:
    """The few flux_train_network options a key case sets (argparse's defaults otherwise)."""
    out = {"network_dim": None, "network_alpha": 1, "network_args": {}, "unet_only": False, "te_cache": False,
           "model_type": "flux"}
    flags = {"--network_train_unet_only": "unet_only", "--cache_text_encoder_outputs": "te_cache"}
    values = {"--network_dim": ("network_dim", int), "--network_alpha": ("network_alpha", float),
              "--model_type": ("model_type", str)}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in flags:
            out[flags[a]] = True
            i += 1
        elif a in values:
            name, kind = values[a]
            out[name] = kind(argv[i + 1])
            i += 2
        elif a == "--apply_t5_attn_mask":
            i += 1
        elif a == "--network_args":
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                k, v = argv[i].split("=", 1)
                out["network_args"][k] = v
                i += 1
        else:
            raise AssertionError(f"unhandled option {a}")
    return out


def _plan(case: dict, num_double: int = REAL_DOUBLE_BLOCKS, num_single: int = REAL_SINGLE_BLOCKS):
    o = _network_options(case["argv"])
    args = parse_network_args(o["network_dim"], o["network_alpha"], o["network_args"])
    return args, select_modules(args, variant=case["base_model"], num_double=num_double, num_single=num_single,
                                network_train_unet_only=o["unet_only"], cache_text_encoder_outputs=o["te_cache"],
                                apply_t5_attn_mask="--apply_t5_attn_mask" in case["argv"])


def _golden_modules(case: dict) -> list[tuple[str, int, object, str]]:
    keys = case["keys"]
    names = list(dict.fromkeys(k.split(".")[0] for k in keys))
    return [(n, keys[f"{n}.lora_down.weight"][0][0], keys[f"{n}.alpha"][2], keys[f"{n}.alpha"][1]) for n in names]


def test_planner_reproduces_every_golden_case() -> None:
    data = golden("flux_lora_keys.json")
    cases = data["cases"]
    assert len(cases) == 24
    for case in cases:
        if "error" in case:
            if "too many values to unpack" in case["error"]:
                continue  # sd-scripts@48d368f crash (#2220); we implement the fixed behaviour (next case)
            with pytest.raises(ValueError, match=r"train_blocks|cache_text_encoder_outputs|apply_t5_attn_mask"):
                _plan(case)
            continue
        args, planned = _plan(case)
        # split_qkv saves the parts' downs stacked: rank n*r in the file
        ours = [(p.kohya_name, p.rank * p.split, p.alpha,
                 "int64" if isinstance(p.alpha, int) else "float32") for p in planned]
        assert ours == _golden_modules(case), case["name"]
        assert args.split_qkv is (case["net_kwargs"].get("split_qkv") == "True")


def _real_to_tiny(part: str, n: int) -> int:
    inner = TINY_CLIP_HIDDEN  # tiny DiT inner width = tiny CLIP/T5 width = 32
    if part == "lora_te1":
        return {768: 32, 3072: 64}[n]
    if part == "lora_te3":
        return {4096: 32, 10240: 64}[n]
    return {3072: inner, 9216: 3 * inner, 18432: 6 * inner, 12288: 4 * inner, 15360: 5 * inner, 21504: 7 * inner,
            64: 64, 256: 256, 768: 32, 4096: 32}[n]


@pytest.fixture(scope="module")
def real_count_models():
    def build(variant: str):
        return tiny_flux_components(variant, num_layers=REAL_DOUBLE_BLOCKS, num_single_layers=REAL_SINGLE_BLOCKS)
    return build


@pytest.mark.parametrize("name", ["train_t5xxl", "in_dims_mixed_zero", "default_unet_only",
                                  "split_qkv_as_fixed_by_pr2396"])
def test_saved_state_dict_equals_sd_scripts(name, real_count_models) -> None:
    case = {c["name"]: c for c in golden("flux_lora_keys.json")["cases"]}[name]
    comps = real_count_models("dev" if case["base_model"] == "flux1-dev" else "schnell")
    args, planned = _plan(case)
    net = create_flux_network(args, planned, {"transformer": comps.transformer, "clip_l": comps.clip_l,
                                              "t5xxl": comps.t5xxl})
    sd = net.kohya_state_dict()
    assert list(sd) == list(case["keys"])
    for key, (shape, dtype, *value) in case["keys"].items():
        t = sd[key]
        assert str(t.dtype).removeprefix("torch.") == dtype, key
        if key.endswith(".alpha"):
            assert t.shape == () and t.item() == value[0], key
            continue
        part = key.split("_")[0] + "_" + key.split("_")[1]
        r_axis = 0 if "lora_down" in key else 1
        expected = [n if axis == r_axis else _real_to_tiny(part, n) for axis, n in enumerate(shape)]
        assert list(t.shape) == expected, key
    if args.split_qkv:
        # sd-scripts' split layout: downs stacked (rank 3r / 4r), ups block-diagonal with zero off-blocks
        up = sd["lora_unet_single_blocks_0_linear1.lora_up.weight"]
        assert up.shape[1] == 16 and torch.count_nonzero(up[:32, 4:]) == 0


def _tiny_dit(variant: str = "dev", num_double: int = 1, num_single: int = 1):
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(**tiny_transformer_config(variant, num_double, num_single)).eval()


def _dit_inputs(cfg: dict, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 16, 8, 6, generator=g)
    txt = torch.randn(2, 5, cfg["joint_attention_dim"], generator=g)
    pooled = torch.randn(2, cfg["pooled_projection_dim"], generator=g)
    return {"hidden_states": pack_latents(latents), "encoder_hidden_states": txt, "pooled_projections": pooled,
            "timestep": torch.tensor([0.3, 0.8]), "img_ids": prepare_img_ids(1, 4, 3)[0], "txt_ids": torch.zeros(5, 3),
            "guidance": torch.tensor([3.5, 3.5]) if cfg["guidance_embeds"] else None}


def _random_kohya(planned, transformer, seed: int = 3) -> dict:
    """A kohya FLUX state dict with sd-scripts' key names and shapes and non-zero ups."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for p in planned:
        first = transformer.get_submodule(p.paths[0])
        outs = sum(transformer.get_submodule(path).out_features for path in p.paths)
        sd[f"{p.kohya_name}.alpha"] = torch.tensor(p.alpha)
        sd[f"{p.kohya_name}.lora_down.weight"] = torch.randn(p.rank, first.in_features, generator=g) * 0.2
        sd[f"{p.kohya_name}.lora_up.weight"] = torch.randn(outs, p.rank, generator=g) * 0.2
    return sd


@pytest.mark.parametrize("variant", ["dev", "schnell"])
def test_kohya_file_equals_fused_merge_in_bfl_weights(variant) -> None:
    from diffusers import FluxTransformer2DModel

    cfg = tiny_transformer_config(variant, 2, 2)
    torch.manual_seed(0)
    base = FluxTransformer2DModel(**cfg).eval()
    original = {k: v.clone() for k, v in base.state_dict().items()}
    args = parse_network_args(4, 2.0, {"in_dims": "[2,4,4,4,3]", "img_attn_dim": "3", "network_reg_dims": "linear2=5"})
    planned = select_modules(args, variant=f"flux1-{variant}", num_double=2, num_single=2,
                             network_train_unet_only=True)
    assert any(p.fused for p in planned) and any(p.module.group == "embedder" for p in planned)
    kohya = _random_kohya(planned, base)

    # reference: W_bfl += (alpha / rank) up @ down on the fused BFL weights, converted back to diffusers
    bfl = diffusers_to_bfl_transformer(original)
    for p in planned:
        target = bfl_lora_target(p.kohya_name)
        up, down = kohya[f"{p.kohya_name}.lora_up.weight"], kohya[f"{p.kohya_name}.lora_down.weight"]
        bfl[target] = bfl[target] + (float(p.alpha) / p.rank) * (up @ down)
    merged = FluxTransformer2DModel(**cfg).eval()
    merged.load_state_dict(bfl_transformer_to_diffusers(bfl))

    net = create_flux_network_from_weights(kohya, {"transformer": base})
    assert [m.kohya_name for m in net.modules] == [p.kohya_name for p in planned]
    inputs = _dit_inputs(cfg)
    with torch.no_grad():
        ours = base(**inputs).sample
        ref = merged(**inputs).sample
        net.set_multiplier(0.0)
        plain = base(**inputs).sample
    assert (ours - plain).abs().max() > 1e-2  # the LoRA changes the output
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-5), (ours - ref).abs().max()


def test_shared_down_is_one_parameter_and_saved_back_exactly() -> None:
    t = _tiny_dit()
    args = parse_network_args(4, 1, {})
    planned = select_modules(args, num_double=1, num_single=1, network_train_unet_only=True)
    net = create_flux_network(args, planned, {"transformer": t})
    qkv = [t.get_submodule(f"transformer_blocks.0.attn.{n}") for n in ("to_q", "to_k", "to_v")]
    assert qkv[0].lora_A["default"] is qkv[1].lora_A["default"] is qkv[2].lora_A["default"]
    single = [t.get_submodule(f"single_transformer_blocks.0.{n}") for n in ("attn.to_q", "proj_mlp")]
    assert single[0].lora_A["default"] is single[1].lora_A["default"]
    params = net.parameters()
    assert len({id(p) for p in params}) == len(params)
    assert sum(p.numel() for p in params) == sum(v.numel() for k, v in net.kohya_state_dict().items()
                                                 if not k.endswith("alpha"))
    # gradient of the shared down: the sum over q/k/v, as for sd-scripts' one fused down
    cfg = dict(t.config)
    for m in net.modules:
        for u in m.ups:
            torch.nn.init.normal_(u.weight, std=0.1)
    t.train()
    out = t(**_dit_inputs(cfg)).sample
    out.square().mean().backward()
    down = qkv[0].lora_A["default"].weight
    assert down.grad is not None and down.grad.abs().sum() > 0
    # save -> fresh model -> load: same function, same kohya tensors
    sd = net.kohya_state_dict()
    assert sd["lora_unet_double_blocks_0_img_attn_qkv.alpha"].dtype == torch.int64
    fresh = _tiny_dit()
    net2 = create_flux_network_from_weights(sd, {"transformer": fresh})
    for key, value in net2.kohya_state_dict().items():
        assert torch.equal(value, sd[key]), key
    t.eval()
    with torch.no_grad():
        inputs = _dit_inputs(cfg)
        assert torch.allclose(t(**inputs).sample, fresh(**inputs).sample, atol=1e-6)


def test_dropouts_draw_one_mask_per_fused_module() -> None:
    t = _tiny_dit()
    args = parse_network_args(4, 4, {"rank_dropout": "0.5"}, network_dropout=0.3)
    planned = select_modules(args, num_double=1, num_single=1, network_train_unet_only=True)
    net = create_flux_network(args, planned, {"transformer": t})
    seen = []
    shared = t.get_submodule("single_transformer_blocks.0.attn.to_q").lora_A["default"]
    shared.register_forward_hook(lambda mod, inp, out: seen.append(out))
    t.train(), net.train()
    torch.manual_seed(0)
    t(**_dit_inputs(dict(t.config)))
    assert len(seen) == 4 and all(o is seen[0] for o in seen)      # q, k, v, mlp: one A x, one mask
    assert (seen[0] == 0).any()
    t.eval(), net.train(False)
    seen.clear()
    with torch.no_grad():
        t(**_dit_inputs(dict(t.config)))
    assert not (seen[0] == 0).any()                                 # no dropout in eval mode


def test_file_without_alpha_is_refused_like_sd_scripts() -> None:
    sd = {"lora_unet_double_blocks_0_img_mod_lin.lora_down.weight": torch.zeros(4, 32),
          "lora_unet_double_blocks_0_img_mod_lin.lora_up.weight": torch.zeros(192, 4)}
    with pytest.raises(KeyError, match="lora_unet_double_blocks_0_img_mod_lin"):
        kohya_dims_and_alphas(sd)


def test_diffusers_reads_our_kohya_file_as_the_same_function() -> None:
    """diffusers' FLUX kohya loader (``load_lora_weights``) gives the same DiT output as our network. Its
    converter hard-codes FLUX.1's real widths for ``single_blocks.N.linear1`` (3072 x 3 + 12288), so on the tiny
    model the file holds the double blocks only (``train_blocks=double``)."""
    from diffusers import FluxPipeline

    comps = tiny_flux_components("dev", num_layers=2, num_single_layers=1)
    args = parse_network_args(4, 2, {"train_blocks": "double"})
    planned = select_modules(args, num_double=2, num_single=1, network_train_unet_only=True)
    ours = _tiny_dit("dev", 2, 1)
    net = create_flux_network(args, planned, {"transformer": ours})
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in net.modules:
            for u in m.ups:
                u.weight.copy_(torch.randn(u.weight.shape, generator=g) * 0.1)
    sd = net.kohya_state_dict()
    pipe = FluxPipeline(scheduler=None, vae=comps.vae, text_encoder=comps.clip_l, tokenizer=comps.clip_tokenizer,
                        text_encoder_2=comps.t5xxl, tokenizer_2=comps.t5_tokenizer, transformer=_tiny_dit("dev", 2, 1))
    pipe.load_lora_weights(dict(sd))
    inputs = _dit_inputs(dict(ours.config))
    with torch.no_grad():
        theirs = pipe.transformer(**inputs).sample
        mine = ours(**inputs).sample
        net.set_multiplier(0.0)
        base = ours(**inputs).sample
    assert (mine - base).abs().max() > 1e-2
    assert torch.allclose(theirs, mine, atol=1e-5), (theirs - mine).abs().max()


def test_loha_on_fused_modules_equals_fused_merge_and_saves_lycoris_layout() -> None:
    from diffusers import FluxTransformer2DModel

    from lora_compat.train.flux.loha import FluxLohaNetwork

    cfg = tiny_transformer_config("dev", 1, 2)
    base = _tiny_dit("dev", 1, 2)
    original = {k: v.clone() for k, v in base.state_dict().items()}
    args = parse_network_args(3, 2.0, {})
    planned = select_modules(args, num_double=1, num_single=2, network_train_unet_only=True)
    net = FluxLohaNetwork(planned, {"transformer": base})
    q = base.get_submodule("single_transformer_blocks.0.attn.to_q")
    mlp = base.get_submodule("single_transformer_blocks.0.proj_mlp")
    assert q.hada_w1_b["default"] is mlp.hada_w1_b["default"] and q.hada_w2_b["default"] is mlp.hada_w2_b["default"]
    g = torch.Generator().manual_seed(9)
    lycoris = {}
    for p in planned:
        first = base.get_submodule(p.paths[0]).get_base_layer()
        outs = sum(base.get_submodule(path).get_base_layer().out_features for path in p.paths)
        lycoris[f"{p.kohya_name}.alpha"] = torch.tensor(p.alpha)
        for key, shape in (("hada_w1_a", (outs, 3)), ("hada_w1_b", (3, first.in_features)),
                           ("hada_w2_a", (outs, 3)), ("hada_w2_b", (3, first.in_features))):
            lycoris[f"{p.kohya_name}.{key}"] = torch.randn(shape, generator=g) * 0.3
    net.load_kohya_state_dict(lycoris)
    saved = net.kohya_state_dict()
    assert list(saved) == list(lycoris) and all(torch.equal(saved[k], lycoris[k]) for k in lycoris)
    assert len(net.parameters()) == sum(2 + 2 * len(p.paths) for p in planned)

    bfl = diffusers_to_bfl_transformer(original)
    for p in planned:
        n = p.kohya_name
        delta = (lycoris[f"{n}.hada_w1_a"] @ lycoris[f"{n}.hada_w1_b"]) * (lycoris[f"{n}.hada_w2_a"] @
                                                                           lycoris[f"{n}.hada_w2_b"])
        bfl[bfl_lora_target(n)] = bfl[bfl_lora_target(n)] + (float(p.alpha) / p.rank) * delta
    merged = FluxTransformer2DModel(**cfg).eval()
    merged.load_state_dict(bfl_transformer_to_diffusers(bfl))
    inputs = _dit_inputs(cfg)
    with torch.no_grad():
        assert torch.allclose(base(**inputs).sample, merged(**inputs).sample, rtol=1e-5, atol=1e-5)


def test_from_weights_cases_of_the_golden_file() -> None:
    """``create_network_from_weights`` on sd-scripts' own files: module counts, ranks, scales (a split_qkv file
    loads fused at rank 3r / 4r with scale alpha / (n r): sd-scripts #2204), a file without ``.alpha`` refused."""
    from lora_compat.train.flux.network_spec import modules_from_weights

    data = golden("flux_lora_keys.json")
    cases = {c["name"]: c for c in data["cases"]}
    assert len(data["from_weights"]) == 6
    for fw in data["from_weights"]:
        source = cases[fw["state_dict_of"]]
        keys = source["keys"]
        if "error" in fw:
            sd = {k: torch.zeros(v[0]) for k, v in keys.items() if not k.endswith(".alpha")}
            with pytest.raises(KeyError, match=fw["error"].split("'")[1]):
                kohya_dims_and_alphas(sd)
            continue
        sd = {k: (torch.tensor(v[2]) if k.endswith(".alpha") else torch.zeros(v[0])) for k, v in keys.items()}
        planned = modules_from_weights(kohya_dims_and_alphas(sd), variant=source["base_model"])
        counts = {pre: sum(p.kohya_name.startswith(pre) for p in planned) for pre in ("lora_te1", "lora_te3",
                                                                                      "lora_unet")}
        counts["total"] = len(planned)
        assert counts == fw["module_count"], fw["name"]
        ranks: dict[str, int] = {}
        scales: dict[str, int] = {}
        for p in planned:
            ranks[str(p.rank)] = ranks.get(str(p.rank), 0) + 1
            scale = str(float(torch.tensor(float(p.alpha)) / p.rank))
            scales[scale] = scales.get(scale, 0) + 1
        assert ranks == fw["ranks"] and scales == fw["scales"], fw["name"]
