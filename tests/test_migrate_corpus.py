"""Every corpus file migrates to native, sd-scripts and kohya-gui without a traceback, and whatever migrate writes
reads back (issue #12 item 3): `show` reads it with exit 0 (no invalid value) and the same canonical options."""

from __future__ import annotations

from pathlib import Path

from lora_compat.errors import UserError
from lora_compat.migrate.run import render, write_atomically
from lora_compat.tomlparse import tomllib

from shared_data import corpus_files, on_command_line, requires_corpus
from shared_data import migrated_datasets as _datasets
from shared_data import migrated_effective as _effective
from shared_data import migrated_options as _options


def _load_or_refusal(path: Path):
    from lora_compat.config.family import require_family
    from lora_compat.config.load import load_config

    try:
        cfg = load_config(str(path))
        require_family(cfg, "migrate")  # SD3 presets: refused by name until migrate supports them
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


@requires_corpus
def test_corpus_command_line_round_trip_keeps_canonical_options(tmp_path: Path) -> None:
    """The command-line target (an sh script sd-scripts' argparse reads): the same canonical options, except what
    argparse refuses (reported no-equivalent with loss) and false flags (not given: the same default)."""
    from lora_compat.config.load import load_config

    checked = 0
    for path in corpus_files():
        cfg = _load_or_refusal(path)
        if cfg is None:
            continue
        out = str(tmp_path / "run.sh")
        files, report = render(cfg, "command-line", out)
        write_atomically(files)
        back = load_config(out)
        assert back.dialect == "command-line" and not back.invalid, \
            (path.name, [(i.origin.key, i.reason) for i in back.invalid])
        assert back.family == (cfg.family or "sd1"), path.name   # a dataset config runs train_network.py
        lost = {e.option for e in report.losses}
        a = on_command_line({k: v for k, v in _options(cfg).items() if k not in lost})
        b = on_command_line(_options(back))
        assert a == b, (path.name, {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)})
        assert _datasets(cfg) == _datasets(back), path.name
        checked += 1
    assert checked >= 100
