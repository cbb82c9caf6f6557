"""Step time of the lora-compat engine: vs a plain diffusers + PEFT loop (CPU, tiny), and at real size vs sd-scripts.

Default mode (the CPU ratio): tiny SD1 topology, CPU, fp32, batch 2 at 64x64, LoRA rank 4 / alpha 4 on sd-scripts'
UNet + text-encoder module set, AdamW, constant LR, max_grad_norm 1.0, images read from disk and VAE-encoded every
step in both loops. Goal: ratio (engine / plain) <= 1.05.

    python benchmarks/bench_train.py [--steps 30] [--threads 1]

``--real-size sd15|sdxl``: SD1.5 at 512 px or SDXL at 1024 px with random weights built from the packaged real-size
configs (``lora_compat/data/models``; nothing is downloaded), a synthetic kohya image folder, and ONE sd-scripts
``--config_file`` TOML (``bench.toml``) that both trainers read unchanged: rank 16 LoRA, AdamW, constant LR,
batch 1, SDPA, gradient checkpointing, cached latents; bf16 on a GPU (fp32 on a CPU); SDXL trains the UNet only
with cached text-encoder outputs (the usual 24 GiB setup). Each trainer runs in its own process; the report gives
it/s over the steps after ``--warmup`` and the peak allocated GPU memory (``torch.cuda.max_memory_allocated``; on a
CPU the peak RSS instead). sd-scripts runs when ``--sd-scripts DIR`` or the ``SD_SCRIPTS`` environment variable
names a checkout whose requirements are installed in this Python (its tokenizers are served offline from
``tokenizer_cache_dir``).

    # on a GPU machine, with an sd-scripts checkout (pip install -r $SD_SCRIPTS/requirements.txt first)
    SD_SCRIPTS=~/sd-scripts python benchmarks/bench_train.py --real-size sd15 --steps 30 --warmup 5
    SD_SCRIPTS=~/sd-scripts python benchmarks/bench_train.py --real-size sdxl --steps 30 --warmup 5
    # CPU smoke run: the real-size models at 128 px, two timed steps (minutes; --resolution changes the size)
    python benchmarks/bench_train.py --real-size sd15 --smoke

``--model-cache DIR`` keeps the generated model folder between runs (SDXL: ~7 GB in fp16).
"""

from __future__ import annotations

import argparse
import itertools
import os
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
    for k, v in {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(out), "resolution": "64",
                     "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-4, "optimizer_type": "AdamW",
                     "lr_scheduler": "constant", "train_batch_size": 2, "caption_extension": ".txt", "seed": seed,
                     "max_data_loader_n_workers": 0}.items():
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
    ap.add_argument("--steps", type=int, default=None, help="steps per run (30; --real-size --smoke: 3)")
    ap.add_argument("--warmup", type=int, default=None, help="steps left out of the statistics (5; smoke: 1)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (tiny mode)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of each loop (tiny mode)")
    ap.add_argument("--real-size", choices=sorted(REAL_SIZES), default=None,
                    help="real-size SD1.5 (512 px) or SDXL (1024 px) with random weights, ours vs sd-scripts")
    ap.add_argument("--smoke", action="store_true", help="--real-size: a few steps, to check it runs (CPU)")
    ap.add_argument("--resolution", type=int, default=None, help="--real-size: image size (default: the family's)")
    ap.add_argument("--images", type=int, default=None, help="--real-size: images in the folder (4; smoke: 2)")
    ap.add_argument("--sd-scripts", default=os.environ.get("SD_SCRIPTS"),
                    help="sd-scripts checkout to compare with (default: $SD_SCRIPTS)")
    ap.add_argument("--model-cache", default=None, help="--real-size: keep the random-weight model folder here")
    args = ap.parse_args()
    if args.real_size:
        real_size(args)
        return
    steps = args.steps or 30
    warmup = 5 if args.warmup is None else args.warmup

    import torch

    from lora_compat.demo import make_synthetic_dataset

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_dataset(Path(tmp) / "data", n_images=8, repeats=1)
        plain, engine = [], []
        for r in range(args.rounds):  # alternate so that machine load drifts hit both equally
            plain += plain_loop(data, steps, seed=r)[warmup:]
            # the engine's first step also includes the per-run setup (model build, dataset scan)
            engine += engine_loop(data, Path(tmp) / f"out{r}", steps, seed=r)[warmup:]
    p, e = statistics.median(plain), statistics.median(engine)
    print(f"plain diffusers+PEFT loop: median {p * 1000:.1f} ms/step ({len(plain)} steps)")
    print(f"lora-compat engine:        median {e * 1000:.1f} ms/step ({len(engine)} steps)")
    print(f"ratio engine/plain: {e / p:.3f} (goal <= 1.05)")


# ================================================================================================ real size
#: family -> (packaged config folder, sd-scripts script, default resolution, extra TOML settings)
REAL_SIZES: dict[str, tuple[str, str, int, dict]] = {
    "sd15": ("sd1", "train_network", 512, {}),
    "sdxl": ("sdxl", "sdxl_train_network", 1024, {"network_train_unet_only": True,
                                                   "cache_text_encoder_outputs": True}),
}
#: Where sd-scripts' tokenizer strategies look for their tokenizers under tokenizer_cache_dir.
SD_SCRIPTS_TOKENIZERS = {"sd15": ["openai_clip-vit-large-patch14"],
                         "sdxl": ["openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"]}


def build_random_model(family: str, folder: Path) -> Path:
    """A diffusers pipeline folder with random weights from the packaged real-size configs (fp16 safetensors) and the
    packaged tiny CLIP tokenizer (token ids only index the real-size embedding tables)."""
    import gc
    import shutil

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from lora_compat.resources import DATA_DIR

    src = Path(DATA_DIR) / "models" / REAL_SIZES[family][0]
    if (folder / "model_index.json").is_file():
        return folder
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    tok = Path(DATA_DIR) / "models" / "tiny-clip-tokenizer"
    torch.manual_seed(0)
    parts: list[tuple[str, object]] = [("unet", UNet2DConditionModel), ("vae", AutoencoderKL),
                                       ("text_encoder", CLIPTextModel)]
    if family == "sdxl":
        parts.append(("text_encoder_2", CLIPTextModelWithProjection))
    for name, cls in parts:
        print(f"  building random {name} ...", flush=True)
        cfg_path = tmp / name / "config.json"
        if name.startswith("text_encoder"):
            model = cls(CLIPTextConfig.from_json_file(cfg_path))  # type: ignore[operator]
        else:
            model = cls.from_config(cls.load_config(tmp / name))  # type: ignore[attr-defined]
        model.to(torch.float16).save_pretrained(tmp / name, safe_serialization=True)
        del model
        gc.collect()
    for name in ("tokenizer", "tokenizer_2") if family == "sdxl" else ("tokenizer",):
        shutil.copytree(tok, tmp / name, dirs_exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def write_images(folder: Path, n: int, size: int) -> Path:
    """A kohya folder ``1_bench`` of ``n`` smooth random images with captions."""
    import numpy as np
    from PIL import Image

    sub = folder / "1_bench"
    sub.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a, b, c = rng.uniform(0, 6, 3)
        img = np.stack([np.sin(a * xx + b * yy + k + c) for k in range(3)], -1) * 110 + 128
        Image.fromarray(img.clip(0, 255).astype("uint8")).save(sub / f"{i:03d}.png")
        (sub / f"{i:03d}.txt").write_text(f"bench, a smooth pattern number {i}", encoding="utf-8")
    return folder


def bench_toml(family: str, *, model: Path, data: Path, tokenizers: Path, steps: int, resolution: int,
               gpu: bool) -> str:
    """The one sd-scripts --config_file TOML both trainers read (output_dir is relative: each runs in its own
    folder)."""
    import tomli_w

    cfg = {
        "pretrained_model_name_or_path": str(model), "train_data_dir": str(data), "output_dir": "out",
        "output_name": "bench", "save_model_as": "safetensors", "caption_extension": ".txt",
        "resolution": f"{resolution},{resolution}", "train_batch_size": 1, "max_train_steps": steps,
        "network_module": "networks.lora", "network_dim": 16, "network_alpha": 16.0, "learning_rate": 1e-4,
        "optimizer_type": "AdamW", "lr_scheduler": "constant", "mixed_precision": "bf16" if gpu else "no",
        "sdpa": True, "gradient_checkpointing": True, "cache_latents": True, "seed": 42,
        "max_data_loader_n_workers": 0, "tokenizer_cache_dir": str(tokenizers), **REAL_SIZES[family][3],
    }
    return tomli_w.dumps(cfg)


OURS = """
import json, resource, sys, time
import torch
from lora_compat.config.load import load_config
from lora_compat.train.engine import run_training
stamps = []
run_training(load_config(sys.argv[1]), show_progress=False, on_step=lambda s, l: stamps.append(time.perf_counter()))
cuda = torch.cuda.is_available()
print("BENCH " + json.dumps({"stamps": stamps, "peak_alloc": torch.cuda.max_memory_allocated() if cuda else None,
                             "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

SD_SCRIPTS = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from library import train_util
stamps = []
_add = train_util.LossRecorder.add
def add(self, *, epoch, step, loss):  # called once per training micro-step, after the optimizer step
    stamps.append(time.perf_counter())
    return _add(self, epoch=epoch, step=step, loss=loss)
train_util.LossRecorder.add = add
script = __import__(sys.argv[2])
parser = script.setup_parser()
args = parser.parse_args(["--config_file", sys.argv[3]])
train_util.verify_command_line_training_args(args)
args = train_util.read_config_from_file(args, parser)
trainer = script.SdxlNetworkTrainer() if sys.argv[2].startswith("sdxl") else script.NetworkTrainer()
trainer.train(args)
cuda = torch.cuda.is_available()
print("BENCH " + json.dumps({"stamps": stamps, "peak_alloc": torch.cuda.max_memory_allocated() if cuda else None,
                             "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def run_trainer(name: str, argv: list[str], cwd: Path, warmup: int) -> dict | None:
    """Run one trainer in its own process; its step times and peak memory (None when it failed)."""
    import json
    import subprocess
    import sys

    cwd.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", *argv], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        print(f"{name}: failed (exit {proc.returncode}); last output:\n{(proc.stdout + proc.stderr)[-3000:]}")
        return None
    facts = json.loads(line[len("BENCH "):])
    st = facts["stamps"]
    durations = [b - a for a, b in itertools.pairwise(st)][max(0, warmup - 1):]
    facts["its"] = len(durations) / sum(durations) if durations else float("nan")
    facts["timed"] = len(durations)
    facts["wall"] = wall
    return facts


def real_size(args: argparse.Namespace) -> None:
    import shutil

    import torch

    family = args.real_size
    steps = args.steps or (3 if args.smoke else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 5)
    if steps <= warmup:
        raise SystemExit("--steps must be larger than --warmup")
    gpu = torch.cuda.is_available()
    # smoke: the real-size models at 128 px (a 512 px SD1.5 step takes ~15 min on two busy CPU cores)
    resolution = args.resolution or (128 if args.smoke else REAL_SIZES[family][2])
    n_images = args.images or (2 if args.smoke else 4)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        cache = Path(args.model_cache) if args.model_cache else tmp
        cache.mkdir(parents=True, exist_ok=True)
        print(f"{family}: random-weight model in {cache} ...", flush=True)
        model = build_random_model(family, cache / f"random-{family}")
        data = write_images(tmp / "data", n_images, resolution)
        tokenizers = tmp / "tokenizers"
        for name in SD_SCRIPTS_TOKENIZERS[family]:
            shutil.copytree(model / "tokenizer", tokenizers / name)
        toml_path = tmp / "bench.toml"
        toml_path.write_text(bench_toml(family, model=model, data=data, tokenizers=tokenizers, steps=steps,
                                        resolution=resolution, gpu=gpu), encoding="utf-8")
        print(f"config ({toml_path.name}, read unchanged by both trainers):\n{toml_path.read_text()}")
        results = {"lora-compat": run_trainer("lora-compat", [OURS, str(toml_path)], tmp / "ours", warmup)}
        sd = args.sd_scripts
        if sd and (Path(sd) / f"{REAL_SIZES[family][1]}.py").is_file():
            results["sd-scripts"] = run_trainer("sd-scripts", [SD_SCRIPTS, str(Path(sd).resolve()),
                                                               REAL_SIZES[family][1], str(toml_path)],
                                                tmp / "sd-scripts", warmup)
        elif sd:
            print(f"sd-scripts: {sd} has no {REAL_SIZES[family][1]}.py; not run")
        else:
            print("sd-scripts: not run (set SD_SCRIPTS or --sd-scripts to a checkout to compare)")
    device = torch.cuda.get_device_name(0) if gpu else f"CPU ({os.cpu_count()} cores)"
    print(f"\n{family} at {resolution}px, batch 1, {steps} steps ({warmup} warm-up), "
          f"{'bf16' if gpu else 'fp32'}, {device}")
    mem = "peak allocated" if gpu else "peak RSS"
    for name, r in results.items():
        if r is None:
            print(f"  {name:12s} failed")
            continue
        peak = r["peak_alloc"] if gpu else r["peak_rss"]
        print(f"  {name:12s} {r['its']:.3f} it/s over {r['timed']} steps, {mem} {peak / 2**30:.2f} GiB, "
              f"wall {r['wall']:.0f} s")
    ours, theirs = results.get("lora-compat"), results.get("sd-scripts")
    if ours and theirs:
        print(f"  ratio it/s ours/sd-scripts {ours['its'] / theirs['its']:.3f} (goal >= 1), memory "
              f"{(ours['peak_alloc' if gpu else 'peak_rss']) / theirs['peak_alloc' if gpu else 'peak_rss']:.3f}"
              " (goal <= 1)")


if __name__ == "__main__":
    main()
