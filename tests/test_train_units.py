"""Engine pieces against sd-scripts' semantics: LR per step, optimizer map, kohya dropouts, noise/targets,
loss weights, metadata, file names, CLI errors."""

from __future__ import annotations

import math
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.errors import UserError  # noqa: E402
from lora_compat.plan.build import optimizer_plan  # noqa: E402
from lora_compat.plan.parts import NoisePlan  # noqa: E402
from lora_compat.semantics.optimizers import OPTIMIZERS, TORCH_FALLBACK, effective_optimizer  # noqa: E402
from lora_compat.train import network as train_network  # noqa: E402
from lora_compat.train import state as st  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402
from lora_compat.train.noise import make_noise_scheduler, per_sample_loss, target_for  # noqa: E402
from lora_compat.train.optimizers import build_optimizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread (conftest)


# ---------------------------------------------------------------------------------------- LR and groups
@pytest.mark.slow
def test_lr_before_each_step_equals_semantics_schedule_and_groups_follow_sd_scripts(tmp_path):
    from lora_compat.semantics import lr_schedule

    data = make_synthetic_dataset(tmp_path / "d", n_images=4, repeats=2)
    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "o"), "resolution": "64",
                 "network_dim": 4, "learning_rate": 1e-3, "unet_lr": 2e-3, "text_encoder_lr": 5e-4,
                 "lr_scheduler": "cosine",
                 "lr_warmup_steps": 0.25, "optimizer_type": "AdamW", "network_args": ["loraplus_lr_ratio=4"]}.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data), max_steps=8, show_progress=False)
    f = lr_schedule(1.0, 8, "cosine", lr_warmup_steps=0.25)
    # §4.10: TE group, TE LoRA+ (lora_up x ratio), UNet group, UNet LoRA+; first step's LR is 0 with warmup
    expected = [[x * 5e-4, x * 5e-4 * 4, x * 2e-3, x * 2e-3 * 4] for x in f]
    assert len(res.lrs) == 8 and res.lrs[0] == [0.0] * 4
    for got, want in zip(res.lrs, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_zero_lr_group_is_dropped_but_modules_are_saved(tmp_path):
    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)
    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "o"), "resolution": "64",
                 "network_dim": 4, "learning_rate": 1e-3, "text_encoder_lr": 0.0, "optimizer_type": "AdamW"}.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data), max_steps=2, show_progress=False)
    assert all(len(g) == 1 for g in res.lrs)  # only the UNet group
    from safetensors.torch import load_file

    sd = load_file(str(res.final_model))
    te_up = [v for k, v in sd.items() if k.startswith("lora_te_") and k.endswith("lora_up.weight")]
    unet_up = [v for k, v in sd.items() if k.startswith("lora_unet_") and k.endswith("lora_up.weight")]
    assert len(te_up) == 72 and all(torch.count_nonzero(t) == 0 for t in te_up)
    assert any(torch.count_nonzero(t) > 0 for t in unet_up)


# ---------------------------------------------------------------------------------------- optimizers
def test_optimizer_map_and_metadata_string():
    """ss_optimizer is the defining module + class and the kwargs sd-scripts records (nesterov is passed, not
    recorded; momentum 0.9 is added after the user's args)."""
    p = [torch.nn.Parameter(torch.zeros(2))]
    opt, meta = build_optimizer(optimizer_plan(effective_optimizer("SGDNesterov", ["weight_decay=0.01"]), 0.1),
                                [{"params": p, "lr": 0.1}])
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    assert meta == "torch.optim.sgd.SGD(weight_decay=0.01,momentum=0.9)"
    opt, meta = build_optimizer(optimizer_plan(effective_optimizer("adafactor"), 0.1), [{"params": p, "lr": 0.1}])
    assert meta == "transformers.optimization.Adafactor(relative_step=True)"
    assert "lr" not in opt.param_groups[0] or opt.param_groups[0]["lr"] is None  # relative_step discards LRs
    _opt, meta = build_optimizer(optimizer_plan(effective_optimizer(None), 0.1), [{"params": p, "lr": 0.1}])
    assert meta == "torch.optim.adamw.AdamW"


@pytest.mark.parametrize("name", sorted(s.name for s in (*OPTIMIZERS.values(), *TORCH_FALLBACK.values())))
def test_every_mapped_optimizer_steps_or_names_its_missing_package(name):
    """Each catalogued optimizer trains a parameter and its pinned class path is the real one (what
    ss_optimizer records); a missing optional package is a clear one-line error."""
    import importlib.util

    choice = effective_optimizer(name)
    p = torch.nn.Parameter(torch.ones(4))
    lr = 1.0 if choice.spec.adaptive else 1e-2  # adaptive optimizers are run at lr 1
    group = [{"params": [p], "lr": lr}]
    if importlib.util.find_spec(choice.spec.module.split(".")[0]) is None:
        refused: list = []
        optimizer_plan(choice, lr, None, refused)
        assert refused and "not installed" in refused[0].why and refused[0].refused
        with pytest.raises(UserError, match="needs the Python package"):
            build_optimizer(optimizer_plan(choice, lr), group)
        return
    try:
        opt, meta = build_optimizer(optimizer_plan(choice, lr), group)
    except UserError as exc:  # e.g. bitsandbytes installed without a GPU backend
        pytest.skip(f"{name}: {exc}")
    assert meta.split("(")[0] == choice.spec.class_path
    if hasattr(opt, "train"):
        opt.train()  # schedule-free optimizers must be in train mode to step
    for _ in range(8):  # D-Adaptation estimates its step size first; RAdam variants skip early steps
        opt.zero_grad()
        ((p - 3.0) ** 2).sum().backward()
        opt.step()
    assert not torch.equal(p.detach(), torch.ones(4)), meta


@pytest.mark.parametrize("name", ["bitsandbytes.optim.AdEMAMix8bit", "os.system", "torch.optim.LBFGS", "Foo",
                                  "adam"])
def test_unknown_or_dotted_optimizer_is_refused_without_importing(name):
    refused: list = []
    plan = optimizer_plan(effective_optimizer(name), 1e-3, None, refused)
    assert refused and refused[0].refused and "never makes lora-compat import code" in refused[0].why
    with pytest.raises(UserError, match="not supported"):
        build_optimizer(plan, [{"params": [torch.nn.Parameter(torch.zeros(1))]}])


def test_optimizer_args_sd_scripts_cannot_parse_are_refused():
    for args in (["novalue"], ["relative_step=true"], ["a=b=c"], ["decouple=True"]):
        refused: list = []
        optimizer_plan(effective_optimizer("Adafactor", args), 1e-3, None, refused)
        assert [u.option for u in refused if u.refused] == ["optimizer_args"], args


# ---------------------------------------------------------------------------------------- kohya dropouts
def _lora_linear(rank: int = 4):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    net = train_network.PartNetwork("unet", model, [train_network.TargetModule("lora_unet_x", "0", rank, float(rank))])
    train_network.inject_lora(model, net.targets)
    layer = model.get_submodule("0")
    torch.nn.init.normal_(layer.lora_B[train_network.ADAPTER].weight)
    return model, net, layer


def test_rank_dropout_masks_rank_channels_and_rescales():
    model, net, layer = _lora_linear()
    train_network.install_kohya_dropouts(net, rank_dropout=0.5)
    seen = []
    layer.lora_A[train_network.ADAPTER].register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    x = torch.randn(3, 5, 8)
    torch.manual_seed(0)
    model.train()
    model(x)
    out = seen[-1]
    plain = torch.nn.functional.linear(x, layer.lora_A[train_network.ADAPTER].weight)  # no hooks
    # every [batch, rank] channel is either dropped over the whole sequence or scaled by 1/(1-p)
    ratio = out / plain
    for b in range(3):
        for r in range(4):
            vals = ratio[b, :, r]
            assert torch.allclose(vals, torch.zeros(5)) or torch.allclose(vals, torch.full((5,), 2.0))
    model.eval()
    base = layer.base_layer(x)
    adapter = train_network.ADAPTER
    full = base + layer.lora_B[adapter](layer.lora_A[adapter](x)) * layer.scaling[adapter]
    assert torch.allclose(model(x), full, atol=1e-6)  # no dropout in eval


def test_module_dropout_skips_the_whole_branch():
    model, net, layer = _lora_linear()
    train_network.install_kohya_dropouts(net, module_dropout=1.0 - 1e-9)
    x = torch.randn(2, 8)
    model.train()
    assert torch.allclose(model(x), layer.base_layer(x))
    model.eval()
    assert not torch.allclose(model(x), layer.base_layer(x))


def test_network_dropout_acts_after_lora_down():
    model, net, layer = _lora_linear(rank=64)
    train_network.install_kohya_dropouts(net, network_dropout=0.5)
    seen = []
    layer.lora_A[train_network.ADAPTER].register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    model.train()
    x = torch.randn(4, 8)
    model(x)
    ratio = seen[-1] / torch.nn.functional.linear(x, layer.lora_A[train_network.ADAPTER].weight)
    zeros = (ratio.abs() < 1e-6).float().mean().item()
    assert 0.3 < zeros < 0.7 and torch.allclose(ratio[ratio.abs() > 1e-6], torch.tensor(2.0))


def test_max_norm_regularization_caps_delta_norm():
    _model, net, layer = _lora_linear()
    with torch.no_grad():
        layer.lora_B[train_network.ADAPTER].weight.mul_(100)
    scaled, _mean, mx = train_network.apply_max_norm([net], 1.0)
    delta = layer.lora_B[train_network.ADAPTER].weight @ layer.lora_A[train_network.ADAPTER].weight * (4.0 / 4)
    assert scaled == 1 and delta.norm().item() == pytest.approx(1.0, rel=1e-4) and mx == pytest.approx(1.0, rel=1e-4)


# ---------------------------------------------------------------------------------------- noise and loss
def test_zero_terminal_snr_and_v_target():
    sched = make_noise_scheduler(zero_terminal_snr=True)
    assert float(sched.alphas_cumprod[-1]) == 0.0
    x0, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 999])
    v = target_for(x0, eps, t, sched, True)
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    assert torch.allclose(v, a.sqrt() * eps - (1 - a).sqrt() * x0, atol=1e-6)
    assert torch.equal(target_for(x0, eps, t, sched, False), eps)


def test_loss_weights_use_semantics_and_prior_weight():
    from lora_compat.semantics import loss_weight

    sched = make_noise_scheduler()
    pred, target = torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 2, 2)
    t = torch.tensor([5, 700])
    ns = NoisePlan(min_snr_gamma=5.0, debiased_estimation_loss=True)
    got = per_sample_loss(pred, target, t, sched, ns, torch.tensor([1.0, 0.5]))
    want = [loss_weight(5, min_snr_gamma=5.0, debiased_estimation_loss=True),
            0.5 * loss_weight(700, min_snr_gamma=5.0, debiased_estimation_loss=True)]
    assert got.tolist() == pytest.approx(want, rel=1e-6)
    mask = torch.zeros(2, 1, 2, 2)
    mask[:, :, 0, 0] = 1
    masked = per_sample_loss(pred, target, t, sched, NoisePlan(), torch.ones(2), mask)
    assert masked.tolist() == pytest.approx([0.25, 0.25])  # not normalized by the mask area (§4.9.4)


def test_huber_snr_schedule_ignores_scale():
    sched = make_noise_scheduler()
    t = torch.tensor([500])
    d = torch.full((1, 1, 1, 1), 0.3)
    a = float(sched.alphas_cumprod[500])
    c = (1 - 0.1) / (1 + math.sqrt((1 - a) / a)) ** 2 + 0.1
    got = per_sample_loss(d, torch.zeros_like(d), t, sched, NoisePlan(loss_type="huber", huber_scale=7.0),
                          torch.ones(1))
    assert got.item() == pytest.approx(2 * c * (math.sqrt(0.09 + c * c) - c), rel=1e-5)


# ---------------------------------------------------------------------------------------- names, metadata
def test_checkpoint_names_follow_sd_scripts():
    assert st.epoch_name("x", 3, ".safetensors") == "x-000003.safetensors"
    assert st.step_name(None, 20, ".ckpt") == "at-step00000020.ckpt"
    assert st.last_name(None, ".safetensors") == "last.safetensors"
    assert st.state_dir_name("x-000003.safetensors", ".safetensors") == "x-000003-state"
    assert st.removable_step(50, 10, 30) == 10 and st.removable_epoch(5, 1, 2) == 3


def test_metadata_strings_like_sd_scripts():
    """The plan types every value as sd-scripts writes it; the run fills in what only it knows."""
    from lora_compat.plan import make_plan
    from lora_compat.plan.metadata import base_model_version
    from lora_compat.train.metadata import RunFacts, modelspec, training_metadata

    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"v2": True, "v_parameterization": True, "network_args": ["conv_dim=4"], "resolution": "768,512",
                 "clip_skip": 2, "face_crop_aug_range": "0.5,0.8"}.items():
        cfg.set(k, v)
    planned = make_plan(cfg).outputs
    assert planned.metadata["ss_seed"] is None and planned.metadata["ss_session_id"] is None  # run time
    facts = RunFacts(10, 0, 5, 2, 10, 1, 42, "torch.optim.adamw.AdamW", 7, 1.5)
    md = training_metadata(planned.metadata, facts, None)
    assert md["ss_network_args"] == '{"conv_dim": "4", "dropout": null}'
    assert md["ss_network_alpha"] == "1" and md["ss_v2"] == "True" and md["ss_base_model_version"] == "sd_v2_v"
    assert md["ss_unet_lr"] == "None" and md["ss_seed"] == "42" and md["ss_session_id"] == "7"
    # typed as sd-scripts writes them: tuples after prepare_dataset_args, None for unset / bucketing off
    assert md["ss_resolution"] == "(768, 512)" and md["ss_face_crop_aug_range"] == "(0.5, 0.8)"
    assert md["ss_min_bucket_reso"] == "None" and md["ss_max_bucket_reso"] == "None"
    assert md["ss_text_encoder_lr"] == "None" and md["ss_optimizer"] == "torch.optim.adamw.AdamW"
    spec = modelspec(planned.modelspec)
    assert spec["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert spec["modelspec.resolution"] == "768x512" and spec["modelspec.encoder_layer"] == "2"
    assert spec["modelspec.prediction_type"] == "v" and "modelspec.timestep_range" not in spec
    assert spec["modelspec.title"].startswith("LoRA@") and spec["modelspec.date"]
    assert base_model_version("sdxl", False) == "sdxl_base_v1-0"
    cfg.set("enable_bucket", True)
    cfg.set("min_bucket_reso", 300)   # the dataset rounds it down to bucket_reso_steps 64: 256
    md = make_plan(cfg).outputs.metadata
    assert (md["ss_enable_bucket"], md["ss_min_bucket_reso"], md["ss_max_bucket_reso"]) == ("True", "256", "1024")


# ---------------------------------------------------------------------------------------- CLI errors
@pytest.mark.parametrize("args", [
    ["--set", "not_an_option=1"],
    ["--set", "network_dim=abc"],
    ["--set", "optimizer_type=my.module.Opt"],
    ["--base-model", "/nonexistent/model"],
    ["--set", "resume=somewhere"],
    ["--set", "lr_scheduler_type=torch.optim.lr_scheduler.StepLR"],
])
def test_train_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, args):
    from lora_compat.cli import main

    data = make_synthetic_dataset(tmp_path / "d", n_images=1, repeats=1)
    conf = tmp_path / "c.toml"
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sd1"\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{tmp_path / "o"}\'\nresolution = "64"\n')
    with pytest.raises(SystemExit) as exc:
        main(["train", str(conf), "--max-steps", "1", "--quiet", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "o" / "last.safetensors").exists()


@pytest.mark.parametrize("args, message", [
    (["--set", "not_an_option=1"], "not an sd-scripts option"),
    (["--set", "optimizer_type=my.module.Opt"], "is not supported"),
])
def test_train_cli_error_message_names_the_key(tmp_path, args, message):
    data = make_synthetic_dataset(tmp_path / "d", n_images=1, repeats=1)
    conf = tmp_path / "c.toml"
    conf.write_text(f'pretrained_model_name_or_path = "tiny:sd1"\ntrain_data_dir = \'{data}\'\n'
                    f'output_dir = \'{tmp_path / "o"}\'\nresolution = "64"\n')
    res = CliRunner().invoke(cli, ["train", str(conf), "--max-steps", "1", "--quiet", *args])
    assert isinstance(res.exception, UserError) and message in str(res.exception)
    assert "\n" not in str(res.exception)


# ---------------------------------------------------------------------------------------- PEFT output, checkpointing
@pytest.mark.slow
def test_peft_output_matches_kohya_file_and_checkpointing_trains_te(tmp_path):
    from safetensors.torch import load_file

    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)
    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "o"), "resolution": "64",
                 "network_dim": 4, "learning_rate": 1e-2, "optimizer_type": "AdamW", "gradient_checkpointing": True,
                 "clip_skip": 2, "caption_extension": ".txt", "logging_dir": str(tmp_path / "logs")}.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data), max_steps=2, show_progress=False, save_peft=True)
    kohya = load_file(str(res.final_model))
    te_up = {k: v for k, v in kohya.items() if k.startswith("lora_te_") and k.endswith("lora_up.weight")}
    # clip_skip 2: the last encoder layer is unused, so its 6 modules get no gradient (as in sd-scripts)
    trained = {k for k, v in te_up.items() if torch.count_nonzero(v) > 0}
    assert len(trained) == 66 and all("layers_11_" in k for k in set(te_up) - trained)
    peft_unet = load_file(str(res.peft_dir / "unet" / "adapter_model.safetensors"))
    a = peft_unet["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight"]
    assert torch.equal(a,
                       kohya["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"])
    assert len(peft_unet) == 2 * 192
    cfg_json = (res.peft_dir / "unet" / "adapter_config.json").read_text()
    assert '"r": 4' in cfg_json and '"lora_alpha": 1.0' in cfg_json
    assert any((tmp_path / "logs").rglob("events.out.tfevents*"))  # TensorBoard tracker wrote events


@pytest.mark.slow
def test_adafactor_relative_step_forces_its_schedule_like_sd_scripts(tmp_path):
    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)
    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "o"), "resolution": "64",
                 "network_dim": 4, "learning_rate": 1e-3, "unet_lr": 5e-4, "optimizer_type": "Adafactor"}.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data), max_steps=2, show_progress=False)
    md = res.metadata
    assert md["ss_lr_scheduler"] == "adafactor:0.001" and md["ss_learning_rate"] == "None"
    assert md["ss_unet_lr"] == "None" and md["ss_optimizer"].startswith("transformers.optimization.Adafactor(")
    cfg.set("lr_warmup_steps", 1)
    with pytest.raises(UserError, match="no warmup"):
        run_training(cfg, train_data=str(data), max_steps=2, show_progress=False)


@pytest.mark.slow
def test_network_weights_start_from_a_previous_lora(tmp_path):
    from safetensors.torch import load_file

    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)

    def cfg_for(out, **extra):
        cfg = CanonicalConfig(dialect="native", source="t")
        opts = {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / out), "resolution": "64",
                "network_dim": 4, "learning_rate": 1e-2, "optimizer_type": "AdamW"}
        opts.update(extra)
        for k, v in opts.items():
            cfg.set(k, v)
        return cfg

    first = run_training(cfg_for("a"), train_data=str(data), max_steps=2, show_progress=False).final_model
    logs: list[str] = []
    second = run_training(cfg_for("b", network_weights=str(first), learning_rate=1e-9), train_data=str(data),
                          max_steps=1, show_progress=False, log=logs.append).final_model
    a, b = load_file(str(first)), load_file(str(second))
    ups = [k for k in a if k.endswith("lora_up.weight") and torch.count_nonzero(a[k]) > 0]
    assert ups and all(torch.allclose(a[k], b[k], atol=1e-6) for k in ups)
    assert any("loaded 528 tensors" in m for m in logs)
    with pytest.raises(UserError, match=r"only \.safetensors"):
        run_training(cfg_for("c", network_weights=str(tmp_path / "x.ckpt")), train_data=str(data), max_steps=1,
                     show_progress=False)


# ---------------------------------------------------------------------------------------- long prompts
def test_long_prompt_chunks_like_sd_scripts():
    from lora_compat.train.models import join_chunks, tokenize
    from lora_compat.train.tiny import load_tiny_tokenizer

    tok = load_tiny_tokenizer()
    long = "x" * 100  # 100 byte tokens + BOS/EOS
    ids = tokenize(tok, [long, "short"], 150)
    assert ids.shape == (2, 2, 77)
    full = tok([long], padding="max_length", truncation=True, max_length=152).input_ids[0]
    assert ids[0, 0].tolist() == [full[0], *full[1:76], full[-1]]
    assert ids[0, 1].tolist() == [full[0], *full[76:151], full[-1]]
    assert tokenize(tok, ["a"], None).shape == (1, 1, 77)
    # pad != eos (SDXL tokenizer 2): a chunk cut mid-text ends with EOS; a chunk starting with PAD gets EOS
    tok2 = load_tiny_tokenizer("!")
    ids2 = tokenize(tok2, [long, "short"], 225)
    assert ids2[0, 0, -1].item() == tok2.eos_token_id
    assert ids2[1, 1, 1].item() == tok2.eos_token_id
    hidden = torch.arange(2 * 2 * 77, dtype=torch.float32).view(4, 77, 1)
    joined = join_chunks(hidden, 2, 2)
    assert joined.shape == (2, 152, 1)
    assert joined[0, 0, 0] == 0 and joined[0, 76, 0] == 77 + 1 and joined[0, -1, 0] == 2 * 77 - 1


@pytest.mark.slow
def test_sdxl_trains_with_225_tokens(tmp_path):
    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)
    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"pretrained_model_name_or_path": "tiny:sdxl", "sdxl": True, "output_dir": str(tmp_path / "o"),
                 "resolution": "64", "network_dim": 4, "learning_rate": 1e-3, "optimizer_type": "AdamW",
                 "max_token_length": 225, "caption_extension": ".txt"}.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data), max_steps=1, show_progress=False)
    assert res.global_step == 1 and math.isfinite(res.losses[0])


@pytest.mark.slow
def test_sdxl_cached_text_encoder_outputs_follow_sd_scripts(tmp_path):
    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)

    def cfg_for(**extra):
        cfg = CanonicalConfig(dialect="native", source="t")
        opts = {"pretrained_model_name_or_path": "tiny:sdxl", "sdxl": True, "output_dir": str(tmp_path / "o"),
                "resolution": "64", "network_dim": 4, "learning_rate": 1e-3, "optimizer_type": "AdamW",
                "caption_extension": ".txt", "cache_text_encoder_outputs": True, "network_train_unet_only": True}
        opts.update(extra)
        for k, v in opts.items():
            cfg.set(k, v)
        return cfg

    res = run_training(cfg_for(), train_data=str(data), max_steps=2, show_progress=False)
    assert res.global_step == 2 and all(math.isfinite(x) for x in res.losses)
    with pytest.raises(UserError, match="network_train_unet_only"):
        run_training(cfg_for(network_train_unet_only=False), train_data=str(data), max_steps=1, show_progress=False)
    with pytest.raises(UserError, match="shuffle_caption"):
        run_training(cfg_for(shuffle_caption=True), train_data=str(data), max_steps=1, show_progress=False)


@pytest.mark.slow
def test_full_bf16_trains_and_saves_bf16(tmp_path):
    from safetensors import safe_open

    data = make_synthetic_dataset(tmp_path / "d", n_images=2, repeats=1)
    cfg = CanonicalConfig(dialect="native", source="t")
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(tmp_path / "o"), "resolution": "64",
                 "network_dim": 4, "learning_rate": 1e-3, "optimizer_type": "AdamW", "mixed_precision": "bf16",
                 "full_bf16": True}.items():
        cfg.set(k, v)
    res = run_training(cfg, train_data=str(data), max_steps=2, show_progress=False)
    with safe_open(str(res.final_model), "pt") as f:
        t = f.get_tensor("lora_unet_mid_block_attentions_0_proj_in.lora_up.weight")
        alpha = f.get_tensor("lora_unet_mid_block_attentions_0_proj_in.alpha")
    assert t.dtype == torch.bfloat16 and torch.count_nonzero(t) > 0 and alpha.dtype == torch.int64
    cfg.set("mixed_precision", "no")
    with pytest.raises(UserError, match="requires mixed_precision"):
        run_training(cfg, train_data=str(data), max_steps=1, show_progress=False)


def test_base_model_hashes_like_sd_scripts(tmp_path):
    """ss_sd_model_hash (A1111's old hash: 64 KiB at 1 MiB) and ss_new_sd_model_hash (full SHA-256) of a file base
    model; "IsADirectory" for a folder; nothing hashed for a name that is not a path."""
    import hashlib

    from lora_compat.plan import make_plan
    from lora_compat.train.metadata import RunFacts, training_metadata

    data = os.urandom(0x100000 + 0x10000 + 12345)
    ckpt = tmp_path / "base.safetensors"
    ckpt.write_bytes(data)
    facts = RunFacts(10, 0, 5, 2, 10, 1, 42, "torch.optim.adamw.AdamW", 7, 1.5)
    for model, want in [(ckpt, (hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8],
                                hashlib.sha256(data).hexdigest())),
                        (tmp_path, ("IsADirectory", "IsADirectory")), ("tiny:sd1", None)]:
        cfg = CanonicalConfig(dialect="native", source="t")
        cfg.set("pretrained_model_name_or_path", str(model))
        md = training_metadata(make_plan(cfg).outputs.metadata, facts, str(model))
        if want is None:
            assert "ss_sd_model_hash" not in md and md["ss_sd_model_name"] == "tiny:sd1"
        else:
            assert (md["ss_sd_model_hash"], md["ss_new_sd_model_hash"]) == want
            assert md["ss_sd_model_name"] == os.path.basename(str(model))
