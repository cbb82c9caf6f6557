"""FLUX.1 prompt tokenizing and encoding as sd-scripts' ``strategy_flux`` does it.

CLIP-L: 77 tokens, its ``pooler_output`` conditions the DiT (``y``). T5-XXL: ``t5xxl_max_token_length`` tokens (256
schnell / 512 dev by default) padded to that length; its last hidden state is the DiT's text sequence, with the
T5 attention mask applied in the encoder only under ``apply_t5_attn_mask`` (the mask is always returned, and the
DiT uses it only under the same option). ``txt_ids`` are zeros.
"""

from __future__ import annotations

from typing import Any


def tokenize(clip_tokenizer: Any, t5_tokenizer: Any, captions: list[str], t5_max_length: int) -> tuple[Any, Any, Any]:
    """(CLIP-L ids ``[b, 77]``, T5 ids ``[b, t5_max_length]``, T5 attention mask) for ``captions``."""
    l_tokens = clip_tokenizer(captions, max_length=77, padding="max_length", truncation=True, return_tensors="pt")
    t5_tokens = t5_tokenizer(captions, max_length=t5_max_length, padding="max_length", truncation=True,
                             return_tensors="pt")
    return l_tokens["input_ids"], t5_tokens["input_ids"], t5_tokens["attention_mask"]


def encode(clip_l: Any, t5xxl: Any, tokens: tuple[Any, Any, Any], *, apply_t5_attn_mask: bool,
           device: Any = None) -> tuple[Any, ...]:
    """``(l_pooled [b, 768], t5_out [b, n, 4096], txt_ids [b, n, 3], t5_attn_mask [b, n])`` as
    ``FluxTextEncodingStrategy.encode_tokens``; ``clip_l`` None (Chroma) gives ``l_pooled`` None. ``device``: where
    the token ids go (default: each model's ``device``; pass it for wrapped models such as DDP, which have none)."""
    import torch

    l_tokens, t5_tokens, t5_mask = tokens
    l_dev = device if device is not None else (clip_l.device if clip_l is not None else None)
    t5_dev = device if device is not None else t5xxl.device
    l_pooled = clip_l(l_tokens.to(l_dev))["pooler_output"] if clip_l is not None else None
    attention_mask = t5_mask.to(t5_dev) if apply_t5_attn_mask else None
    t5_out = t5xxl(t5_tokens.to(t5_dev), attention_mask, return_dict=False, output_hidden_states=True)[0]
    txt_ids = torch.zeros(t5_out.shape[0], t5_out.shape[1], 3, device=t5_out.device)
    return l_pooled, t5_out, txt_ids, t5_mask
