"""The light commands never import torch & co.: show/lint/explain/migrate/plan/inspect/convert/check.
Without ``--plot`` they import no picture modules either (matplotlib, numpy); with it, those but still no torch.

One subprocess runs every command in turn (``--help`` and real invocations) and reports, after each,
which heavy modules are loaded; modules only accumulate, so the first command that shows one is the culprit.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import textwrap

from shared_data import FIXTURES, ROOT

HEAVY = ("torch", "diffusers", "peft", "transformers", "accelerate", "safetensors.torch")
PICTURES = ("matplotlib", "numpy")

RUNNER = textwrap.dedent("""
    import contextlib, io, json, sys
    from lora_compat.cli import main
    heavy = %r
    report = []
    for argv in json.loads(sys.argv[1]):
        out = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except Exception as exc:  # another command's bug: record it, keep checking imports
                code = "crash: " + type(exc).__name__ + ": " + str(exc)
        report.append({"argv": argv, "code": code, "heavy": [m for m in heavy if m in sys.modules],
                       "traceback": "Traceback" in out.getvalue(), "tail": out.getvalue()[-300:]})
    print(json.dumps(report))
""") % (HEAVY + PICTURES,)


def tiny_kohya_lora(path) -> None:
    """A two-tensor kohya LoRA written by hand (safetensors layout: u64 header size, JSON header, data)."""
    down, up = "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", \
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"
    n_down, n_up = 4 * 320, 320 * 4
    header = {
        "__metadata__": {"ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "4"},
        down: {"dtype": "F32", "shape": [4, 320], "data_offsets": [0, n_down * 4]},
        up: {"dtype": "F32", "shape": [320, 4], "data_offsets": [n_down * 4, (n_down + n_up) * 4]},
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": {
            "dtype": "F32", "shape": [], "data_offsets": [(n_down + n_up) * 4, (n_down + n_up) * 4 + 4]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw + b"\0" * ((n_down + n_up) * 4) + struct.pack("<f", 4.0))


def test_light_commands_do_not_import_heavy_modules(tmp_path) -> None:
    lora = tmp_path / "tiny.safetensors"
    tiny_kohya_lora(lora)
    cfg = str(FIXTURES / "spine" / "cmdline" / "train_sdxl.bat")
    toml = str(FIXTURES / "spine" / "toml" / "base_config.toml")
    runs = [[c, "--help"] for c in ("show", "lint", "explain", "migrate", "plan", "inspect", "convert", "check")]
    runs += [
        ["show", cfg], ["show", toml, "--format", "json"], ["show", toml, "--format", "toml"],
        ["lint", cfg], ["explain", "network_dim"],
        ["migrate", toml, "--to", "native", "-o", str(tmp_path / "native.toml")],
        ["plan", toml],
        ["inspect", str(lora), "--arch", "sd1"], ["inspect", str(lora), "--arch", "sd1", "--format", "json"],
        ["convert", str(lora), str(tmp_path / "peft"), "--to", "peft", "--arch", "sd1"],
        ["convert", str(lora), str(tmp_path / "d.safetensors"), "--to", "diffusers", "--arch", "sd1"],
        ["check", str(lora), "--target", "diffusers", "--arch", "sd1"],
        ["check", str(lora), "--target", "comfyui", "--arch", "sd1"],
    ]
    light = len(runs)
    plot = str(tmp_path / "blocks.png")
    runs += [["inspect", str(lora), "--arch", "sd1", "--plot", plot]]
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(runs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    culprits = [(r["argv"], r["heavy"]) for r in report if set(r["heavy"]) & set(HEAVY)]
    assert not culprits, culprits[0]
    pictures = [(r["argv"], r["heavy"]) for r in report[:light] if r["heavy"]]
    assert not pictures, pictures[0]
    if importlib.util.find_spec("matplotlib") is not None:
        assert all(r["code"] == 0 for r in report[light:]), [r["tail"] for r in report[light:] if r["code"]]
        assert "matplotlib" in report[-1]["heavy"] and (tmp_path / "blocks.png").stat().st_size > 1000
    else:  # a light install (the Python 3.10 run): --plot names the extra that draws, in one line, and writes nothing
        assert report[-1]["code"] != 0 and "lora-compat[plot]" in report[-1]["tail"], report[-1]
        assert not (tmp_path / "blocks.png").exists()
    crashed = [(r["argv"], r["code"], r["tail"]) for r in report
               if r["traceback"] or str(r["code"]).startswith("crash")]
    assert not crashed, crashed[0]
    # the spine's own commands must also work
    shows = [r for r in report if r["argv"][0] == "show" and "--help" not in r["argv"]]
    assert all(r["code"] == 0 and not r["traceback"] for r in shows), shows
