"""FLUX.1 training runs on the tiny FLUX.1 (CPU) that exercise sd-scripts' ``networks.lora_flux`` options, each
asserting the effect sd-scripts' source gives them:

* ``network_weights``: the run starts from the file (a kohya FLUX file, or any layout the weights wing reads,
  converted in memory); files we cannot use are refused in one line;
* ``network_dropout`` / ``rank_dropout`` / ``module_dropout``: ``LoRAModule.forward`` of lora_flux (training mode
  only; one draw per fused module);
* ``scale_weight_norms``: ``apply_max_norm_regularization`` after every micro-batch, with its reported
  ``keys_scaled`` / mean / max norm;
* LoRA+ ratios and ``network_reg_lrs`` (``prepare_optimizer_params_with_multiple_te_lrs``: groups, their LRs and
  which tensors they hold), ``network_reg_dims`` (first match wins), ``train_blocks`` and ``in_dims``.

Runs are 1-3 steps at 64 px with 16 T5 tokens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

FAST = ["--resolution", "64", "--t5xxl_max_token_length", "16"]
#: a 1-step DiT-only run; the tests add or replace options
BASE = ["--network_dim", "4", "--network_alpha", "4", "--network_train_unet_only", "--learning_rate", "1e-2",
        "--optimizer_type", "AdamW", "--train_batch_size", "2", "--max_train_steps", "1", "--seed", "7",
        "--save_model_as", "safetensors", *FAST]


@pytest.fixture(scope="module")
def flux_dir(tmp_path_factory):
    from lora_compat.train.flux.tiny import save_tiny_flux_pipeline

    return save_tiny_flux_pipeline(tmp_path_factory.mktemp("model") / "tiny-flux1-dev", "dev", seed=0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=4, repeats=10)


def _argv(**changes: object) -> list[str]:
    """BASE with ``--name value`` replaced (value None: removed; True: a flag) or appended."""
    out = list(BASE)
    for name, value in changes.items():
        flag = f"--{name}"
        if flag in out:
            i = out.index(flag)
            has_value = i + 1 < len(out) and not out[i + 1].startswith("--")
            del out[i:i + (2 if has_value else 1)]
        if value is True:
            out.append(flag)
        elif value is not None:
            out += [flag, str(value)]
    return out


def _train(tmp_path: Path, flux_dir: Path, data_dir: Path, argv: list[str], name: str = "run") -> dict:
    """One run through the CLI (``train --format json``): its summary with the run record."""
    work = tmp_path / name
    work.mkdir()
    cmd = work / "train.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path "
                   f"{flux_dir} --network_module networks.lora_flux " + " ".join(argv) + "\n")
    res = CliRunner().invoke(cli, ["train", str(cmd), "--train-data", str(data_dir), "--output", str(work / "out"),
                                   "--quiet", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def _refusal(tmp_path: Path, flux_dir: Path, data_dir: Path, argv: list[str]) -> str:
    """The one-line error of a run that must not start (and that wrote no model)."""
    from lora_compat.errors import UserError

    cmd = tmp_path / "refused.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path "
                   f"{flux_dir} --network_module networks.lora_flux " + " ".join(argv) + "\n")
    out = tmp_path / "refused"
    res = CliRunner().invoke(cli, ["train", str(cmd), "--train-data", str(data_dir), "--output", str(out), "--quiet"])
    assert isinstance(res.exception, UserError), res.output
    assert not list(out.rglob("*.safetensors"))
    message = str(res.exception)
    assert "\n" not in message
    return message


def _load(path: str | Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _modules(sd: dict) -> list[str]:
    return sorted({k.split(".")[0] for k in sd})


def _delta(sd: dict, name: str) -> torch.Tensor:
    """The module's dW = (alpha / r) up @ down, as sd-scripts merges it."""
    down, up = sd[f"{name}.lora_down.weight"].float(), sd[f"{name}.lora_up.weight"].float()
    return (up @ down) * (float(sd[f"{name}.alpha"]) / down.shape[0])


# ---- network_weights -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(flux_dir, data_dir, tmp_path_factory) -> Path:
    """A kohya FLUX file with non-zero ups (3 steps at lr 1e-2)."""
    res = _train(tmp_path_factory.mktemp("trained"), flux_dir, data_dir, _argv(max_train_steps=3))
    return Path(res["final_model"])


def test_network_weights_start_the_run_from_the_file(trained, flux_dir, data_dir, tmp_path) -> None:
    """sd-scripts' ``network.load_weights`` before training: the first step's loss is the loaded network's, and at a
    vanishing LR (AdamW moves a weight by ~lr) the saved file is the loaded one, bit for bit. A diffusers-layout copy
    of the same file (our converter's output) is read through the weights wing and starts the same run."""
    from lora_compat.weights.convert import ConvertOptions, convert

    tiny_lr = _argv(learning_rate="1e-30")
    fresh = _train(tmp_path, flux_dir, data_dir, tiny_lr, "fresh")
    loaded = _train(tmp_path, flux_dir, data_dir, [*tiny_lr, "--network_weights", str(trained)], "kohya")
    want, got = _load(trained), _load(loaded["final_model"])
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert loaded["first_loss"] != fresh["first_loss"]   # a fresh network (ups zero) is the base model

    diffusers_file = tmp_path / "diffusers_layout.safetensors"
    convert(trained, diffusers_file, ConvertOptions(to="diffusers"))
    assert not any(k.startswith("lora_unet_") for k in _load(diffusers_file))
    other = _train(tmp_path, flux_dir, data_dir, [*tiny_lr, "--network_weights", str(diffusers_file)], "diffusers")
    assert other["first_loss"] == loaded["first_loss"]
    again = _load(other["final_model"])
    assert all(torch.allclose(again[k].float(), want[k].float(), rtol=0, atol=1e-7) for k in want)


def test_network_weights_that_cannot_start_this_network_are_refused(trained, flux_dir, data_dir, tmp_path) -> None:
    """A rank that differs from ``network_dim`` (sd-scripts: a size-mismatch error), an alpha that differs from
    ``network_alpha`` (sd-scripts would train at the network's scale but save the file's alpha), an SD LoRA and a
    pickle: one line naming the file, nothing written."""
    from safetensors.torch import save_file

    assert "lora_down.weight has shape" in _refusal(tmp_path, flux_dir, data_dir,
                                                    _argv(network_dim=8, network_weights=trained))
    assert "alpha" in _refusal(tmp_path, flux_dir, data_dir, _argv(network_alpha=2, network_weights=trained))
    sd1 = tmp_path / "sd1.safetensors"
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{name}.lora_down.weight": torch.zeros(4, 320), f"{name}.lora_up.weight": torch.zeros(320, 4),
               f"{name}.alpha": torch.tensor(4.0)}, str(sd1))
    message = _refusal(tmp_path, flux_dir, data_dir, _argv(network_weights=sd1))
    assert "sd1" in message.lower() and str(sd1) in message
    pickle = tmp_path / "old.pt"
    pickle.write_bytes(b"not read")
    assert "pickle" in _refusal(tmp_path, flux_dir, data_dir, _argv(network_weights=pickle))


# ---- dropouts --------------------------------------------------------------------------------------------------

def _sd_scripts_forward(x: torch.Tensor, down: torch.Tensor, up: torch.Tensor, scale: float, *, dropout=None,
                        rank_dropout=None, module_dropout=None, training: bool = True) -> torch.Tensor:
    """lora_flux ``LoRAModule.forward`` (not split), minus the original module's output: the module-dropout draw,
    then ``lora_down``, dropout on its output, the [batch, r] rank mask (unsqueezed for 3-d inputs) with the scale
    divided by 1 - p, ``lora_up``. Written from sd-scripts' source to compare random draws one for one."""
    if module_dropout is not None and training and torch.rand(1) < module_dropout:
        return torch.zeros(*x.shape[:-1], up.shape[0])
    lx = x @ down.T
    if dropout is not None and training:
        lx = torch.nn.functional.dropout(lx, p=dropout)
    if rank_dropout is not None and training:
        mask = torch.rand((lx.size(0), down.shape[0])) > rank_dropout
        if lx.dim() == 3:
            mask = mask.unsqueeze(1)
        lx = lx * mask
        scale = scale * (1.0 / (1.0 - rank_dropout))
    return (lx @ up.T) * scale


DROPOUTS = {"network_dropout": {"dropout": 0.3}, "rank_dropout": {"rank_dropout": 0.5},
            "module_dropout": {"module_dropout": 0.5}, "all": {"dropout": 0.2, "rank_dropout": 0.25,
                                                               "module_dropout": 0.3},
            # sd-scripts tests these two with `is not None`: a 0.0 still draws (the stream moves on)
            "zero": {"rank_dropout": 0.0, "module_dropout": 0.0}}


@pytest.mark.parametrize("kind", list(DROPOUTS))
def test_dropouts_are_sd_scripts_draw_for_draw_and_only_in_training(kind) -> None:
    """A fused module (single block linear1: q, k, v, mlp share one down) and a plain one (linear2) give, for the
    same random stream, exactly sd-scripts' fused ``LoRAModule.forward``: one module-dropout draw, one dropout and
    one rank mask per kohya module, in sd-scripts' order. In eval mode: no draw and no dropout."""
    from diffusers import FluxTransformer2DModel

    from lora_compat.train.flux.lora import create_flux_network
    from lora_compat.train.flux.network_spec import parse_network_args, select_modules
    from lora_compat.train.flux.tiny import tiny_transformer_config

    p = DROPOUTS[kind]
    net_args = {k: str(v) for k, v in p.items() if k != "dropout"}
    torch.manual_seed(0)
    t = FluxTransformer2DModel(**tiny_transformer_config("dev", 1, 1))
    args = parse_network_args(4, 2, net_args, network_dropout=p.get("dropout"))
    planned = select_modules(args, num_double=1, num_single=1, network_train_unet_only=True)
    net = create_flux_network(args, planned, {"transformer": t})
    g = torch.Generator().manual_seed(5)
    for m in net.modules:   # non-zero ups, as after some training
        for u in m.ups:
            u.weight.data = torch.randn(u.weight.shape, generator=g) * 0.1
    by_name = {m.kohya_name: m for m in net.modules}
    x = torch.randn(2, 6, t.config.num_attention_heads * t.config.attention_head_dim, generator=g)
    for name in ("lora_unet_single_blocks_0_linear1", "lora_unet_double_blocks_0_img_attn_proj"):
        m = by_name[name]
        down = m.downs[0].weight.detach()
        up = torch.cat([u.weight.detach() for u in m.ups])
        for training in (True, False):
            t.train(training)
            for seed in range(6):   # module_dropout 0.5: both outcomes occur in six draws
                torch.manual_seed(seed)
                ours = []
                with torch.no_grad():
                    for layer in m.layers:   # the parts in diffusers' call order, with the same input tensor
                        ours.append(layer(x) - layer.base_layer(x))
                    net.clear_caches()
                after_ours = torch.rand(1)
                torch.manual_seed(seed)
                want = _sd_scripts_forward(x, down, up, m.planned.scale, training=training, **p)
                after_want = torch.rand(1)
                assert torch.allclose(torch.cat(ours, dim=-1), want, rtol=1e-5, atol=1e-6), (name, training, seed)
                assert torch.equal(after_ours, after_want)   # the same number of random draws
                if not training:
                    assert torch.allclose(want, (x @ down.T @ up.T) * m.planned.scale, atol=1e-6)


#: BFL's call order in one double block (sd-scripts' DoubleStreamBlock) and one single block, and the stream each
#: module's input belongs to ("vec": the 2-d modulation input)
BFL_DOUBLE = (("img_mod_lin", "vec"), ("txt_mod_lin", "vec"), ("img_attn_qkv", "img"), ("txt_attn_qkv", "txt"),
              ("img_attn_proj", "img"), ("img_mlp_0", "img"), ("img_mlp_2", "img"), ("txt_attn_proj", "txt"),
              ("txt_mlp_0", "txt"), ("txt_mlp_2", "txt"))
BFL_SINGLE = (("modulation_lin", "vec"), ("linear1", "both"), ("linear2", "both"))


def test_dropout_draws_follow_the_bfl_block_order_through_the_whole_dit() -> None:
    """A training forward of the tiny DiT with all three dropouts consumes the random stream as sd-scripts' BFL
    model does, module after module: diffusers calls txt_attn.proj (to_add_out) before img_mlp (ff), BFL after.
    The test replays sd-scripts' draws in BFL order (module dropout, then the dropout mask of [batch, tokens, r],
    then the [batch, r] rank mask) and predicts which modules module_dropout skips; the live forward must skip
    exactly those, and leave the random stream where the replay does."""
    from diffusers import FluxTransformer2DModel

    from lora_compat.train.flux.lora import create_flux_network
    from lora_compat.train.flux.network_spec import parse_network_args, select_modules
    from lora_compat.train.flux.packing import pack_latents, prepare_img_ids
    from lora_compat.train.flux.tiny import tiny_transformer_config

    torch.manual_seed(0)
    cfg = tiny_transformer_config("dev", 2, 2)
    t = FluxTransformer2DModel(**cfg)
    p_mod, p_drop, p_rank = 0.4, 0.3, 0.25
    args = parse_network_args(4, 4, {"module_dropout": str(p_mod), "rank_dropout": str(p_rank)}, network_dropout=p_drop)
    planned = select_modules(args, num_double=2, num_single=2, network_train_unet_only=True)
    net = create_flux_network(args, planned, {"transformer": t})
    seen: dict[str, bool] = {}

    def skipped(name: str):
        def hook(_mod, _inp, out) -> None:   # the first call of a shared down decides (its parts reuse it)
            seen.setdefault(name, bool((out == 0).all()))
        return hook

    for m in net.modules:
        m.downs[0].register_forward_hook(skipped(m.kohya_name))
    batch, img_tokens, txt_tokens, r = 2, 12, 5, 4
    g = torch.Generator().manual_seed(1)
    inputs = {"hidden_states": pack_latents(torch.randn(batch, 16, 8, 6, generator=g)),
              "encoder_hidden_states": torch.randn(batch, txt_tokens, cfg["joint_attention_dim"], generator=g),
              "pooled_projections": torch.randn(batch, cfg["pooled_projection_dim"], generator=g),
              "timestep": torch.tensor([0.3, 0.8]), "img_ids": prepare_img_ids(1, 4, 3)[0],
              "txt_ids": torch.zeros(txt_tokens, 3), "guidance": torch.tensor([3.5, 3.5])}
    order = [(f"lora_unet_double_blocks_{i}_{leaf}", s) for i in range(2) for leaf, s in BFL_DOUBLE]
    order += [(f"lora_unet_single_blocks_{i}_{leaf}", s) for i in range(2) for leaf, s in BFL_SINGLE]
    assert sorted(n for n, _ in order) == sorted(m.kohya_name for m in net.modules)
    tokens = {"img": img_tokens, "txt": txt_tokens, "both": img_tokens + txt_tokens}
    for seed in range(3):
        torch.manual_seed(seed)
        want = {}
        for name, stream in order:   # sd-scripts' LoRAModule.forward, module after module
            want[name] = bool(torch.rand(1) < p_mod)
            if not want[name]:
                shape = (batch, r) if stream == "vec" else (batch, tokens[stream], r)
                torch.empty(shape).bernoulli_(1 - p_drop)
                torch.rand((batch, r))
        want_next = torch.rand(1)
        torch.manual_seed(seed)
        seen.clear()
        net.clear_caches()
        t.train()
        with torch.no_grad():
            t(**inputs)
        assert seen == want, seed
        assert 0 < sum(want.values()) < len(want)
        assert torch.equal(torch.rand(1), want_next)


def test_dropouts_in_a_run(trained, flux_dir, data_dir, tmp_path) -> None:
    """module_dropout 1 drops every module in training: the first loss is the base model's (a fresh network's) even
    though the run starts from trained weights; network/rank dropout change the first loss of the same start and
    are reproducible under the seed; the options reach the metadata as sd-scripts writes them."""
    start = _argv(learning_rate="1e-30", network_weights=trained)
    fresh = _train(tmp_path, flux_dir, data_dir, _argv(learning_rate="1e-30"), "fresh")
    plain = _train(tmp_path, flux_dir, data_dir, start, "plain")
    dropped = _train(tmp_path, flux_dir, data_dir, [*start, "--network_args", "module_dropout=1.0"], "dropped")
    assert dropped["first_loss"] == fresh["first_loss"] != plain["first_loss"]
    noisy = [*start, "--network_dropout", "0.5", "--network_args", "rank_dropout=0.5"]
    one = _train(tmp_path, flux_dir, data_dir, noisy, "noisy1")
    two = _train(tmp_path, flux_dir, data_dir, noisy, "noisy2")
    assert one["first_loss"] == two["first_loss"] != plain["first_loss"]
    md = one["run"]["metadata"]
    assert md["ss_network_dropout"] == "0.5"
    assert json.loads(md["ss_network_args"]) == {"rank_dropout": "0.5", "dropout": 0.5}


# ---- scale_weight_norms -----------------------------------------------------------------------------------------

def test_scale_weight_norms_clamps_each_module_and_reports_like_sd_scripts(trained, flux_dir, data_dir,
                                                                          tmp_path) -> None:
    """``apply_max_norm_regularization``: each module's dW = (alpha/r) up @ down whose norm exceeds the maximum is
    scaled to it (down and up by the same square root), the others are left alone (a norm below max/2 counts as
    max/2, ratio 1); the run reports keys_scaled and the mean/max norm after scaling. The LR is vanishing, so the
    optimizer moves nothing and only the max-norm acts."""
    want = _load(trained)
    names = _modules(want)
    norms = {n: _delta(want, n).norm().item() for n in names}
    max_norm = sorted(norms.values())[len(norms) // 2]   # the median: about half the modules are clamped
    res = _train(tmp_path, flux_dir, data_dir, _argv(learning_rate="1e-30", network_weights=trained,
                                                     scale_weight_norms=max_norm))
    got = _load(res["final_model"])
    over = [n for n in names if norms[n] > max_norm]
    assert 0 < len(over) < len(names)
    for n in names:
        ratio = max_norm / norms[n] if n in over else 1.0
        for role in ("lora_down", "lora_up"):
            key = f"{n}.{role}.weight"
            assert torch.allclose(got[key], want[key] * ratio ** 0.5, rtol=1e-5, atol=1e-8), key
        assert _delta(got, n).norm().item() == pytest.approx(min(norms[n], max_norm), rel=1e-4)
    report = res["run"]["scale_weight_norms"]
    assert report["keys_scaled"] == [len(over)]
    after = [min(v, max_norm) for v in norms.values()]
    assert report["average_key_norm"][0] == pytest.approx(sum(after) / len(after), rel=1e-5)
    assert report["max_key_norm"][0] == pytest.approx(max_norm, rel=1e-5)
    assert res["run"]["metadata"]["ss_scale_weight_norms"] == str(max_norm)
    assert _train(tmp_path, flux_dir, data_dir, _argv(learning_rate="1e-30"), "none")["run"]["scale_weight_norms"] \
        is None


# ---- LoRA+ and network_reg_lrs --------------------------------------------------------------------------------

def test_loraplus_and_reg_lrs_groups_train_at_sd_scripts_lrs(trained, flux_dir, data_dir, tmp_path) -> None:
    """``prepare_optimizer_params_with_multiple_te_lrs``: per part the reg-lr groups (first matching regex wins, in
    pattern order), then the plain group; each split into downs at the group's LR and ups at LR x the part's LoRA+
    ratio (``loraplus_unet_lr_ratio`` before ``loraplus_lr_ratio``; CLIP-L: ``loraplus_text_encoder_lr_ratio``).
    Measured on the tensors: AdamW's first step (no weight decay) moves every element by lr x g/(|g|+eps), so the
    largest move of a tensor is its group's LR."""
    argv = _argv(network_train_unet_only=None, learning_rate="1e-3", text_encoder_lr="2e-3",
                 network_weights=trained, optimizer_args="weight_decay=0")
    argv += ["--network_args", "loraplus_lr_ratio=16", "loraplus_unet_lr_ratio=4", "loraplus_text_encoder_lr_ratio=3",
             '"network_reg_lrs=double_blocks_0_img=1e-4,double_blocks=5e-4"']
    res = _train(tmp_path, flux_dir, data_dir, argv)
    # sd-scripts' order: CLIP-L (plain, plus), then the DiT: reg_lr_0, reg_lr_0 plus, reg_lr_1, reg_lr_1 plus, plain,
    # plus
    assert res["run"]["optimizer"]["initial_lrs"] == pytest.approx([2e-3, 6e-3, 1e-4, 4e-4, 5e-4, 2e-3, 1e-3, 4e-3])
    before, after = _load(trained), _load(res["final_model"])

    def lr_of(name: str) -> float:
        if name.startswith("lora_te1_"):
            return 2e-3
        if re.search("double_blocks_0_img", name):
            return 1e-4
        return 5e-4 if re.search("double_blocks", name) else 1e-3

    checked = 0
    for key, value in after.items():
        if key.endswith(".alpha"):
            continue
        name = key.split(".")[0]
        start = before.get(key, torch.zeros_like(value) if "lora_up" in key else None)
        if start is None:   # a fresh CLIP-L down: its up is zero, so its gradient is zero and it does not move
            continue
        ratio = (3 if name.startswith("lora_te1_") else 4) if "lora_up" in key else 1
        moved = (value.float() - start.float()).abs().max().item()
        assert moved == pytest.approx(lr_of(name) * ratio, rel=2e-2), key
        checked += 1
    assert checked > 50


# ---- network_reg_dims, train_blocks, in_dims ---------------------------------------------------------------------

def test_reg_dims_first_match_train_blocks_and_in_dims_shape_the_saved_file(flux_dir, data_dir, tmp_path) -> None:
    """``train_blocks=single`` keeps the single blocks only; ``network_reg_dims`` gives each module the rank of the
    first regex that ``re.search``-es its name (``single_blocks_1`` before ``single_blocks``); ``in_dims`` adds
    ``img_in`` at its own rank (a 0 leaves that input layer out), each at alpha ``network_alpha``."""
    argv = [*_argv(network_alpha=2), "--network_args", "train_blocks=single", "in_dims=[3,0,0,0,0]",
            '"network_reg_dims=single_blocks_1_=2,single_blocks=5"']
    res = _train(tmp_path, flux_dir, data_dir, argv)
    sd = _load(res["final_model"])
    ranks = {n: sd[f"{n}.lora_down.weight"].shape[0] for n in _modules(sd)}
    assert ranks.pop("lora_unet_img_in") == 3
    singles = {f"lora_unet_single_blocks_{i}_{leaf}" for i in range(4) for leaf in ("linear1", "linear2",
                                                                                   "modulation_lin")}
    assert set(ranks) == singles
    assert all(r == (2 if "single_blocks_1_" in n else 5) for n, r in ranks.items()), ranks
    assert {sd[f"{n}.alpha"].item() for n in _modules(sd)} == {2}
    assert res["run"]["metadata"]["ss_network_dim"] == "4"
