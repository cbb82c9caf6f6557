"""FLUX.1 sample images and validation loss while training the tiny FLUX.1 (CPU): the sampler against diffusers'
FluxPipeline as an independent oracle, sd-scripts' ``get_schedule`` run in torch, images at sd-scripts' steps with
its names and sizes, seeds reproducible, the training stream untouched (losses and weights bit-identical with and
without samples or validation), the validation series reproducible, and ``plan`` equal to what ``train`` runs."""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from lora_compat.cli import cli  # noqa: E402
from lora_compat.config.load import load_config  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.semantics.flux_sampling import flux_sample_schedule, lin_function  # noqa: E402
from lora_compat.semantics.samples import parse_prompt_line  # noqa: E402
from lora_compat.train.engine import run_training  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

STAMP = r"\d{14}"
PROMPTS = ("a red circle --d 5 --s 2 --w 64 --h 64\n"
           "a blue square --n blurry --d 6 --w 80 --h 67 --s 1 --l 2 --g 2 --ss euler_a\n"
           "a red circle --d 5 --s 2 --w 64 --h 64\n")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=4, repeats=1)


def _command(tmp_path: Path, name: str, extra: str) -> Path:
    cmd = tmp_path / f"{name}.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path tiny:flux1-dev "
                   f"--network_module networks.lora_flux --output_dir {tmp_path / name} --output_name tst "
                   "--resolution 64 --network_dim 4 --learning_rate 1e-2 --seed 3 --optimizer_type AdamW "
                   f"--max_train_steps 4 --t5xxl_max_token_length 16 {extra}\n", encoding="utf-8")
    return cmd


def _run(tmp_path: Path, data_dir: Path, name: str, extra: str = "", log: list[str] | None = None):
    cfg = load_config(str(_command(tmp_path, name, extra)), resolve_dataset=True)
    return run_training(cfg, train_data=str(data_dir), show_progress=False,
                        log=log.append if log is not None else None)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


# ------------------------------------------------------------------------------------------ the sampler itself
def _sd_scripts_get_schedule(num_steps: int, image_seq_len: int) -> list[float]:
    """sd-scripts' flux_train_utils.get_schedule, op for op in torch (the oracle of the emulation)."""
    timesteps = torch.linspace(1, 0, num_steps + 1)
    mu = lin_function(y1=0.5, y2=1.15)(image_seq_len)
    timesteps = math.exp(mu) / (math.exp(mu) + (1 / timesteps - 1) ** 1.0)
    return timesteps.tolist()


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 20, 28, 50])
def test_schedule_equals_sd_scripts_get_schedule_bit_for_bit(num_steps) -> None:
    for seq in (4, 16, 20, 256, 1024, 4096, 8192):
        assert flux_sample_schedule(num_steps, seq) == _sd_scripts_get_schedule(num_steps, seq), (num_steps, seq)


@pytest.fixture(scope="module")
def tiny_sampler():
    from lora_compat.semantics.flux_options import FluxOptions
    from lora_compat.train.family import FamilyModels, StepContext
    from lora_compat.train.flux.models import load_flux_models
    from lora_compat.train.flux.sampler import FluxSampler

    c = load_flux_models("tiny:flux1-dev")
    models = FamilyModels(denoiser=c.transformer, vae=c.vae, text_encoders=[c.clip_l, c.t5xxl],
                          tokenizers=[c.clip_tokenizer, c.t5_tokenizer], noise_scheduler=None, parts={},
                          extra={"options": FluxOptions(), "t5_max_length": 16})
    ctx = StepContext(device=torch.device("cpu"), autocast=contextlib.nullcontext, train_text_encoders=False,
                      run_parts={})
    return c, FluxSampler(models, None, ctx)


@pytest.mark.parametrize("line", ["a red circle --d 5 --s 3 --w 64 --h 48",
                                  "a blue square --n blurry --d 6 --w 80 --h 67 --s 2 --l 2.5 --g 2"])
def test_sampler_equals_diffusers_flux_pipeline(line, tiny_sampler) -> None:
    """Independent oracle: diffusers' FluxPipeline (dynamic shift with sd-scripts' base/max shift, true CFG) given
    the same packed noise and text embeddings makes the same pixels, within the last uint8 level (sd-scripts
    truncates, the pipeline's float output is floored here; its schedule is computed in float64)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    from lora_compat.train.flux import text

    c, sampler = tiny_sampler
    prompt = parse_prompt_line(line)
    ours = np.asarray(sampler.generate(prompt, sampler="ddim")).astype(int)
    s = sampler.settings(prompt)
    noise = torch.randn(1, s.image_seq_len, 64, generator=torch.Generator().manual_seed(s.seed))

    def embeddings(t: str):
        tokens = text.tokenize(c.clip_tokenizer, c.t5_tokenizer, [t], 16)
        pooled, t5_out, _, _ = text.encode(c.clip_l, c.t5xxl, tokens, apply_t5_attn_mask=False)
        return pooled, t5_out

    with torch.no_grad():
        pooled, t5_out = embeddings(s.prompt)
        kwargs = {}
        if s.negative_prompt is not None:
            n_pooled, n_t5 = embeddings(s.negative_prompt)
            kwargs = {"negative_prompt_embeds": n_t5, "negative_pooled_prompt_embeds": n_pooled,
                      "true_cfg_scale": s.cfg_scale}
        scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                    base_image_seq_len=256, max_image_seq_len=4096)
        pipe = FluxPipeline(scheduler=scheduler, vae=c.vae, text_encoder=c.clip_l, tokenizer=c.clip_tokenizer,
                            text_encoder_2=c.t5xxl, tokenizer_2=c.t5_tokenizer, transformer=c.transformer)
        pipe.set_progress_bar_config(disable=True)
        ref = pipe(prompt_embeds=t5_out, pooled_prompt_embeds=pooled, latents=noise, height=s.height, width=s.width,
                   num_inference_steps=s.sample_steps, guidance_scale=s.guidance_scale, output_type="np",
                   **kwargs).images[0]
    ref = np.floor(255.0 * ref.astype(np.float64)).astype(int)
    assert ours.shape == ref.shape == (s.height, s.width, 3)
    assert np.abs(ours - ref).max() <= 1 and (ours != ref).mean() < 0.01
    assert ours.std() > 1  # not blank


def test_embedded_guidance_is_read_by_dev_and_ignored_by_schnell(tiny_sampler) -> None:
    """``--g`` feeds dev's guidance embedder; schnell has none (sd-scripts passes the vector, the model drops it)."""
    import dataclasses

    from lora_compat.train.flux.models import load_flux_models
    from lora_compat.train.flux.sampler import FluxSampler

    _, dev = tiny_sampler
    s = load_flux_models("tiny:flux1-schnell")
    schnell = FluxSampler(dataclasses.replace(dev.models, denoiser=s.transformer), None, dev.ctx)

    def image(sampler, g: float) -> np.ndarray:
        return np.asarray(sampler.generate(parse_prompt_line(f"a cat --d 1 --s 2 --w 64 --h 64 --g {g}"),
                                           sampler="ddim")).astype(int)

    assert not np.array_equal(image(dev, 1.0), image(dev, 5.0))
    assert np.array_equal(image(schnell, 1.0), image(schnell, 5.0))


def test_flux_loss_ignores_the_fixed_validation_timestep(tiny_sampler) -> None:
    """flux_train_network.py's get_noisy_model_input_and_timesteps never reads min/max_timestep, so the validation
    loop's ``min_timestep = max_timestep = t`` changes nothing: the same RNG state gives the same loss."""
    import dataclasses

    from lora_compat.train.family import StepContext
    from lora_compat.train.flux import text
    from lora_compat.train.flux.family import FAMILY
    from lora_compat.train.flux.sampling import make_flow_scheduler

    c, sampler = tiny_sampler
    models = dataclasses.replace(sampler.models, noise_scheduler=make_flow_scheduler(3.0))
    latents = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cond = text.encode(c.clip_l, c.t5xxl, text.tokenize(c.clip_tokenizer, c.t5_tokenizer, ["a", "b"], 16),
                           apply_t5_attn_mask=False)
        losses = []
        for fixed in (None, 200, 800):
            ctx = StepContext(device=torch.device("cpu"), autocast=contextlib.nullcontext, train_text_encoders=False,
                              run_parts={}, fixed_timestep=fixed)
            torch.manual_seed(1)
            losses.append(FAMILY.loss(models, latents, cond, {"loss_weights": torch.ones(2)}, None, ctx))
    assert torch.equal(losses[0], losses[1]) and torch.equal(losses[0], losses[2])


# ------------------------------------------------------------------------------------------- in training
def test_flux_samples_at_sd_scripts_steps_and_training_untouched(tmp_path, data_dir) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS, encoding="utf-8")
    plain = _run(tmp_path, data_dir, "plain")
    log: list[str] = []
    res = _run(tmp_path, data_dir, "out", f"--sample_prompts {prompts} --sample_at_first --sample_every_n_steps 3 "
               f"--logging_dir {tmp_path / 'logs'}", log)
    # the samples leave the training stream alone: same losses, same weights as without them
    assert res.losses == plain.losses and res.weights_sha256 == plain.weights_sha256
    names = [p.name for p in res.samples]
    assert sorted(p.name for p in (tmp_path / "out" / "sample").iterdir()) == sorted(names)
    want = [rf"tst_e000000_00_{STAMP}_5\.png", rf"tst_e000000_01_{STAMP}_6\.png", rf"tst_e000000_02_{STAMP}_5\.png",
            rf"tst_000003_00_{STAMP}_5\.png", rf"tst_000003_01_{STAMP}_6\.png", rf"tst_000003_02_{STAMP}_5\.png"]
    assert len(names) == 6 and all(re.fullmatch(w, n) for w, n in zip(want, names, strict=True)), names
    assert [Image.open(p).size for p in res.samples] == [(64, 64), (80, 64), (64, 64)] * 2   # multiples of 16
    first, other, again = (_pixels(p) for p in res.samples[:3])
    assert np.array_equal(first, again) and first.std() > 1 and other.std() > 1   # same seed, same image
    assert not np.array_equal(_pixels(res.samples[3]), first)   # the trained LoRA is applied
    assert any("--ss euler_a" in m and m.startswith("warning:") for m in log)   # said, not silent
    # logged to TensorBoard as the SD route logs them: sample_<NN> at the step they were made
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert res.log_dir is not None
    events = EventAccumulator(str(res.log_dir / "network_train"), size_guidance={"images": 0}).Reload()
    tags = sorted(t for t in events.Tags()["images"] if t.startswith("sample_"))
    assert tags == ["sample_0", "sample_1", "sample_2"], events.Tags()
    assert [(e.step, e.width, e.height) for e in events.Images("sample_1")] == [(0, 80, 64), (3, 80, 64)]

    # plan == train: the plan's resolved sizes and the images written
    out = CliRunner().invoke(cli, ["plan", str(tmp_path / "out.sh"), "--train-data", str(data_dir), "--format",
                                   "json"])
    resolved = json.loads(out.output)["samples"]["resolved"]
    assert [(r["width"], r["height"]) for r in resolved] * 2 == [Image.open(p).size for p in res.samples]


def test_cached_text_encoder_outputs_give_the_same_images(tmp_path, data_dir, monkeypatch) -> None:
    """cache_text_encoder_outputs: the sample prompts are encoded before training (sd-scripts'
    sample_prompts_te_outputs) by the same frozen encoders, so the first images equal the uncached run's; held-out
    captions are cached as written, as the training ones."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS.splitlines()[1] + "\n", encoding="utf-8")
    args = f"--sample_prompts {prompts} --sample_at_first --max_train_steps 1 --caption_extension .txt"
    from lora_compat.train.flux.cache import TextEncoderOutputCache

    live = _run(tmp_path, data_dir, "live", args)
    encoded: list[str] = []
    get = TextEncoderOutputCache.get

    def record(self, caption, npz_path=None):
        encoded.append(caption)
        return get(self, caption, npz_path)

    monkeypatch.setattr(TextEncoderOutputCache, "get", record)
    cached = _run(tmp_path, data_dir, "cached", args + " --cache_text_encoder_outputs --caption_prefix zz "
                  "--validation_split 0.5 --validate_every_n_steps 1")
    assert len(live.samples) == len(cached.samples) == 1
    assert np.array_equal(_pixels(live.samples[0]), _pixels(cached.samples[0]))
    # with cached outputs the validation captions are the raw file text too (no prefix): 4 captions cached
    assert cached.validation and cached.record["memory"]["text_encoder_outputs_cached"] == 4
    assert encoded and not any(c.startswith("zz") for c in encoded)


def test_flux_validation_series_reproducible_and_training_untouched(tmp_path, data_dir) -> None:
    split = "--validation_split 0.5 --validation_seed 7"
    never = _run(tmp_path, data_dir, "never", f"{split} --validate_every_n_epochs 1000")
    a = _run(tmp_path, data_dir, "a", f"{split} --validate_every_n_steps 1")
    other = _run(tmp_path, data_dir, "c", "--validation_split 0.5 --validation_seed 8 --validate_every_n_steps 1")
    assert never.validation == []
    # 2 training images, batch 1: 2 steps per epoch; every step, and every epoch end (sd-scripts' default)
    assert [s for s, _ in a.validation] == [1, 2, 2, 3, 4, 4]
    assert all(math.isfinite(v) and v > 0 for _, v in a.validation)
    assert a.losses == never.losses and a.weights_sha256 == never.weights_sha256   # RNG restored
    # reproducible: after step 2 and at the epoch end that follows (same weights) every pass draws the same noise
    # and sigmas, so the value repeats exactly; the values move as the LoRA trains
    assert a.validation[1][1] == a.validation[2][1] and a.validation[4][1] == a.validation[5][1]
    assert len({v for _, v in a.validation}) == 4
    # the validation seed draws them (flux_train_network.py ignores the fixed timesteps)
    assert other.validation != a.validation
    assert a.loss_plot is not None and a.loss_plot.is_file()   # loss.png with the validation points
