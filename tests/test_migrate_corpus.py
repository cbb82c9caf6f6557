"""Every corpus file migrates to native, sd-scripts and kohya-gui without a traceback, and whatever migrate writes
reads back (issue #12 item 3): `show` reads it with exit 0 (no invalid value) and the same canonical options."""

from __future__ import annotations

from pathlib import Path

from lora_compat.config.secrets import is_secret_key
from lora_compat.errors import UserError
from lora_compat.migrate.native import kv_table
from lora_compat.migrate.run import render, write_atomically
from lora_compat.tomlparse import tomllib

from shared_data import corpus_files, requires_corpus

# Options a migration rewrites on purpose (documented in docs/cli.md "migrate"):
#   dataset_config -> points at the migrated dataset TOML; config_file/output_config -> not config-file keys.
REWRITTEN = {"dataset_config", "config_file", "output_config"}
_ARG_LISTS = ("network_args", "optimizer_args", "lr_scheduler_args")


def _options(cfg) -> dict:
    """Canonical options as sd-scripts sees them: k=v lists compared as the keyword dicts sd-scripts builds;
    sample_prompts as the prompt text (a GUI file holds the text, migrate writes it to <stem>_prompts.txt)."""
    from lora_compat.config.dialects.kohya_gui import gui_prompt_text

    out = {}
    for k, s in cfg.options.items():
        if s.value is None or is_secret_key(k) or k in REWRITTEN or k.startswith("peft."):
            continue
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


def _datasets(cfg) -> tuple:
    return ({k: s.value for k, s in cfg.general.items()},
            [({k: s.value for k, s in d.params.items()}, [{k: s.value for k, s in sub.params.items()}
                                                          for sub in d.subsets]) for d in cfg.datasets])


def _load_or_refusal(path: Path):
    from lora_compat.config.family import require_family
    from lora_compat.config.load import load_config

    try:
        cfg = load_config(str(path))
        require_family(cfg, "migrate")  # FLUX.1/SD3 presets: refused by name until migrate supports them
    except UserError as err:
        assert str(err).strip() and "\n" not in str(err), "refusals are one clear line"
        return None
    return None if cfg.invalid else cfg


@requires_corpus
def test_corpus_migrates_without_traceback(tmp_path: Path) -> None:
    migrated = 0
    for path in corpus_files():
        cfg = _load_or_refusal(path)
        if cfg is None:
            continue
        for to in ("native", "sd-scripts"):
            files, report = render(cfg, to, str(tmp_path / "out.toml"))
            for name, text in files.items():
                if not name.endswith("_prompts.txt"):
                    tomllib.loads(text)  # every output parses
                assert "***REDACTED***" not in text
            assert report.entries
        migrated += 1
    assert migrated >= 100


@requires_corpus
def test_corpus_sd_scripts_round_trip_keeps_canonical_options(tmp_path: Path) -> None:
    from lora_compat.config.dataset import check_dataset_config
    from lora_compat.config.load import load_config

    checked = 0
    for path in corpus_files():
        cfg = _load_or_refusal(path)
        if cfg is None:
            continue
        out = str(tmp_path / "out.toml")
        files, _ = render(cfg, "sd-scripts", out)
        write_atomically(files)
        for name, text in files.items():
            if name.endswith("_dataset.toml"):
                masked = bool(cfg.get("masked_loss"))
                ours = {(e.key_path, e.message) for e in check_dataset_config(tomllib.loads(text), masked_loss=masked)}
                general, datasets = _datasets(cfg)
                source = {"general": general, "datasets": [dict(p, subsets=subs) for p, subs in datasets]}
                theirs = {(e.key_path, e.message) for e in check_dataset_config(source, masked_loss=masked)}
                assert ours <= theirs, path.name  # the writer adds no error the config did not already have
        back = load_config(out)
        assert not back.invalid, (path.name, [(i.origin.key, i.reason) for i in back.invalid])
        a, b = _options(cfg), _options(back)
        assert a == b, path.name
        assert _datasets(cfg) == _datasets(back), path.name
        checked += 1
    assert checked >= 100


@requires_corpus
def test_corpus_native_round_trip_is_identical(tmp_path: Path) -> None:
    from lora_compat.config.load import load_config

    checked = 0
    for path in corpus_files():
        cfg = _load_or_refusal(path)
        if cfg is None:
            continue
        out = str(tmp_path / "n.toml")
        files = render(cfg, "native", out)[0]
        first = files[out]
        write_atomically(files)
        back = load_config(out)
        assert back.dialect == "native" and not back.invalid, path.name
        assert render(back, "native", out)[0][out] == first, path.name
        a, b = _options(cfg), _options(back)
        for k in ("sdxl", "v2"):  # arch: false values are implied by `arch`
            if not a.get(k):
                a.pop(k, None)
        assert {k: v for k, v in a.items() if k != "network_module"} == \
            {k: v for k, v in b.items() if k != "network_module"}, path.name
        assert a.get("network_module") in (None, b.get("network_module")), path.name
        checked += 1
    assert checked >= 100


def _effective(cfg) -> dict:
    """Every option's effective value, normalised where two spellings mean the same to sd-scripts."""
    from lora_compat.config import options

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
        if k == "text_encoder_lr" and isinstance(v, list):
            v = v[0] if v else None  # sd-scripts LoRA uses the first value only
        if k in ("text_encoder_lr", "unet_lr") and v is None:
            v = lr
        if k == "resolution" and isinstance(v, str) and "," not in v:
            v = f"{v},{v}"
        if k == "network_module" and v is None:
            v = "networks.lora"
        if v in (None, 0, False, ""):
            v = None  # the GUI drops these: all mean "sd-scripts' default"
        out[k] = v
    return out


@requires_corpus
def test_corpus_kohya_gui_round_trip_keeps_effective_options(tmp_path: Path) -> None:
    from lora_compat.config.load import load_config

    checked = 0
    for path in corpus_files():
        cfg = _load_or_refusal(path)
        if cfg is None:
            continue
        out = str(tmp_path / "gui.json")
        files, report = render(cfg, "kohya-gui", out)
        write_atomically(files)
        back = load_config(out)
        assert back.dialect == "kohya-gui", path.name
        assert not back.invalid, (path.name, [(i.origin.key, i.reason) for i in back.invalid])
        lost = {e.option.split(".")[0] for e in report.losses}
        a, b = _effective(cfg), _effective(back)
        diff = {k for k in a if a[k] != b[k] and k not in lost}
        assert not diff, (path.name, {k: (a[k], b[k]) for k in diff})
        checked += 1
    assert checked >= 100
