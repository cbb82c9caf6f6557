"""FLUX lint rules against sd-scripts' own outcomes: every case of golden flux_lora_keys.json (the command lines
flux_train_network.py ran; the error cases are lint errors, the others are not), the corpus FLUX presets, and SD
configs that carry FLUX options (#13 items 3 and 5)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from lora_compat.config.load import load_config
from lora_compat.lint.registry import all_rules
from lora_compat.lint.runner import lint_config

from shared_data import CORPUS, golden, requires_corpus

# sd-scripts' exception type and message, before the Japanese half of its bilingual messages
_EMULATED_FIX = "split_qkv_as_fixed_by_pr2396"   # not sd-scripts@48d368f: the golden emulates PR #2396's fix


def _cases():
    data = golden("flux_lora_keys.json")
    return [(data["fixed_argv"], c) for c in data["cases"]]


def _lint_case(tmp_path: Path, fixed: list[str], case: dict):
    argv = [a.replace("/m/flux1-dev.safetensors", f"/m/{case['base_model']}.safetensors") for a in fixed]
    argv += case["argv"]
    path = tmp_path / f"{case['name']}.sh"
    path.write_text("accelerate launch flux_train_network.py " + shlex.join(argv) + "\n", encoding="utf-8")
    cfg = load_config(str(path))
    return cfg, lint_config(cfg, all_rules())


def test_golden_flux_error_cases_are_lint_errors(tmp_path: Path) -> None:
    cases = _cases()
    errors = [c for _, c in cases if "error" in c]
    assert len(errors) == 4
    for fixed, case in cases:
        cfg, findings = _lint_case(tmp_path, fixed, case)
        assert cfg.family == ("chroma" if case["base_model"] == "chroma" else "flux1"), case["name"]
        flux_errors = [f for f in findings if f.severity == "error" and f.code in _FLUX_CODES]
        if "error" in case or case["name"] == _EMULATED_FIX:
            expected = case.get("error") or next(c["error"] for _, c in cases if c["name"] == "split_qkv")
            expected = expected.split(" / ")[0]
            assert any(expected in f.message for f in flux_errors), (case["name"], expected,
                                                                     [f.message for f in findings])
        else:
            assert not flux_errors, (case["name"], [f.message for f in flux_errors])


_FLUX_CODES = {r.code for r in all_rules() if "flux" in r.groups}


def test_golden_module_counts_in_messages(tmp_path: Path) -> None:
    """LC420's counts come from the same module set as the golden keys (72 CLIP-L beside 304)."""
    fixed, case = next((f, c) for f, c in _cases() if c["name"] == "text_encoder_clip_l")
    _, findings = _lint_case(tmp_path, fixed, case)
    msg = next(f.message for f in findings if f.code == "LC420")
    counts = case["module_count"]
    assert f"{counts['lora_te1']} lora_te1_ modules beside {counts['lora_unet']} transformer modules" in msg


@requires_corpus
@pytest.mark.parametrize("name,guidance", [("flux1D - adamw8bit fp8.json", False),
                                           ("flux1D - adamw8bit fp8__647295aa.json", True)])
def test_corpus_flux_presets_lint_with_flux_rules(name: str, guidance: bool) -> None:
    cfg = load_config(str(CORPUS / "kohya_ss" / name))
    codes = [f.code for f in lint_config(cfg, all_rules())]
    assert cfg.family == "flux1"
    assert ("LC418" in codes) is guidance                 # the second preset keeps the GUI's 3.5
    assert "LC425" in codes                               # SD settings (noise_offset/min_snr_gamma) copied over
    assert "LC406" not in codes and "LC409" not in codes and "LC412" not in codes   # no SD rule misfires
    assert "LC420" not in codes                           # text_encoder_lr 0: the GUI passes unet-only


def test_flux_only_options_on_sd_configs_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "sdxl.toml"
    path.write_text('# lora-compat: script = "sdxl_train_network.py"\nnetwork_module = "networks.lora"\n'
                    'guidance_scale = 1.0\nblocks_to_swap = 4\ncache_text_encoder_outputs = true\n', encoding="utf-8")
    cfg = load_config(str(path))
    findings = lint_config(cfg, all_rules())
    assert cfg.family == "sdxl"
    conflict = {f.key for f in findings if f.code == "LC410"}
    assert {"guidance_scale", "blocks_to_swap"} <= conflict         # model-family-conflict names each option
    assert not {f.code for f in findings} & _FLUX_CODES             # no FLUX rule on an SD config
    assert not [f for f in findings if f.code == "LC406"]           # SDXL has the text-encoder cache
