"""NO_COLOR (https://no-color.org) is honoured by every command that prints through rich, even where colour is
forced (FORCE_COLOR, a terminal): no ANSI colour codes in any output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared_data import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
_SGR = re.compile(r"\x1b\[([0-9;]*)m")

# One interpreter runs every command (as main() does), capturing what each writes to stdout and stderr.
_RUNNER = """
import contextlib, io, json, sys
from lora_compat.cli import main
out = {}
for argv in json.loads(sys.argv[1]):
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit:
            pass
    out[" ".join(argv[:2])] = buf.getvalue() + err.getvalue()
print(json.dumps(out))
"""


def _color_codes(text: str) -> list[str]:
    """SGR sequences that set a foreground/background colour (bold/dim/italic are allowed by NO_COLOR)."""
    bad = []
    for m in _SGR.finditer(text):
        params = [int(p) for p in m.group(1).split(";") if p.isdigit()]
        if any(30 <= p <= 38 or 40 <= p <= 48 or 90 <= p <= 97 or 100 <= p <= 107 for p in params):
            bad.append(m.group(0))
    return bad


def _run(commands: list[list[str]], **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS")}
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(commands)], capture_output=True, text=True,
                          cwd=ROOT, env=base | {"TERM": "xterm-256color", "COLUMNS": "160"} | env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_command_honours_no_color(tmp_path: Path) -> None:
    bad_json = str(FIXTURES / "lint" / "kohya_sdxl_bad.json")
    bad_toml = str(FIXTURES / "lint" / "sdscripts_bad.toml")
    commands = [["lint", bad_toml, bad_json], ["lint", bad_json, "--statistics"], ["explain", "LC205"],
                ["explain", "kohya-gui-other-architecture"], ["explain", "keep_tokens"], ["explain", "--list"],
                ["show", bad_json], ["plan", bad_toml],
                ["migrate", bad_json, "--to", "native", "-o", str(tmp_path / "m.toml")]]
    pytest.importorskip("numpy")
    from lora_compat.weights.synth import synth_kohya

    lora = str(synth_kohya(tmp_path / "x.safetensors", "sd1", rank=2))
    commands += [["inspect", lora], ["check", lora, "--target", "comfyui"],
                 ["convert", lora, str(tmp_path / "peft"), "--to", "peft"]]
    # the harness really produces colour when it is allowed (else this test could not fail)
    forced = _run([commands[0]], FORCE_COLOR="1")
    assert _color_codes(forced["lint " + bad_toml]), "FORCE_COLOR did not force colour: the test cannot see it"
    quiet = _run(commands, FORCE_COLOR="1", NO_COLOR="1")
    assert set(quiet) == {" ".join(c[:2]) for c in commands}
    colored = {cmd: _color_codes(text)[:3] for cmd, text in quiet.items() if _color_codes(text)}
    assert not colored, colored
