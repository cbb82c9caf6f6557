"""Property: whatever bytes a config holds, ``lora-compat show`` ends with exit 0, exit 1 (shown, invalid values
marked) or exit 2 (refused) with ONE line on stderr — never a traceback, never an "internal error" of a reader.
2,400 generated/mutated configs in total."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_spine_load import run_cli

from shared_data import corpus_files, requires_corpus

CORPUS_FILES = [p for p in corpus_files() if p.suffix in (".json", ".toml")]
WORKDIR = tempfile.mkdtemp(prefix="spine-fuzz-")  # hypothesis examples cannot take tmp_path; removed at exit
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KEYS = ["network_dim", "network_alpha", "learning_rate", "lr_warmup", "lr_warmup_steps", "epoch", "max_resolution",
        "resolution", "LoRA_type", "optimizer", "optimizer_args", "network_args", "text_encoder_lr", "unet_lr",
        "train_data_dir", "reg_data_dir", "dataset_config", "sdxl", "v2", "seed", "max_train_steps", "net_dim",
        "base_model", "img_folder", "shuffle_captions", "subsets", "general", "datasets", "general_args",
        "network_module", "noise_offset_type", "caption_extension", "keep_tokens", "wandb_api_key", "xformers",
        "mixed_precision", "lr_scheduler", "lr_scheduler_num_cycles", "save_model_as", "max_token_length"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                    st.sampled_from(["", "0", "1e-4", "abc", "512,512", "10%", "Standard", "AdamW8bit", "-1"]),
                    # JSON NaN/Infinity and TOML nan/inf are accepted by both parsers; huge ints overflow int()s
                    st.sampled_from([float("nan"), float("inf"), float("-inf"), 10**40, -(10**40), 10**400]))
VALUES = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                      st.dictionaries(st.sampled_from(KEYS), kids, max_size=4)),
                      max_leaves=8)


def check_show(name: str, content: bytes, fmt: str = "json") -> None:
    path = os.path.join(WORKDIR, name)
    with open(path, "wb") as fh:
        fh.write(content)
    code, out, err = run_cli("show", path, "--format", fmt)
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "internal error" not in err, err
    assert code in (0, 1, 2), (code, err[-500:])
    if code in (1, 2):   # 1: shown with invalid values marked; 2: refused. Either way one line on stderr
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    if code in (0, 1) and fmt == "json":
        data = json.loads(out)
        assert bool(data["invalid"]) == (code == 1), (code, data["invalid"])


@requires_corpus
@fuzz(800)
@given(idx=st.integers(0, 10**6), ops=st.lists(st.tuples(st.sampled_from(["del", "ins", "flip"]),
                                                         st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
                                               min_size=1, max_size=3))
def test_mutated_corpus_bytes(idx: int, ops: list) -> None:
    src = CORPUS_FILES[idx % len(CORPUS_FILES)]
    data = bytearray(src.read_bytes())
    for op, at, blob in ops:
        at = at % (len(data) + 1)
        if op == "del":
            del data[at:at + len(blob) * 3]
        elif op == "ins":
            data[at:at] = blob
        elif data:
            data[at % len(data)] ^= blob[0] or 1
    check_show("m" + src.suffix, bytes(data))


@requires_corpus
@fuzz(650)
@given(idx=st.integers(0, 10**6), picks=st.lists(st.tuples(st.integers(0, 500), VALUES), min_size=1, max_size=4))
def test_corpus_values_with_wrong_types(idx: int, picks: list) -> None:
    src = CORPUS_FILES[idx % len(CORPUS_FILES)]
    if src.suffix == ".json":
        data = json.loads(src.read_text(encoding="utf-8"))
    else:
        from lora_compat.tomlparse import tomllib

        data = tomllib.loads(src.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data:
        return
    keys = list(data)
    for i, value in picks:
        key = keys[i % len(keys)]
        target = data
        if isinstance(data[key], dict) and data[key] and i % 2:  # reach into sections / nested objects
            target = data[key]
            key = list(target)[i % len(target)]
        target[key] = value
    if src.suffix == ".json":
        check_show("t.json", json.dumps(data).encode())
    else:
        try:
            text = tomli_w.dumps(_tomlable(data))
        except (TypeError, ValueError):
            return
        check_show("t.toml", text.encode())


def _tomlable(v):
    if isinstance(v, dict):
        return {k: _tomlable(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_tomlable(x) for x in v if x is not None]
    return v


@fuzz(400)
@given(doc=st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(alphabet="[]/ab=\\\n", min_size=1, max_size=6)),
                           VALUES, max_size=8), as_toml=st.booleans(),
       text_mode=st.booleans())
def test_random_documents(doc: dict, as_toml: bool, text_mode: bool) -> None:
    fmt = "text" if text_mode else "json"
    if as_toml:
        try:
            text = tomli_w.dumps(_tomlable(doc))
        except (TypeError, ValueError):
            return
        check_show("r.toml", text.encode(), fmt)
    else:
        check_show("r.json", json.dumps(doc).encode(), fmt)


OPTION_WORDS = ["--network_dim", "--network_alp", "--lr_warmup_steps", "--text_encoder_lr", "--optimizer_args",
                "--shuffle_caption", "--mixed_precision", "--config_file", "--dataset_config", "--resolution",
                "--lr_sched", "--max_token_length", "--save_model_as", "--train_data_dir", "--xformers", "--seed"]
WORDS = st.one_of(st.sampled_from(OPTION_WORDS), st.sampled_from(["8", "1.0", "0.1", "10%", "abc", "fp16", "-1",
                                                                   "a=b", '"x y"', "'q'", "^", "\\", "%X%", "$Y"]),
                  st.text(alphabet="abc=-_.%^\\\"' 0123", max_size=6))


@fuzz(300)
@given(words=st.lists(WORDS, max_size=12), suffix=st.sampled_from([".sh", ".bat", ".ps1", ".txt"]),
       sdxl=st.booleans(), sep=st.sampled_from([" ", " \\\n  ", " ^\n  ", " `\n  ", "\n"]))
def test_random_command_lines(words: list, suffix: str, sdxl: bool, sep: str) -> None:
    script = "sdxl_train_network.py" if sdxl else "train_network.py"
    text = "accelerate launch --num_cpu_threads_per_process 2 " + script + " " + sep.join(words) + "\n"
    check_show("c" + suffix, text.encode())


def test_fuzz_totals_at_least_2000() -> None:
    assert 800 + 650 + 400 + 300 >= 2000
