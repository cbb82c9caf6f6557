"""Smoke test of an installed lora-compat (a wheel in a fresh virtualenv, no torch): every light command once.

Run it with the installed environment's Python, from a working directory outside the checkout::

    /tmp/wheel-venv/bin/python /path/to/checkout/.ci/smoke.py --repo /path/to/checkout [--corpus-dir ../shared/corpus]

It checks that ``lora_compat`` is imported from the installation (not the checkout), that torch is not needed,
then runs ``show``, ``lint``, ``explain``, ``migrate``, ``plan``, ``convert``, ``inspect`` and ``check`` through the
installed ``lora-compat`` console script on the repository's fixtures (and on two corpus files when the corpus is
there), with the expected exit codes and output. Each command's time is printed. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (fixture config relative to the repository, what `show` must print)
CONFIG_FIXTURE = ("fixtures/lint/kohya_sdxl_bad.json", "kohya-gui")
# corpus files (relative to the corpus folder) and the dialect `show` must report
CORPUS_FILES = (("kohya_ss/SDXL - LoRA AI_characters standard v1.1.json", "kohya-gui"),
                ("easy_training_scripts/test__b77c7e59.toml", "derrian"))


def write_kohya_lora(path: Path) -> None:
    """A small SD1 kohya LoRA (two UNet attention modules and one text-encoder module, rank 2, float32)."""
    rank = 2
    modules = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (320, 320),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k": (320, 320),
               "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (768, 768)}
    header: dict[str, object] = {"__metadata__": {"ss_network_module": "networks.lora", "ss_network_dim": "2",
                                                  "ss_network_alpha": "1.0"}}
    blobs: list[bytes] = []
    offset = 0

    def add(name: str, shape: list[int], values: list[float]) -> None:
        nonlocal offset
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)

    for module, (d_in, d_out) in modules.items():
        add(f"{module}.lora_down.weight", [rank, d_in], [0.01 * (k % 7) for k in range(rank * d_in)])
        add(f"{module}.lora_up.weight", [d_out, rank], [0.02 * (k % 5) - 0.04 for k in range(d_out * rank)])
        add(f"{module}.alpha", [], [1.0])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class Smoke:
    def __init__(self, exe: list[str], cwd: Path) -> None:
        self.exe = exe
        self.cwd = cwd
        self.failures: list[str] = []
        self.total = 0.0

    def run(self, args: list[str], ok_codes: tuple[int, ...] = (0,), expect: str | None = None) -> str:
        start = time.perf_counter()
        proc = subprocess.run([*self.exe, *args], cwd=self.cwd, capture_output=True, text=True,
                              env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
        took = time.perf_counter() - start
        self.total += took
        out = proc.stdout + proc.stderr
        problem = None
        if proc.returncode not in ok_codes:
            problem = f"exit {proc.returncode} (expected {'/'.join(map(str, ok_codes))})"
        elif "Traceback (most recent call last)" in out:
            problem = "printed a traceback"
        elif expect is not None and expect not in out:
            problem = f"output lacks {expect!r}"
        shown = " ".join(a if " " not in a else repr(a) for a in args)
        print(f"  {took:6.2f} s  lora-compat {shown}  -> exit {proc.returncode}"
              + (f"  FAILED: {problem}" if problem else ""), flush=True)
        if problem:
            self.failures.append(f"lora-compat {shown}: {problem}\n{out[-3000:]}")
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="the checkout (for its fixtures)")
    parser.add_argument("--corpus-dir", type=Path, default=None, help="../shared/corpus, when present")
    parser.add_argument("--exe", default=None,
                        help="the lora-compat command (default: the console script beside this Python)")
    args = parser.parse_args()
    repo = args.repo.resolve()

    work = Path(tempfile.mkdtemp(prefix="lora-compat-smoke-"))
    try:
        # 1. the installed package, not the checkout, and no torch
        proc = subprocess.run([sys.executable, "-c", "import importlib.util, lora_compat; print(lora_compat.__file__);"
                               "print(importlib.util.find_spec('torch') is not None)"],
                              cwd=work, capture_output=True, text=True)
        if proc.returncode:
            print(f"FAILED: lora_compat cannot be imported by {sys.executable}:\n{proc.stderr}")
            return 1
        probe = proc.stdout.split("\n")
        where, has_torch = Path(probe[0]).resolve(), probe[1] == "True"
        print(f"lora_compat imported from {where.parent}; torch installed: {has_torch}")
        if repo in where.parents:
            print(f"FAILED: lora_compat is imported from the checkout {repo}, not from the installation")
            return 1

        exe = [args.exe] if args.exe else [str(Path(sys.executable).with_name("lora-compat"))]
        smoke = Smoke(exe, work)
        cfg_rel, dialect = CONFIG_FIXTURE
        cfg = work / Path(cfg_rel).name
        shutil.copy(repo / cfg_rel, cfg)

        version = smoke.run(["--version"])
        smoke.run(["--help"], expect="convert")
        smoke.run(["show", str(cfg)], expect=dialect)
        smoke.run(["show", str(cfg), "--format", "json"], expect='"dialect"')
        smoke.run(["lint", str(cfg)], ok_codes=(0, 1), expect="LC")
        smoke.run(["explain", "LC201"], expect="LC201")
        smoke.run(["explain", "network_alpha"], expect="network_alpha")
        smoke.run(["migrate", str(cfg), "--to", "native", "-o", str(work / "native.toml")])
        smoke.run(["migrate", str(cfg), "--to", "sd-scripts", "-o", str(work / "sd.toml")])
        smoke.run(["show", str(work / "native.toml")], expect="native")
        smoke.run(["plan", str(cfg)], expect="sdxl")

        lora = work / "tiny_sd1_kohya.safetensors"
        write_kohya_lora(lora)
        smoke.run(["inspect", str(lora)], expect="kohya")
        smoke.run(["check", str(lora), "--target", "diffusers"], expect="apply")
        smoke.run(["convert", str(lora), str(work / "peft"), "--to", "peft"])
        smoke.run(["inspect", str(work / "peft"), "--arch", "sd1"], expect="peft")
        smoke.run(["convert", str(work / "peft"), str(work / "back.safetensors"), "--to", "kohya", "--arch", "sd1"])
        smoke.run(["convert", str(lora), str(work / "diffusers.safetensors"), "--to", "diffusers"])

        if args.corpus_dir and args.corpus_dir.is_dir():
            for rel, corpus_dialect in CORPUS_FILES:
                path = args.corpus_dir / rel
                if not path.is_file():
                    smoke.failures.append(f"corpus file {path} not found")
                    continue
                smoke.run(["show", str(path)], expect=corpus_dialect)
                smoke.run(["lint", str(path)], ok_codes=(0, 1))
                smoke.run(["migrate", str(path), "--to", "native", "-o", str(work / f"corpus_{path.stem}.toml")])
                smoke.run(["plan", str(path)])
        else:
            print("  (no corpus folder: corpus files skipped)")

        print(f"smoke test: {len(smoke.failures)} failed, {smoke.total:.1f} s in commands "
              f"({version.strip() or 'no version printed'})")
        for failure in smoke.failures:
            print(f"\n--- {failure}")
        return 1 if smoke.failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
