"""kohya <-> PEFT <-> diffusers conversion: exact round trips on files built from sd-scripts' own key lists."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
stnp = pytest.importorskip("safetensors.numpy")

from lora_compat.cli import main  # noqa: E402
from lora_compat.errors import UserError  # noqa: E402
from lora_compat.weights.convert import ConvertOptions, convert  # noqa: E402
from lora_compat.weights.reader import open_lora  # noqa: E402

from shared_data import golden  # noqa: E402

CASES = ["sd1/lora_dim8_alpha4", "sd1/locon_dim8_conv4", "sd2/lora_dim8_alpha4", "sd2/locon_dim8_conv4",
         "sdxl/lora_dim8_alpha4", "sdxl/locon_dim8_conv4"]


def golden_lora(path: Path, case: str, *, per_module: bool = False, dtype=np.float16, seed: int = 0,
                metadata: dict | None = None, rank_map=None) -> dict[str, np.ndarray]:
    """A kohya file with exactly the golden keys; ranks shrunk to 1-2, written by the safetensors library."""
    keys = golden("kohya_lora_keys.json")["cases"][case]
    rng = np.random.default_rng(seed)
    ranks: dict[str, int] = {}
    out: dict[str, np.ndarray] = {}
    for key, shape in keys.items():
        name, param = key.split(".", 1)
        if name not in ranks:
            ranks[name] = int(rng.integers(1, 3)) if per_module else (1 if len(shape) == 4 else 2)
            if rank_map:
                ranks[name] = rank_map(name, ranks[name])
        r = ranks[name]
        if param == "alpha":
            a = float(rng.uniform(0.1, 4)) if per_module else 1.0
            out[key] = np.array(a, dtype=dtype)
            continue
        shape = list(shape)
        if param == "lora_down.weight":
            shape[0] = r
        else:
            shape[1] = r
        out[key] = (rng.standard_normal(shape) * 0.05).astype(dtype)
    meta = {"ss_network_module": "networks.lora", "ss_output_name": "golden", "ss_network_dim": "2",
            "ss_tag_frequency": json.dumps({"a": {"b": 1}}), "sshs_model_hash": "0" * 64, "sshs_legacy_hash": "0" * 8}
    if metadata is not None:
        meta = metadata
    stnp.save_file(out, str(path), metadata=meta)
    return out


def sha(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118 - safe_open is no mapping


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.golden
@pytest.mark.parametrize("via", ["peft", "diffusers"])
@pytest.mark.parametrize("case", CASES)
def test_round_trip_is_byte_identical_with_exact_alphas(case: str, via: str, tmp_path: Path) -> None:
    per_module = via == "diffusers" or "locon" in case  # half the cases: alphas and ranks differ per module
    src = tmp_path / "src.safetensors"
    orig = golden_lora(src, case, per_module=per_module)
    before = sha(src)
    mid = tmp_path / ("mid" if via == "peft" else "mid.safetensors")
    convert(src, mid, ConvertOptions(to=via))
    back = tmp_path / "back.safetensors"
    rep = convert(mid, back, ConvertOptions(to="kohya"))
    assert sha(src) == before  # SRC never modified
    assert rep.bytes_rewritten == 0
    got, meta = load(back)
    assert set(got) == set(orig)  # exactly sd-scripts' key set again
    for key, value in orig.items():
        if key.endswith(".alpha"):
            assert got[key].dtype == np.float32 and got[key].shape == ()
            assert float(got[key]) == float(value)  # exact (fp16 value widened to fp32)
        else:
            assert same_bits(got[key], value), key
    assert meta["ss_output_name"] == "golden" and meta["ss_tag_frequency"] == orig_meta_tag()
    assert meta["format"] == "pt" and meta["lora_compat.converted_from"].startswith(via)


def orig_meta_tag() -> str:
    return json.dumps({"a": {"b": 1}})


@pytest.mark.golden
def test_peft_config_holds_every_rank_and_alpha(tmp_path: Path) -> None:
    src = tmp_path / "src.safetensors"
    orig = golden_lora(src, "sdxl/locon_dim8_conv4", per_module=True)
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    from lora_compat import arch as archmod
    from lora_compat.weights.layouts import PatternIndex

    for comp, part in (("unet", "unet"), ("text_encoder", "te1"), ("text_encoder_2", "te2")):
        cfg = json.loads((tmp_path / "p" / comp / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["use_rslora"] is False
        ai, ri = PatternIndex(cfg["alpha_pattern"]), PatternIndex(cfg["rank_pattern"])
        mods = [m for m in archmod.kohya_modules("sdxl", "locon") if m.part == part]
        assert sorted(cfg["target_modules"]) == sorted(m.te_path(5) for m in mods)
        for m in mods:
            r = orig[f"{m.kohya_name}.lora_down.weight"].shape[0]
            alpha = float(orig[f"{m.kohya_name}.alpha"])
            assert ri.lookup(m.diffusers_path, cfg["r"]) == r
            assert float(ai.lookup(m.diffusers_path, cfg["lora_alpha"])) == alpha


def test_dst_exists_needs_force_and_same_file_is_refused(tmp_path: Path, capsys) -> None:
    from lora_compat.weights.synth import synth_kohya

    src = synth_kohya(tmp_path / "a.safetensors", "sd1", rank=2)
    dst = tmp_path / "b.safetensors"
    dst.write_bytes(b"keep me")
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(src), str(dst), "--to", "diffusers"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1
    assert dst.read_bytes() == b"keep me"
    # --force replaces only what this tool could have written: not a text file (#10.9)
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(src), str(dst), "--to", "diffusers", "--force"])
    assert exc.value.code == 2 and "a text file" in capsys.readouterr().err
    assert dst.read_bytes() == b"keep me"
    dst.unlink()
    main(["convert", str(src), str(dst), "--to", "kohya"])
    main(["convert", str(src), str(dst), "--to", "diffusers", "--force"])  # a LoRA file: replaced
    assert open_lora(dst).layout == "diffusers"
    with pytest.raises(UserError, match="source itself"):
        convert(src, src, ConvertOptions(to="kohya", force=True))
    # PEFT folder replaced only with --force, and atomically (no temp folders left behind)
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    with pytest.raises(UserError, match="already exists"):
        convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    convert(src, tmp_path / "p", ConvertOptions(to="peft", force=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "b.safetensors", "p"]


def test_sd_scripts_hashes_are_recomputed(tmp_path: Path) -> None:
    from lora_compat.weights.synth import synth_kohya

    src = synth_kohya(tmp_path / "a.safetensors", "sd1", rank=64, dtype="F32",
                      metadata={"ss_network_dim": "64", "sshs_model_hash": "x", "sshs_legacy_hash": "y",
                                "modelspec.title": "t", "modelspec.hash_sha256": "0xdead"})
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    _, dmeta = load(tmp_path / "d.safetensors")
    assert not any(k.startswith("sshs_") for k in dmeta)
    convert(tmp_path / "d.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    tensors, meta = load(tmp_path / "k.safetensors")
    assert "modelspec.hash_sha256" not in meta and meta["modelspec.title"] == "t"
    # sd-scripts: serialise with only the ss_* metadata, hash the bytes after the header / 64 KiB at 1 MiB
    blob = stnp.save(tensors, metadata={k: v for k, v in meta.items() if k.startswith("ss_")})
    n = struct.unpack("<Q", blob[:8])[0]
    assert len(blob) > 0x110000
    assert meta["sshs_model_hash"] == hashlib.sha256(blob[8 + n:]).hexdigest()
    assert meta["sshs_legacy_hash"] == hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]


def _rename(src: Path, dst: Path, fn) -> None:
    tensors, meta = load(src)
    stnp.save_file({fn(k): v for k, v in tensors.items()}, str(dst), metadata=meta)


def test_name_variants_are_normalised(tmp_path: Path) -> None:
    from lora_compat import arch as archmod
    from lora_compat.weights.synth import synth_kohya

    # SDXL diffusers-named kohya -> SGM names on output
    src = synth_kohya(tmp_path / "x.safetensors", "sdxl", algo="locon", rank=1)
    to_diff = {m.kohya_name: "lora_unet_" + m.diffusers_path.replace(".", "_")
               for m in archmod.kohya_modules("sdxl", "locon") if m.part == "unet"}
    _rename(src, tmp_path / "xd.safetensors", lambda k: to_diff.get(k.split(".")[0], k.split(".")[0]) + "." +
            k.split(".", 1)[1])
    lf = open_lora(tmp_path / "xd.safetensors")
    assert lf.arch == "sdxl" and lf.naming == "diffusers"
    convert(tmp_path / "xd.safetensors", tmp_path / "xs.safetensors", ConvertOptions(to="kohya"))
    a, _ = load(src)
    b, _ = load(tmp_path / "xs.safetensors")
    assert set(a) == set(b)
    # both spellings in one file: refused
    mixed = dict(a)
    for k in [x for x in a if x.startswith("lora_unet_input_blocks_4_1_proj_in.")]:
        mixed[k.replace("input_blocks_4_1", "down_blocks_1_attentions_0")] = mixed.pop(k)
    stnp.save_file(mixed, str(tmp_path / "mixed.safetensors"))
    with pytest.raises(UserError, match="mixes SGM"):
        open_lora(tmp_path / "mixed.safetensors")
    # SD1 with SGM names and lora_te1_ -> diffusers names and lora_te_
    src1 = synth_kohya(tmp_path / "s1.safetensors", "sd1", algo="locon", rank=1)
    to_sgm = {m.kohya_name: "lora_unet_" + m.sgm_path.replace(".", "_")
              for m in archmod.kohya_modules("sd1", "locon") if m.part == "unet"}
    _rename(src1, tmp_path / "s1sgm.safetensors",
            lambda k: to_sgm.get(k.split(".")[0], k.split(".")[0].replace("lora_te_", "lora_te1_")) + "." +
            k.split(".", 1)[1])
    assert "lora_unet_output_blocks_2_1_conv.lora_down.weight" in load(tmp_path / "s1sgm.safetensors")[0]
    convert(tmp_path / "s1sgm.safetensors", tmp_path / "s1back.safetensors", ConvertOptions(to="kohya"))
    assert set(load(tmp_path / "s1back.safetensors")[0]) == set(load(src1)[0])


def test_text_encoder_naming_for_transformers_4_and_5(tmp_path: Path) -> None:
    from lora_compat.weights.synth import synth_kohya

    src = synth_kohya(tmp_path / "x.safetensors", "sdxl", rank=1)
    convert(src, tmp_path / "p5", ConvertOptions(to="peft"))
    convert(src, tmp_path / "p4", ConvertOptions(to="peft", te_naming=4))
    k5 = set(load(tmp_path / "p5" / "text_encoder" / "adapter_model.safetensors")[0])
    k4 = set(load(tmp_path / "p4" / "text_encoder" / "adapter_model.safetensors")[0])
    assert "base_model.model.encoder.layers.0.self_attn.q_proj.lora_A.weight" in k5
    assert "base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight" in k4
    # CLIPTextModelWithProjection keeps text_model. in transformers 5
    k5b = set(load(tmp_path / "p5" / "text_encoder_2" / "adapter_model.safetensors")[0])
    assert "base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight" in k5b
    for d in ("p4", "p5"):
        convert(tmp_path / d, tmp_path / f"{d}.safetensors", ConvertOptions(to="kohya"))
        assert set(load(tmp_path / f"{d}.safetensors")[0]) == set(load(src)[0]) | {
            k for k in load(tmp_path / f"{d}.safetensors")[0] if k.endswith(".alpha")}
    # diffusers output keeps text_model. (ComfyUI needs it); diffusers >= 0.42 strips it itself
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    assert "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_A.weight" in load(tmp_path / "d.safetensors")[0]


def test_dtype_casts_and_bake(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from lora_compat.weights.synth import synth_kohya

    src = synth_kohya(tmp_path / "x.safetensors", "sd1", rank=4, dtype="F32", alpha=1.0)
    orig, _ = load(src)
    convert(src, tmp_path / "bf.safetensors", ConvertOptions(to="kohya", dtype="bf16"))
    convert(src, tmp_path / "h.safetensors", ConvertOptions(to="kohya", dtype="fp16"))
    import safetensors.torch as stt

    bf = stt.load_file(str(tmp_path / "bf.safetensors"))
    h = stt.load_file(str(tmp_path / "h.safetensors"))
    for k, v in orig.items():
        t = torch.from_numpy(v.copy())
        if k.endswith(".alpha"):
            assert bf[k].dtype == torch.float32 and bf[k].item() == 1.0
            continue
        assert torch.equal(bf[k], t.to(torch.bfloat16)), k   # same rounding as torch
        assert torch.equal(h[k], t.to(torch.float16)), k
    # fp16 -> fp32 is exact
    convert(tmp_path / "h.safetensors", tmp_path / "f.safetensors", ConvertOptions(to="kohya", dtype="fp32"))
    f = stt.load_file(str(tmp_path / "f.safetensors"))
    assert all(torch.equal(f[k], h[k].float()) for k in h)
    # bake: alpha 1, rank 4 -> scale 0.25 (a power of two: bit exact), alpha written = rank
    convert(src, tmp_path / "b.safetensors", ConvertOptions(to="kohya", bake_scale=True))
    b = stt.load_file(str(tmp_path / "b.safetensors"))
    for k, v in orig.items():
        if k.endswith("lora_down.weight"):
            assert torch.equal(b[k], torch.from_numpy(v.copy()) * 0.25)
            assert b[k.replace("lora_down.weight", "alpha")].item() == 4.0


def test_rslora_and_peft_input(tmp_path: Path) -> None:
    """A PEFT rsLoRA adapter (scale lora_alpha/sqrt(r)) becomes kohya alpha = lora_alpha*sqrt(r)."""
    d = tmp_path / "peft"
    d.mkdir()
    rng = np.random.default_rng(0)
    path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    tensors = {f"base_model.model.{path}.lora_A.weight": rng.standard_normal((4, 768)).astype(np.float32),
               f"base_model.model.{path}.lora_B.weight": rng.standard_normal((320, 4)).astype(np.float32)}
    stnp.save_file(tensors, str(d / "adapter_model.safetensors"), metadata={"format": "pt"})
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 3,
                                                       "use_rslora": True, "target_modules": [path]}))
    convert(d, tmp_path / "k.safetensors", ConvertOptions(to="kohya", arch="sd1"))
    k, _ = load(tmp_path / "k.safetensors")
    name = "lora_unet_" + path.replace(".", "_")
    assert float(k[f"{name}.alpha"]) / 4 == pytest.approx(3 / math.sqrt(4), rel=1e-7)
    # configs kohya cannot express are refused
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 3,
                                                       "init_lora_weights": "pissa"}))
    with pytest.raises(UserError, match="init_lora_weights"):
        open_lora(d)


def test_alpha_edge_cases(tmp_path: Path) -> None:
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    base = {f"{name}.lora_down.weight": np.ones((2, 768), np.float16),
            f"{name}.lora_up.weight": np.ones((320, 2), np.float16)}
    stnp.save_file({**base, f"{name}.alpha": np.array(0.0, np.float16)}, str(tmp_path / "z.safetensors"))
    with pytest.raises(UserError, match="alpha is 0"):
        open_lora(tmp_path / "z.safetensors")
    stnp.save_file({**base, f"{name}.alpha": np.array(3, np.int64)}, str(tmp_path / "i.safetensors"))
    assert open_lora(tmp_path / "i.safetensors").modules[0].alpha == 3.0
    stnp.save_file({**base, f"{name}.alpha": np.array(0.3, np.float16)}, str(tmp_path / "h.safetensors"))
    m = open_lora(tmp_path / "h.safetensors").modules[0]
    assert m.alpha == float(np.float16(0.3)) and m.scale == float(np.float16(0.3)) / 2
    stnp.save_file(base, str(tmp_path / "none.safetensors"))
    assert open_lora(tmp_path / "none.safetensors").modules[0].scale == 1.0


def _tiny_lyco(tmp_path: Path, algo: str) -> Path:
    """LoHa / LoKr / DoRA modules on three SDXL targets (shapes from the reference tables)."""
    rng = np.random.default_rng(3)

    def r(*s):
        return rng.standard_normal(s).astype(np.float32)
    lin = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"   # 2048 -> 640
    conv = "lora_unet_input_blocks_1_0_in_layers_2"                      # 320 -> 320, 3x3
    te = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"          # 768 -> 768
    t: dict[str, np.ndarray] = {}
    if algo == "loha":
        for n, (o, i) in ((lin, (640, 2048)), (te, (768, 768)), (conv, (320, 2880))):
            for w in ("1", "2"):
                t[f"{n}.hada_w{w}_a"], t[f"{n}.hada_w{w}_b"] = r(o, 8), r(8, i)
            t[f"{n}.alpha"] = np.array(4.0, np.float32)
    elif algo == "lokr":
        t[f"{lin}.lokr_w1"], t[f"{lin}.lokr_w2_a"], t[f"{lin}.lokr_w2_b"] = r(20, 32), r(32, 8), r(8, 64)
        t[f"{conv}.lokr_w1"], t[f"{conv}.lokr_w2_a"], t[f"{conv}.lokr_w2_b"] = r(16, 16), r(20, 8), r(8, 180)
        t[f"{te}.lokr_w1"], t[f"{te}.lokr_w2"] = r(24, 24), r(32, 32)
        for n in (lin, conv, te):
            t[f"{n}.alpha"] = np.array(4.0, np.float32)
    else:  # dora, output axis
        t[f"{lin}.lora_down.weight"], t[f"{lin}.lora_up.weight"] = r(4, 2048), r(640, 4)
        t[f"{lin}.dora_scale"] = r(640, 1)
        t[f"{conv}.lora_down.weight"], t[f"{conv}.lora_up.weight"] = r(4, 320, 3, 3), r(320, 4, 1, 1)
        t[f"{conv}.dora_scale"] = r(320, 1, 1, 1)
        for n in (lin, conv):
            t[f"{n}.alpha"] = np.array(2.0, np.float32)
    p = tmp_path / f"{algo}.safetensors"
    stnp.save_file(t, str(p), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    return p


def test_lokr_round_trip_through_peft(tmp_path: Path) -> None:
    src = _tiny_lyco(tmp_path, "lokr")
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    cfg = json.loads((tmp_path / "p" / "unet" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LOKR" and cfg["decompose_factor"] == -1 and cfg["decompose_both"] is False
    te = json.loads((tmp_path / "p" / "text_encoder" / "adapter_config.json").read_text())
    assert te["alpha"] == te["r"]  # both factors full: kohya's scale is 1, PEFT's is alpha / r
    convert(tmp_path / "p", tmp_path / "back.safetensors", ConvertOptions(to="kohya"))
    a, _ = load(src)
    b, _ = load(tmp_path / "back.safetensors")
    for k in a:
        if not k.endswith(".alpha"):
            assert a[k].tobytes() == b[k].tobytes(), k
    assert float(b["lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.alpha"]) == 4.0
    # a factor PEFT cannot recreate (w1 decomposed although rank >= half the factor size) is refused
    bad, _ = load(src)
    n = "lora_unet_input_blocks_1_0_in_layers_2"
    w1 = bad.pop(f"{n}.lokr_w1")
    bad[f"{n}.lokr_w1_a"], bad[f"{n}.lokr_w1_b"] = w1[:, :8].copy(), np.ones((8, 16), np.float32)
    stnp.save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(UserError, match="LoKr -> PEFT"):
        convert(tmp_path / "bad.safetensors", tmp_path / "p2", ConvertOptions(to="peft"))
    assert not (tmp_path / "p2").exists()


@pytest.mark.parametrize("algo", ["loha", "dora"])
def test_lycoris_and_dora_round_trip_through_peft(algo: str, tmp_path: Path) -> None:
    src = _tiny_lyco(tmp_path, algo)
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    peft_keys, _ = load(tmp_path / "p" / "unet" / "adapter_model.safetensors")
    if algo == "dora":
        mag = "base_model.model.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_magnitude_vector"
        assert peft_keys[mag].shape == (640,)
        assert peft_keys["base_model.model.down_blocks.0.resnets.0.conv1.lora_magnitude_vector"].shape == (1, 320, 1, 1)
        cfg = json.loads((tmp_path / "p" / "unet" / "adapter_config.json").read_text())
        assert cfg["use_dora"] is True
    else:
        cfg = json.loads((tmp_path / "p" / "unet" / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LOHA" and cfg["alpha"] == 4 and cfg["r"] == 8
    convert(tmp_path / "p", tmp_path / "back.safetensors", ConvertOptions(to="kohya"))
    a, _ = load(src)
    b, meta = load(tmp_path / "back.safetensors")
    assert set(a) == set(b)
    for k in a:
        assert a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes(), k
    assert meta["ss_network_module"] == "lycoris.kohya"
    if algo == "dora":  # diffusers loads PEFT-named magnitudes natively
        convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))


def test_what_targets_cannot_take_is_refused(tmp_path: Path) -> None:
    lokr = _tiny_lyco(tmp_path, "lokr")
    with pytest.raises(UserError, match="diffusers' SD/SDXL pipelines"):
        convert(lokr, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    convert(lokr, tmp_path / "k.safetensors", ConvertOptions(to="kohya"))  # kohya -> kohya keeps LoKr
    assert open_lora(tmp_path / "k.safetensors").algo == "lokr"
    # input-axis DoRA is different math from PEFT's
    dora = tmp_path / "in.safetensors"
    n = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    stnp.save_file({f"{n}.lora_down.weight": np.ones((4, 2048), np.float32),
                    f"{n}.lora_up.weight": np.ones((640, 4), np.float32),
                    f"{n}.dora_scale": np.ones((1, 2048), np.float32)}, str(dora))
    with pytest.raises(UserError, match="input-axis DoRA"):
        convert(dora, tmp_path / "p2", ConvertOptions(to="peft"))
    assert not (tmp_path / "p2").exists() and not (tmp_path / "d.safetensors").exists()


def test_verify_catches_a_wrong_scale(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from lora_compat.weights.synth import synth_kohya
    from lora_compat.weights.verify import verify_conversion

    src = synth_kohya(tmp_path / "x.safetensors", "sd1", rank=2, dtype="F32", per_module=True, te=False)
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    ok = verify_conversion(src, tmp_path / "d.safetensors")
    assert ok.ok and ok.max_rel == 0.0 and ok.modules == 192
    tensors, meta = load(tmp_path / "d.safetensors")
    cfg = json.loads(meta["lora_adapter_metadata"])
    cfg["unet.alpha_pattern"] = {}  # what diffusers' own converter does: lose per-module alphas
    meta["lora_adapter_metadata"] = json.dumps(cfg)
    stnp.save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    bad = verify_conversion(src, tmp_path / "bad.safetensors")
    assert not bad.ok and len(bad.failures) > 10


def test_inspect_and_check_cli(tmp_path: Path, capsys) -> None:
    from lora_compat.weights.synth import synth_kohya

    src = synth_kohya(tmp_path / "x.safetensors", "sdxl", algo="locon", rank=2, per_module=True)
    main(["inspect", str(src), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert (data["layout"], data["arch"], data["algo"]) == ("kohya", "sdxl", "locon")
    assert data["modules"]["unet"]["count"] == 788 and data["modules"]["te2"]["count"] == 192
    assert sum(data["ranks"].values()) == 1052 and data["metadata"]["ss_output_name"] == "synthetic"
    # per-module alphas: diffusers' kohya loader mis-scales attention projections -> exit 1
    with pytest.raises(SystemExit) as exc:
        main(["check", str(src), "--target", "diffusers", "--format", "json"])
    assert exc.value.code == 1
    res = json.loads(capsys.readouterr().out)
    assert not res["ok"] and any("to_q" in p["module"] for p in res["problems"])
    for target in ("comfyui", "a1111", "sd-scripts"):
        with pytest.raises(SystemExit) as exc:
            main(["check", str(src), "--target", target])
        assert exc.value.code == 0, target
    capsys.readouterr()
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    with pytest.raises(SystemExit) as exc:
        main(["check", str(tmp_path / "d.safetensors"), "--target", "diffusers"])
    assert exc.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["check", str(tmp_path / "d.safetensors"), "--target", "comfyui", "--format", "json"])
    assert exc.value.code == 1
    res = json.loads(capsys.readouterr().out)
    assert any("attn1.to_q" in p["module"] for p in res["problems"])


def test_batch_convert(tmp_path: Path, capsys) -> None:
    from lora_compat.weights.synth import synth_kohya

    src = tmp_path / "in"
    src.mkdir()
    synth_kohya(src / "a.safetensors", "sd1", rank=1)
    synth_kohya(src / "b.safetensors", "sd2", rank=1)
    (src / "broken.safetensors").write_bytes(b"\x01")
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(src), str(tmp_path / "out"), "--to", "peft", "--format", "json"])
    assert exc.value.code == 2
    out = json.loads(capsys.readouterr().out)
    assert len(out["converted"]) == 2 and len(out["errors"]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a", "b"]
    assert open_lora(tmp_path / "out" / "b").arch == "sd2"


@pytest.mark.parametrize("prefix", ["unet.", ""])
def test_old_diffusers_attention_processor_files(prefix: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    base = f"{prefix}down_blocks.0.attentions.0.transformer_blocks.0"
    t = {}
    for attn, kv in (("attn1", 320), ("attn2", 768)):
        for proj, fin in (("to_q", 320), ("to_k", kv), ("to_v", kv), ("to_out", 320)):
            t[f"{base}.{attn}.processor.{proj}_lora.down.weight"] = rng.standard_normal((4, fin)).astype(np.float32)
            t[f"{base}.{attn}.processor.{proj}_lora.up.weight"] = rng.standard_normal((320, 4)).astype(np.float32)
    # diffusers' own kohya conversion / old TE naming
    te = "text_encoder.text_model.encoder.layers.0.self_attn"
    t[f"{te}.to_q_lora.down.weight"] = rng.standard_normal((4, 768)).astype(np.float32)
    t[f"{te}.to_q_lora.up.weight"] = rng.standard_normal((768, 4)).astype(np.float32)
    t["text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.down.weight"] = \
        rng.standard_normal((4, 768)).astype(np.float32)
    t["text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight"] = \
        rng.standard_normal((3072, 4)).astype(np.float32)
    src = tmp_path / "old.safetensors"
    stnp.save_file(t, str(src))
    lf = open_lora(src)
    assert (lf.layout, lf.arch, len(lf.modules)) == ("diffusers-old", "sd1", 10)
    assert {m.info.diffusers_path for m in lf.modules if m.part == "unet"} >= {
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0"}
    assert all(m.scale == 1.0 for m in lf.modules)
    convert(src, tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    k, _ = load(tmp_path / "k.safetensors")
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_out_0"
    assert same_bits(k[f"{name}.lora_up.weight"], t[f"{base}.attn2.processor.to_out_lora.up.weight"])
    assert float(k[f"{name}.alpha"]) == 4.0  # no alpha in the source: scale 1 = alpha rank
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight" in k
    # what diffusers does with it: the prefix-less file loads nothing
    from lora_compat.weights.check import check_lora

    res = check_lora(lf, "diffusers")
    if prefix:
        assert res.ok
    else:
        assert len(res.problems) == 8 and all("no unet./text_encoder. prefix" in r for _, r in res.problems)


def test_check_rules_for_a1111_and_sd_scripts(tmp_path: Path) -> None:
    from lora_compat import arch as archmod
    from lora_compat.weights.check import check_lora
    from lora_compat.weights.synth import synth_kohya

    # SDXL TE2 (OpenCLIP MultiheadAttention in A1111): q/v only is silently ignored there
    mods = [m for m in archmod.kohya_modules("sdxl", "lora")
            if m.part != "te2" or m.diffusers_path.endswith(("q_proj", "v_proj"))]
    qv = synth_kohya(tmp_path / "qv.safetensors", "sdxl", rank=1, modules=mods)
    res = check_lora(open_lora(qv), "a1111")
    assert not res.ok and len(res.problems) == 64 and all("q, k, v and out_proj" in r for _, r in res.problems)
    assert check_lora(open_lora(qv), "comfyui").ok
    # SD1 written with lora_te1_ and SGM names: A1111 and ComfyUI fine, sd-scripts ignores them
    src = synth_kohya(tmp_path / "s.safetensors", "sd1", algo="locon", rank=1)
    to_sgm = {m.kohya_name: "lora_unet_" + m.sgm_path.replace(".", "_")
              for m in archmod.kohya_modules("sd1", "locon") if m.part == "unet"}
    _rename(src, tmp_path / "sgm.safetensors",
            lambda k: to_sgm.get(k.split(".")[0], k.split(".")[0].replace("lora_te_", "lora_te1_")) + "." +
            k.split(".", 1)[1])
    lf = open_lora(tmp_path / "sgm.safetensors")
    assert check_lora(lf, "a1111").ok and check_lora(lf, "comfyui").ok
    sd = check_lora(lf, "sd-scripts")
    assert len(sd.problems) == 350 and not check_lora(lf, "diffusers").ok
    # after our conversion every consumer takes it
    convert(tmp_path / "sgm.safetensors", tmp_path / "fixed.safetensors", ConvertOptions(to="kohya"))
    fixed = open_lora(tmp_path / "fixed.safetensors")
    assert all(check_lora(fixed, t).ok for t in ("a1111", "comfyui", "sd-scripts", "diffusers"))
