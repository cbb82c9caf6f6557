"""sd-scripts' FLUX LoRA module set (lora_compat.arch.flux) and the kohya files we write vs golden flux_lora_keys.json.

Every case of the golden file: our module set has sd-scripts' modules in sd-scripts' order, and a kohya file written
by our synth writer has exactly its keys, shapes, dtypes and alpha values (int64 where sd-scripts writes int64);
the cases sd-scripts refuses raise its error.
"""

from __future__ import annotations

import pytest

from lora_compat.arch import flux as fa
from lora_compat.weights.flux_synth import synth_flux_kohya
from lora_compat.weights.safetensors_io import decode_values, read_header

from shared_data import golden

pytestmark = pytest.mark.golden


def _cases():
    try:
        return golden("flux_lora_keys.json")["cases"]
    except BaseException:  # pytest.skip is raised at collection: collect nothing instead
        return []


def _argv_network_args(argv: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if "--network_args" in argv:
        for item in argv[argv.index("--network_args") + 1:]:
            if item.startswith("--"):
                break
            k, _, v = item.partition("=")
            out[k] = v
    return out


def spec_of(case: dict) -> fa.FluxNetworkSpec:
    """The spec of a golden case: sd-scripts' parsed values where the case has them, else its command line."""
    argv = case["argv"]
    alpha = case["network_alpha"]
    if case.get("network_alpha_python_type") == "int":
        alpha = int(alpha)
    if "net_kwargs" in case:
        args = {k: v for k, v in case["net_kwargs"].items() if v is not None and k != "dropout"}
    else:
        args = _argv_network_args(argv)
    return fa.FluxNetworkSpec(
        variant=case["base_model"], network_dim=case["network_dim"], network_alpha=alpha, network_args=args,
        network_train_unet_only="--network_train_unet_only" in argv,
        cache_text_encoder_outputs="--cache_text_encoder_outputs" in argv,
        apply_t5_attn_mask="--apply_t5_attn_mask" in argv)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_module_set_and_written_file_match_sd_scripts(case: dict, tmp_path) -> None:
    spec = spec_of(case)
    if "error" in case:
        if case["name"] == "split_qkv":  # sd-scripts 48d368f crashes (#2220); we build the fixed network
            assert fa.sd_scripts_flux_network(spec).crash_at_48d368f == case["error"]
            return
        with pytest.raises(fa.FluxNetworkError) as err:
            fa.sd_scripts_flux_network(spec)
        assert err.value.sd_scripts_error == case["error"].split(" / ")[0]
        return
    net = fa.sd_scripts_flux_network(spec)
    if case["name"] == "split_qkv_as_fixed_by_pr2396":
        assert net.crash_at_48d368f is not None
    else:
        assert net.crash_at_48d368f is None
    keys = case["keys"]
    names = list(dict.fromkeys(k.split(".")[0] for k in keys))
    assert [m.module.kohya_name for m in net.modules] == names
    assert net.counts() == case["module_count"]
    ranks: dict[str, int] = {}
    for m in net.modules:
        ranks[str(m.rank)] = ranks.get(str(m.rank), 0) + 1
    assert ranks == case["ranks"]

    path = synth_flux_kohya(tmp_path / "lora.safetensors", spec, zeros=True)
    sf = read_header(path)
    assert set(sf.tensors) == set(keys)
    for key, (shape, dtype, *value) in keys.items():
        e = sf.tensors[key]
        assert list(e.shape) == shape, key
        assert e.dtype == {"float32": "F32", "int64": "I64"}[dtype], key
        if value:
            assert decode_values(sf.read_bytes(key), e.dtype)[0] == value[0], key


def test_table_counts_and_relations() -> None:
    dev = fa.flux_table("flux1-dev")
    unet = [m for m in dev.modules if m.part == "transformer" and m.group in ("double", "single")]
    assert len(unet) == 19 * 10 + 38 * 3 == 304
    assert sum(m.part == "te1" for m in dev.modules) == 72
    assert sum(m.part == "te3" for m in dev.modules) == 168
    assert sum(m.part == "transformer" and m.group in ("double", "single")
               for m in fa.flux_table("chroma").modules) == 19 * 8 + 38 * 2
    qkv = dev.by_kohya["lora_unet_double_blocks_0_img_attn_qkv"]
    assert [(p.diffusers_path, p.offset, p.out_features) for p in qkv.parts] == [
        ("transformer_blocks.0.attn.to_q", 0, 3072), ("transformer_blocks.0.attn.to_k", 3072, 3072),
        ("transformer_blocks.0.attn.to_v", 6144, 3072)]
    lin1 = dev.by_kohya["lora_unet_single_blocks_7_linear1"]
    assert lin1.weight_shape == (21504, 3072) and lin1.split_rows() == (3072, 3072, 3072, 12288)
    assert lin1.parts[3].diffusers_path == "single_transformer_blocks.7.proj_mlp"
    assert dev.by_kohya["lora_unet_single_blocks_7_linear2"].weight_shape == (3072, 15360)
    t5 = dev.by_kohya["lora_te3_encoder_block_0_layer_1_DenseReluDense_wi_0"]
    assert (t5.bfl_path, t5.weight_shape) == ("encoder.block.0.layer.1.DenseReluDense.wi_0", (10240, 4096))
    final = dev.by_kohya["lora_unet_final_layer_adaLN_modulation_1"]
    assert final.parts[0].swap and not final.sd_scripts
    assert fa.kohya_to_bfl("lora_unet_txt_in") == ("transformer", "txt_in")
    assert "lora_unet_guidance_in_in_layer" not in fa.flux_table("flux1-schnell").by_kohya
    for m in dev.modules:  # every diffusers part resolves back to its module
        for p in m.parts:
            assert dev.module_of(dev.by_diffusers[(p.part, p.diffusers_path)]) is m


def test_tables_match_a_tiny_diffusers_flux_model() -> None:
    """Names and shapes of our table at tiny widths equal FluxTransformer2DModel's Linears (same topology)."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    model = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=8, num_layers=2, num_single_layers=3, attention_head_dim=4, num_attention_heads=2,
        joint_attention_dim=12, pooled_projection_dim=6, guidance_embeds=True, axes_dims_rope=(2, 2, 0))
    linears = {n: tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    w = fa.FluxWidths(hidden=8, mlp=32, in_channels=8, out_channels=8, context=12, vec=6, double=2, single=3)
    ours = {}
    for m in fa.transformer_modules("flux1-dev", w):
        for p in m.parts:
            ours[p.diffusers_path] = (p.out_features, p.in_features)
    assert ours == linears


def _from_weights_cases():
    try:
        return golden("flux_lora_keys.json")["from_weights"]
    except BaseException:
        return []


@pytest.mark.parametrize("case", _from_weights_cases(), ids=lambda c: c["name"])
def test_reading_our_file_back_matches_sd_scripts_loader(case: dict, tmp_path) -> None:
    """sd-scripts' create_network_from_weights on the same state dict: module counts, ranks and the scale it applies
    (a split_qkv file: rank 3r/4r and alpha/(n*r), which our check reports as 1/n strength)."""
    from collections import Counter

    from lora_compat.weights.check import check_lora
    from lora_compat.weights.reader import open_lora
    from lora_compat.weights.safetensors_io import OutTensor, write_safetensors

    src = {c["name"]: c for c in _cases()}[case["state_dict_of"]]
    spec = spec_of(src)
    path = synth_flux_kohya(tmp_path / "lora.safetensors", spec, zeros="split" not in src["name"])
    if case.get("error"):  # a file without .alpha: sd-scripts raises KeyError; our check says so
        sf = read_header(path)
        write_safetensors(path, [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items()
                                 if not k.endswith(".alpha")], dict(sf.metadata))
        assert len(read_header(path).tensors) == case["input_key_count"]
        res = check_lora(open_lora(path), "sd-scripts")
        assert not res.ok and all("KeyError" in r for _, r in res.problems)
        return
    lf = open_lora(path)
    assert len(read_header(path).tensors) == case["input_key_count"]
    counts = Counter(fa.KOHYA_PREFIX[m.part] for m in lf.modules)
    assert {k: counts.get(k, 0) for k in ("lora_te1", "lora_te3", "lora_unet")} == {
        k: v for k, v in case["module_count"].items() if k != "total"}
    assert dict(Counter(str(m.rank) for m in lf.modules)) == case["ranks"]
    scales = Counter(round(m.scale, 7) for m in lf.modules)
    assert scales == Counter({round(float(k), 7): v for k, v in case["scales"].items()})
    if "split" in src["name"]:
        weak = [p for p in check_lora(lf, "sd-scripts").problems if "1/" in p[1]]
        assert len(weak) == 76  # 38 double-block qkv pairs and 38 linear1: applied at 1/3 and 1/4
