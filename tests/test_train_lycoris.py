"""LoHa / LoKr training through PEFT, saved in LyCORIS' kohya layout (``lycoris.kohya``).

The delta of every module is rebuilt from the saved file with the rules LyCORIS consumers (ComfyUI, A1111,
LyCORIS itself) apply (key-layouts §2.4, §4.1) and compared with the delta PEFT applied during training
(``get_delta_weight`` of the trained layer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.train import saving  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402

from shared_data import CORPUS, requires_corpus  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

HADA = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=2, repeats=1)


def _train(tmp_path: Path, data_dir: Path, algo: str, args: list[str], monkeypatch) -> tuple[Path, list, list]:
    """Train 3 steps of ``algo`` on tiny SD1 (UNet + TE, convs included); returns (file, losses, nets)."""
    captured: list = []
    real = saving.kohya_state_dict

    def spy(nets, save_precision=None):
        captured[:] = nets
        return real(nets, save_precision)

    monkeypatch.setattr(saving, "kohya_state_dict", spy)
    cfg = CanonicalConfig(dialect="native", source="test")
    opts = {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path), "resolution": "64",
            "network_dim": 4, "network_alpha": 2.0, "learning_rate": 1e-2, "seed": 0, "optimizer_type": "AdamW",
            "network_module": "lycoris.kohya", "network_args": [f"algo={algo}", "conv_dim=4", "conv_alpha=1", *args]}
    for k, v in opts.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data_dir), max_steps=3, show_progress=False)
    assert res.global_step == 3 and captured
    return res.final_model, res.losses, captured


def _modules(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, str]]:
    from safetensors import safe_open

    mods: dict[str, dict[str, torch.Tensor]] = {}
    with safe_open(str(path), "pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is no mapping
            name, suffix = key.split(".", 1)
            mods.setdefault(name, {})[suffix] = f.get_tensor(key)
        return mods, f.metadata()


def _cp(t, wa, wb):
    """LyCORIS rebuild_tucker: core ``t`` [r, r, kh, kw], wa [r, out], wb [r, in] -> [out, in, kh, kw]."""
    return torch.einsum("i j k l, i p, j r -> p r k l", t, wa, wb)


def _consumer_delta(m: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """dW as a LyCORIS consumer rebuilds it from one module's tensors (key-layouts §2.4 / §4.1)."""
    m = {k: v.double() for k, v in m.items()}
    alpha = float(m["alpha"])
    if "hada_w1_a" in m:
        if "hada_t1" in m:
            w1, w2 = _cp(m["hada_t1"], m["hada_w1_a"], m["hada_w1_b"]), _cp(m["hada_t2"], m["hada_w2_a"],
                                                                            m["hada_w2_b"])
        else:
            w1, w2 = m["hada_w1_a"] @ m["hada_w1_b"], m["hada_w2_a"] @ m["hada_w2_b"]
        return (w1 * w2 * alpha / m["hada_w1_b"].shape[0]).reshape(shape)
    w1 = m["lokr_w1"] if "lokr_w1" in m else m["lokr_w1_a"] @ m["lokr_w1_b"]
    if "lokr_w2" in m:
        w2 = m["lokr_w2"]
    elif "lokr_t2" in m:
        w2 = _cp(m["lokr_t2"], m["lokr_w2_a"], m["lokr_w2_b"])
    else:
        w2 = m["lokr_w2_a"] @ m["lokr_w2_b"]
    rank = m["lokr_w2_b"].shape[0] if "lokr_w2_b" in m else m["lokr_w1_b"].shape[0] if "lokr_w1_b" in m else None
    scale = alpha / rank if rank is not None else 1.0  # both factors full: alpha is ignored
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    return (torch.kron(w1, w2.contiguous()) * scale).reshape(shape)  # kron needs contiguous operands


def _check_file_against_peft(path: Path, nets: list, algo: str) -> dict[str, dict[str, torch.Tensor]]:
    mods, md = _modules(path)
    planned = {t.kohya_name: (net, t) for net in nets for t in net.targets}
    assert {n.part for n in nets} == {"unet", "text_encoder"}
    assert set(mods) == set(planned)  # every planned module, nothing else
    prefix = "hada_" if algo == "loha" else "lokr_"
    nonzero = 0
    for name, (net, t) in planned.items():
        m = mods[name]
        assert "alpha" in m and m["alpha"].dim() == 0
        assert all(s == "alpha" or s.startswith(prefix) for s in m), (name, sorted(m))
        if algo == "loha":
            assert set(HADA) <= set(m)
            assert m["hada_w1_b"].shape[0] == t.rank
        else:
            assert ("lokr_w1" in m) != ("lokr_w1_a" in m) and ("lokr_w2" in m) != ("lokr_w2_a" in m)
        layer = net.model.get_submodule(t.path)
        with torch.no_grad():
            peft_delta = layer.get_delta_weight("default").double()
        ours = _consumer_delta(m, layer.get_base_layer().weight.shape)
        assert torch.allclose(ours, peft_delta, atol=1e-5, rtol=0), (name, (ours - peft_delta).abs().max())
        nonzero += bool(peft_delta.abs().max() > 1e-6)
    # trained: the comparison is not between zero inits (a module or two off the loss path may stay zero)
    assert nonzero >= 0.95 * len(planned)
    assert md["ss_network_module"] == "lycoris.kohya"
    assert json.loads(md["ss_network_args"])["algo"] == algo
    return mods


def _inspect_algo(path: Path) -> str:
    res = CliRunner().invoke(cli, ["inspect", str(path), "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)["algo"]


@pytest.mark.parametrize("args", [[], ["use_tucker=True"]], ids=["plain", "tucker"])
def test_loha_trains_and_saves_lycoris_layout(tmp_path, data_dir, monkeypatch, args):
    path, losses, nets = _train(tmp_path, data_dir, "loha", args, monkeypatch)
    assert all(torch.isfinite(torch.tensor(losses)))
    mods = _check_file_against_peft(path, nets, "loha")
    tucker = {n for n, m in mods.items() if "hada_t1" in m}
    conv3x3 = {t.kohya_name for net in nets for t in net.targets
               if net.model.get_submodule(t.path).get_base_layer().weight.shape[2:] == (3, 3)}
    assert conv3x3
    # use_tucker: Tucker cores exactly on the 3x3 convs (1x1 convs and Linears stay plain)
    assert tucker == (conv3x3 if args else set())
    assert all(mods[n]["hada_t2"].shape == (4, 4, 3, 3) for n in tucker)
    assert _inspect_algo(path) == "loha"


@pytest.mark.parametrize("args", [[], ["decompose_both=True", "use_tucker=True"], ["decompose_both=True", "factor=16"]],
                         ids=["default", "decompose_both-tucker", "decompose_both-factor16"])
def test_lokr_trains_and_saves_lycoris_layout(tmp_path, data_dir, monkeypatch, args):
    path, losses, nets = _train(tmp_path, data_dir, "lokr", args, monkeypatch)
    assert all(torch.isfinite(torch.tensor(losses)))
    mods = _check_file_against_peft(path, nets, "lokr")
    full = [m for m in mods.values() if "lokr_w1" in m and "lokr_w2" in m]
    decomposed = [m for m in mods.values() if "lokr_w2_b" in m or "lokr_w1_b" in m]
    assert decomposed  # scale alpha/r applies
    if not args:
        # both factors full: consumers ignore alpha, so PEFT's alpha/r (2/4) must be baked into the tensors
        assert full and all(float(m["alpha"]) == 4 for m in full)
    else:
        assert any("lokr_w1_a" in m for m in mods.values())
        # Tucker core on the 3x3 convs whose w2 is decomposed; factor 16: w1 decomposed, w2 full (rank from w1_b)
        assert any("lokr_t2" in m for m in mods.values()) == ("use_tucker=True" in args)
        assert any("lokr_w1_b" in m and "lokr_w2" in m for m in mods.values()) == ("factor=16" in args)
    assert _inspect_algo(path) == "lokr"


@requires_corpus
def test_corpus_sdxl_loha_preset_trains_end_to_end(tmp_path, data_dir):
    """A real kohya_ss GUI LoHa preset (UNet + both TEs, conv_dim, scale_weight_norms) through the CLI on a
    tiny SDXL; sizes overridden so it fits the tiny model and the CPU."""
    preset = CORPUS / "kohya_ss" / "SDXL - LoHA AI_Characters v1.0.json"
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["train", str(preset), "--base-model", "tiny:sdxl", "--train-data", str(data_dir),
                                   "--output", str(out), "--max-steps", "2", "--format", "json",
                                   "--set", "resolution=64", "--set", "min_bucket_reso=64",
                                   "--set", "optimizer_type=AdamW", "--set", "train_batch_size=1"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["global_step"] == 2
    mods, md = _modules(Path(summary["final_model"]))
    prefixes = {n.split("_")[1] for n in mods}
    assert prefixes == {"unet", "te1", "te2"}
    assert all(set(m) == {"alpha", *HADA} for m in mods.values())
    # conv_dim 16 on the 3x3 convs, network_dim 32 elsewhere (the preset's values)
    assert {m["hada_w1_b"].shape[0] for m in mods.values()} == {16, 32}
    assert md["ss_network_module"] == "lycoris.kohya" and json.loads(md["ss_network_args"])["algo"] == "loha"
    assert _inspect_algo(Path(summary["final_model"])) == "loha"
