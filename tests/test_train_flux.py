"""FLUX.1 LoRA training end to end on the tiny FLUX.1 (CPU): a flux_train_network.py command line, the corpus
kohya_ss FLUX preset and a Derrian [flux_args] TOML train through the engine's FLUX family; the flow-matching loss of
the trained model falls; the kohya file has sd-scripts' keys, ranks, dtypes and an .alpha per module (golden
flux_lora_keys.json restricted to the tiny model's blocks) and FLUX's ss_*/modelspec metadata; our converter's
diffusers output loads with FluxPipeline.load_lora_weights and changes the DiT's output.

diffusers' own kohya-FLUX loader hard-codes FLUX.1's real widths for single_blocks.N.linear1 ([3072]*3 + [12288]),
so a tiny model's kohya file goes through our converter's diffusers layout (flux-core's note)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402

from shared_data import CORPUS, golden, requires_corpus  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

#: what keeps the tiny model fast: 64 px images (16 image tokens), 16 T5 tokens
FAST = ["--resolution", "64", "--t5xxl_max_token_length", "16"]


@pytest.fixture(scope="module")
def flux_dir(tmp_path_factory):
    from lora_compat.train.flux.tiny import save_tiny_flux_pipeline

    return save_tiny_flux_pipeline(tmp_path_factory.mktemp("model") / "tiny-flux1-dev", "dev", seed=0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=4, repeats=10)


def _train(args: list[str]) -> dict:
    res = CliRunner().invoke(cli, ["train", *args, "--quiet", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


def _command_line(tmp_path: Path, flux_dir: Path, argv: list[str]) -> Path:
    cmd = tmp_path / "train.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path "
                   f"{flux_dir} --network_module networks.lora_flux " + " ".join(argv) + "\n")
    return cmd


def _flow_loss(pipe, data_dir: Path) -> float:
    """sd-scripts' FLUX training loss of ``pipe.transformer`` on the training images, averaged over fixed draws
    of noise and timesteps (the same draws for every call)."""
    import numpy as np
    from PIL import Image

    from lora_compat.semantics.flux_options import FluxOptions
    from lora_compat.train.flux import text
    from lora_compat.train.flux.loss import flux_loss_step
    from lora_compat.train.flux.models import diffusers_dit, encode_latents
    from lora_compat.train.flux.sampling import make_flow_scheduler

    imgs = sorted(next(data_dir.iterdir()).glob("*.png"))
    caps = [p.with_suffix(".txt").read_text() for p in imgs]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 127.5 - 1)
                     .permute(2, 0, 1) for p in imgs])
    options = FluxOptions(timestep_sampling="shift", discrete_flow_shift=3.1582, model_prediction_type="raw",
                          guidance_scale=1.0)
    total = 0.0
    with torch.no_grad():
        torch.manual_seed(0)
        lat = encode_latents(pipe.vae, x)
        conds = text.encode(pipe.text_encoder, pipe.text_encoder_2,
                            text.tokenize(pipe.tokenizer, pipe.tokenizer_2, caps, 16), apply_t5_attn_mask=False)
        for draw in range(4):
            torch.manual_seed(100 + draw)
            step = flux_loss_step(diffusers_dit(pipe.transformer), lat, conds, options, make_flow_scheduler(3.1582),
                                  weight_dtype=torch.float32, autocast=contextlib.nullcontext)
            total += step.loss.item()
    return total / 4


def _golden_case(name: str) -> dict:
    return next(c for c in golden("flux_lora_keys.json")["cases"] if c["name"] == name)


def _fits_tiny(key: str) -> bool:
    """A golden key of a module the tiny model has (2 double, 4 single blocks; all text-encoder layers)."""
    m = re.search(r"_(double|single)_blocks_(\d+)_", key)
    return m is None or int(m.group(2)) < (2 if m.group(1) == "double" else 4)


def test_command_line_trains_flux_and_output_is_sd_scripts(flux_dir, data_dir, tmp_path) -> None:
    """--network_dim 4 --network_alpha 1 --network_train_unet_only (golden case dim4_alpha1_unet_only): loss
    falls, sd-scripts' keys/ranks/dtypes/alphas, FLUX metadata, diffusers loads the converted output."""
    from diffusers import FluxPipeline
    from safetensors import safe_open

    from lora_compat.weights.convert import ConvertOptions, convert

    argv = ["--network_dim", "4", "--network_alpha", "1", "--network_train_unet_only", "--learning_rate", "1e-2",
            "--optimizer_type", "AdamW", "--train_batch_size", "4", "--max_train_steps", "30", "--seed", "1",
            "--timestep_sampling", "shift", "--discrete_flow_shift", "3.1582", "--model_prediction_type", "raw",
            "--guidance_scale", "1.0", "--output_name", "fluxy", "--save_model_as", "safetensors", *FAST]
    out = tmp_path / "out"
    res = _train([str(_command_line(tmp_path, flux_dir, argv)), "--train-data", str(data_dir), "--output", str(out)])
    assert res["global_step"] == 30 and res["run"]["family"] == "flux1"
    path = Path(res["final_model"])

    # keys, ranks, dtypes and alphas: golden's case restricted to the tiny model's blocks
    case = _golden_case("dim4_alpha1_unet_only")
    want = {k: v for k, v in case["keys"].items() if _fits_tiny(k)}
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        md = f.metadata()
        tensors = {k: f.get_tensor(k) for k in keys}
    assert set(keys) == set(want)
    for key, (shape, dtype, *value) in want.items():
        t = tensors[key]
        assert str(t.dtype) == f"torch.{dtype}", key
        if key.endswith(".alpha"):
            assert t.item() == value[0], key
        elif ".lora_down." in key:
            assert t.shape[0] == shape[0], key
        else:
            assert t.shape[1] == shape[1], key
    names = {k.split(".")[0] for k in keys}
    assert all(f"{n}.alpha" in tensors for n in names)   # create_network_from_weights needs every .alpha

    # FLUX metadata (FluxNetworkTrainer.update_metadata, sai model spec for FLUX.1 dev)
    assert md["ss_network_module"] == "networks.lora_flux" and md["ss_base_model_version"] == "flux1"
    assert (md["ss_model_type"], md["ss_timestep_sampling"], md["ss_model_prediction_type"]) == ("flux", "shift",
                                                                                               "raw")
    assert (md["ss_guidance_scale"], md["ss_discrete_flow_shift"]) == ("1.0", "3.1582")
    assert md["ss_network_dim"] == "4" and md["ss_network_alpha"] == "1.0"
    assert md["modelspec.architecture"] == "flux-1-dev/lora" and "modelspec.prediction_type" not in md
    assert md["modelspec.implementation"] == "https://github.com/black-forest-labs/flux"
    assert {"ss_epoch", "ss_steps", "ss_training_finished_at", "sshs_model_hash", "sshs_legacy_hash"} <= set(md)

    # diffusers: our converter's diffusers layout through FluxPipeline.load_lora_weights; the loss falls
    pipe = FluxPipeline.from_pretrained(str(flux_dir))
    before = _flow_loss(pipe, data_dir)
    probe = _flow_loss(pipe, data_dir)
    assert probe == before   # the measure itself is deterministic
    convert(path, tmp_path / "diffusers.safetensors", ConvertOptions(to="diffusers"))
    pipe.load_lora_weights(str(tmp_path / "diffusers.safetensors"))
    after = _flow_loss(pipe, data_dir)
    assert after < 0.9 * before, (before, after)


def test_derrian_flux_args_toml_trains(flux_dir, data_dir, tmp_path) -> None:
    """A Derrian UI TOML with [flux_args] (its backend passes flux_train_network.py's options from it)."""
    toml = f"""\
[[subsets]]
num_repeats = 10
image_dir = "{next(data_dir.iterdir())}"

[general_args.args]
pretrained_model_name_or_path = "{flux_dir}"
mixed_precision = "no"
max_train_steps = 3
seed = 3

[general_args.dataset_args]
resolution = 64
batch_size = 2

[network_args.args]
network_dim = 4
network_alpha = 2.0

[network_args.args.network_args]
train_blocks = "single"

[optimizer_args.args]
optimizer_type = "AdamW"
learning_rate = 0.001

[saving_args.args]
output_dir = "{tmp_path / 'unused'}"
output_name = "derrian_flux"

[flux_args.args]
apply_t5_attn_mask = true
t5xxl_max_token_length = 16
timestep_sampling = "sigmoid"
weighting_scheme = "logit_normal"
guidance_scale = 1.0
model_prediction_type = "raw"
"""
    cfg = tmp_path / "derrian.toml"
    cfg.write_text(toml)
    res = _train([str(cfg), "--output", str(tmp_path / "out")])
    assert res["global_step"] == 3
    md = res["run"]["metadata"]
    assert (md["ss_network_module"], md["ss_apply_t5_attn_mask"], md["ss_weighting_scheme"]) == (
        "networks.lora_flux", "True", "logit_normal")
    assert md["ss_network_args"] == json.dumps({"train_blocks": "single", "dropout": None})
    from safetensors import safe_open

    with safe_open(res["final_model"], "pt") as f:
        names = {k.split(".")[0] for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    assert names and all(n.startswith(("lora_unet_single_blocks_", "lora_te1_")) for n in names)
    assert any(n.startswith("lora_te1_") for n in names)   # CLIP-L is trained by default (no unet_only)


@requires_corpus
def test_kohya_gui_flux_preset_trains(flux_dir, data_dir, tmp_path) -> None:
    """The corpus kohya_ss FLUX preset with its paths, run length, size and optimizer (AdamW8bit: AdamW, no
    bitsandbytes needed) overridden: fp8_base,
    full_bf16, bf16, gradient checkpointing, cached text-encoder outputs on disk, sigmoid timesteps."""
    preset = CORPUS / "kohya_ss" / "flux1D - adamw8bit fp8.json"
    cfg = json.loads(preset.read_text())
    cfg.update({"pretrained_model_name_or_path": str(flux_dir), "ae": "", "clip_l": "", "t5xxl": "",
                "output_dir": str(tmp_path / "out"), "max_train_steps": 2, "max_resolution": "64,64",
                "min_bucket_reso": 64, "t5xxl_max_token_length": 16, "optimizer": "AdamW",
                "sample_prompts": "", "save_every_n_steps": 0, "logging_dir": str(tmp_path / "logs")})
    path = tmp_path / preset.name
    path.write_text(json.dumps(cfg))
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    res = _train([str(path), "--train-data", str(data), "--output", str(tmp_path / "out")])
    assert res["global_step"] == 2 and res["run"]["mixed_precision"] == "bf16"
    md = res["run"]["metadata"]
    assert (md["ss_fp8_base"], md["ss_timestep_sampling"], md["ss_model_prediction_type"]) == ("True", "sigmoid",
                                                                                               "raw")
    assert list(data.rglob("*_flux_te.npz")) and list(data.rglob("*_flux.npz"))   # both caches on disk
    from safetensors import safe_open

    with safe_open(res["final_model"], "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()  # noqa: SIM118
                  if not k.endswith(".alpha")}
    assert dtypes == {"torch.bfloat16"}   # save_precision bf16


# ---- memory options: each changes how the step is computed, not what it computes ---------------------------
MEMORY_BASE = ["--network_dim", "4", "--network_alpha", "4", "--network_train_unet_only", "--learning_rate", "1e-3",
               "--optimizer_type", "AdamW", "--train_batch_size", "2", "--max_train_steps", "2", "--seed", "5",
               "--save_model_as", "safetensors", *FAST]
#: option -> (extra arguments, the run it is compared with, tolerance of the first loss, of the trained weights)
MEMORY = {
    "gradient_checkpointing": (["--gradient_checkpointing"], "fp32", 1e-6, 1e-5),
    "cpu_offload_checkpointing": (["--gradient_checkpointing", "--cpu_offload_checkpointing"], "fp32", 1e-6, 1e-5),
    "blocks_to_swap": (["--blocks_to_swap", "1"], "fp32", 1e-6, 1e-5),
    "cache_text_encoder_outputs": (["--cache_text_encoder_outputs"], "fp32", 1e-6, 1e-5),
    "cache_text_encoder_outputs_to_disk": (["--cache_text_encoder_outputs_to_disk"], "fp32", 1e-6, 1e-5),
    "bf16": (["--mixed_precision", "bf16"], "fp32", 2e-2, None),
    "fp8_base": (["--mixed_precision", "bf16", "--fp8_base"], "bf16", 5e-2, None),
}


def _memory_run(flux_dir: Path, data_dir: Path, tmp_path: Path, extra: list[str]) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)   # the disk caches are written beside the images
    res = _train([str(_command_line(tmp_path, flux_dir, MEMORY_BASE + extra)), "--train-data", str(data),
                  "--output", str(tmp_path / "out")])
    return res, load_file(res["final_model"])


@pytest.fixture(scope="module")
def memory_references(flux_dir, data_dir, tmp_path_factory):
    return {"fp32": _memory_run(flux_dir, data_dir, tmp_path_factory.mktemp("fp32"), []),
            "bf16": _memory_run(flux_dir, data_dir, tmp_path_factory.mktemp("bf16"), ["--mixed_precision", "bf16"])}


@pytest.mark.parametrize("option", list(MEMORY))
def test_memory_option_keeps_the_result(option, flux_dir, data_dir, memory_references, tmp_path) -> None:
    extra, against, loss_tol, weight_tol = MEMORY[option]
    res, sd = _memory_run(flux_dir, data_dir, tmp_path, extra)
    ref, ref_sd = memory_references[against]
    assert res["run"]["metadata"]["ss_mixed_precision"] == ("no" if against == "fp32" and "bf16" not in extra
                                                            else "bf16")
    assert res["first_loss"] == pytest.approx(ref["first_loss"], rel=loss_tol)
    assert sd.keys() == ref_sd.keys()
    if weight_tol is not None:
        worst = max((sd[k].float() - ref_sd[k].float()).abs().max().item() for k in sd)
        assert worst <= weight_tol, worst
    if option.startswith("cache_text_encoder_outputs"):
        assert bool(list((tmp_path / "data").rglob("*_flux_te.npz"))) == option.endswith("to_disk")
    # the option is in effect on the live models (the run record reads them), and absent from the reference
    mem, ref_mem = res["run"]["memory"], ref["run"]["memory"]
    live = {"gradient_checkpointing": ("gradient_checkpointing", True),
            "cpu_offload_checkpointing": ("cpu_offload_checkpointing", True), "blocks_to_swap": ("blocks_to_swap", 1),
            "cache_text_encoder_outputs": ("text_encoder_outputs_cached", 1),
            "cache_text_encoder_outputs_to_disk": ("text_encoder_outputs_cached", 1),
            "bf16": ("transformer_linear_dtypes", ["bfloat16"]),
            "fp8_base": ("transformer_linear_dtypes", ["float8_e4m3fn"])}[option]
    # cached captions: one (no --caption_extension: sd-scripts reads .caption files, so every caption is the class
    # token of 10_shapes)
    assert mem[live[0]] == live[1] and ref_mem[live[0]] != live[1], (mem, ref_mem)
    if option == "fp8_base":
        assert res["run"]["metadata"]["ss_fp8_base"] == "True"
        assert mem["text_encoder_linear_dtypes"] == ["float8_e4m3fn"]   # fp8_base without fp8_base_unet: TEs too


def test_ctrl_c_then_resume_equals_uninterrupted_with_peft_output(flux_dir, data_dir, tmp_path) -> None:
    """As for SD: Ctrl-C saves a state folder, resuming from it ends with exactly the uninterrupted run's weights;
    --peft writes the final file as PEFT adapter folders (through the converter)."""
    import os
    import signal

    from safetensors.torch import load_file

    from lora_compat.config.load import load_config
    from lora_compat.train.engine import run_training

    argv = [a if a != "2" or i != MEMORY_BASE.index("--max_train_steps") + 1 else "4"
            for i, a in enumerate(MEMORY_BASE)] + ["--output_name", "r"]
    cfg = load_config(str(_command_line(tmp_path, flux_dir, argv)))
    full = run_training(cfg, train_data=str(data_dir), output_dir=str(tmp_path / "a"), show_progress=False,
                        save_peft=True)
    assert full.global_step == 4

    def interrupt(step: int, loss: float) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    part = run_training(cfg, train_data=str(data_dir), output_dir=str(tmp_path / "b"), show_progress=False,
                        on_step=interrupt)
    assert part.interrupted and part.global_step == 2 and part.final_model is None
    resumed = run_training(cfg, train_data=str(data_dir), output_dir=str(tmp_path / "b"), show_progress=False,
                           resume=str(part.state_dir))
    assert resumed.global_step == 4 and resumed.losses == full.losses[2:]
    a, b = load_file(str(full.final_model)), load_file(str(resumed.final_model))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (full.peft_dir / "transformer" / "adapter_config.json").is_file()
