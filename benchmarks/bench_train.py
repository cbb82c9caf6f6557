"""Step time of the lora-compat engine vs a plain diffusers + PEFT loop at identical settings.

Tiny SD1 topology, CPU, fp32, batch 2 at 64x64, LoRA rank 4 / alpha 4 on sd-scripts' UNet + text-encoder
module set, AdamW, constant LR, max_grad_norm 1.0, images read from disk and VAE-encoded every step in both loops.
Goal: ratio (engine / plain) <= 1.05.

    python benchmarks/bench_train.py [--steps 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def plain_loop(data_dir: Path, steps: int, seed: int) -> list[float]:
    """A minimal hand-written diffusers + PEFT trainer; returns per-step wall times."""
    import numpy as np
    import torch
    from peft import LoraConfig, inject_adapter_in_model
    from PIL import Image

    from lora_compat.arch import peft_target_modules
    from lora_compat.train.tiny import tiny_components

    torch.manual_seed(seed)
    c = tiny_components("sd1", seed)
    unet, vae, te, tok, sched = c.unet, c.vae, c.text_encoders[0], c.tokenizers[0], c.noise_scheduler
    for m in (unet, vae, te):
        m.requires_grad_(False)
    te_paths = {n for n, _ in te.named_modules()}
    te_targets = [p if p in te_paths else p.removeprefix("text_model.") for p in peft_target_modules("sd1", "te1")]
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=peft_target_modules("sd1", "unet")), unet)
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=te_targets), te)
    params = [p for m in (te, unet) for n, p in m.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-4)
    unet.train()
    te.train()
    images = sorted(next(data_dir.iterdir()).glob("*.png"))
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        batch = [images[(2 * step + k) % len(images)] for k in range(2)]
        x = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 127.5 - 1)
                         .permute(2, 0, 1) for p in batch])
        caps = [p.with_suffix(".txt").read_text() for p in batch]
        with torch.no_grad():
            lat = vae.encode(x).latent_dist.sample() * vae.config.scaling_factor
        ids = tok(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ctx = te(ids)[0]
        noise = torch.randn_like(lat)
        t = torch.randint(0, 1000, (lat.shape[0],))
        pred = unet(sched.add_noise(lat, noise, t), t, ctx).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # sd-scripts' default max_grad_norm, as the engine does
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times


def engine_loop(data_dir: Path, out: Path, steps: int, seed: int) -> list[float]:
    """The lora-compat engine on the same settings; returns per-step wall times."""
    from lora_compat.config.model import CanonicalConfig
    from lora_compat.train.engine import run_training

    cfg = CanonicalConfig(dialect="native", source="bench")
    for k, v in dict(pretrained_model_name_or_path="tiny:sd1", output_dir=str(out), resolution="64",
                     network_dim=4, network_alpha=4.0, learning_rate=1e-4, optimizer_type="AdamW",
                     lr_scheduler="constant", train_batch_size=2, caption_extension=".txt", seed=seed,
                     max_data_loader_n_workers=0).items():
        cfg.set(k, v)
    stamps: list[float] = []
    start = [0.0]

    def on_step(step: int, loss: float) -> None:
        now = time.perf_counter()
        stamps.append(now - start[0])
        start[0] = now

    start[0] = time.perf_counter()
    run_training(cfg, train_data=str(data_dir), max_steps=steps, show_progress=False, on_step=on_step)
    return stamps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of the statistics")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of each loop")
    args = ap.parse_args()

    import torch

    from lora_compat.demo import make_synthetic_dataset

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_dataset(Path(tmp) / "data", n_images=8, repeats=1)
        plain, engine = [], []
        for r in range(args.rounds):  # alternate so that machine load drifts hit both equally
            plain += plain_loop(data, args.steps, seed=r)[args.warmup:]
            # the engine's first step also includes the per-run setup (model build, dataset scan)
            engine += engine_loop(data, Path(tmp) / f"out{r}", args.steps, seed=r)[args.warmup:]
    p, e = statistics.median(plain), statistics.median(engine)
    print(f"plain diffusers+PEFT loop: median {p * 1000:.1f} ms/step ({len(plain)} steps)")
    print(f"lora-compat engine:        median {e * 1000:.1f} ms/step ({len(engine)} steps)")
    print(f"ratio engine/plain: {e / p:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
