"""FLUX.1 sample images during training, as sd-scripts' ``flux_train_utils.sample_image_inference`` makes them.

Per prompt (:func:`lora_compat.semantics.flux_sampling.flux_sample_settings` gives the settings, the same function
``plan`` shows):

* text: CLIP-L's pooled output and T5-XXL's hidden states of the prompt (and, when the CFG scale ``--l`` is not 1,
  of the negative prompt ``--n``, "" when absent), with ``apply_t5_attn_mask`` as in training. Without
  ``cache_text_encoder_outputs`` the live encoders run (their LoRA applied when trained); with it, the outputs
  cached before training (:func:`cache_sample_prompts`, sd-scripts' ``sample_prompts_te_outputs``), a trained
  CLIP-L re-run for the pooled output;
* noise: ``[1, (h/16)(w/16), 64]`` packed latents drawn in the AE's dtype from
  ``torch.Generator(device).manual_seed(seed)`` for a seeded prompt, else from torch's global RNG;
* denoising (:func:`denoise`): the flow-matching Euler steps along
  :func:`~lora_compat.semantics.flux_sampling.flux_sample_schedule` (shifted by ``mu`` of the token count),
  ``x += (t_next - t) * v``; the embedded guidance vector ``--g`` (ignored by schnell, which has no guidance
  embedder); true CFG as sd-scripts batches it (``[negative, positive]`` in one call, ``neg + (pos - neg) *
  scale``); the block swapper prepared before every call;
* decoding: unpacked, ``z / scaling_factor + shift_factor`` through the AE, clamped to [-1, 1], and
  ``uint8(127.5 * (x + 1))`` (truncated, as sd-scripts).

Why our own loop rather than diffusers' ``FluxPipeline``: the pipeline draws its noise as ``[1, 16, h/8, w/8]`` and
packs it (other pixels for the same seed than sd-scripts' packed draw), has no T5 attention mask for the DiT
(``apply_t5_attn_mask``), runs true CFG as two calls and its Euler step in float32 whatever the latent dtype, and
knows nothing of the block swapper or our tied LoRA downs; the loop is 20 lines on the same DiT call the training
step uses (:func:`lora_compat.train.flux.models.diffusers_dit`).
"""

from __future__ import annotations

import itertools
from typing import Any

from lora_compat.semantics.flux_sampling import FluxSampleSettings, flux_sample_settings
from lora_compat.train.family import FamilyModels, FamilySampler, StepContext


def denoise(dit: Any, img: Any, img_ids: Any, txt: Any, txt_ids: Any, vec: Any, timesteps: list[float], *,
            guidance: float, t5_attn_mask: Any = None, neg_cond: tuple[float, Any, Any, Any] | None = None,
            before_call: Any = None) -> Any:
    """sd-scripts' ``denoise``: Euler steps of the flow ``img`` along ``timesteps`` (1 -> 0).

    ``dit`` takes BFL's ``Flux.forward`` keywords; ``neg_cond`` is ``(cfg_scale, neg_pooled, neg_t5_out,
    neg_t5_attn_mask)`` for true CFG; ``before_call`` runs before every DiT call and once at the end (the block
    swapper's ``prepare_before_forward``).
    """
    import torch

    guidance_vec = torch.full((img.shape[0],), guidance, device=img.device, dtype=img.dtype)
    for t_curr, t_prev in itertools.pairwise(timesteps):
        t_vec = torch.full((img.shape[0],), t_curr, dtype=img.dtype, device=img.device)
        if before_call is not None:
            before_call()
        if neg_cond is None:
            pred = dit(img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, y=vec, timesteps=t_vec,
                       guidance=guidance_vec, txt_attention_mask=t5_attn_mask)
        else:
            cfg_scale, neg_vec, neg_txt, neg_mask = neg_cond
            mask = None if t5_attn_mask is None else torch.cat([neg_mask, t5_attn_mask], dim=0)
            both = dit(img=torch.cat([img, img], dim=0), img_ids=torch.cat([img_ids, img_ids], dim=0),
                       txt=torch.cat([neg_txt, txt], dim=0), txt_ids=torch.cat([txt_ids, txt_ids], dim=0),
                       y=torch.cat([neg_vec, vec], dim=0), timesteps=t_vec.repeat(2), guidance=guidance_vec.repeat(2),
                       txt_attention_mask=mask)
            neg_pred, pos_pred = torch.chunk(both, 2, dim=0)
            pred = neg_pred + (pos_pred - neg_pred) * cfg_scale
        img = img + (t_prev - t_curr) * pred
    if before_call is not None:
        before_call()
    return img


def latents_to_image(vae: Any, latents: Any) -> Any:
    """The PIL image of unpacked FLUX latents ``[1, 16, h/8, w/8]``: AE decode, clamp, ``uint8(127.5 (x + 1))``."""
    import numpy as np
    from PIL import Image

    from lora_compat.train.flux.models import decode_latents

    x = decode_latents(vae, latents).clamp(-1, 1).permute(0, 2, 3, 1)
    return Image.fromarray((127.5 * (x + 1.0)).float().cpu().numpy().astype(np.uint8)[0])


def cache_sample_prompts(encode: Any, prompts: list[Any]) -> dict[str, tuple[Any, ...]]:
    """sd-scripts' ``sample_prompts_te_outputs``: every prompt and negative prompt ("" when absent) encoded once
    with ``encode([text]) -> (l_pooled, t5_out, txt_ids, t5_attn_mask)``, kept on the CPU."""
    out: dict[str, tuple[Any, ...]] = {}
    for p in prompts:
        for text in (p.prompt, p.negative_prompt or ""):
            if text not in out:
                out[text] = tuple(t.detach().cpu() if t is not None else None for t in encode([text]))
    return out


class FluxSampler(FamilySampler):
    """FLUX.1 sample images with the models as they are (the LoRA applied), in eval mode (set by the engine)."""

    def __init__(self, models: FamilyModels, plan: Any, ctx: StepContext) -> None:
        self.models, self.plan, self.ctx = models, plan, ctx
        self.options = models.extra["options"]

    def _encode(self, text: str) -> tuple[Any, Any, Any, Any]:
        """(l_pooled, t5_out, txt_ids, t5_attn_mask) of one prompt on the device."""
        from lora_compat.train.flux import text as flux_text

        m, ctx, dev = self.models, self.ctx, self.ctx.device
        clip, t5 = m.text_encoders
        tokens = flux_text.tokenize(m.tokenizers[0], m.tokenizers[1], [text], int(m.extra["t5_max_length"]))
        te_cache = ctx.cache.get("flux_te")
        cached = ctx.cache.get("flux_sample_te", {}).get(text) if te_cache is not None else None
        if te_cache is None or cached is None:
            out = flux_text.encode(clip, t5, tokens, apply_t5_attn_mask=self.options.apply_t5_attn_mask, device=dev)
        else:
            out = cached
            if te_cache["clip_trained"]:   # sd-scripts re-encodes with the models it still trains (CLIP-L)
                out = (clip(tokens[0].to(dev))["pooler_output"], *out[1:])
        l_pooled, t5_out, txt_ids, mask = (t.to(dev) for t in out)
        return l_pooled, t5_out, txt_ids, mask

    def settings(self, prompt: Any) -> FluxSampleSettings:
        """What this prompt makes (the function ``plan`` shows)."""
        return flux_sample_settings(prompt)

    def generate(self, prompt: Any, *, sampler: str) -> Any:
        """The image of one prompt (``sampler`` is ignored: FLUX has one sampler, as in sd-scripts)."""
        import torch

        from lora_compat.train.flux.models import diffusers_dit
        from lora_compat.train.flux.packing import prepare_img_ids, unpack_latents

        s = self.settings(prompt)
        m, ctx, dev = self.models, self.ctx, self.ctx.device
        mask_on = self.options.apply_t5_attn_mask
        network = m.extra.get("network")
        swap = m.extra.get("block_swap")
        dtype = m.vae.dtype   # sd-scripts: weight_dtype = ae.dtype
        with torch.no_grad(), ctx.autocast():
            l_pooled, t5_out, txt_ids, mask = self._encode(s.prompt)
            neg_cond = None
            if s.negative_prompt is not None:
                n_pooled, n_t5, _, n_mask = self._encode(s.negative_prompt)
                neg_cond = (s.cfg_scale, n_pooled, n_t5, n_mask if mask_on else None)
            generator = torch.Generator(device=dev).manual_seed(s.seed) if s.seed is not None else None
            noise = torch.randn(1, s.image_seq_len, 16 * 2 * 2, device=dev, dtype=dtype, generator=generator)
            img_ids = prepare_img_ids(1, s.packed_height, s.packed_width).to(dev, dtype)

            def before_call() -> None:
                if network is not None:
                    network.clear_caches()
                if swap is not None:
                    swap.prepare_before_forward()

            x = denoise(diffusers_dit(m.denoiser), noise, img_ids, t5_out, txt_ids, l_pooled, s.schedule(),
                        guidance=s.guidance_scale, t5_attn_mask=mask if mask_on else None, neg_cond=neg_cond,
                        before_call=before_call)
            x = unpack_latents(x, s.packed_height, s.packed_width)
            image = latents_to_image(m.vae, x)
        if network is not None:
            network.clear_caches()
        return image
