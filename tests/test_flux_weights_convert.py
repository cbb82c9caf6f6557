"""FLUX conversion vs sd-scripts' own converter (golden flux_convert.json) and our round trips.

Golden inputs are rebuilt from the case's formula (their sha256 is checked first), converted by our converter and
compared key by key (shape, dtype, sha256 of the bytes) with what ``networks/convert_flux_lora.py`` wrote. Where
sd-scripts is wrong or incomplete the difference is asserted explicitly: we convert the text-encoder and embedder
keys it leaves behind, zero-fill a missing ``proj_mlp`` where it raises KeyError, keep the rank of a dense fused
module through a round trip where it triples it, and rescale the alpha of ``split_qkv`` files.
"""

from __future__ import annotations

import hashlib
import json

import pytest

np = pytest.importorskip("numpy")

from lora_compat.arch import flux as fa  # noqa: E402
from lora_compat.weights.convert import ConvertOptions, convert  # noqa: E402
from lora_compat.weights.flux_synth import synth_flux_kohya  # noqa: E402
from lora_compat.weights.reader import open_lora  # noqa: E402
from lora_compat.weights.safetensors_io import (  # noqa: E402
    OutTensor,
    encode_values,
    read_header,
    write_safetensors,
)

from shared_data import golden  # noqa: E402

DT = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def _cases() -> dict[str, dict]:
    try:
        return {c["name"]: c for c in golden("flux_convert.json")["cases"]}
    except BaseException:
        return {}


CASES = _cases()


def _encode(vals, dtype: str) -> bytes:
    f = np.asarray(vals, dtype=np.float32)
    if dtype == "BF16":
        return (f.view("<u4") >> 16).astype("<u2").tobytes()  # formula values are exact in bf16: truncation is exact
    return f.astype({"F32": "<f4", "F16": "<f2"}[dtype]).tobytes()


def _sparse_mask(key: str, shape, rank: int):
    """split_qkv layout: qkv (n=3) and linear1 (n=4) ups keep only their diagonal blocks."""
    if not key.endswith("lora_up.weight") or ("_qkv." not in key and "_linear1." not in key):
        return None
    rows = [3072] * 3 if "_qkv." in key else [3072, 3072, 3072, 12288]
    n = len(rows)
    if rank % n:
        return None
    mask = np.zeros(shape, dtype=bool)
    off, rp = 0, rank // n
    for j, r in enumerate(rows):
        mask[off:off + r, j * rp:(j + 1) * rp] = True
        off += r
    return mask


def _sha(raw: bytes, dtype: str) -> str:
    """Golden's checksum: sha256 of the values as float32 bytes (whatever the tensor's dtype)."""
    if dtype == "BF16":
        f = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
    else:
        f = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[dtype]).astype("<f4")
    return hashlib.sha256(f.tobytes()).hexdigest()


def build_input(case: dict, path, listing: dict | None = None) -> None:
    """Write the case's input file from its formula, and check every tensor's sha256 against golden."""
    gen = case["generator"]
    dtype = DT[gen["dtype"]]
    n = 0
    tensors = []
    for key, info in (listing or case["input"]).items():
        shape = tuple(info["shape"])
        if key.endswith(".alpha"):
            data = encode_values([gen["alpha"]], dtype)  # torch.tensor(alpha, dtype): rounded to nearest
        else:
            i = np.arange(int(np.prod(shape)), dtype=np.int64)
            vals = (((i * 37 + n * 101) % 257) - 128).astype(np.float32) / 256
            n += 1
            if gen.get("sparse"):
                mask = _sparse_mask(key, shape, shape[1])
                if mask is not None:  # multiplied by the mask, as golden was made: negative values become -0.0
                    vals = vals * mask.reshape(-1).astype(np.float32)
            data = _encode(vals, dtype)
        assert _sha(data, dtype) == info["sha256"], key
        tensors.append(OutTensor(key, dtype, shape, data))
    write_safetensors(path, tensors, {})


def _summary(sf, key: str) -> dict:
    e = sf.tensors[key]
    dtype = {v: k for k, v in DT.items()}[e.dtype]
    return {"shape": list(e.shape), "dtype": dtype, "sha256": _sha(sf.read_bytes(key), e.dtype)}


def _values(sf, key: str):
    e = sf.tensors[key]
    raw = sf.read_bytes(key)
    if e.dtype == "BF16":
        a = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
    else:
        a = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[e.dtype]).astype(np.float32)
    return a.astype(np.float64).reshape(e.shape)


PROBE = np.random.default_rng(0).standard_normal((15360, 3))


def _apply(sf, down_key: str, up_key: str, scale: float = 1.0):
    """up @ down @ probe (the product on a few random vectors: equal products there means equal ΔW in practice)."""
    down = _values(sf, down_key)
    return _values(sf, up_key) @ (down @ PROBE[: down.shape[1]]) * scale


def _assert_matches_golden(sf, expected: dict, skip=()) -> None:
    for key, info in expected.items():
        if key in skip:
            continue
        assert key in sf.tensors, key
        got = _summary(sf, key)
        assert got == {k: info[k] for k in ("shape", "dtype", "sha256")}, key


needs_golden = pytest.mark.skipif(not CASES, reason="golden flux_convert.json not found (../shared absent)")


@needs_golden
@pytest.mark.golden
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["direction"] == "sd-scripts->ai-toolkit"])
def test_kohya_to_ai_toolkit_equals_sd_scripts(name: str, tmp_path) -> None:
    case = CASES[name]
    src = tmp_path / "in.safetensors"
    build_input(case, src)
    rep = convert(src, tmp_path / "out.safetensors", ConvertOptions(to="ai-toolkit"))
    out = read_header(tmp_path / "out.safetensors")
    _assert_matches_golden(out, case["output"])
    # sd-scripts leaves text-encoder and embedder keys behind (not written); we convert them (baked, like the rest)
    extra = set(out.tensors) - set(case["output"])
    left = {k.split(".")[0] for k in case["left_unconverted"]}
    want = set()
    for name_ in left:
        path = "transformer.x_embedder" if name_ == "lora_unet_img_in" else \
            "text_encoder." + fa.flux_table().by_kohya[name_].bfl_path
        want |= {f"{path}.lora_A.weight", f"{path}.lora_B.weight"}
    assert extra == want
    assert any("baked" in n for n in rep.notes)
    # outputs sd-scripts shares (the fused down copied to q/k/v) are equal bytes in ours
    for group in case["output_tensors_sharing_storage"]:
        assert len({out.read_bytes(k) for k in group}) == 1


@needs_golden
@pytest.mark.golden
@pytest.mark.parametrize("name", ["ait_rank4_f32", "ait_rank2_f16_extra_keys"])
def test_ai_toolkit_to_kohya_equals_sd_scripts(name: str, tmp_path) -> None:
    case = CASES[name]
    src = tmp_path / "in.safetensors"
    build_input(case, src)
    convert(src, tmp_path / "out.safetensors", ConvertOptions(to="kohya"))
    out = read_header(tmp_path / "out.safetensors")
    _assert_matches_golden(out, case["output"])
    extra = set(out.tensors) - set(case["output"])
    if case["left_unconverted"]:  # transformer.x_embedder, which sd-scripts leaves behind, becomes lora_unet_img_in
        assert extra == {f"lora_unet_img_in.{p}" for p in ("lora_down.weight", "lora_up.weight", "alpha")}
        assert out.read_bytes("lora_unet_img_in.lora_down.weight") == read_header(src).read_bytes(
            "transformer.x_embedder.lora_A.weight")
    else:
        assert not extra


@needs_golden
@pytest.mark.golden
def test_ai_toolkit_without_proj_mlp_is_zero_filled_where_sd_scripts_raises(tmp_path) -> None:
    case = CASES["ait_missing_proj_mlp"]
    assert case["error"].startswith("KeyError")
    src = tmp_path / "in.safetensors"
    build_input(case, src)
    rep = convert(src, tmp_path / "out.safetensors", ConvertOptions(to="kohya"))
    assert any("zero-filled" in n and "proj_mlp" in n for n in rep.notes)
    out, inp = read_header(tmp_path / "out.safetensors"), read_header(src)
    name = "lora_unet_single_blocks_0_linear1"
    up = _values(out, f"{name}.lora_up.weight")
    assert out.tensors[f"{name}.lora_down.weight"].shape == (12, 3072) and up.shape == (21504, 12)
    dw = _apply(out, f"{name}.lora_down.weight", f"{name}.lora_up.weight", _values(out, f"{name}.alpha").item() / 12)
    for j, part in enumerate(("attn.to_q", "attn.to_k", "attn.to_v")):
        p = f"transformer.single_transformer_blocks.0.{part}"
        want = _apply(inp, f"{p}.lora_A.weight", f"{p}.lora_B.weight")
        assert np.allclose(dw[j * 3072:(j + 1) * 3072], want, rtol=1e-12, atol=1e-12)
    assert not up[9216:].any()


@needs_golden
@pytest.mark.golden
def test_round_trips_through_ai_toolkit(tmp_path) -> None:
    # sparse (split_qkv-style): sd-scripts gives the input back; so do we
    case = CASES["round_trip_sparse_rank12"]
    src = tmp_path / "sparse.safetensors"
    build_input(case, src, CASES["sds_rank12_alpha12_sparse_f32"]["input"])  # the same generator
    convert(src, tmp_path / "ait.safetensors", ConvertOptions(to="ai-toolkit"))
    convert(tmp_path / "ait.safetensors", tmp_path / "back.safetensors", ConvertOptions(to="kohya"))
    back, inp = read_header(tmp_path / "back.safetensors"), read_header(src)
    _assert_matches_golden(back, case["output"])
    assert all(case["identical_to_input"].values())  # torch.equal: -0.0 == 0.0
    assert set(back.tensors) == set(inp.tensors)
    for k in inp.tensors:  # the input's off-diagonal zeros are -0.0 where the formula was negative; both write +0.0
        assert np.array_equal(_values(back, k), _values(inp, k)), k
    # dense: sd-scripts re-fuses the shared down block-diagonally at rank 3r / 4r; we detect the identical downs
    case = CASES["round_trip_dense_rank4_alpha1"]
    src = tmp_path / "dense.safetensors"
    listing = {k: v for k, v in CASES["sds_rank4_alpha1_dense_f32"]["input"].items()
               if k.split(".")[0] in {o.split(".")[0] for o in case["output"]}}
    build_input(case, src, listing)
    convert(src, tmp_path / "ait2.safetensors", ConvertOptions(to="ai-toolkit"))
    convert(tmp_path / "ait2.safetensors", tmp_path / "back2.safetensors", ConvertOptions(to="kohya"))
    back, inp = read_header(tmp_path / "back2.safetensors"), read_header(src)
    assert case["output"]["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"]["shape"] == [12, 3072]
    for name in {k.split(".")[0] for k in inp.tensors}:
        rank = inp.tensors[f"{name}.lora_down.weight"].shape[0]
        assert back.tensors[f"{name}.lora_down.weight"].shape[0] == rank, name
        dws = [_apply(f, f"{name}.lora_down.weight", f"{name}.lora_up.weight",
                      _values(f, f"{name}.alpha").item() / rank) for f in (inp, back)]
        assert np.allclose(dws[0], dws[1], rtol=1e-6, atol=1e-9), name


@needs_golden
@pytest.mark.golden
def test_split_qkv_alpha_is_rescaled_where_sd_scripts_keeps_it(tmp_path) -> None:
    """A split_qkv training output (ss_network_args split_qkv=True, block-diagonal ups): sd-scripts' converter keeps
    the alpha, so q/k/v (and the MLP part of linear1) apply at 1/n strength; ours multiplies alpha by n."""
    case = CASES["sds_rank12_alpha12_sparse_f32"]
    plain = tmp_path / "plain.safetensors"
    build_input(case, plain)
    sf = read_header(plain)
    tagged = tmp_path / "tagged.safetensors"
    write_safetensors(tagged, [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items()],
                      {"ss_network_args": json.dumps({"split_qkv": "True"})})
    convert(plain, tmp_path / "a.safetensors", ConvertOptions(to="ai-toolkit"))
    rep = convert(tagged, tmp_path / "b.safetensors", ConvertOptions(to="ai-toolkit"))
    assert any("split_qkv" in n for n in rep.notes)
    a, b = read_header(tmp_path / "a.safetensors"), read_header(tmp_path / "b.safetensors")
    _assert_matches_golden(a, case["output"])  # without the tag: sd-scripts' output
    for key in a.tensors:
        if not key.endswith("lora_A.weight"):
            continue
        stem = key[: -len(".lora_A.weight")]
        dw = [_apply(f, key, f"{stem}.lora_B.weight") for f in (a, b)]
        fused = stem.endswith((".to_q", ".to_k", ".to_v", "_q_proj", "_k_proj", "_v_proj", ".proj_mlp"))
        ratio = 4 if "single_transformer" in stem else 3
        assert np.allclose(dw[1], dw[0] * (ratio if fused else 1), rtol=1e-6, atol=0), stem
    # and to kohya: the fused module keeps its tensors, the alpha becomes n * alpha
    convert(tagged, tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    k = read_header(tmp_path / "k.safetensors")
    assert _values(k, "lora_unet_double_blocks_0_img_attn_qkv.alpha").item() == 36.0
    assert _values(k, "lora_unet_single_blocks_0_linear1.alpha").item() == 48.0
    assert _values(k, "lora_unet_double_blocks_0_img_attn_proj.alpha").item() == 12.0
    # a file we wrote is never rescaled again
    convert(tmp_path / "k.safetensors", tmp_path / "k2.safetensors", ConvertOptions(to="kohya"))
    assert _values(read_header(tmp_path / "k2.safetensors"), "lora_unet_single_blocks_0_linear1.alpha").item() == 48.0


# --- our own round trips (no golden needed) --------------------------------------------------------------------------

def _tensor_bytes(path) -> dict[str, tuple]:
    sf = read_header(path)
    return {k: (e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items()}


def _vary_alphas(path) -> None:
    """Give every third module its own alpha (in the file's alpha dtype)."""
    sf = read_header(path)
    tensors = []
    for i, (k, e) in enumerate(sf.tensors.items()):
        data = sf.read_bytes(k)
        if k.endswith(".alpha") and i % 3 == 0:
            data = encode_values([0.25 * (1 + i % 11)], e.dtype)
        tensors.append(OutTensor(k, e.dtype, e.shape, data))
    write_safetensors(path, tensors, dict(sf.metadata))


@pytest.mark.parametrize("dtype", ["F16", "BF16"])
def test_round_trips_are_byte_identical(dtype: str, tmp_path) -> None:
    """kohya -> diffusers / PEFT / ComfyUI -> kohya: every tensor (alphas included) byte-identical, with CLIP-L, T5
    and per-module alphas (reg dims + in_dims give several ranks; the alpha dtype is the weights' one)."""
    spec = fa.FluxNetworkSpec(network_dim=4, network_alpha=2.0, network_args={
        "train_t5xxl": "True", "in_dims": "[2,0,4,0,3]",
        # first match wins: most T5 / CLIP layers and single blocks off (a smaller file), others with own ranks
        "network_reg_dims": r"_block_[1-9]\d?_=0;layers_[2-9]\d?_=0;single_blocks_[3-9]\d?_=0;single_blocks_1_=6;"
                            "txt_mlp=3".replace(";", ","),
        "train_double_block_indices": "0-2"})
    src = synth_flux_kohya(tmp_path / "src.safetensors", spec, dtype=dtype, alpha_dtype=dtype, seed=3)
    _vary_alphas(src)
    want = _tensor_bytes(src)
    assert len({v[2] for k, v in want.items() if k.endswith(".alpha")}) > 3
    for to, out in (("diffusers", "d.safetensors"), ("peft", "p"), ("comfyui", "c.safetensors")):
        convert(src, tmp_path / out, ConvertOptions(to=to))
        back = tmp_path / f"back_{to}.safetensors"
        convert(tmp_path / out, back, ConvertOptions(to="kohya"))
        assert _tensor_bytes(back) == want, to


def test_round_trip_keeps_int64_alphas_and_per_module_alpha_values(tmp_path) -> None:
    """sd-scripts' default run writes int64 alphas; modules with their own alpha keep it through PEFT."""
    spec = fa.FluxNetworkSpec(network_dim=4, network_alpha=1, network_train_unet_only=True,
                             network_args={"train_blocks": "single", "single_mod_dim": "2"})
    src = synth_flux_kohya(tmp_path / "src.safetensors", spec, seed=1)
    sf = read_header(src)
    tensors = []
    for i, (k, e) in enumerate(sf.tensors.items()):
        data = sf.read_bytes(k)
        if k.endswith(".alpha") and i % 7 == 0:
            data = (3 + i % 5).to_bytes(8, "little", signed=True)
        tensors.append(OutTensor(k, e.dtype, e.shape, data))
    write_safetensors(src, tensors, dict(sf.metadata))
    want = _tensor_bytes(src)
    assert {v[0] for k, v in want.items() if k.endswith(".alpha")} == {"I64"}
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    cfg = json.loads((tmp_path / "p" / "transformer" / "adapter_config.json").read_text())
    assert cfg["alpha_pattern"] and cfg["rank_pattern"]
    convert(tmp_path / "p", tmp_path / "back.safetensors", ConvertOptions(to="kohya"))
    assert _tensor_bytes(tmp_path / "back.safetensors") == want


def test_split_qkv_file_round_trip_and_shapes(tmp_path) -> None:
    """A split_qkv training output (PR #2396 layout): split by chunking, alpha x n, back at rank n*r."""
    spec = fa.FluxNetworkSpec(network_dim=4, network_alpha=4.0, network_train_unet_only=True,
                             network_args={"split_qkv": "True", "train_double_block_indices": "0-3",
                                           "train_single_block_indices": "0-5"})
    src = synth_flux_kohya(tmp_path / "src.safetensors", spec, dtype="F16", seed=2)
    lf = open_lora(src)
    assert lf.split_qkv
    rep = convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    assert any("chunking" in n for n in rep.notes) and any("split_qkv" in n for n in rep.notes)
    d = read_header(tmp_path / "d.safetensors")
    assert d.tensors["transformer.transformer_blocks.0.attn.to_q.lora_A.weight"].shape == (4, 3072)
    assert d.tensors["transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight"].shape == (12288, 4)
    meta = json.loads(d.metadata["lora_adapter_metadata"])
    assert meta["transformer.lora_alpha"] == 4  # every part at its trained scale 4/4
    convert(tmp_path / "d.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    k, s = read_header(tmp_path / "k.safetensors"), read_header(src)
    for name in ("lora_unet_double_blocks_3_txt_attn_qkv", "lora_unet_single_blocks_5_linear1"):
        for p in ("lora_down.weight", "lora_up.weight"):
            assert k.read_bytes(f"{name}.{p}") == s.read_bytes(f"{name}.{p}")
    assert _values(k, "lora_unet_single_blocks_5_linear1.alpha").item() == 16.0


def test_never_splits_a_down_only_because_the_rank_divides(tmp_path) -> None:
    """Rank 12 dense qkv (mflux #423/#458): the down is shared, not chunked."""
    spec = fa.FluxNetworkSpec(network_dim=12, network_alpha=12.0, network_train_unet_only=True,
                             network_args={"train_double_block_indices": "0", "train_single_block_indices": "none"})
    src = synth_flux_kohya(tmp_path / "src.safetensors", spec, seed=4)
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    d = read_header(tmp_path / "d.safetensors")
    assert d.tensors["transformer.transformer_blocks.0.attn.to_k.lora_A.weight"].shape == (12, 3072)


def test_part_scales_are_baked_into_a_block_diagonal_down(tmp_path) -> None:
    """diffusers -> kohya with independent q/k downs at different scales: each part's scale goes into its rows of
    the fused down (alpha = rank). Found by the SD3 work: the part factor was dropped when the down was written."""
    h = 3072
    rng = np.random.default_rng(0)
    tensors, pattern = [], {}
    for part, r, alpha in (("to_q", 2, 1.0), ("to_k", 1, 3.0)):
        base = f"transformer.transformer_blocks.0.attn.{part}"
        for name, shp in (("lora_A", (r, h)), ("lora_B", (h, r))):
            tensors.append(OutTensor(f"{base}.{name}.weight", "F32", shp,
                                     (rng.standard_normal(shp[0] * shp[1]) * 0.1).astype("<f4").tobytes()))
        pattern[f"transformer_blocks.0.attn.{part}"] = alpha
    meta = {"transformer.r": 2, "transformer.lora_alpha": 2, "transformer.alpha_pattern": pattern,
            "transformer.rank_pattern": {"transformer_blocks.0.attn.to_k": 1},
            "transformer.target_modules": sorted(pattern)}
    write_safetensors(tmp_path / "d.safetensors", tensors, {"lora_adapter_metadata": json.dumps(meta)})
    convert(tmp_path / "d.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    d, k = read_header(tmp_path / "d.safetensors"), read_header(tmp_path / "k.safetensors")
    name = "lora_unet_double_blocks_0_img_attn_qkv"
    down = _values(k, f"{name}.lora_down.weight").reshape(3, h)
    assert _values(k, f"{name}.alpha").item() == 3.0   # alpha = rank: scale 1, the part scales are in the down
    q = _values(d, "transformer.transformer_blocks.0.attn.to_q.lora_A.weight").reshape(2, h)
    kk = _values(d, "transformer.transformer_blocks.0.attn.to_k.lora_A.weight").reshape(1, h)
    # float32 products, as torch's tensor * scalar: to_q alpha 1 / rank 2, to_k alpha 3 / rank 1
    np.testing.assert_array_equal(down[:2], q.astype(np.float32) * np.float32(0.5))
    np.testing.assert_array_equal(down[2:], kk.astype(np.float32) * np.float32(3.0))
