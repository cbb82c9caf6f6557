"""Delta-weight norms per module and block (weights/norms.py) against dense numpy rebuilds, and inspect --plot."""

from __future__ import annotations

from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
stnp = pytest.importorskip("safetensors.numpy")

from lora_compat.cli import main  # noqa: E402
from lora_compat.weights.norms import block_label, block_summaries, delta_norm, module_norms  # noqa: E402
from lora_compat.weights.reader import open_lora  # noqa: E402
from lora_compat.weights.synth import synth_kohya  # noqa: E402
from tests.test_plots import png_facts  # noqa: E402

LIN = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"   # SDXL 2048 -> 640
CONV = "lora_unet_input_blocks_1_0_in_layers_2"                      # SDXL 320 -> 320, 3x3
TE = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"          # 768 -> 768


def test_lora_and_locon_norms_match_dense_products(tmp_path: Path) -> None:
    path = synth_kohya(tmp_path / "l.safetensors", "sd1", algo="locon", rank=4, per_module=True, dtype="BF16",
                       seed=5)
    lf = open_lora(path)
    norms = {n.name: n for n in module_norms(lf)}
    assert len(norms) == len(lf.modules) > 300
    for m in lf.modules[::23]:
        up = _decode(m, "up").reshape(m.tensors["up"].shape[0], -1)
        down = _decode(m, "down").reshape(m.tensors["down"].shape[0], -1)
        want = abs(m.alpha / m.rank) * np.linalg.norm(up @ down)
        assert norms[m.name].norm == pytest.approx(want, rel=1e-9), m.name
        assert norms[m.name].rank == m.rank and norms[m.name].alpha == m.alpha


def _decode(m, role: str):
    e = m.tensors[role]
    raw = np.frombuffer(m.source.read_bytes(e.name), dtype="<u2").astype(np.uint32) << 16
    return raw.view(np.float32).astype(np.float64).reshape(e.shape)


def test_tucker_loha_lokr_norms(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)

    def r(*s):
        return rng.standard_normal(s).astype(np.float32)
    t = {f"{LIN}.hada_w1_a": r(640, 3), f"{LIN}.hada_w1_b": r(3, 2048), f"{LIN}.hada_w2_a": r(640, 3),
         f"{LIN}.hada_w2_b": r(3, 2048), f"{LIN}.alpha": np.array(1.5, np.float32),
         f"{TE}.lokr_w1": r(24, 24), f"{TE}.lokr_w2_a": r(32, 4), f"{TE}.lokr_w2_b": r(4, 32),
         f"{TE}.alpha": np.array(2.0, np.float32),
         f"{CONV}.lora_down.weight": r(4, 320, 1, 1), f"{CONV}.lora_mid.weight": r(4, 4, 3, 3),
         f"{CONV}.lora_up.weight": r(320, 4, 1, 1), f"{CONV}.alpha": np.array(8.0, np.float32)}
    path = tmp_path / "mixed.safetensors"
    stnp.save_file(t, str(path), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    got = {m.name: delta_norm(m) for m in open_lora(path).modules}
    f = {k: v.astype(np.float64) for k, v in t.items()}
    loha = (f[f"{LIN}.hada_w1_a"] @ f[f"{LIN}.hada_w1_b"]) * (f[f"{LIN}.hada_w2_a"] @ f[f"{LIN}.hada_w2_b"])
    assert got[LIN] == pytest.approx(1.5 / 3 * np.linalg.norm(loha), rel=1e-9)
    lokr = np.kron(f[f"{TE}.lokr_w1"], f[f"{TE}.lokr_w2_a"] @ f[f"{TE}.lokr_w2_b"])
    assert got[TE] == pytest.approx(2.0 / 4 * np.linalg.norm(lokr), rel=1e-9)
    up, mid, down = f[f"{CONV}.lora_up.weight"][:, :, 0, 0], f[f"{CONV}.lora_mid.weight"], f[f"{CONV}.lora_down.weight"]
    dense = np.zeros((320, 320, 3, 3))
    for a in range(4):
        for b in range(4):
            dense += up[:, a, None, None, None] * mid[a, b][None, None] * down[b, :, 0, 0][None, :, None, None]
    assert got[CONV] == pytest.approx(8.0 / 4 * np.linalg.norm(dense), rel=1e-9)


def test_block_labels_and_summaries(tmp_path: Path) -> None:
    lf = open_lora(synth_kohya(tmp_path / "x.safetensors", "sdxl", rank=4, per_module=True, seed=1))
    labels = {block_label(m.info) for m in lf.modules if m.part == "unet"}
    assert {"IN04", "IN08", "MID", "OUT00", "OUT05"} <= labels and all(
        lb in ("MID", "EMB", "OUT") or lb[:2] == "IN" or lb[:3] == "OUT" for lb in labels)
    assert {block_label(m.info) for m in lf.modules if m.part == "te2"} == {f"L{i:02d}" for i in range(32)}
    norms = module_norms(lf)
    blocks = block_summaries(norms)
    mid = next(b for b in blocks if b.part == "unet" and b.block == "MID")
    members = [n for n in norms if n.part == "unet" and n.block == "MID"]
    assert mid.modules == len(members)
    assert mid.norm == pytest.approx(float(np.sqrt(sum(n.norm ** 2 for n in members))))
    assert (mid.rank_min, mid.rank_max) == (min(n.rank for n in members), max(n.rank for n in members))


def test_inspect_plot_writes_a_png(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    lora = synth_kohya(tmp_path / "x.safetensors", "sd1", rank=8, per_module=True, seed=2)
    out = tmp_path / "blocks.png"
    main(["inspect", str(lora), "--plot", str(out)])
    size, colours = png_facts(out)
    assert size[0] >= 800 and size[1] >= 600 and colours > 50
    with pytest.raises(SystemExit) as bad:
        main(["inspect", str(lora), "--plot", str(tmp_path / "blocks.jpg")])
    assert bad.value.code == 2
    assert "--plot: the picture is written as PNG" in capsys.readouterr().err
