"""Step time of the lora-compat engine vs a plain diffusers + PEFT flow-matching loop, tiny FLUX.1 dev (CPU).

Both at identical settings: fp32, batch 2 at 64x64 (16 image tokens), 16 T5 tokens, LoRA rank 4 / alpha 4 on
sd-scripts' FLUX DiT module set (networks.lora_flux, network_train_unet_only), AdamW lr 1e-4, constant LR,
max_grad_norm 1.0, shift timestep sampling (discrete_flow_shift 3.1582), raw prediction, guidance 1.0; images read
from disk, AE-encoded and captions encoded by CLIP-L + T5 every step in both loops. The plain loop is what one
would write by hand with diffusers + PEFT: one LoRA per diffusers module (its q/k/v have separate downs; the engine
ties them into sd-scripts' one fused down, which is slightly less work). Goal: ratio (engine / plain) <= 1.05.

    python benchmarks/bench_train_flux.py [--steps 30] [--threads 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

SHIFT = 3.1582
T5_TOKENS = 16


def _dit_paths(transformer) -> list[str]:  # type: ignore[no-untyped-def]
    """Every diffusers module path of sd-scripts' default FLUX DiT module set that this model has."""
    from lora_compat.arch.flux import FluxNetworkSpec, sd_scripts_flux_network

    net = sd_scripts_flux_network(FluxNetworkSpec(variant="flux1-dev", network_dim=4, network_alpha=4,
                                                  network_train_unet_only=True))
    have = {n for n, _ in transformer.named_modules()}
    return [p.diffusers_path for m in net.modules for p in m.module.parts if p.diffusers_path in have]


def plain_loop(data_dir: Path, steps: int, seed: int) -> list[float]:
    """A minimal hand-written diffusers + PEFT FLUX.1 trainer; returns per-step wall times."""
    import numpy as np
    import torch
    from diffusers import FluxPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from PIL import Image

    from lora_compat.train.flux.tiny import tiny_flux_components

    torch.manual_seed(seed)
    c = tiny_flux_components("dev", seed)
    dit, vae, clip, t5 = c.transformer, c.vae, c.clip_l, c.t5xxl
    for m in (dit, vae, clip, t5):
        m.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=_dit_paths(dit)), dit)
    params = [p for n, p in dit.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-4)
    dit.train()
    images = sorted(next(data_dir.iterdir()).glob("*.png"))
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        batch = [images[(2 * step + k) % len(images)] for k in range(2)]
        x = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 127.5 - 1)
                         .permute(2, 0, 1) for p in batch])
        caps = [p.with_suffix(".txt").read_text() for p in batch]
        with torch.no_grad():
            lat = (vae.encode(x).latent_dist.sample() - vae.config.shift_factor) * vae.config.scaling_factor
            ids = c.clip_tokenizer(caps, padding="max_length", max_length=77, truncation=True,
                                   return_tensors="pt").input_ids
            pooled = clip(ids).pooler_output
            t5_ids = c.t5_tokenizer(caps, padding="max_length", max_length=T5_TOKENS, truncation=True,
                                    return_tensors="pt").input_ids
            t5_out = t5(t5_ids)[0]
        b, ch, h, w = lat.shape
        noise = torch.randn_like(lat)
        sig = torch.sigmoid(torch.randn(b))
        sig = SHIFT * sig / (1 + (SHIFT - 1) * sig)
        noisy = (1 - sig.view(-1, 1, 1, 1)) * lat + sig.view(-1, 1, 1, 1) * noise
        packed = FluxPipeline._pack_latents(noisy, b, ch, h, w)
        img_ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, lat.device, lat.dtype)
        pred = dit(hidden_states=packed, timestep=sig, guidance=torch.ones(b), pooled_projections=pooled,
                   encoder_hidden_states=t5_out, txt_ids=torch.zeros(T5_TOKENS, 3), img_ids=img_ids,
                   return_dict=False)[0]
        pred = FluxPipeline._unpack_latents(pred, h * 8, w * 8, 8)
        loss = torch.nn.functional.mse_loss(pred.float(), (noise - lat).float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times


def engine_loop(data_dir: Path, out: Path, steps: int, seed: int) -> list[float]:
    """The lora-compat engine on the same settings (a flux_train_network.py command line); per-step wall times."""
    from lora_compat.config.load import load_config
    from lora_compat.train.engine import run_training

    cmd = out.parent / f"{out.name}.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path tiny:flux1-dev "
                   "--network_module networks.lora_flux --network_dim 4 --network_alpha 4 --network_train_unet_only "
                   "--learning_rate 1e-4 --optimizer_type AdamW --lr_scheduler constant --train_batch_size 2 "
                   f"--resolution 64 --t5xxl_max_token_length {T5_TOKENS} --timestep_sampling shift "
                   f"--discrete_flow_shift {SHIFT} --model_prediction_type raw --guidance_scale 1.0 "
                   f"--max_data_loader_n_workers 0 --seed {seed} --output_dir {out}\n")
    stamps: list[float] = []
    start = [0.0]

    def on_step(step: int, loss: float) -> None:
        now = time.perf_counter()
        stamps.append(now - start[0])
        start[0] = now

    start[0] = time.perf_counter()
    run_training(load_config(str(cmd)), train_data=str(data_dir), output_dir=str(out), max_steps=steps,
                 show_progress=False, on_step=on_step)
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
    print(f"plain diffusers+PEFT FLUX loop: median {p * 1000:.1f} ms/step ({len(plain)} steps)")
    print(f"lora-compat engine (FLUX):      median {e * 1000:.1f} ms/step ({len(engine)} steps)")
    print(f"ratio engine/plain: {e / p:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
