"""The FLUX.1 part of a plan (lora_compat.plan.flux) vs golden flux_lora_keys.json: for every case, the command
line (``fixed_argv`` + ``argv``) read as a flux_train_network.py config and planned gives sd-scripts' module set with
its rank and alpha per module; the cases sd-scripts refuses are refused by the plan. No torch is imported."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from lora_compat.config.load import load_config
from lora_compat.plan import make_plan

from shared_data import golden

pytestmark = pytest.mark.golden


def _golden():
    try:
        return golden("flux_lora_keys.json")
    except BaseException:  # pytest.skip is raised at collection: collect nothing instead
        return {"cases": [], "fixed_argv": []}


def _header_only_dit(path: Path, variant: str) -> None:
    """A .safetensors file whose header has FLUX.1's 19 double / 38 single blocks (and guidance_in for dev), with
    empty tensors: what the plan reads of a single-file DiT without loading it."""
    keys = [f"double_blocks.{i}.img_attn.qkv.weight" for i in range(19)]
    keys += [f"single_blocks.{i}.linear1.weight" for i in range(38)]
    if variant == "flux1-dev":
        keys.append("guidance_in.in_layer.weight")
    header = json.dumps({k: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for k in keys}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def _plan(case: dict, fixed: list[str], tmp_path: Path):
    dit = tmp_path / f"{case['base_model']}.safetensors"
    if case["base_model"] != "chroma":
        _header_only_dit(dit, case["base_model"])
    argv = [a.replace("/m/flux1-dev.safetensors", str(dit)) for a in fixed] + list(case["argv"])
    quoted = " ".join(f"'{a}'" if any(c in a for c in "[],") else a for a in argv)
    cmd = tmp_path / "train.sh"
    cmd.write_text(f"accelerate launch flux_train_network.py {quoted}\n")
    return make_plan(load_config(str(cmd)))


@pytest.mark.parametrize("case", _golden()["cases"], ids=lambda c: c["name"])
def test_plan_module_set_is_sd_scripts(case: dict, tmp_path: Path) -> None:
    plan = _plan(case, _golden()["fixed_argv"], tmp_path)
    refused = {u.option: u.why for u in plan.refusals}
    if "error" in case and case["name"] != "split_qkv":   # split_qkv: the 48d368f crash; we plan PR #2396's fix
        assert refused, case["error"]
        message = case["error"].split(" / ")[0].split(": ", 1)[-1]
        assert any(message in why for why in refused.values()), (message, refused)
        return
    if case["name"] == "split_qkv":   # sd-scripts 48d368f crashes here; the plan says so and plans PR #2396's fix
        assert not refused and any("split_qkv=True" in n and "crashes" in n for n in plan.notes), plan.notes
        return
    assert plan.family == ("chroma" if case["base_model"] == "chroma" else "flux1")
    if case["base_model"] == "chroma":
        assert "model_type" in refused   # planned, but not trained yet: the DiT loader is FLUX.1's
    else:
        assert not refused, refused
        assert plan.flux.variant == case["base_model"]
    # sd-scripts' modules in its state-dict order, each with its rank and alpha (value and int/float type)
    want: dict[str, tuple[int, object]] = {}
    for key, (shape, _dtype, *value) in case["keys"].items():
        name, _, rest = key.partition(".")
        if rest == "alpha":
            want.setdefault(name, (0, None))
            want[name] = (want[name][0], value[0])
        elif rest.startswith("lora_down"):
            want[name] = (shape[0], want.get(name, (0, None))[1])
    got: dict[str, tuple[int, object]] = {}
    for adapter in plan.adapters:
        kw = adapter.peft_kwargs
        for path in kw["target_modules"]:
            ra = (kw["rank_pattern"].get(path, kw["r"]), kw["alpha_pattern"].get(path, kw["lora_alpha"]))
            assert got.setdefault(adapter.kohya_names[path], ra) == ra
    assert list(got) == list(want)
    for name, (rank, alpha) in want.items():
        if plan.flux.split_qkv and name.endswith(("_attn_qkv", "_linear1")):
            # split_qkv: the saved down is the sub-LoRAs' downs stacked (q, k, v and, in linear1, the MLP)
            assert rank in (got[name][0] * 3, got[name][0] * 4), name
        else:
            assert got[name][0] == rank, name
        assert got[name][1] == alpha and type(got[name][1]) is type(alpha), (name, got[name], alpha)
    assert plan.flux.modules == {k: v for k, v in case["module_count"].items() if k != "total"}
    assert plan.flux.split_qkv == (case["name"] in ("split_qkv_as_fixed_by_pr2396", "split_qkv_single_blocks"))


#: keys the plan leaves to the run when the training images are not here (the golden command line's /d)
RUN_FILLED = frozenset({"ss_max_train_steps"})
#: keys written at each save or during the loop (the trained file has them: test_train_flux)
SAVE_TIME = frozenset({"ss_epoch", "ss_steps", "ss_training_finished_at"})


def _metadata_cases():
    return _golden().get("metadata", [])


@pytest.mark.parametrize("case", _metadata_cases(), ids=lambda c: c["name"])
def test_plan_metadata_is_sd_scripts(case: dict, tmp_path: Path) -> None:
    """Every ss_* key train_network.py + FluxNetworkTrainer.update_metadata write for the command line (value as
    str(v), or absent when its condition is false), and the modelspec.* values; keys that need the run (clock,
    dataset, hashes) are only required to be present."""
    argv = list(_golden()["fixed_argv"]) + list(case["argv"])
    quoted = " ".join(f"'{a}'" if any(c in a for c in "[],") else a for a in argv)
    cmd = tmp_path / "train.sh"
    cmd.write_text(f"accelerate launch flux_train_network.py {quoted}\n")
    plan = make_plan(load_config(str(cmd)))
    assert not plan.refusals, plan.refusals
    md = plan.outputs.metadata
    for entry in case["train_network_metadata"]:
        key = entry["key"]
        if key in SAVE_TIME or entry["written"] is None:
            continue
        if not entry["written"]:
            if not any(e["key"] == key and e["written"] for e in case["train_network_metadata"]):
                assert key not in md, key
            continue
        assert key in md, key
        if not entry.get("runtime"):
            got = md[key]
            if got is None and key in RUN_FILLED:
                continue
            assert (None if got is None else str(got)) == entry["value"], key
    for key, want in case["flux_update_metadata"].items():
        assert str(md[key]) == want["value"], key
    spec = plan.outputs.modelspec
    for key, want in case["modelspec"]["values"].items():
        if key in ("modelspec.date", "modelspec.implementation_version") or (key == "modelspec.title"
                                                                             and "--output_name" not in argv):
            continue
        assert spec[key] == want, key
    assert "modelspec.prediction_type" not in spec   # sai_model_spec: FLUX models have none


def test_flux_options_defaults_are_the_schemas() -> None:
    """FluxOptions (semantics, below config) keeps sd-scripts' defaults as dataclass defaults; they must be the
    schema's flux_train_network.py defaults that plan reads through cfg.effective, option for option."""
    from dataclasses import asdict

    from lora_compat.config.model import CanonicalConfig
    from lora_compat.semantics.flux_options import FluxOptions

    cfg = CanonicalConfig(dialect="sd-scripts-toml", source="x.toml")
    cfg.family = "flux1"
    assert asdict(FluxOptions()) == {name: cfg.effective(name) for name in asdict(FluxOptions())}
