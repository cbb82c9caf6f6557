"""FLUX.1 training pieces with sd-scripts' semantics, independent of the engine (heavy imports are lazy).

* :mod:`.options` — the FLUX options of ``flux_train_network.py`` (names, defaults, validation);
* :mod:`.sampling` — flow-matching timesteps, sigmas and noising (``get_noisy_model_input_and_timesteps``);
* :mod:`.loss` — model prediction types, SD3 loss weighting, Huber thresholds, ``process_batch``'s loss math;
* :mod:`.packing` — 2x2 latent packing, ``img_ids``/``txt_ids``, the guidance vector;
* :mod:`.tiny` / :mod:`.models` / :mod:`.checkpoint` — tiny FLUX.1 models and loading real ones offline;
* :mod:`.text` — CLIP-L / T5-XXL tokenizing and encoding as ``strategy_flux`` does;
* :mod:`.network_spec` — the module set (from :mod:`lora_compat.arch.flux`) and the network arguments;
* :mod:`.lora` / :mod:`.loha` — sd-scripts' ``networks.lora_flux`` LoRA (and LyCORIS LoHa) on diffusers'
  ``FluxTransformer2DModel`` with PEFT, the fused BFL projections reproduced by tied factors;
* :mod:`.memory` / :mod:`.cache` — fp8 base weights, block swapping, checkpointing, latent / text caches.
"""
