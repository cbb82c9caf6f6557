"""Every file of ../shared/corpus: detected as MANIFEST.md says, normalized without a traceback, or refused
cleanly (exit 2, one line) when the MANIFEST says it is not a training config. A dialect/era count table is
printed in the terminal summary (independent of ``-s``)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from lora_compat.config.load import detect, load_config
from lora_compat.errors import UserError

from shared_data import CORPUS, corpus_files, requires_corpus

pytestmark = requires_corpus

TAB_WORDS = {"LoRA": "lora", "DreamBooth": "dreambooth", "Finetune": "finetune", "Textual Inversion": "ti",
             "LECO": "leco", "ControlNet-LLLite": "controlnet-lllite", "Stable Cascade finetune": "finetune"}
COUNTS: collections.Counter = collections.Counter()


class _SummaryPlugin:
    """Prints the dialect/era table at the end of the run, whatever the capture mode."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not COUNTS:
            return
        terminalreporter.section("corpus dialect/era counts")
        for (dialect, era, outcome), n in sorted(COUNTS.items(), key=lambda kv: tuple(map(str, kv[0]))):
            terminalreporter.write_line(f"{n:4d}  {dialect:<20} {era or '-':<6} {outcome}")
        terminalreporter.write_line(f"{sum(COUNTS.values()):4d}  total")


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    plugin = _SummaryPlugin()
    if not request.config.pluginmanager.is_registered(plugin):
        request.config.pluginmanager.register(plugin, "spine-corpus-summary")
    yield


def manifest() -> dict[str, dict[str, str | None]]:
    """file name -> expected {dialect, era, tab, training} from MANIFEST.md (and argstore/ file names)."""
    text = (CORPUS / "MANIFEST.md").read_text(encoding="utf-8")
    rows: dict[str, dict[str, str | None]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 8 or not cells[0].startswith("`"):
            continue
        name, wording, era = cells[0].strip("`"), cells[5], cells[6]
        rows[name] = expectation(wording, None if era in ("—", "-", "") else era)
    for p in (CORPUS / "easy_training_scripts" / "argstore").glob("*.json"):
        # A1 = written by lora_train_command_line.py / lora_train_popup.py, A2 = by ArgsList.py (MANIFEST
        # names the generating source file at the end of each file name)
        era = "A2" if p.name.endswith("_ArgsList.json") else "A1"
        rows[p.name] = {"dialect": "derrian-argstore", "era": era, "tab": None, "training": "yes"}
    return rows


def expectation(wording: str, era: str | None) -> dict[str, str | None]:
    if "not a training config" in wording or "not loadable" in wording or "block-weight preset" in wording:
        return {"dialect": None, "era": None, "tab": None, "training": "no"}
    if wording.startswith("kohya_ss GUI JSON"):
        tab = next((v for k, v in TAB_WORDS.items() if f"{k} tab" in wording), None)
        return {"dialect": "kohya-gui", "era": era, "tab": tab, "training": "yes"}
    if wording.startswith("sd-scripts dataset_config TOML"):
        return {"dialect": "sd-scripts-dataset", "era": None, "tab": None, "training": "yes"}
    if wording.startswith("Derrian UI TOML"):
        return {"dialect": "derrian-toml", "era": "U1", "tab": None, "training": "yes"}
    raise AssertionError(f"MANIFEST wording not mapped: {wording}")


FILES = corpus_files()


def test_manifest_covers_every_corpus_file() -> None:
    rows = manifest()
    names = {p.name for p in FILES}
    assert names == set(rows), (names ^ set(rows))
    assert len(FILES) >= 172


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_file(path: Path) -> None:
    from test_spine_load import run_cli

    want = manifest_cached()[path.name]
    det = detect(str(path))
    if want["training"] == "no":
        assert not det.training, det
        with pytest.raises(UserError) as info:
            load_config(str(path))
        assert "nothing to load" in str(info.value)
        code, _out, err = run_cli("show", str(path))
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        COUNTS[("(refused)", det.era, det.what.split(",")[0] if det.what else "not training")] += 1
        return
    assert det.dialect == want["dialect"], det
    if want["era"]:
        assert det.era == want["era"], det
    if want["tab"]:
        assert det.tab == want["tab"], det
    try:
        cfg = load_config(str(path), resolve_dataset=False)
    except UserError as exc:
        assert "internal error" not in str(exc), exc
        raise
    assert cfg.dialect == want["dialect"]
    code, out, err = run_cli("show", str(path), "--format", "json")
    assert "Traceback" not in err and "internal error" not in err
    # every training config shows; one holding values sd-scripts/the GUI would refuse is marked (exit 1)
    assert code == (1 if cfg.invalid else 0), err
    data = json.loads(out)
    assert len(data["invalid"]) == len(cfg.invalid)
    COUNTS[(cfg.dialect, cfg.era, "shown, invalid values marked" if cfg.invalid else "ok")] += 1


_MANIFEST: dict | None = None


def manifest_cached() -> dict:
    global _MANIFEST
    if _MANIFEST is None:
        _MANIFEST = manifest()
    return _MANIFEST
