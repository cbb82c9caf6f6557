"""Benchmark ``lora-compat convert`` against ``cp`` and against the diffusers route.

Builds a full-size SD1.5 rank-128 kohya LoRA (sd-scripts' 792 tensors: UNet transformer blocks + text encoder,
fp16) and an SDXL rank-32 one, then times, each in a fresh child process (best of N runs, warm page cache):

* ``cp SRC DST``
* ``lora-compat convert SRC DST --to peft`` and ``--to diffusers`` (the whole CLI: interpreter start included)
* the diffusers route: ``safetensors.torch.load_file`` + diffusers' kohya -> diffusers conversion + ``save_file``

``convert()`` in-process for both targets, the start-up floor of any Click CLI (``python -c pass``,
``python -c 'import click'``), an ~870 MiB SDXL rank-128 file for time and peak RSS (``--no-large`` skips it),
and the peak RSS of each child (``resource.getrusage(RUSAGE_CHILDREN)`` read around one run per child).
Children run with compiled byte code (``PYTHONPYCACHEPREFIX`` in the work folder), as an installed package would.
FLUX.1: a full-size rank-16 kohya LoRA (sd-scripts' 304 transformer modules + 72 CLIP-L, bf16, alpha 8) converted
to diffusers and PEFT (the fused qkv / linear1 split with the shared down) and back to kohya (re-fused from the
identical downs: the original tensors byte for byte), against ``cp`` and against the diffusers route
(``load_file`` + ``_convert_kohya_flux_lora_to_diffusers`` + ``save_file``, which bakes alpha and cannot go back);
peak RSS of each, and whether torch was imported (it must not be). ``--flux-only`` runs just this part.
SD3.5 large: the same for a full-size rank-16 kohya LoRA (sd-scripts' 377 MMDiT modules + CLIP-L + CLIP-G, bf16;
no diffusers route exists for SD3 kohya files); ``--sd3-only`` runs just this part.
Usage: ``python benchmarks/bench_convert.py [--runs 3] [--workdir DIR] [--keep] [--no-large] [--flux-only]
[--sd3-only]``. Needs
numpy; the diffusers route needs torch + diffusers (skipped when missing). Goals: convert <= 1.5x cp, peak RSS <= 64
MiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIFFUSERS_ROUTE = r"""
import sys
from safetensors.torch import load_file, save_file
from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_lora_to_diffusers
sd = load_file(sys.argv[1])
out, alphas = _convert_non_diffusers_lora_to_diffusers(sd)
save_file({k: v.contiguous() for k, v in out.items()}, sys.argv[2], metadata={"format": "pt"})
"""

FLUX_DIFFUSERS_ROUTE = r"""
import sys
from safetensors.torch import load_file, save_file
from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers
sd = load_file(sys.argv[1])
out = _convert_kohya_flux_lora_to_diffusers(sd)
save_file({k: v.contiguous().clone() for k, v in out.items()}, sys.argv[2], metadata={"format": "pt"})
"""

NO_TORCH = r"""
import sys
from lora_compat.weights.convert import ConvertOptions, convert
convert(sys.argv[1], sys.argv[2], ConvertOptions(to=sys.argv[3], force=True))
print("torch imported" if "torch" in sys.modules else "no torch")
"""

IN_PROCESS = r"""
import sys, time
from lora_compat.weights.convert import ConvertOptions, convert
t = time.perf_counter()
convert(sys.argv[1], sys.argv[2], ConvertOptions(to=sys.argv[3], force=True))
print(time.perf_counter() - t)
"""


CHILD_ENV = dict(os.environ)


def run_child(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of this child, stdout) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=CHILD_ENV)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr.strip()[-500:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the max over all waited-for children: a fresh measurement needs the child to
    # exceed every earlier one, so each measured command runs in its own `python -c` wrapper below.
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(before, after) / 1024, proc.stdout


def child_rss(argv: list[str]) -> float:
    """Peak RSS (MiB) of ``argv`` measured by a wrapper process that runs it as its only child."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True,
                         env=CHILD_ENV)
    return int(out.stdout.strip()) / 1024


def best(argv: list[str], runs: int, cleanup) -> float:
    times = []
    for _ in range(runs):
        cleanup()
        times.append(run_child(argv)[0])
    return min(times)


def bench_file(src: Path, work: Path, runs: int) -> list[str]:
    lines = []
    size = src.stat().st_size / 2**20
    dst_cp, dst_p = work / "cp.safetensors", work / "peft"
    dst_d, dst_ref = work / "d.safetensors", work / "ref.safetensors"

    def rm(*paths):
        def f():
            for p in paths:
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        return f

    cli = [sys.executable, "-m", "lora_compat"]
    run_child([*cli, "--help"])  # warm-up: compiles the byte code once, like an installed package has it
    t_cp = best(["cp", str(src), str(dst_cp)], runs, rm(dst_cp))
    t_peft = best([*cli, "convert", str(src), str(dst_p), "--to", "peft"], runs, rm(dst_p))
    t_diff = best([*cli, "convert", str(src), str(dst_d), "--to", "diffusers"], runs, rm(dst_d))
    inproc = {}
    for to, dst in (("peft", dst_p), ("diffusers", dst_d)):
        times = []
        for _ in range(runs):
            rm(dst)()
            times.append(float(run_child([sys.executable, "-c", IN_PROCESS, str(src), str(dst), to])[2]))
        inproc[to] = min(times)
    # The floor of any Python CLI built on Click, measured in the same run: interpreter start (site included)
    # and `import click`. The whole-CLI ratio cannot go below these.
    t_py = best([sys.executable, "-c", "pass"], runs, lambda: None)
    t_click = best([sys.executable, "-c", "import click"], runs, lambda: None)
    rm(dst_p)()
    rss_ours = child_rss([*cli, "convert", str(src), str(dst_p), "--to", "peft"])
    rss_cp = child_rss(["cp", str(src), str(dst_cp) + ".2"])
    lines.append(f"{src.name}: {size:.1f} MiB")
    lines.append(f"  cp                                 {t_cp * 1000:8.1f} ms")
    for to in ("peft", "diffusers"):
        lines.append(f"  convert() --to {to:<9} in-process {inproc[to] * 1000:8.1f} ms  ({inproc[to] / t_cp:.2f}x cp)")
    lines.append(f"  lora-compat convert --to peft      {t_peft * 1000:8.1f} ms  ({t_peft / t_cp:.2f}x cp, whole CLI)")
    lines.append(f"  lora-compat convert --to diffusers {t_diff * 1000:8.1f} ms  ({t_diff / t_cp:.2f}x cp, whole CLI)")
    lines.append(f"  floor: python -c pass {t_py * 1000:.1f} ms ({t_py / t_cp:.2f}x cp), "
                 f"python -c 'import click' {t_click * 1000:.1f} ms ({t_click / t_cp:.2f}x cp)")
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401

        t_ref = best([sys.executable, "-c", DIFFUSERS_ROUTE, str(src), str(dst_ref)], runs, rm(dst_ref))
        rss_ref = child_rss([sys.executable, "-c", DIFFUSERS_ROUTE, str(src), str(dst_ref)])
        lines.append(f"  diffusers route (load+convert+save){t_ref * 1000:8.1f} ms  (our CLI is {t_ref / t_diff:.1f}x "
                     f"faster); peak RSS {rss_ref:.0f} MiB")
    except ImportError:
        lines.append("  diffusers route: skipped (torch/diffusers not installed)")
    lines.append(f"  peak RSS: lora-compat {rss_ours:.1f} MiB, cp {rss_cp:.1f} MiB")
    return lines


def bench_big(src: Path, work: Path, runs: int) -> list[str]:
    """A large file: time and peak RSS only (RSS must not grow with the file: nothing is held in memory)."""
    dst_cp, dst_p = work / "big_cp.safetensors", work / "big_peft"

    def rm():
        shutil.rmtree(dst_p, ignore_errors=True)
        dst_cp.unlink(missing_ok=True)

    cli = [sys.executable, "-m", "lora_compat", "convert", str(src), str(dst_p), "--to", "peft"]
    t_cp = best(["cp", str(src), str(dst_cp)], runs, rm)
    t_ours = best(cli, runs, rm)
    rm()
    rss = child_rss(cli)
    rm()
    return [f"{src.name}: {src.stat().st_size / 2**20:.1f} MiB (large-file check)",
            f"  cp {t_cp * 1000:.1f} ms; lora-compat convert --to peft {t_ours * 1000:.1f} ms "
            f"({t_ours / t_cp:.2f}x cp, whole CLI); peak RSS {rss:.1f} MiB"]


def bench_flux(work: Path, runs: int) -> list[str]:
    """FLUX.1 rank 16 (304 modules + CLIP-L): kohya -> diffusers / PEFT -> kohya, vs cp and the diffusers route."""
    from lora_compat.arch import flux as fa
    from lora_compat.weights.flux_synth import synth_flux_kohya

    src = synth_flux_kohya(work / "flux_r16.safetensors", fa.FluxNetworkSpec(network_dim=16, network_alpha=8.0),
                           dtype="BF16")
    return bench_fused(work, runs, src, "flux", "FLUX.1 rank 16, 304 + 72 CLIP-L modules, bf16", FLUX_DIFFUSERS_ROUTE)


def bench_sd3(work: Path, runs: int) -> list[str]:
    """SD3.5 large rank 16 (sd-scripts' 377 MMDiT modules + CLIP-L + CLIP-G): kohya -> diffusers / PEFT -> kohya.
    diffusers has no kohya-SD3 converter, so there is no diffusers route to compare with."""
    from lora_compat.arch import sd3
    from lora_compat.weights.sd3_synth import synth_sd3_kohya

    src = synth_sd3_kohya(work / "sd3_r16.safetensors", sd3.sd3_table("sd3.5-large"), rank=16, alpha=8.0,
                          dtype="BF16")
    try:
        return bench_fused(work, runs, src, "sd3", "SD3.5 large rank 16, 377 + 72 CLIP-L + 192 CLIP-G modules, bf16",
                           None)
    finally:
        src.unlink()


def bench_fused(work: Path, runs: int, src: Path, tag: str, label: str, route: str | None) -> list[str]:
    """A fused-module family's kohya file -> diffusers / PEFT -> kohya, vs cp (and ``route``, the diffusers way)."""
    from lora_compat.weights.safetensors_io import read_header

    os.sync()
    size = src.stat().st_size / 2**20
    paths = {"cp": work / f"{tag}_cp.safetensors", "diffusers": work / f"{tag}_d.safetensors",
             "peft": work / f"{tag}_p", "back_d": work / f"{tag}_back_d.safetensors",
             "back_p": work / f"{tag}_back_p.safetensors", "ref": work / f"{tag}_ref.safetensors"}

    def rm(*keys):
        def f():
            for k in keys:
                p = paths[k]
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        return f

    cli = [sys.executable, "-m", "lora_compat", "convert"]
    run_child([sys.executable, "-m", "lora_compat", "--help"])
    t_cp = best(["cp", str(src), str(paths["cp"])], runs, rm("cp"))
    t = {}
    rss = {}
    for to in ("diffusers", "peft"):
        there = [*cli, str(src), str(paths[to]), "--to", to]
        back = "back_d" if to == "diffusers" else "back_p"
        home = [*cli, str(paths[to]), str(paths[back]), "--to", "kohya"]
        t[to] = best(there, runs, rm(to))
        t[back] = best(home, runs, rm(back))
        rm(back)()
        rss[back] = child_rss(home)
        rm(to)()
        rss[to] = child_rss(there)
    inproc = {}
    for to, back in (("diffusers", "back_d"), ("peft", "back_p")):
        times, times_back = [], []
        for _ in range(runs):
            rm(to)()
            times.append(float(run_child([sys.executable, "-c", IN_PROCESS, str(src), str(paths[to]), to])[2]))
            rm(back)()
            times_back.append(float(run_child([sys.executable, "-c", IN_PROCESS, str(paths[to]), str(paths[back]),
                                               "kohya"])[2]))
        inproc[to], inproc[back] = min(times), min(times_back)
    t_py = best([sys.executable, "-c", "pass"], runs, lambda: None)
    t_click = best([sys.executable, "-c", "import click"], runs, lambda: None)
    a = read_header(src)
    identical = all(
        (lambda b: set(b.tensors) == set(a.tensors) and all(a.read_bytes(k) == b.read_bytes(k) for k in a.tensors))(
            read_header(paths[k])) for k in ("back_d", "back_p"))
    torch_note = run_child([sys.executable, "-c", NO_TORCH, str(src), str(paths["diffusers"]), "diffusers"])[2].strip()
    lines = [f"{src.name}: {size:.1f} MiB ({label})",
             f"  cp                                       {t_cp * 1000:8.1f} ms"]
    for k, label in (("diffusers", "kohya -> diffusers"), ("back_d", "diffusers -> kohya"),
                     ("peft", "kohya -> peft"), ("back_p", "peft -> kohya")):
        lines.append(f"  lora-compat convert {label:<20} {t[k] * 1000:8.1f} ms  ({t[k] / t_cp:.2f}x cp, whole CLI); "
                     f"peak RSS {rss[k]:.1f} MiB; convert() in-process {inproc[k] * 1000:.1f} ms "
                     f"({inproc[k] / t_cp:.2f}x cp)")
    lines.append(f"  floor: python -c pass {t_py * 1000:.1f} ms, python -c 'import click' {t_click * 1000:.1f} ms")
    lines.append(f"  round trips byte-identical: {identical}; {torch_note}")
    try:
        if route is None:
            lines.append("  diffusers route: none (diffusers has no converter for this family's kohya files)")
            return lines
        import diffusers  # noqa: F401
        import torch  # noqa: F401

        t_ref = best([sys.executable, "-c", route, str(src), str(paths["ref"])], runs, rm("ref"))
        rm("ref")()
        rss_ref = child_rss([sys.executable, "-c", route, str(src), str(paths["ref"])])
        lines.append(f"  diffusers route kohya -> diffusers       {t_ref * 1000:8.1f} ms  (our CLI is "
                     f"{t_ref / t['diffusers']:.1f}x faster); peak RSS {rss_ref:.0f} MiB; no way back")
    except ImportError:
        lines.append("  diffusers route: skipped (torch/diffusers not installed)")
    finally:
        rm(*paths)()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-large", action="store_true", help="skip the ~870 MiB SDXL rank-128 file")
    ap.add_argument("--flux-only", action="store_true", help="run only the FLUX.1 part")
    ap.add_argument("--sd3-only", action="store_true", help="run only the SD3.5 large part")
    args = ap.parse_args()
    from lora_compat.weights.synth import synth_kohya

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-convert-"))
    work.mkdir(parents=True, exist_ok=True)
    # An installed package has compiled byte code; measure that, not PYTHONDONTWRITEBYTECODE's recompiles.
    CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    try:
        if args.flux_only:
            print("\n".join(bench_flux(work, args.runs)))
            return
        if args.sd3_only:
            print("\n".join(bench_sd3(work, args.runs)))
            return
        sd1 = synth_kohya(work / "sd15_r128.safetensors", "sd1", rank=128, alpha=64.0, dtype="F16")
        sdxl = synth_kohya(work / "sdxl_r32.safetensors", "sdxl", rank=32, alpha=16.0, dtype="F16")
        os.sync()
        out = []
        for src in (sd1, sdxl):
            out += bench_file(src, work, args.runs)
        if not args.no_large:
            big = synth_kohya(work / "sdxl_r128.safetensors", "sdxl", rank=128, alpha=64.0, dtype="F16")
            os.sync()
            out += bench_big(big, work, args.runs)
        out += bench_flux(work, args.runs)
        out += bench_sd3(work, args.runs)
        print("\n".join(out))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
