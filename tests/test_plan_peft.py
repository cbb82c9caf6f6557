"""The planned PEFT configs, applied with peft to tiny models of the real topology, wrap exactly the modules
sd-scripts' networks.lora creates (golden kohya_lora_keys.json), with the right rank and alpha each."""

from __future__ import annotations

import pytest

from lora_compat.config.model import CanonicalConfig
from lora_compat.plan import make_plan
from tests.conftest import golden

pytest.importorskip("peft")
pytest.importorskip("diffusers")

CASES = [(arch, algo) for arch in ("sd1", "sd2", "sdxl") for algo in ("lora", "locon")]


def _config(arch: str, algo: str) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="test")
    cfg.set("network_module", "networks.lora")
    cfg.set("network_dim", 8)
    cfg.set("network_alpha", 4.0)
    if arch == "sdxl":
        cfg.set("sdxl", True)
    if arch == "sd2":
        cfg.set("v2", True)
    if algo == "locon":
        cfg.set("network_args", ["conv_dim=4", "conv_alpha=2"])
    return cfg


@pytest.mark.parametrize("arch,algo", CASES)
def test_peft_targets_equal_sd_scripts_modules(arch: str, algo: str) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    from lora_compat.train.tiny import tiny_components

    cases = golden("kohya_lora_keys.json")["cases"]
    case = cases[f"{arch}/{'lora_dim8_alpha4' if algo == 'lora' else 'locon_dim8_conv4'}"]
    expected_rank = {k.split(".")[0]: shape[0] for k, shape in case.items() if k.endswith(".lora_down.weight")}

    plan = make_plan(_config(arch, algo))
    comps = tiny_components(arch)
    models = {"unet": comps.unet, "text_encoder": comps.text_encoders[0]}
    if arch == "sdxl":
        models["text_encoder_2"] = comps.text_encoders[1]
    assert {a.part for a in plan.adapters} == set(models)

    got: dict[str, tuple[int, float]] = {}
    for adapter in plan.adapters:
        model = models[adapter.part]
        assert adapter.peft_config_class == "LoraConfig"
        inject_adapter_in_model(LoraConfig(**adapter.peft_kwargs), model, adapter_name="default")
        for name, module in model.named_modules():
            if hasattr(module, "lora_A") and "default" in module.lora_A:
                # kohya_names is keyed by the PEFT target path (TE paths without transformers-4 "text_model.")
                kohya = adapter.kohya_names.get(name) or adapter.kohya_names.get(name.removeprefix("text_model."))
                assert kohya is not None, f"{adapter.part}: {name} wrapped but not planned"
                assert kohya not in got
                got[kohya] = (module.r["default"], module.lora_alpha["default"])

    assert set(got) == set(expected_rank)
    for name, (rank, alpha) in got.items():
        assert rank == expected_rank[name], name
        is_conv3x3 = any(k == f"{name}.lora_down.weight" and len(s) == 4 and s[2] == 3 for k, s in case.items())
        assert alpha == (2.0 if is_conv3x3 else 4.0), name


@pytest.mark.parametrize("algo,cls_name", [("loha", "LoHaConfig"), ("lokr", "LoKrConfig")])
def test_lycoris_kinds_instantiate_peft_configs(algo: str, cls_name: str) -> None:
    import peft
    from peft import inject_adapter_in_model

    from lora_compat.train.tiny import tiny_components

    cfg = CanonicalConfig(dialect="native", source="test")
    cfg.set("network_module", "lycoris.kohya")
    cfg.set("network_dim", 8)
    cfg.set("network_alpha", 4.0)
    cfg.set("network_args", [f"algo={algo}", "conv_dim=4", "conv_alpha=2", "rank_dropout=0.1", "factor=4"])
    plan = make_plan(cfg)
    unet = plan.adapter("unet")
    assert unet.kind == algo and unet.peft_config_class == cls_name
    assert unet.peft_kwargs["rank_dropout"] == 0.1 and "rank_dropout" not in plan.engine_options
    config = getattr(peft, cls_name)(**unet.peft_kwargs)
    model = tiny_components("sd1").unet
    inject_adapter_in_model(config, model, adapter_name="default")
    wrapped = {n: m.r["default"] for n, m in model.named_modules() if hasattr(m, "r") and isinstance(m.r, dict)
               and "default" in m.r}
    assert set(wrapped) == set(unet.peft_kwargs["target_modules"])
    for path, r in wrapped.items():
        assert r == unet.peft_kwargs["rank_pattern"].get(path, unet.peft_kwargs["r"]), path
