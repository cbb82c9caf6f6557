"""FLUX.1 base models for training, offline: the tiny models (``tiny:flux1-dev`` / ``tiny:flux1-schnell``), a
diffusers ``FluxPipeline`` folder, or the single files users have (sd-scripts' ``--pretrained_model_name_or_path``,
``--ae``, ``--clip_l``, ``--t5xxl``): ``flux1-dev.safetensors`` / ``flux1-schnell.safetensors`` in BFL layout (fp8
files too), ``ae.safetensors``, ``clip_l.safetensors``, ``t5xxl_fp16.safetensors`` / ``t5xxl_fp8_e4m3fn.safetensors``.
Configs for the real models ship in ``lora_compat/data/models/flux1-dev`` and ``flux1-schnell``; tokenizers are
never downloaded: a folder's ``tokenizer`` / ``tokenizer_2`` (or ``tokenizer_dir``) must hold them.

Also :func:`diffusers_dit` (the DiT behind sd-scripts' call signature) and :func:`encode_latents`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError
from lora_compat.resources import DATA_DIR
from lora_compat.train.flux.tiny import VARIANTS, FluxComponents, tiny_flux_components

MODELS_DATA = DATA_DIR / "models"
TINY_PREFIX = "tiny:"
TINY_SPECS = {f"{TINY_PREFIX}flux1-{v}": v for v in VARIANTS}
KEY = "pretrained_model_name_or_path"
# keys some CLIP-L files carry that CLIPTextModel does not hold
CLIP_EXTRA_KEYS = ("text_model.embeddings.position_ids", "embeddings.position_ids", "text_projection.weight",
                   "logit_scale")


def packaged_config_dir(variant: str) -> Path:
    """The shipped diffusers configs of FLUX.1 ``dev`` or ``schnell`` (no weights)."""
    return MODELS_DATA / f"flux1-{variant}"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _read_safetensors(path: Path, key: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"{path}: file not found", key=key)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise UserError(f"{path}: only .safetensors files are loaded (a pickled {path.suffix or 'file'} can run "
                        "code); convert it to .safetensors first", key=key)
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise UserError(f"{path}: not a readable safetensors file: {_first_line(exc)}", key=key) from None


def _cast(sd: dict[str, Any], dtype: Any) -> dict[str, Any]:
    if dtype is None:
        return sd
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


def _load_into(cls_build: Callable[[], Any], sd: dict[str, Any], path: Path, key: str, what: str) -> Any:
    """Build a model on the meta device and assign the file's tensors (strict: every weight from the file)."""
    import torch

    with torch.device("meta"):
        model = cls_build()
    expected = set(model.state_dict())
    missing = sorted(expected - set(sd))
    unexpected = sorted(set(sd) - expected)
    if missing or unexpected:
        detail = (f"missing {missing[0]}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else "")) if missing \
            else (f"unexpected {unexpected[0]}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
        raise UserError(f"{path}: not a {what} checkpoint of this shape: {detail}", key=key)
    try:
        model.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: {what} tensors do not fit the config: {_first_line(exc)}", key=key) from None
    return model.eval()


def load_transformer_file(path: str | Path, *, config_dir: str | Path | None = None, dtype: Any = None,
                          key: str = KEY) -> Any:
    """A FLUX.1 DiT from one ``.safetensors`` file in BFL layout (``double_blocks.*``, with or without
    ``model.diffusion_model.``) or diffusers layout; dev/schnell and block counts are read from the keys; the
    widths come from the packaged config or ``config_dir`` (a diffusers folder with ``transformer/config.json``)."""
    from diffusers import FluxTransformer2DModel

    from lora_compat.train.flux.checkpoint import (
        bfl_transformer_to_diffusers,
        has_guidance_embedder,
        is_bfl_transformer,
        is_chroma,
        strip_bfl_prefix,
        transformer_config_from_bfl,
    )

    path = Path(path)
    sd = _read_safetensors(path, key)
    if is_chroma(sd):
        raise UserError(f"{path}: a Chroma checkpoint; Chroma training is not supported yet", key=key)
    if is_bfl_transformer(sd):
        variant = "dev" if has_guidance_embedder(strip_bfl_prefix(dict.fromkeys(sd))) else "schnell"
        base = _transformer_base_config(config_dir, variant, path, key)
        try:
            cfg = transformer_config_from_bfl(sd, base)
            converted = bfl_transformer_to_diffusers(sd)
        except ValueError as exc:
            raise UserError(f"{path}: {exc}; pass the model's diffusers configs as config_dir", key=key) from None
        except KeyError as exc:
            raise UserError(f"{path}: incomplete FLUX.1 checkpoint: missing {exc.args[0]}", key=key) from None
    elif any(k.startswith(("transformer_blocks.", "transformer.transformer_blocks.")) for k in sd):
        converted = {k.removeprefix("transformer."): v for k, v in sd.items()}
        variant = "dev" if any(k.startswith("time_text_embed.guidance_embedder.") for k in converted) else "schnell"
        cfg = _transformer_base_config(config_dir, variant, path, key)
        cfg["guidance_embeds"] = variant == "dev"
        cfg["num_layers"] = len({k.split(".")[1] for k in converted if k.startswith("transformer_blocks.")})
        cfg["num_single_layers"] = len({k.split(".")[1] for k in converted
                                        if k.startswith("single_transformer_blocks.")})
    else:
        raise UserError(f"{path}: not a FLUX.1 transformer checkpoint (no double_blocks / transformer_blocks keys)",
                        key=key)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    return _load_into(lambda: FluxTransformer2DModel(**cfg), _cast(converted, dtype), path, key, "FLUX.1 transformer")


def _transformer_base_config(config_dir: str | Path | None, variant: str, path: Path, key: str) -> dict[str, Any]:
    folder = Path(config_dir) if config_dir is not None else packaged_config_dir(variant)
    cfg_file = folder / "transformer" / "config.json"
    if not cfg_file.is_file():
        raise UserError(f"{path}: no transformer config at {cfg_file}", key=key)
    return json.loads(cfg_file.read_text(encoding="utf-8"))


def load_ae_file(path: str | Path, *, config_dir: str | Path | None = None, dtype: Any = None,
                 key: str = "ae") -> Any:
    """FLUX's AE from ``ae.safetensors`` (BFL/LDM key layout, 16 latent channels) with diffusers' own VAE key
    conversion and the packaged (or ``config_dir``'s) ``vae/config.json``."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    path = Path(path)
    sd = _read_safetensors(path, key)
    folder = Path(config_dir) if config_dir is not None else packaged_config_dir("dev")
    cfg = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    if any(k.startswith(("encoder.down_blocks.", "decoder.up_blocks.")) for k in sd):
        converted = sd  # already diffusers layout
    else:
        converted = convert_ldm_vae_checkpoint(sd, cfg)
        if not converted:
            raise UserError(f"{path}: not an autoencoder checkpoint (no encoder/decoder keys)", key=key)
    return _load_into(lambda: AutoencoderKL(**cfg), _cast(converted, dtype), path, key, "FLUX.1 AE")


def load_clip_l_file(path: str | Path, *, config_dir: str | Path | None = None, dtype: Any = None,
                     key: str = "clip_l") -> Any:
    """CLIP-L from ``clip_l.safetensors`` (transformers' ``CLIPTextModel`` keys, with or without ``text_model.``)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    sd = _read_safetensors(path, key)
    folder = Path(config_dir) if config_dir is not None else packaged_config_dir("dev")
    config = CLIPTextConfig.from_pretrained(str(folder / "text_encoder"))

    import torch

    with torch.device("meta"):
        names = set(CLIPTextModel(config).state_dict())
    out = {}
    for k, v in sd.items():
        if k in CLIP_EXTRA_KEYS:
            continue
        for cand in (k, k.removeprefix("text_model."), "text_model." + k):
            if cand in names:
                out[cand] = v
                break
        else:
            out[k] = v  # reported as unexpected
    return _load_into(lambda: CLIPTextModel(config), _cast(out, dtype), path, key, "CLIP-L text encoder")


def load_t5xxl_file(path: str | Path, *, config_dir: str | Path | None = None, dtype: Any = None,
                    key: str = "t5xxl") -> Any:
    """T5-XXL's encoder from ``t5xxl_fp16.safetensors`` / ``t5xxl_fp8_e4m3fn.safetensors`` (``dtype`` None keeps
    the file's dtypes, e.g. fp8 for ``fp8_base``). Scaled-fp8 files (per-tensor ``scale_weight``) are refused."""
    from transformers import T5Config, T5EncoderModel

    path = Path(path)
    sd = _read_safetensors(path, key)
    if any(k.endswith("scale_weight") or k == "scaled_fp8" for k in sd):
        raise UserError(f"{path}: a scaled-fp8 T5 (per-tensor scale_weight); use t5xxl_fp16 or t5xxl_fp8_e4m3fn",
                        key=key)
    folder = Path(config_dir) if config_dir is not None else packaged_config_dir("dev")
    config = T5Config.from_pretrained(str(folder / "text_encoder_2"))
    sd = {k: v for k, v in sd.items() if not k.startswith(("decoder.", "lm_head."))}
    if "shared.weight" not in sd and "encoder.embed_tokens.weight" in sd:
        sd["shared.weight"] = sd["encoder.embed_tokens.weight"]
    if "shared.weight" in sd:
        sd["encoder.embed_tokens.weight"] = sd["shared.weight"]  # tied in T5EncoderModel
    return _load_into(lambda: T5EncoderModel(config), _cast(sd, dtype), path, key, "T5-XXL encoder")


def load_tokenizers(root: str | Path, *, key: str = KEY) -> tuple[Any, Any]:
    """CLIP-L and T5 tokenizers from ``root/tokenizer`` and ``root/tokenizer_2`` (never downloaded)."""
    from transformers import CLIPTokenizer, T5TokenizerFast

    root = Path(root)
    missing = [n for n in ("tokenizer", "tokenizer_2")
               if not any((root / n / f).is_file() for f in ("vocab.json", "tokenizer.json", "spiece.model"))]
    if missing:
        where = ", ".join(str(root / n) for n in missing)
        raise UserError(f"FLUX.1 needs the CLIP-L and T5 tokenizers offline; missing {where} (copy the 'tokenizer' "
                        "and 'tokenizer_2' folders of a diffusers FLUX.1 model there, or pass tokenizer_dir)", key=key)
    try:
        return CLIPTokenizer.from_pretrained(str(root / "tokenizer")), T5TokenizerFast.from_pretrained(
            str(root / "tokenizer_2"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{root}: cannot load the tokenizers: {_first_line(exc)}", key=key) from None


def _load_folder(path: Path, dtype: Any) -> FluxComponents:
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5EncoderModel

    index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    if not str(index.get("_class_name", "")).startswith("Flux"):
        raise UserError(f"{path}: a {index.get('_class_name')} folder, not FLUX.1", key=KEY)
    try:
        transformer = FluxTransformer2DModel.from_pretrained(path, subfolder="transformer", torch_dtype=dtype)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtype)
        clip = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype)
        t5 = T5EncoderModel.from_pretrained(path, subfolder="text_encoder_2", dtype=dtype)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot load the diffusers FLUX.1 model: {_first_line(exc)}", key=KEY) from None
    clip_tok, t5_tok = load_tokenizers(path)
    variant = "dev" if transformer.config.guidance_embeds else "schnell"
    comps = FluxComponents(transformer, vae, clip.eval(), t5.eval(), clip_tok, t5_tok, variant)
    if (path / "lora_compat_tiny.json").is_file():
        comps.extra["tiny"] = True
    return comps


def load_flux_models(spec: str, *, clip_l: str | None = None, t5xxl: str | None = None, ae: str | None = None,
                     config_dir: str | Path | None = None, tokenizer_dir: str | Path | None = None,
                     dtype: Any = None, seed: int = 0) -> FluxComponents:
    """DiT, AE, CLIP-L, T5-XXL and tokenizers for ``spec``: ``tiny:flux1-dev`` / ``tiny:flux1-schnell``, a
    diffusers FLUX.1 folder, or a DiT ``.safetensors`` file (then ``ae``, ``clip_l`` and ``t5xxl`` files are
    required, as in sd-scripts). ``clip_l`` / ``t5xxl`` / ``ae`` files also replace a folder's components.
    ``dtype`` casts floating tensors while loading (None keeps the files' dtypes)."""
    if not spec:
        raise UserError("no base model: set pretrained_model_name_or_path", key=KEY)
    if spec.startswith(TINY_PREFIX):
        if spec not in TINY_SPECS:
            raise UserError(f"unknown tiny model {spec!r}; use one of {', '.join(TINY_SPECS)}", key=KEY)
        comps = tiny_flux_components(TINY_SPECS[spec], seed)
        comps.extra["tiny"] = True
        if dtype is not None:
            for m in (comps.transformer, comps.vae, comps.clip_l, comps.t5xxl):
                m.to(dtype)
        return comps
    path = Path(spec)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise UserError(f"{spec}: not a diffusers model folder (no model_index.json)", key=KEY)
        comps = _load_folder(path, dtype)
    elif path.is_file():
        absent = [name for name, value in (("ae", ae), ("clip_l", clip_l), ("t5xxl", t5xxl)) if not value]
        if absent:
            raise UserError(f"{spec}: a single-file FLUX.1 transformer needs the other parts as files too; set "
                            + ", ".join(absent), key=absent[0])
        transformer = load_transformer_file(path, config_dir=config_dir, dtype=dtype)
        clip_tok, t5_tok = load_tokenizers(Path(tokenizer_dir) if tokenizer_dir else path.parent)
        variant = "dev" if transformer.config.guidance_embeds else "schnell"
        comps = FluxComponents(transformer, None, None, None, clip_tok, t5_tok, variant)
    else:
        raise UserError(f"base model {spec!r} not found (a diffusers FLUX.1 folder, a .safetensors file, or "
                        f"{' / '.join(TINY_SPECS)}; hub ids are not downloaded)", key=KEY)
    if ae:
        comps.vae = load_ae_file(ae, config_dir=config_dir, dtype=dtype)
    if clip_l:
        comps.clip_l = load_clip_l_file(clip_l, config_dir=config_dir, dtype=dtype)
    if t5xxl:
        comps.t5xxl = load_t5xxl_file(t5xxl, config_dir=config_dir, dtype=dtype)
    return comps


def diffusers_dit(transformer: Any) -> Callable[..., Any]:
    """``transformer`` (diffusers ``FluxTransformer2DModel``) behind BFL's ``Flux.forward`` keywords, as
    :func:`lora_compat.train.flux.loss.flux_loss_step` calls the DiT. The T5 mask becomes sd-scripts' key mask
    over ``[text, image]`` tokens (text padding masked, image tokens always visible) in every block; a model
    without a guidance embedder (schnell) gets no guidance. ``transformer`` may be wrapped for multi-process
    training (DistributedDataParallel): it is called as given, its config read from the model inside."""
    import torch

    guidance_embeds = bool(getattr(transformer, "module", transformer).config.guidance_embeds)

    def call(*, img: Any, img_ids: Any, txt: Any, txt_ids: Any, y: Any, timesteps: Any, guidance: Any,
             txt_attention_mask: Any = None) -> Any:
        kwargs: dict[str, Any] = {}
        if txt_attention_mask is not None:
            keep = torch.cat([txt_attention_mask.to(torch.bool),
                              torch.ones(img.shape[0], img.shape[1], dtype=torch.bool, device=img.device)], dim=1)
            kwargs["joint_attention_kwargs"] = {"attention_mask": keep[:, None, None, :]}
        return transformer(hidden_states=img, encoder_hidden_states=txt, pooled_projections=y, timestep=timesteps,
                           img_ids=img_ids[0] if img_ids.ndim == 3 else img_ids,
                           txt_ids=txt_ids[0] if txt_ids.ndim == 3 else txt_ids,
                           guidance=guidance if guidance_embeds else None,
                           return_dict=False, **kwargs)[0]

    return call


def encode_latents(vae: Any, images: Any) -> Any:
    """FLUX latents of ``images`` in [-1, 1]: a sample of the AE posterior, ``(z - shift_factor) * scaling_factor``
    (BFL ``AutoEncoder.encode``; sd-scripts samples, it does not take the mean)."""
    z = vae.encode(images.to(vae.dtype)).latent_dist.sample()
    return (z - vae.config.shift_factor) * vae.config.scaling_factor


def decode_latents(vae: Any, latents: Any) -> Any:
    """Images in [-1, 1] from FLUX latents (the inverse normalisation, then the AE decoder)."""
    z = latents / vae.config.scaling_factor + vae.config.shift_factor
    return vae.decode(z.to(vae.dtype)).sample
