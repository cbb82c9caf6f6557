"""Where the checkout's fixtures and ../shared (golden files, corpus) live, and how tests read them.

Plain data and helpers that test modules import (parametrize lists are built at import time, before fixtures
exist); the fixtures themselves live in ``conftest.py``, which is never imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GOLDEN = SHARED / "golden"
CORPUS = SHARED / "corpus"
FIXTURES = ROOT / "fixtures"


def golden(name: str):
    """Load ../shared/golden/<name>, or skip the test with a clear reason when it is absent."""
    path = GOLDEN / name
    if not path.is_file():
        pytest.skip(f"golden file {path} not found (../shared is not beside this clone)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def corpus_files() -> list[Path]:
    """Every config file of ../shared/corpus (empty when absent; tests then skip)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "MANIFEST.md")


requires_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not found beside this clone")


# --- migrate read-back: what "the same configuration" means (tests/test_migrate_corpus.py, test_migrate_flux.py) --
# Options a migration rewrites on purpose (documented in docs/cli.md "migrate"):
#   dataset_config -> points at the migrated dataset TOML; config_file/output_config -> not config-file keys.
REWRITTEN = {"dataset_config", "config_file", "output_config"}
_ARG_LISTS = ("network_args", "optimizer_args", "lr_scheduler_args")


def migrated_options(cfg) -> dict:
    """Canonical options as sd-scripts sees them: k=v lists compared as the keyword dicts sd-scripts builds;
    sample_prompts as the prompt text (a GUI file holds the text, migrate writes it to <stem>_prompts.txt)."""
    from lora_compat.config.dialects.kohya_gui import gui_prompt_text
    from lora_compat.config.secrets import is_secret_key
    from lora_compat.migrate.native import kv_table

    out = {}
    for k, s in cfg.options.items():
        if s.value is None or is_secret_key(k) or k in REWRITTEN or k.startswith("peft."):
            continue
        if k in ("sdxl", "v2") and s.value is False:
            continue  # the arch pseudo-options: false is what the script (command line, comment, arch) implies
        v = s.value
        if k == "sample_prompts":
            inline = gui_prompt_text(cfg)
            if inline is not None:
                v = inline if inline.endswith("\n") else inline + "\n"
            elif str(v).endswith("_prompts.txt") and Path(v).is_file():
                v = Path(v).read_text(encoding="utf-8")
        if k in _ARG_LISTS and kv_table(v) is not None:
            v = kv_table(v)
        out[k] = v
    return out


def migrated_datasets(cfg) -> tuple:
    return ({k: s.value for k, s in cfg.general.items()},
            [({k: s.value for k, s in d.params.items()}, [{k: s.value for k, s in sub.params.items()}
                                                          for sub in d.subsets]) for d in cfg.datasets])


def migrated_effective(cfg) -> dict:
    """Every option's effective value, normalised where two spellings mean the same to sd-scripts."""
    from lora_compat.config import options
    from lora_compat.config.secrets import is_secret_key
    from lora_compat.migrate.native import kv_table

    out = {}
    lr = cfg.effective("learning_rate")
    for k in options.option_names():
        if is_secret_key(k) or k in REWRITTEN or k in ("sample_prompts", "wandb_run_name"):
            continue  # prompt files are not on this machine; the GUI derives wandb_run_name from output_name
        fams = options.option_families(k)
        if fams is not None and (cfg.family or "sd1") not in fams and k not in cfg.options:
            continue  # the family's script has no such option (a dataset config's family is undecided)
        v = cfg.effective(k)
        if k in _ARG_LISTS and kv_table(v) is not None:
            v = kv_table(v)
            if k == "network_args" and "constrain" in v:  # GUIs before 2024-10-06 emitted the misspelling
                v["constraint"] = v.pop("constrain")
        if k == "text_encoder_lr" and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v]
        if k == "text_encoder_lr" and isinstance(v, list) and cfg.family in ("flux1", "chroma"):
            # networks.lora_flux: [CLIP-L, T5-XXL], one value for both when only one is given
            v = [float(x) for x in (v * 2 if len(v) == 1 else v)] if v else None
        elif k == "text_encoder_lr" and isinstance(v, list):
            v = v[0] if v else None  # sd-scripts' SD LoRA uses the first value only
        if k in ("text_encoder_lr", "unet_lr") and v is None:
            v = [lr, lr] if k == "text_encoder_lr" and cfg.family in ("flux1", "chroma") else lr
        if k == "resolution" and isinstance(v, str) and "," not in v:
            v = f"{v},{v}"
        if k == "network_module" and v is None:
            v = "networks.lora"
        if v in (None, 0, False, ""):
            v = None  # the GUI drops these: all mean "sd-scripts' default"
        out[k] = v
    if out.get("max_train_epochs"):
        out["max_train_steps"] = None   # sd-scripts: max_train_epochs overrides max_train_steps
    return out




def on_command_line(options: dict) -> dict:
    """:func:`migrated_options` as a command line can say them: a false flag is not given (argparse's default,
    the same setting), ``max_token_length`` 75 is not given (the same setting), and ``text_encoder_lr``
    (``nargs='*'``) is always a list (one value = a one-element list, which sd-scripts treats as the scalar)."""
    out = {k: v for k, v in options.items() if v is not False}
    if out.get("max_token_length") == 75:   # CLIP's 75 tokens: what unset means; argparse refuses an explicit 75
        del out["max_token_length"]
    if "text_encoder_lr" in out and not isinstance(out["text_encoder_lr"], list):
        out["text_encoder_lr"] = [out["text_encoder_lr"]]
    return out
