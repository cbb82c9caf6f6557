"""LoRA weights: layouts (kohya / PEFT / diffusers), exact conversion at copy speed, inspect, check, verify.

Modules (all torch-free except ``verify`` and ``pickle_input``, which import torch lazily):

* :mod:`~lora_compat.weights.safetensors_io` - strict header parsing, streaming writer, dtype casts, sd-scripts hashes
* :mod:`~lora_compat.weights.reader` - ``open_lora(path) -> LoraFile``: decide family and layout, read it
* :mod:`~lora_compat.weights.layouts` - the SD layouts and the intermediate form (``LoraFile``, ``AdapterModule``)
* :mod:`~lora_compat.weights.convert` - ``convert(src, dst, ConvertOptions(to=...))``
* :mod:`~lora_compat.weights.inspect` / :mod:`~lora_compat.weights.check` - the inspect and check commands' logic
* :mod:`~lora_compat.weights.verify` - ΔW comparison (``convert --verify``)
* :mod:`~lora_compat.weights.synth` - synthetic kohya files with sd-scripts' module set (tests, benchmark; numpy)
* FLUX.1 / Chroma, registered in ``reader.FAMILY_READERS`` and dispatched by ``convert``/``check``/``inspect``/
  ``verify``: :mod:`~lora_compat.weights.flux_layouts` (reading, family detection), :mod:`~lora_compat.weights.
  flux_convert` (fused <-> split), :mod:`~lora_compat.weights.flux_check`, :mod:`~lora_compat.weights.flux_verify`,
  :mod:`~lora_compat.weights.flux_synth`

Module names come from the pinned tables in :mod:`lora_compat.arch`.
"""
