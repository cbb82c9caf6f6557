"""Wall time of ``lora-compat show``: one config, and the whole corpus (one process looping over files, and
one subprocess per file), with the ratio to a bare ``python -c pass``. Target: one config < 0.3 s.

    python benchmarks/bench_load.py [--corpus ../shared/corpus] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
ONE = ROOT / "fixtures" / "spine" / "cmdline" / "train_sdxl.bat"


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False)
    return time.perf_counter() - t


def best(cmd: list[str], repeat: int) -> float:
    return min(run(cmd) for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    cli = [py, "-m", "lora_compat"]

    bare = best([py, "-c", "pass"], args.repeat)
    print(f"python -c pass                      {bare * 1000:8.1f} ms")
    for fmt in ("json", "text"):
        one = best([*cli, "show", str(ONE), "--format", fmt], args.repeat)
        print(f"show one config --format {fmt:<5}      {one * 1000:8.1f} ms  ({one / bare:.1f}x bare python)"
              f"{'  OK < 300 ms' if one < 0.3 else '  SLOW (> 300 ms)'}")
    help_t = best([*cli, "--help"], args.repeat)
    print(f"lora-compat --help                  {help_t * 1000:8.1f} ms  ({help_t / bare:.1f}x)")

    files = sorted(p for p in args.corpus.rglob("*") if p.is_file() and p.suffix in (".json", ".toml"))
    if not files:
        print(f"(no corpus at {args.corpus}; corpus timings skipped)")
        return
    # one process looping over every file (in-process CLI, output discarded)
    from lora_compat.cli import main as cli_main

    t = time.perf_counter()
    codes = []
    for f in files:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                cli_main(["show", str(f), "--format", "json"])
                codes.append(0)
            except SystemExit as exc:
                codes.append(exc.code)
    loop = time.perf_counter() - t
    print(f"corpus, one process ({len(files)} files)    {loop * 1000:8.1f} ms  "
          f"({loop / len(files) * 1000:.2f} ms/file; exit 0: {codes.count(0)}, exit 2: {codes.count(2)})")
    # one subprocess per file
    times = [run([*cli, "show", str(f), "--format", "json"]) for f in files]
    total = sum(times)
    print(f"corpus, one subprocess per file     {total * 1000:8.1f} ms  (median {statistics.median(times) * 1000:.1f}"
          f" ms/file = {statistics.median(times) / bare:.1f}x bare python; max {max(times) * 1000:.1f} ms)")
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
