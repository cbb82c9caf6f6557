"""Base models for training: SD1.x, SD2.x (incl. v-prediction) and SDXL from a diffusers folder, a single
``.safetensors`` file (offline, with configs shipped in ``lora_compat/data/models``), or the tiny
models (``tiny:sd1`` / ``tiny:sd2`` / ``tiny:sdxl``); plus prompt encoding with sd-scripts' conventions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_compat.errors import UserError
from lora_compat.resources import DATA_DIR
from lora_compat.train.tiny import ARCHES, TinyComponents, tiny_components

MODELS_DATA = DATA_DIR / "models"
TINY_PREFIX = "tiny:"


def _folder_arch(path: Path) -> str:
    """The family of a diffusers folder, as :func:`lora_compat.arch.families.family_of_model_path` decides it
    (the one place: plan, show and train agree); a UserError when its files do not tell."""
    from lora_compat.arch.families import display_name, family_of_model_path

    found = family_of_model_path(str(path))
    if found is None:
        raise UserError(f"{path}: model_index.json and the component configs do not say which model family this is",
                        key="pretrained_model_name_or_path")
    if found.family not in ARCHES:
        raise UserError(f"{path} is {display_name(found.family)} ({found.why}); this loader trains SD1, SD2 and SDXL",
                        key="pretrained_model_name_or_path")
    return found.family


def load_models(spec: str, arch: str | None = None, *, v_parameterization: bool = False,
                seed: int = 0, tokenizer_dir: str | None = None,
                config_dir: str | Path | None = None) -> TinyComponents:
    """Load UNet, VAE, text encoder(s), tokenizer(s) and the training noise scheduler.

    ``spec`` is ``tiny:<arch>``, a diffusers folder, or a single ``.safetensors`` checkpoint. ``arch`` (from the
    config: v2 / sdxl flags) must agree with what the model is; a mismatch is a UserError naming both.
    ``config_dir`` (single-file only) is a diffusers folder whose configs replace the packaged real-size ones, e.g.
    for a checkpoint of non-standard widths such as the tiny models (diffusers takes a component the checkpoint
    lacks from this folder's weights if it has them, so point it at configs only to load the file alone).
    """
    from lora_compat.train.noise import make_noise_scheduler

    if not spec:
        raise UserError("no base model: set pretrained_model_name_or_path in the config or pass --base-model",
                        key="pretrained_model_name_or_path")
    if spec.startswith(TINY_PREFIX):
        tiny_arch = spec[len(TINY_PREFIX):]
        if tiny_arch not in ARCHES:
            raise UserError(f"unknown tiny model {spec!r}; use one of "
                            + ", ".join(TINY_PREFIX + a for a in ARCHES), key="pretrained_model_name_or_path")
        comps = tiny_components(tiny_arch, seed)
        found = tiny_arch
    else:
        path = Path(spec)
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                raise UserError(f"{spec}: not a diffusers model folder (no model_index.json)",
                                key="pretrained_model_name_or_path")
            found = _folder_arch(path)
            comps = _load_folder(path, found)
            if (path / "lora_compat_tiny.json").is_file():
                comps.extra["tiny"] = True
        elif path.is_file():
            if path.suffix.lower() != ".safetensors":
                # .ckpt/.pt are pickles: loading one can run code, and a config must never do that
                raise UserError(f"{spec}: only .safetensors single-file models are loaded (a pickled "
                                f"{path.suffix or 'file'} can run code); convert it to .safetensors first",
                                key="pretrained_model_name_or_path")
            found = arch or "sd1"
            comps = _load_single_file(path, found, v_parameterization, tokenizer_dir, config_dir)
        else:
            raise UserError(f"base model {spec!r} not found (a local diffusers folder, a .safetensors file, "
                            "or tiny:sd1|sd2|sdxl; hub ids are not downloaded)",
                            key="pretrained_model_name_or_path")
    if arch and arch != found:
        raise UserError(f"the config trains {arch} (v2/sdxl flags) but base model {spec!r} is {found}",
                        key="pretrained_model_name_or_path")
    comps.arch = found
    comps.noise_scheduler = make_noise_scheduler()
    return comps


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def _load_folder(path: Path, arch: str) -> TinyComponents:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    # Everything in float32, whatever the folder stores (an fp16 folder is common): sd-scripts loads the base
    # model in float32 and casts it for mixed precision itself. transformers 5 would otherwise keep the stored
    # dtype while diffusers loads float32, and fp32 training then fails on mixed dtypes.
    f32 = {"torch_dtype": torch.float32}
    te_f32 = {"dtype": torch.float32} if _transformers_major() >= 5 else f32
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", **f32)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", **f32)
        tes = [CLIPTextModel.from_pretrained(path, subfolder="text_encoder", **te_f32)]
        toks = [CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")]
        if arch == "sdxl":
            tes.append(CLIPTextModelWithProjection.from_pretrained(path, subfolder="text_encoder_2", **te_f32))
            toks.append(CLIPTokenizer.from_pretrained(path, subfolder="tokenizer_2"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot load the diffusers model: {str(exc).splitlines()[0]}",
                        key="pretrained_model_name_or_path") from None
    return TinyComponents(unet, vae, tes, toks, None, arch)


def _load_single_file(path: Path, arch: str, v: bool, tokenizer_dir: str | None,
                      config_dir: str | Path | None = None) -> TinyComponents:
    """from_single_file with the packaged configs (or the diffusers configs in ``config_dir``); tokenizers must
    exist locally (never downloaded)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if config_dir is not None:
        config_dir = Path(config_dir)
        if not (config_dir / "model_index.json").is_file():
            raise UserError(f"{config_dir}: not a diffusers config folder (no model_index.json)",
                            key="pretrained_model_name_or_path")
    else:
        cfg_name = {"sd1": "sd1", "sd2": "sd2-v" if v else "sd2", "sdxl": "sdxl"}[arch]
        config_dir = MODELS_DATA / cfg_name
        if not config_dir.is_dir():
            raise UserError(f"{path}: no packaged {cfg_name} configs in {config_dir}",
                            key="pretrained_model_name_or_path")
    tok_root = Path(tokenizer_dir) if tokenizer_dir else path.parent
    needed = ["tokenizer"] + (["tokenizer_2"] if arch == "sdxl" else [])
    # transformers < 5 saves vocab.json + merges.txt, transformers 5 only tokenizer.json: either is enough
    missing = [n for n in needed
               if not any((tok_root / n / f).is_file() for f in ("vocab.json", "tokenizer.json"))]
    if missing:
        raise UserError(f"{path}: single-file {arch} model needs CLIP tokenizer files offline; missing "
                        f"{', '.join(str(tok_root / n / 'vocab.json') for n in missing)} or tokenizer.json "
                        "(copy the 'tokenizer' "
                        "folder(s) of a diffusers model there, or train from a diffusers folder)",
                        key="pretrained_model_name_or_path")
    cls = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    import torch

    # float32 whatever the file stores (see _load_folder)
    kwargs: dict[str, Any] = {"config": str(config_dir), "local_files_only": True, "torch_dtype": torch.float32}
    from transformers import CLIPTokenizer

    kwargs["tokenizer"] = CLIPTokenizer.from_pretrained(tok_root / "tokenizer")
    if arch == "sdxl":
        kwargs["tokenizer_2"] = CLIPTokenizer.from_pretrained(tok_root / "tokenizer_2")
    else:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    try:
        pipe = cls.from_single_file(str(path), **kwargs)
    except Exception as exc:  # diffusers raises many types for bad checkpoints
        raise UserError(f"{path}: cannot load as a single-file {arch} checkpoint: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                        key="pretrained_model_name_or_path") from None
    tes = [pipe.text_encoder] + ([pipe.text_encoder_2] if arch == "sdxl" else [])
    toks = [pipe.tokenizer] + ([pipe.tokenizer_2] if arch == "sdxl" else [])
    return TinyComponents(pipe.unet, pipe.vae, tes, toks, None, arch)


# ----------------------------------------------------------------------------------------------------------
# prompt encoding (reference §4.5)

def tokenize(tokenizer: Any, captions: list[str], max_token_length: int | None = None) -> Any:
    """Token ids ``(b, n, 77)`` as sd-scripts builds them (§4.5.2): one 77-token chunk, or with
    ``max_token_length`` 150/225 the ``max_token_length + 2`` sequence cut into ``n`` chunks
    ``[BOS] + 75 tokens + [last token of the whole sequence]``; tokenizers whose pad differs from EOS get the
    chunk fix-ups (EOS after a cut-off chunk, EOS instead of a leading PAD): the one rule,
    :func:`lora_compat.semantics.prompts.chunk_token_ids`."""
    import torch

    from lora_compat.semantics.prompts import chunk_token_ids

    max_length = 77 if not max_token_length else int(max_token_length) + 2
    ids = tokenizer(captions, padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="pt").input_ids
    if max_length <= 77:
        return ids[:, None, :]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    rows = [chunk_token_ids(row, eos_id=eos, pad_id=pad) for row in ids.tolist()]
    return torch.tensor(rows, dtype=ids.dtype)


def join_chunks(hidden: Any, b: int, n: int) -> Any:
    """``(b*n, 77, d)`` chunk states -> ``(b, 75n+2, d)``: BOS of chunk 0, positions 1..75 of every chunk,
    the last state of the last chunk (§4.5.3)."""
    import torch

    if n == 1:
        return hidden
    h = hidden.view(b, n, hidden.shape[1], hidden.shape[2])
    return torch.cat([h[:, 0, :1]] + [h[:, k, 1:76] for k in range(n)] + [h[:, -1, -1:]], dim=1)


def _final_layer_norm(te: Any) -> Any:
    inner = getattr(te, "text_model", te)
    return inner.final_layer_norm


def encode_sd(te: Any, input_ids: Any, clip_skip: int | None) -> Any:
    """SD1/SD2 context from ``(b, n, 77)`` ids: last hidden state, or ``final_layer_norm(hidden_states[-k])``
    with clip_skip k > 1; chunks joined as sd-scripts does."""
    b, n = input_ids.shape[:2]
    flat = input_ids.reshape(b * n, -1)
    if clip_skip is None or clip_skip <= 1:
        hidden = te(flat)[0]
    else:
        out = te(flat, output_hidden_states=True)
        norm = _final_layer_norm(te)
        # the residual stream may be float32 while a half-precision encoder's LayerNorm is not (CPU autocast
        # does not cast layer_norm inputs)
        hidden = norm(out.hidden_states[-clip_skip].to(norm.weight.dtype))
    return join_chunks(hidden, b, n)


def encode_sdxl(te1: Any, te2: Any, ids1: Any, ids2: Any) -> tuple[Any, Any]:
    """SDXL (context, pooled) from ``(b, n, 77)`` ids: penultimate hidden states of both encoders (no final
    LN) concatenated; TE2's projected pooled output at the first EOS, from the first chunk only (clip_skip is
    ignored for SDXL, as in sd-scripts)."""
    import torch

    b, n = ids1.shape[:2]
    h1 = te1(ids1.reshape(b * n, -1), output_hidden_states=True).hidden_states[-2]
    out2 = te2(ids2.reshape(b * n, -1), output_hidden_states=True)
    h2 = out2.hidden_states[-2]
    pooled = out2.text_embeds.view(b, n, -1)[:, 0]
    return torch.cat([join_chunks(h1, b, n), join_chunks(h2, b, n)], dim=-1), pooled


def sdxl_time_ids(original_size: tuple[int, int], crop_top_left: tuple[int, int],
                  target_size: tuple[int, int]) -> list[int]:
    """The 6 size-conditioning numbers (h, w, top, left, target h, target w) of one sample."""
    return [original_size[0], original_size[1], crop_top_left[0], crop_top_left[1], target_size[0], target_size[1]]


def set_attention(unet: Any, mode: str | None) -> None:
    """xformers / mem_eff_attn / sdpa all map to PyTorch SDPA (diffusers' default AttnProcessor2_0)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    if mode:
        unet.set_attn_processor(AttnProcessor2_0())
