"""Benchmark ``lora-compat lint``: one config and the whole corpus, as wall time and as ratios to a bare
interpreter start. Goals: one config <= 0.3 s, corpus <= 1.5 s. Asserts that no heavy library is imported.

    python benchmarks/bench_lint.py [--repeat N] [--corpus PATH] [--cold]

By default bytecode is cached (in a temporary PYTHONPYCACHEPREFIX, after one warm-up run), as it is for a
pip-installed package; ``--cold`` keeps PYTHONDONTWRITEBYTECODE semantics (every module compiled on each run).
Timings are medians; on a shared machine compare the ratios to the bare interpreter, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_CONFIG = ROOT / "fixtures" / "lint" / "kohya_sdxl_bad.json"
CORPUS = ROOT.parent / "shared" / "corpus"
HEAVY = ("torch", "diffusers", "peft", "transformers", "accelerate", "safetensors.torch")
GOAL_ONE, GOAL_CORPUS = 0.3, 1.5

# Runs the CLI in a fresh interpreter, then reports heavy modules that got imported.
_PROBE = (
    "import sys\nfrom lora_compat.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


ENV = dict(os.environ)


def _time(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False, env=ENV)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _heavy_imports(args: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=ROOT, env=ENV)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")), "HEAVY=?")
    found = line.split("=", 1)[1]
    return [m for m in found.split(",") if m]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--cold", action="store_true", help="do not cache bytecode (compile on every run)")
    a = ap.parse_args()
    if not a.cold:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="lora-compat-bench-pyc-")
        subprocess.run([sys.executable, "-m", "lora_compat", "lint", str(ONE_CONFIG)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV)        # warm-up: writes the bytecode
    print(f"bytecode               : {'not cached (--cold)' if a.cold else 'cached (as after pip install)'}")

    bare = _time([sys.executable, "-c", "pass"], a.repeat)
    lint = [sys.executable, "-m", "lora_compat", "lint"]
    one = _time([*lint, str(ONE_CONFIG), "--format", "json"], a.repeat)
    print(f"bare interpreter start : {bare:6.3f} s")
    print(f"lint one config        : {one:6.3f} s  ({one / bare:5.1f}x bare)  goal <= {GOAL_ONE} s "
          f"{'OK' if one <= GOAL_ONE else 'MISSED'}")
    corpus_ok = True
    if Path(a.corpus).is_dir():
        n = sum(1 for p in Path(a.corpus).rglob("*") if p.is_file())
        whole = _time([*lint, a.corpus, "--format", "json"], max(1, a.repeat // 2))
        corpus_ok = whole <= GOAL_CORPUS
        print(f"lint whole corpus      : {whole:6.3f} s  ({whole / bare:5.1f}x bare, {n} files, "
              f"{1000 * (whole - bare) / max(n, 1):.1f} ms/file)  goal <= {GOAL_CORPUS} s "
              f"{'OK' if corpus_ok else 'MISSED'}")
    else:
        print(f"corpus not found at {a.corpus}: skipped")
    heavy = _heavy_imports(["lint", str(ONE_CONFIG), "--format", "json"])
    assert not heavy, f"lint imported heavy modules: {heavy}"
    print("heavy imports          : none (torch/diffusers/peft/transformers/accelerate not loaded)")
    return 0 if one <= GOAL_ONE and corpus_ok else 1


if __name__ == "__main__":
    sys.exit(main())
