"""Tiny models must carry the real SD1/SD2/SDXL module names (golden kohya_lora_keys.json)."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.train.tiny import ARCHES, save_tiny_pipeline, tiny_components  # noqa: E402

from shared_data import golden  # noqa: E402


@pytest.fixture(scope="module")
def components():
    return {arch: tiny_components(arch) for arch in ARCHES}


def _golden_modules(case: str) -> dict[str, list[int]]:
    """kohya module name -> lora_down.weight shape for one golden case."""
    keys = golden("kohya_lora_keys.json")["cases"][case]
    return {k.split(".")[0]: shape for k, shape in keys.items() if k.endswith("lora_down.weight")}


def _kohya_table(comps, arch: str) -> dict[str, torch.nn.Module]:
    """Our modules under the names sd-scripts gives them (SD1/SD2 UNet use diffusers paths)."""
    table: dict[str, torch.nn.Module] = {}
    if arch != "sdxl":
        for name, mod in comps.unet.named_modules():
            table["lora_unet_" + name.replace(".", "_")] = mod
    prefixes = ["lora_te_"] if arch != "sdxl" else ["lora_te1_", "lora_te2_"]
    for prefix, te in zip(prefixes, comps.text_encoders, strict=True):
        for name, mod in te.named_modules():
            # transformers v5 dropped the "text_model." level; sd-scripts' names keep it.
            name = name.removeprefix("text_model.")
            table[prefix + "text_model_" + name.replace(".", "_")] = mod
    return table


@pytest.mark.golden
@pytest.mark.parametrize("arch", ["sd1", "sd2"])
@pytest.mark.parametrize("kind", ["lora_dim8_alpha4", "locon_dim8_conv4"])
def test_every_golden_module_exists_with_same_kind(components, arch, kind):
    comps = components[arch]
    table = _kohya_table(comps, arch)
    gold = _golden_modules(f"{arch}/{kind}")
    missing = sorted(set(gold) - set(table))
    assert not missing, missing[:5]
    for name, shape in gold.items():
        mod = table[name]
        if len(shape) == 4:
            assert isinstance(mod, torch.nn.Conv2d), name
            assert tuple(mod.kernel_size) == tuple(shape[2:]), name
        else:
            assert isinstance(mod, torch.nn.Linear), name


@pytest.mark.golden
@pytest.mark.parametrize("arch", ARCHES)
def test_text_encoder_layer_counts_match_golden(components, arch):
    comps = components[arch]
    case = golden("kohya_lora_keys.json")["cases"][f"{arch}/lora_dim8_alpha4"]
    prefixes = ["lora_te_"] if arch != "sdxl" else ["lora_te1_", "lora_te2_"]
    for prefix, te in zip(prefixes, comps.text_encoders, strict=True):
        layers = {int(m.group(1)) for k in case if k.startswith(prefix)
                  for m in [re.search(r"layers_(\d+)_", k)] if m}
        assert len(layers) == te.config.num_hidden_layers
    table = _kohya_table(comps, arch)
    te_gold = {k for k in _golden_modules(f"{arch}/lora_dim8_alpha4") if k.startswith("lora_te")}
    assert te_gold <= set(table)


@pytest.mark.golden
def test_sdxl_unet_transformer_counts_match_golden(components):
    """SDXL kohya names use LDM paths; count transformer blocks per level instead of names."""
    gold = _golden_modules("sdxl/lora_dim8_alpha4")
    gold_blocks = {re.sub(r"_attn[12]_.*|_ff_.*", "", k) for k in gold if "transformer_blocks" in k}
    ours = {n.rsplit(".attn1", 1)[0] for n, _ in components["sdxl"].unet.named_modules()
            if n.endswith(".attn1")}
    assert len(ours) == len(gold_blocks) == 2 * 2 + 2 * 10 + 10 + 3 * 2 + 3 * 10


def test_sdxl_unet_has_text_time_conditioning(components):
    unet = components["sdxl"].unet
    assert unet.config.addition_embed_type == "text_time"
    assert type(components["sdxl"].text_encoders[1]).__name__ == "CLIPTextModelWithProjection"
    out = unet(torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 77, unet.config.cross_attention_dim),
               added_cond_kwargs={"text_embeds": torch.randn(1, 48), "time_ids": torch.zeros(1, 6)}).sample
    assert out.shape == (1, 4, 8, 8)


def test_tokenizer_is_offline_and_pads_to_77(components):
    tok = components["sd1"].tokenizers[0]
    ids = tok("a photo of a cat", padding="max_length", max_length=tok.model_max_length).input_ids
    assert len(ids) == 77 and ids[0] == tok.bos_token_id and tok.eos_token_id in ids


def test_components_are_deterministic_per_seed():
    a = tiny_components("sd1", seed=3).unet.conv_in.weight
    b = tiny_components("sd1", seed=3).unet.conv_in.weight
    c = tiny_components("sd1", seed=4).unet.conv_in.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sd1", "sdxl"])
def test_saved_pipeline_loads_offline_and_generates(tmp_path, arch):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    path = save_tiny_pipeline(arch, tmp_path / "model")
    cls = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    img = pipe("a cat", num_inference_steps=1, height=64, width=64, output_type="np").images
    assert img.shape == (1, 64, 64, 3)
    assert not list(tmp_path.glob(".model.*")), "temporary folder left behind"


@pytest.mark.parametrize("arch", ARCHES)
def test_tiny_models_contain_every_module_of_the_arch_tables(components, arch):
    """Every module lora_compat.arch lists (sd-scripts targets and extras) exists with the same layer kind."""
    from lora_compat import arch as tables

    comps = components[arch]
    named = {"unet": dict(comps.unet.named_modules()), "te1": dict(comps.text_encoders[0].named_modules())}
    if arch == "sdxl":
        named["te2"] = dict(comps.text_encoders[1].named_modules())
    infos = tables.all_modules(arch)
    assert infos
    for info in infos:
        mods = named[info.part]
        path = next((p for p in (info.te_path(5), info.diffusers_path) if p in mods), None)
        assert path is not None, info.kohya_name
        mod = mods[path]
        if info.kind == "linear":
            assert isinstance(mod, torch.nn.Linear), info.kohya_name
        else:
            assert isinstance(mod, torch.nn.Conv2d) and mod.kernel_size[0] == info.kernel, info.kohya_name
