"""Seeded config fuzz (issue #12, the config half): mutated corpus and fixture configs through show, lint,
migrate (every target) and plan, in-process. For every case it asserts: no uncaught exception, no case over 10 s,
every JSON output parses, every migrate output reads back (show exit 0), no output left after a failure, and no
planted credential in any output or written file.

The mutations are the classes issue #12 found: hostile values (huge strings, lone-surrogate escapes, NaN, huge and
negative numbers, wrong types, control characters), credentials planted under credential keys, inside the GUI's
additional_parameters (twice) and as unknown command-line options, deleted and duplicated keys, and shell
constructs (substitutions, unknown and self-doubling variables, arrays) in scripts. The seed is fixed: a failure
reproduces with ``CONFIG_FUZZ_SEED``/``CONFIG_FUZZ_CASES``.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from test_spine_load import run_cli

from shared_data import CORPUS, FIXTURES, corpus_files

SEED = int(os.environ.get("CONFIG_FUZZ_SEED", "20261204"))
CASES = int(os.environ.get("CONFIG_FUZZ_CASES", "240"))
SECRET = "fzSECRETplanted9Q"
TARGETS = ("native", "sd-scripts", "kohya-gui", "command-line")
COUNTS = {"cases": 0, "invocations": 0}


def _sources() -> list[Path]:
    fixtures = [p for d in ("dialects/kohya", "dialects/derrian", "spine/scripts", "spine/cmdline", "spine/toml",
                            "flux")
                for p in sorted((FIXTURES / d).glob("*")) if p.is_file()]
    corpus = [p for p in corpus_files() if p.suffix in (".json", ".toml")] if CORPUS.is_dir() else []
    return corpus[::3] + fixtures      # a third of the corpus: every dialect and era stays represented


def _hostile(rng: random.Random) -> object:
    return rng.choice([
        "x" * rng.choice([5_000, 200_000]), "", None, -1, 0, 10**30, -(10**18), 1e308, float("nan"),
        [1, "a", None], {"nested": {"deeper": [1, 2]}}, "a\nb\x1b[31m\x07", "真的", "512,512", "abc", True,
        "--network_dim 8", f"--hf_token={SECRET}",
    ])


def _mutate_mapping(data: dict, rng: random.Random) -> tuple[dict, bool]:
    """Structural mutations of a JSON/TOML object; returns (data, whether a lone surrogate is to be planted)."""
    keys = list(data)
    surrogate = False
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["value", "value", "delete", "secret", "params", "surrogate", "nested"])
        if op == "value" and keys:
            data[rng.choice(keys)] = _hostile(rng)
        elif op == "delete" and keys:
            data.pop(rng.choice(keys), None)
        elif op == "secret":
            data[rng.choice(["wandb_api_key", "huggingface_token", "hf_token", "civitai_api_key"])] = SECRET
        elif op == "params":
            data["additional_parameters"] = f"--wandb_api_key={SECRET} --wandb_api_key={SECRET}2 --network_dim 16"
        elif op == "surrogate":
            data["output_name"] = "SURROGATE"
            surrogate = True
        elif op == "nested" and keys:
            k = rng.choice(keys)
            if isinstance(data.get(k), dict) and data[k]:
                inner = data[k]
                inner[rng.choice(list(inner))] = _hostile(rng)
        keys = list(data)
    return data, surrogate


_SHELL_BITS = [
    "--output_name=lora_$(date +%s)", "--max_train_epochs $EPOCHS", "$EXTRA_ARGS", '"$@"', f"--hf_token={SECRET}",
    f"--my_api_key {SECRET}", "--network_dim abc", "--lr_sched cosine", "--typo 1", "`pwd`", "--seed ${SEED:-42}",
    "--resolution 512,512", "--xformers", "--dataset_config=missing.toml", "--config_file /nowhere/cfg",
]


def _mutate_script(text: str, rng: random.Random, suffix: str) -> str:
    lines = text.splitlines()
    cont = {".bat": " ^", ".cmd": " ^", ".ps1": " `"}.get(suffix, " \\")
    prefix = {".bat": "set ", ".cmd": "set "}.get(suffix, "$" if suffix == ".ps1" else "")
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["append", "append", "var", "double", "delete"])
        if op == "append" and lines:
            i = max(i for i, ln in enumerate(lines) if "train_network.py" in ln or i == 0)
            lines[i] = lines[i].rstrip("\\^` ") + " " + rng.choice(_SHELL_BITS) + (cont if lines[i].rstrip()
                                                                                   .endswith(("\\", "^", "`")) else "")
        elif op == "var":
            lines.insert(0, f"{prefix}EPOCHS={rng.choice(['4', '', 'x y', '$(nproc)'])}")
        elif op == "double":
            lines[0:0] = [f"{prefix}D0=xxxxxxxxxx"] + [f"{prefix}D{i}=$D{i - 1}$D{i - 1}" if suffix != ".bat"
                                                       else f"set D{i}=%D{i - 1}%%D{i - 1}%" for i in range(1, 20)]
        elif op == "delete" and len(lines) > 1:
            lines.pop(rng.randrange(len(lines)))
    return "\n".join(lines) + "\n"


def _case_text(src: Path, rng: random.Random) -> tuple[str, str]:
    """(file name, text) of one mutated case."""
    suffix = src.suffix.lower()
    text = src.read_text(encoding="utf-8", errors="replace")
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            return "c.json", text
        if isinstance(data, dict):
            data, surrogate = _mutate_mapping(data, rng)
            out = json.dumps(data, ensure_ascii=False, allow_nan=True)
            if surrogate:
                out = out.replace('"SURROGATE"', '"a\\ud800b"')
            return "c.json", out
        return "c.json", text
    if suffix == ".toml":
        import tomli_w

        from lora_compat.tomlparse import tomllib

        try:
            data = tomllib.loads(text)
        except ValueError:
            return "c.toml", text
        data, _ = _mutate_mapping(data, rng)
        try:
            return "c.toml", tomli_w.dumps(_tomlable(data))
        except (TypeError, ValueError):
            return "c.toml", text
    name = "c" + (suffix if suffix in (".sh", ".bat", ".cmd", ".ps1", ".txt") else ".sh")
    return name, _mutate_script(text, rng, suffix)


def _tomlable(v: object) -> object:
    if isinstance(v, dict):
        return {str(k): _tomlable(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        items = [_tomlable(x) for x in v if x is not None]
        kinds = {type(x) for x in items}
        return items if len(kinds) <= 1 else [str(x) for x in items]
    return v


def _call(*args: str) -> tuple[int, str, str]:
    COUNTS["invocations"] += 1
    start = time.perf_counter()
    code, out, err = run_cli(*args)
    took = time.perf_counter() - start
    if took > COUNTS.get("slowest", 0.0):
        COUNTS["slowest"], COUNTS["slowest_args"] = took, args
    assert took < 10, (args, f"{took:.1f} s: over the 10 s bound")
    assert "Traceback" not in out + err and "internal error" not in err, (args, err[-2000:])
    assert code in (0, 1, 2), (args, code, err[-500:])
    if (code == 2 and args[0] != "lint") or (args[0] == "show" and code == 1):
        # a refusal / invalid values: one line on stderr (lint --format json reports load errors in its JSON)
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, (args, err)
    assert SECRET not in out + err, (args, "planted credential printed")
    (out + err).encode("utf-8")          # always valid UTF-8
    return code, out, err


def _check_case(workdir: Path, name: str, text: str, rng: random.Random) -> None:
    case = workdir / name
    case.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, out, _ = _call("show", str(case), "--format", "json")
    if code in (0, 1):
        json.loads(out)
    code, out, _ = _call("lint", str(case), "--format", "json")
    if out.strip():
        json.loads(out)
    to = rng.choice(TARGETS)
    dest = workdir / {"kohya-gui": "out.json", "command-line": "out.sh"}.get(to, "out.toml")
    before = set(os.listdir(workdir))
    code, out, _ = _call("migrate", str(case), "--to", to, "-o", str(dest), "--force", "--format", "json")
    written = set(os.listdir(workdir)) - before
    if code == 0:
        json.loads(out)
        back_code, back, err = _call("show", str(dest), "--format", "json")
        assert back_code == 0, (name, to, "migrate output does not read back", err)
        json.loads(back)
    else:
        assert not written, (name, to, "output left after a failure", written)
    for f in written:
        assert SECRET not in (workdir / f).read_text(encoding="utf-8", errors="replace"), (name, f)
    code, out, _ = _call("plan", str(case), "--format", "json")
    if code == 0:
        json.loads(out)
    for f in written:
        (workdir / f).unlink()


@pytest.mark.skipif(not (FIXTURES / "dialects").is_dir(), reason="fixtures missing")
def test_seeded_config_fuzz(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    sources = _sources()
    start = time.perf_counter()
    for i in range(CASES):
        src = sources[rng.randrange(len(sources))]
        name, text = _case_text(src, rng)
        workdir = tmp_path / f"case{i}"
        workdir.mkdir()
        try:
            _check_case(workdir, name, text, rng)
        except AssertionError as exc:
            raise AssertionError(f"case {i} from {src.name} (seed {SEED}): {exc}") from None
        COUNTS["cases"] += 1
    print(f"\nconfig fuzz: {COUNTS['cases']} cases, {COUNTS['invocations']} invocations, seed {SEED}, "
          f"slowest invocation {COUNTS['slowest']:.2f} s ({' '.join(COUNTS['slowest_args'][:1])}), "
          f"total {time.perf_counter() - start:.1f} s")
