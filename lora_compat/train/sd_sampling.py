"""Sample images for the SD-UNet families (SD1, SD2, SDXL), as sd-scripts' ``sample_image_inference`` makes them.

* Defaults: 512 x 512, 30 steps, CFG scale 7.5; sizes rounded down to a multiple of 8 (at least 64).
* Scheduler: the ``sample_sampler`` name (a prompt's ``--ss`` first) mapped by
  :data:`lora_compat.semantics.samples.SAMPLERS` to the diffusers scheduler ``get_my_scheduler`` builds (the SD
  DDPM betas, ``v_prediction`` for v-parameterization, ``clip_sample`` on for DDIM/DDPM).
* Prompt conditioning with weights ``(word:1.2)``, ``[word]``, long prompts:
  SD1/SD2 as sd-scripts' ``StableDiffusionLongPromptWeightingPipeline`` (up to 3 chunks of 75 tokens whatever
  ``max_token_length`` is, every chunk keeping its BOS/EOS, ``clip_skip``, weights applied and the embedding mean
  restored); SDXL as its SDXL pipeline, i.e. the training tokenization (``max_token_length``) with weights
  multiplied in (no mean restore) and TE2's pooled output of the first chunk. A missing negative prompt is ``""``.
* Denoising: diffusers' ``StableDiffusionPipeline`` / ``StableDiffusionXLPipeline`` given those embeddings, run
  under the training autocast on the models as they are (the LoRA applied), in eval mode; SDXL size conditioning
  ``(h, w)``, crop ``(0, 0)``, target ``(h, w)``. The initial noise comes from torch's global RNG, which the engine
  seeds per prompt (``--d``) exactly as sd-scripts does.
"""

from __future__ import annotations

import contextlib
from typing import Any

from lora_compat.semantics.prompts import parse_prompt_attention
from lora_compat.semantics.samples import SamplePrompt, sampler_spec, scheduler_kwargs
from lora_compat.train.family import FamilyModels, FamilySampler, StepContext

#: sd-scripts' defaults for SD / SDXL sample images (``sample_image_inference``).
SD_DEFAULTS = {"width": 512, "height": 512, "sample_steps": 30, "scale": 7.5}
#: The long-prompt pipeline's chunk limit for SD1/SD2 (``max_embeddings_multiples``).
LPW_MAX_CHUNKS = 3


def rounded_size(value: int | None, default: int, multiple: int = 8) -> int:
    """sd-scripts: ``max(64, v - v % multiple)``."""
    v = default if value is None else int(value)
    return max(64, v - v % multiple)


def make_scheduler(name: str, *, v_parameterization: bool) -> Any:
    """The diffusers scheduler of a sampler name (unknown names: DDIM, as sd-scripts)."""
    import inspect

    import diffusers

    spec, _ = sampler_spec(name)
    cls = getattr(diffusers, spec.scheduler_class)
    kwargs = scheduler_kwargs(spec, v_parameterization=v_parameterization)
    if "clip_sample" in inspect.signature(cls.__init__).parameters:
        kwargs["clip_sample"] = True  # sd-scripts switches clip_sample on where the scheduler has it
    return cls(**kwargs)


def weighted_tokens(tokenizer: Any, text: str, limit: int) -> tuple[list[int], list[float]]:
    """Token ids (no BOS/EOS) and per-token weights of a weighted prompt, each piece tokenized on its own, cut
    at ``limit`` tokens (``get_prompts_with_weights``)."""
    tokens: list[int] = []
    weights: list[float] = []
    for piece, weight in parse_prompt_attention(text):
        ids = tokenizer(piece).input_ids[1:-1]
        tokens += ids
        weights += [weight] * len(ids)
        if len(tokens) > limit:
            break
    return tokens[:limit], weights[:limit]


def lpw_embeddings(tokenizer: Any, text_encoder: Any, texts: list[str], *, clip_skip: int | None,
                   device: Any) -> list[Any]:
    """SD1/SD2 embeddings of ``texts`` (prompt and, with CFG, negative prompt) as the long-prompt-weighting
    pipeline computes them together: one chunk count for all, every chunk ``[BOS] 75 tokens [EOS]`` encoded
    separately and concatenated, each embedding multiplied by its token weights and rescaled to its former mean."""
    import torch

    from lora_compat.train.models import _final_layer_norm

    inner = tokenizer.model_max_length - 2
    parsed = [weighted_tokens(tokenizer, t, inner * LPW_MAX_CHUNKS) for t in texts]
    longest = max(len(toks) for toks, _ in parsed)
    chunks = max(1, min(LPW_MAX_CHUNKS, (longest - 1) // inner + 1))
    length = inner * chunks + 2
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for toks, ws in parsed:
        ids = torch.tensor([[bos] + toks + [eos] * (length - 1 - len(toks))], dtype=torch.long, device=device)
        weights: list[float] = []
        if not ws:
            weights = [1.0] * (chunks * tokenizer.model_max_length)
        else:
            for j in range(chunks):
                weights += [1.0, *ws[j * inner:min(len(ws), (j + 1) * inner)], 1.0]
            weights += [1.0] * (chunks * tokenizer.model_max_length - len(weights))
        parts = []
        for j in range(chunks):
            chunk = ids[:, j * inner:(j + 1) * inner + 2].clone() if chunks > 1 else ids
            if chunks > 1:
                chunk[:, 0] = ids[0, 0]
                if pad == eos:
                    chunk[:, -1] = ids[0, -1]
                else:
                    if chunk[0, -1] != eos and chunk[0, -1] != pad:
                        chunk[0, -1] = eos
                    if chunk[0, 1] == pad:
                        chunk[0, 1] = eos
            if clip_skip is None or clip_skip <= 1:
                parts.append(text_encoder(chunk)[0])
            else:
                hidden = text_encoder(chunk, output_hidden_states=True).hidden_states[-clip_skip]
                norm = _final_layer_norm(text_encoder)
                parts.append(norm(hidden.to(norm.weight.dtype)))
        emb = torch.cat(parts, dim=1)
        if all(w == 1.0 for w in weights):
            out.append(emb)  # the rescale is 1 (or 0/0 when the mean is exactly 0, as a layer norm can make it)
            continue
        w = torch.tensor(weights, dtype=emb.dtype, device=emb.device)
        before = emb.float().mean(dim=[-2, -1]).to(emb.dtype)
        emb = emb * w.unsqueeze(-1)
        after = emb.float().mean(dim=[-2, -1]).to(emb.dtype)
        ratio = torch.where(after == 0, torch.ones_like(after), before / after)
        out.append(emb * ratio.unsqueeze(-1).unsqueeze(-1))
    return out


def sdxl_weighted_ids(tokenizer: Any, text: str, max_token_length: int | None) -> tuple[Any, Any]:
    """SDXL token ids ``(1, n, 77)`` and weights ``(1, n, 77)`` of a weighted prompt, laid out as the training
    tokenization (``_get_weighted_input_ids`` + ``_get_input_ids``)."""
    import torch

    model_max = tokenizer.model_max_length
    length = model_max if not max_token_length else int(max_token_length) + 2
    toks, ws = weighted_tokens(tokenizer, text, length - 2)
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = [bos] + toks + [eos] + [pad] * (length - 2 - len(toks))
    weights = [1.0] + ws + [1.0] * (length - 1 - len(ws))
    if length <= model_max:
        return torch.tensor([[ids]]), torch.tensor([[weights]])
    inner = model_max - 2
    chunk_ids, chunk_w = [], []
    for start in range(1, length - model_max + 2, inner):
        chunk = [ids[0], *ids[start:start + inner], ids[-1]]
        if pad != eos:
            if chunk[-2] != eos and chunk[-2] != pad:
                chunk[-1] = eos
            if chunk[1] == pad:
                chunk[1] = eos
        chunk_ids.append(chunk)
        chunk_w.append([1.0, *weights[start:start + inner], 1.0])
    return torch.tensor([chunk_ids]), torch.tensor([chunk_w])


def sdxl_embeddings(models: FamilyModels, text: str, max_token_length: int | None, device: Any) -> tuple[Any, Any]:
    """SDXL (context, pooled) of a weighted prompt: the training encoder, then the token weights multiplied into
    positions ``1..75`` of every chunk (``encode_tokens_with_weights``)."""
    from lora_compat.train.models import encode_sdxl

    (ids1, w1), (ids2, w2) = (sdxl_weighted_ids(tok, text, max_token_length) for tok in models.tokenizers[:2])
    te1, te2 = models.text_encoders[:2]
    context, pooled = encode_sdxl(te1, te2, ids1.to(device), ids2.to(device))
    d1 = te1.config.hidden_size
    h1, h2 = context[..., :d1], context[..., d1:]
    weighted = []
    for hidden, w in ((h1, w1), (h2, w2)):
        w = w.to(hidden.device, hidden.dtype)
        if w.shape[1] == 1:
            hidden = hidden * w[:, 0].unsqueeze(-1)
        else:
            hidden = hidden.clone()
            for i in range(w.shape[1]):
                hidden[:, i * 75 + 1:i * 75 + 76] = hidden[:, i * 75 + 1:i * 75 + 76] * w[:, i, 1:-1].unsqueeze(-1)
        weighted.append(hidden)
    import torch

    return torch.cat(weighted, dim=-1), pooled


class SDSampler(FamilySampler):
    """SD1 / SD2 / SDXL sample images with the models as they are (adapters applied)."""

    def __init__(self, models: FamilyModels, plan: Any, ctx: StepContext) -> None:
        self.models, self.plan, self.ctx = models, plan, ctx
        self.sdxl = plan.model.family == "sdxl"

    def generate(self, prompt: SamplePrompt, *, sampler: str) -> Any:
        import torch

        m, plan, ctx = self.models, self.plan, self.ctx
        width = rounded_size(prompt.width, int(SD_DEFAULTS["width"]))
        height = rounded_size(prompt.height, int(SD_DEFAULTS["height"]))
        steps = prompt.sample_steps if prompt.sample_steps is not None else SD_DEFAULTS["sample_steps"]
        scale = prompt.scale if prompt.scale is not None else SD_DEFAULTS["scale"]
        scheduler = make_scheduler(prompt.sample_sampler or sampler, v_parameterization=plan.model.v_parameterization)
        negative = prompt.negative_prompt or ""
        cfg = scale > 1.0
        dev = ctx.device
        with ctx.autocast(), torch.no_grad(), _quiet():
            if self.sdxl:
                from diffusers import StableDiffusionXLPipeline

                cond, pooled = sdxl_embeddings(m, prompt.prompt, plan.model.max_token_length, dev)
                kwargs: dict[str, Any] = {"prompt_embeds": cond, "pooled_prompt_embeds": pooled}
                if cfg:
                    ucond, upooled = sdxl_embeddings(m, negative, plan.model.max_token_length, dev)
                    kwargs.update(negative_prompt_embeds=ucond, negative_pooled_prompt_embeds=upooled)
                pipe = StableDiffusionXLPipeline(vae=m.vae, text_encoder=m.text_encoders[0],
                                                 text_encoder_2=m.text_encoders[1], tokenizer=m.tokenizers[0],
                                                 tokenizer_2=m.tokenizers[1], unet=m.denoiser, scheduler=scheduler,
                                                 add_watermarker=False)
            else:
                from diffusers import StableDiffusionPipeline

                texts = [prompt.prompt, negative] if cfg else [prompt.prompt]
                embs = lpw_embeddings(m.tokenizers[0], m.text_encoders[0], texts, clip_skip=plan.model.clip_skip,
                                      device=dev)
                kwargs = {"prompt_embeds": embs[0]}
                if cfg:
                    kwargs["negative_prompt_embeds"] = embs[1]
                pipe = StableDiffusionPipeline(vae=m.vae, text_encoder=m.text_encoders[0],
                                               tokenizer=m.tokenizers[0], unet=m.denoiser, scheduler=scheduler,
                                               safety_checker=None, feature_extractor=None,
                                               requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            image = pipe(height=height, width=width, num_inference_steps=int(steps), guidance_scale=float(scale),
                         output_type="pil", **kwargs).images[0]
        del pipe
        return image


@contextlib.contextmanager
def _quiet() -> Any:
    """diffusers' pipelines log notices (tiny sample sizes, deprecated configs) that are not the user's business."""
    import warnings

    from diffusers.utils import logging as dlog

    previous = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            # StableDiffusionPipeline rewrites steps_offset / clip_sample of the scheduler it is given (as it does
            # in sd-scripts, whose SD pipeline subclasses it) and warns that the config is outdated
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        dlog.set_verbosity(previous)
