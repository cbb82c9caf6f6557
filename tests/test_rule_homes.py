"""One place for each sd-scripts rule (issue #11): docs/rule-homes.md names every home and each one exists; the
rules that used to be computed twice (argument lists, bucket limits, secrets, family detection, front-end step
estimates, token chunks) are computed only there."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from lora_compat import semantics
from lora_compat.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "lora_compat"
DOC = ROOT / "docs" / "rule-homes.md"


def _homes() -> list[tuple[str, str]]:
    out = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith(("| Rule", "|---")):
            continue
        home = line.split("|")[2]
        m = re.search(r"`([\w.]+):(\w+)`((?:, `\w+`)*)", home)
        assert m, f"no module:function home in {line!r}"
        module = m.group(1)
        out.append((module, m.group(2)))
        out += [(module, extra) for extra in re.findall(r"`(\w+)`", m.group(3))]
    return out


def test_every_home_in_the_doc_exists():
    homes = _homes()
    assert len(homes) >= 40
    missing = [f"{m}:{f}" for m, f in homes if not callable(getattr(importlib.import_module(m), f, None))]
    assert not missing, missing


def _calls(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            out.append((name, node.lineno))
    return out


def _defs(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _sources() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_literal_eval_of_argument_lists_only_in_semantics():
    """``optimizer_args`` / ``lr_scheduler_args`` values are parsed by one function (the three parsers that
    answered differently for ``relative_step=true`` are gone)."""
    users = [f"{p.relative_to(PKG)}:{line}" for p in _sources() for name, line in _calls(p) if name == "literal_eval"]
    assert users and all(u.startswith("semantics/args.py") for u in users), users


def test_secret_helpers_only_in_config_secrets():
    helpers = {"is_secret_key", "redact", "redact_words", "redact_text", "redact_strings", "iter_secret_values"}
    homes = {p.relative_to(PKG).as_posix(): _defs(p) & helpers for p in _sources()}
    assert {k for k, v in homes.items() if v} == {"config/secrets.py"}, homes
    assert homes["config/secrets.py"] == helpers


def test_family_detection_is_not_rederived_outside_arch():
    """train's model loading and the weights layouts ask arch.families; they read no family marker themselves."""
    markers = ("ss_base_model_version", "modelspec.architecture", "ss_v2", "_class_name", "use_linear_projection",
               "cross_attention_dim")
    for rel in ("train/models.py", "weights/layouts.py"):
        tree = ast.parse((PKG / rel).read_text(encoding="utf-8"))
        consts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        code = [c for c in consts if c in markers]
        assert not code, f"{rel} reads family markers itself: {code}"


def test_train_loader_takes_the_family_from_arch_families(tmp_path):
    from lora_compat.train.models import load_models

    flux = tmp_path / "flux"
    (flux / "transformer").mkdir(parents=True)
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}), encoding="utf-8")
    with pytest.raises(UserError, match=r"FLUX\.1"):
        load_models(str(flux), "sd1")
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "model_index.json").write_text(json.dumps({"_class_name": "SomethingPipeline"}), encoding="utf-8")
    with pytest.raises(UserError, match="do not say which model family"):
        load_models(str(unknown), "sd1")


def test_weights_tie_break_uses_family_from_metadata(monkeypatch):
    from lora_compat.weights import layouts

    assert layouts.family_from_metadata is importlib.import_module("lora_compat.arch.families").family_from_metadata
    assert not hasattr(layouts, "_metadata_arch")


def test_front_end_estimates_have_one_home():
    """The readers and the plan (which redoes a reader's estimate once the folders are counted) call the same
    functions; each answers as the front-end's own formula."""
    assert semantics.kohya_gui_warmup_steps(12.5, 101) == round(12.5 * 101 / 100)
    assert semantics.kohya_gui_warmup_steps(12.5, 101, whole_numbers=True) == round(12 * 101 / 100)
    assert semantics.derrian_a1_max_train_steps(25, 4, 3) == 18                           # int(25 / 4 x 3)
    assert semantics.derrian_a1_max_train_steps(25, 4, 3, floor_per_epoch=True) == 18     # int(25 // 4 x 3)
    assert semantics.derrian_a1_max_train_steps(27, 4, 3, floor_per_epoch=True) == 18
    assert semantics.derrian_a1_max_train_steps(27, 4, 3) == 20
    assert semantics.derrian_a1_max_train_steps(27, 4, 3, reg_samples=5) == 40
    assert semantics.derrian_a1_warmup_steps(99, 0.05) == 4                              # int(4.95)
    assert semantics.derrian_ui_warmup_steps(99, 0.05) == 5                              # round(4.95)
    assert semantics.derrian_ui_max_train_steps(25, 3, 4) == 18                          # 75 // 4
    for rel, names in (("config/dialects/kohya_gui.py", {"kohya_gui_max_train_steps", "kohya_gui_warmup_steps"}),
                       ("config/dialects/derrian_argstore.py",
                        {"derrian_a1_max_train_steps", "derrian_a1_warmup_steps"}),
                       ("config/dialects/derrian_toml.py", {"derrian_ui_max_train_steps", "derrian_ui_warmup_steps",
                                                            "batches_per_epoch", "max_train_steps_for_epochs"}),
                       ("plan/steps.py", {"derrian_a1_warmup_steps", "derrian_ui_warmup_steps", "batches_per_epoch",
                                          "kohya_gui_warmup_steps", "train_epochs"})):
        called = {name for name, _ in _calls(PKG / rel)}
        assert names <= called, (rel, names - called)
        assert "ceil" not in called, f"{rel} computes a step count itself"


def test_reg_pattern_lists_have_one_parser():
    from lora_compat.arch.flux import parse_reg_dims

    text = " attn=8, bad ,mlp = 4.5,x=y, =3,attn=16"
    assert semantics.args.pattern_values(text, as_int=True) == {"attn": 16, "": 3}
    assert parse_reg_dims(text) == semantics.args.pattern_values(text, as_int=True)
    assert semantics.args.pattern_values(text, as_int=False) == {"attn": 16.0, "mlp": 4.5, "": 3.0}


def test_token_chunks_have_one_rule():
    """train's tokenizer cuts long captions with semantics.chunk_token_ids (no second copy in torch)."""
    pytest.importorskip("torch", reason="train's tokenizer needs torch (the light Python 3.10 run has none)")
    from lora_compat.train import models

    assert "chunk_token_ids" in {name for name, _ in _calls(PKG / "train" / "models.py")}

    class Tok:
        eos_token_id, pad_token_id = 2, 0

        def __call__(self, captions, **kw):
            import torch

            n = kw["max_length"]
            rows = [[1] + list(range(10, 10 + k)) + [2] + [0] * (n - k - 2) for k in (3, 100)]
            return type("Out", (), {"input_ids": torch.tensor(rows)})()

    ids = models.tokenize(Tok(), ["a", "b"], 150)
    assert tuple(ids.shape) == (2, 2, 77)
    assert ids[0, 1, :3].tolist() == [1, 2, 0]           # BOS PAD ... -> BOS EOS PAD
    assert ids[1, 0, -1].item() == 2                     # a cut-off chunk ends with EOS
    for b, row in enumerate(Tok()(["a", "b"], max_length=152).input_ids.tolist()):
        assert ids[b].tolist() == semantics.chunk_token_ids(row, eos_id=2, pad_id=0)


def test_schema_secret_marker_agrees_with_the_secret_key_rule():
    """``x-secret`` in the option schema (explain, options doc) names exactly the options the one redaction rule
    (:func:`lora_compat.config.secrets.is_secret_key`) treats as credentials."""
    from lora_compat.config import options
    from lora_compat.config.secrets import is_secret_key

    marked = set(options.secret_options())
    assert marked and marked == {n for n in options._properties() if is_secret_key(n)}
