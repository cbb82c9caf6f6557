"""The planned PEFT configs, applied with peft to tiny models of the real topology, wrap exactly the modules
sd-scripts' networks.lora creates (golden kohya_lora_keys.json), with the right rank and alpha each."""

from __future__ import annotations

import pytest

from lora_compat.config.model import CanonicalConfig
from lora_compat.plan import make_plan

from shared_data import golden

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


# --- independent checks of the kohya <-> module-path mapping and of block-wise ranks -------------------------

_SGM_RESNET = {"conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
               "conv_shortcut": "skip_connection"}


def _sdxl_sgm_path(path: str) -> str:
    """diffusers SDXL UNet path -> sd-scripts' SGM/LDM path, written from the SDXL block layout (2 resnets per
    down block, 3 per up block, attention in down 1-2 / up 0-1; downsample at input_blocks 3 and 6)."""
    p = path.split(".")
    if p[0] == "down_blocks":
        i, kind, j, rest = int(p[1]), p[2], int(p[3]), p[4:]
        if kind == "downsamplers":
            return f"input_blocks.{3 * (i + 1)}.0.op"
        head = f"input_blocks.{3 * i + j + 1}.{0 if kind == 'resnets' else 1}"
    elif p[0] == "mid_block":
        kind, j, rest = p[1], int(p[2]), p[3:]
        head = f"middle_block.{1 if kind == 'attentions' else 2 * j}"
    elif p[0] == "up_blocks":
        i, kind, j, rest = int(p[1]), p[2], int(p[3]), p[4:]
        if kind == "upsamplers":
            return f"output_blocks.{3 * i + 2}.2.conv"  # up_blocks 0 and 1 hold attention, so index 2
        head = f"output_blocks.{3 * i + j}.{0 if kind == 'resnets' else 1}"
    else:
        raise AssertionError(f"unexpected SDXL module {path}")
    if kind == "resnets":
        rest = [_SGM_RESNET[rest[0]]]
    return ".".join([head, *rest])


def expected_kohya_name(arch: str, part: str, path: str) -> str:
    """sd-scripts' LoRA name of a module: prefix + module path with '.' -> '_' (reference lora-key-layouts)."""
    if part == "unet":
        return "lora_unet_" + (_sdxl_sgm_path(path) if arch == "sdxl" else path).replace(".", "_")
    prefix = {"text_encoder": "lora_te1" if arch == "sdxl" else "lora_te", "text_encoder_2": "lora_te2"}[part]
    return f"{prefix}_text_model_" + path.removeprefix("text_model.").replace(".", "_")


@pytest.mark.parametrize("arch", ["sd1", "sd2", "sdxl"])
def test_kohya_names_and_layer_kinds_are_right(arch: str) -> None:
    """Each planned path carries the kohya name derived independently here, and the module at that path is the
    layer kind (Linear / 1x1 conv / 3x3 conv) of the golden key's shape: a swapped mapping cannot pass."""
    import torch

    from lora_compat.train.tiny import tiny_components

    case = golden("kohya_lora_keys.json")["cases"][f"{arch}/locon_dim8_conv4"]
    plan = make_plan(_config(arch, "locon"))
    comps = tiny_components(arch)
    models = {"unet": comps.unet, "text_encoder": comps.text_encoders[0]}
    if arch == "sdxl":
        models["text_encoder_2"] = comps.text_encoders[1]
    seen = set()
    for adapter in plan.adapters:
        modules = dict(models[adapter.part].named_modules())
        for path, kohya in adapter.kohya_names.items():
            assert kohya == expected_kohya_name(arch, adapter.part, path), path
            module = modules.get(path) or modules.get(f"text_model.{path}")
            shape = case[f"{kohya}.lora_down.weight"]
            if len(shape) == 2:
                assert isinstance(module, torch.nn.Linear), (path, shape)
            else:
                assert isinstance(module, torch.nn.Conv2d) and list(module.kernel_size) == shape[2:], (path, shape)
            seen.add(kohya)
    assert seen == {k.rsplit(".", 2)[0] for k in case if k.endswith(".lora_down.weight")}


def _block_of(kohya: str, arch: str) -> int:
    """Block position of a UNet module (reference §6.6), written from the reference's map."""
    import re

    name = kohya.removeprefix("lora_unet_")
    if arch == "sdxl":
        for prefix, base in (("input_blocks_", 1), ("middle_block_", 10), ("output_blocks_", 13)):
            if name.startswith(prefix):
                return base + int(name[len(prefix):].split("_")[0])
        raise AssertionError(kohya)
    if name.startswith("mid_block_"):
        return 12
    m = re.match(r"(down|up)_blocks_(\d)_(resnets|attentions|downsamplers|upsamplers)_(\d)_", name)
    i, j = int(m.group(2)), int(m.group(4))
    idx = 3 * i + (2 if m.group(3).endswith("samplers") else j)
    return (1 if m.group(1) == "down" else 13) + idx


@pytest.mark.parametrize("arch", ["sd1", "sdxl"])
def test_block_dims_and_alphas_per_module_with_peft(arch: str) -> None:
    """block_dims / block_alphas / conv_block_dims / conv_block_alphas, applied by PEFT to the tiny model: every
    module gets its own block's rank and alpha (text encoders keep network_dim / network_alpha)."""
    from peft import LoraConfig, inject_adapter_in_model

    from lora_compat.train.tiny import tiny_components

    n = 23 if arch == "sdxl" else 25
    dims = [2 + (i % 5) for i in range(n)]
    alphas = [0.5 * (i + 1) for i in range(n)]
    conv_dims = [1 + (i % 3) for i in range(n)]
    conv_alphas = [0.25 * (i + 2) for i in range(n)]
    cfg = _config(arch, "lora")
    cfg.set("network_args", ["block_dims=" + ",".join(map(str, dims)),
                             "block_alphas=" + ",".join(map(str, alphas)),
                             "conv_block_dims=" + ",".join(map(str, conv_dims)),
                             "conv_block_alphas=" + ",".join(map(str, conv_alphas))])
    plan = make_plan(cfg)
    assert not plan.unsupported, plan.unsupported
    case = golden("kohya_lora_keys.json")["cases"][f"{arch}/locon_dim8_conv4"]
    expected = {}
    for key, shape in case.items():
        if not key.endswith(".lora_down.weight"):
            continue
        name = key.rsplit(".", 2)[0]
        if not name.startswith("lora_unet_"):
            expected[name] = (8, 4.0)
            continue
        b = _block_of(name, arch)
        expected[name] = (conv_dims[b], conv_alphas[b]) if len(shape) == 4 and shape[2] == 3 else (dims[b], alphas[b])

    got = {}
    if arch == "sdxl":
        # PEFT matches every rank_pattern key against every module (~1000 x 1000 regexes on SDXL: a minute);
        # SD1 below runs PEFT itself, here its rule for exact-path keys (pattern, else r / lora_alpha) is applied
        for adapter in plan.adapters:
            kw = adapter.peft_kwargs
            for path in kw["target_modules"]:
                got[adapter.kohya_names[path]] = (kw["rank_pattern"].get(path, kw["r"]),
                                                  kw["alpha_pattern"].get(path, kw["lora_alpha"]))
    else:
        comps = tiny_components(arch)
        models = {"unet": comps.unet, "text_encoder": comps.text_encoders[0]}
        for adapter in plan.adapters:
            model = models[adapter.part]
            inject_adapter_in_model(LoraConfig(**adapter.peft_kwargs), model, adapter_name="default")
            for path, module in model.named_modules():
                if hasattr(module, "lora_A") and "default" in module.lora_A:
                    kohya = adapter.kohya_names.get(path) or adapter.kohya_names.get(path.removeprefix("text_model."))
                    got[kohya] = (module.r["default"], module.lora_alpha["default"])
    assert set(got) == set(expected)
    wrong = {k: (got[k], expected[k]) for k in expected if got[k][0] != expected[k][0]
             or abs(got[k][1] - expected[k][1]) > 1e-9}
    assert not wrong, list(wrong.items())[:5]


@pytest.mark.parametrize("rslora", [False, True])
def test_rslora_scaling_reaches_peft(tmp_path, rslora: bool) -> None:
    """Native use_rslora: PEFT scales by lora_alpha/sqrt(r) instead of kohya's lora_alpha/r (per module, conv
    ranks included)."""
    import math

    from peft import LoraConfig, inject_adapter_in_model

    from lora_compat.config.load import load_config
    from lora_compat.train.tiny import tiny_components

    p = tmp_path / "n.toml"
    p.write_text('format = "lora-compat/1"\n[model]\narch = "sd1"\n[network]\nkind = "locon"\nr = 16\n'
                 f'lora_alpha = 8\nconv_r = 4\nconv_alpha = 2.0\nuse_rslora = {str(rslora).lower()}\n')
    adapter = make_plan(load_config(str(p))).adapter("unet")
    model = tiny_components("sd1").unet
    inject_adapter_in_model(LoraConfig(**adapter.peft_kwargs), model, adapter_name="default")
    scales = {(m.r["default"], m.lora_alpha["default"]): m.scaling["default"] for _, m in model.named_modules()
              if hasattr(m, "scaling") and "default" in getattr(m, "scaling", {})}
    assert set(scales) == {(16, 8), (4, 2.0)}
    for (r, alpha), scale in scales.items():
        assert math.isclose(scale, alpha / (math.sqrt(r) if rslora else r)), (r, alpha, scale)
