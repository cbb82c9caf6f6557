"""The SD-UNet families (SD1.x, SD2.x incl. v-prediction, SDXL): sd-scripts' ``train_network.py`` and
``sdxl_train_network.py`` behind :class:`~lora_compat.train.family.TrainingFamily`.

* models: a diffusers folder, a single ``.safetensors`` file or a tiny model (:mod:`.models`), all in float32;
* latents: ``vae.encode(x).latent_dist.sample() * scaling_factor`` (cached latents are stored unscaled);
* text: CLIP hidden states with ``clip_skip`` and ``max_token_length`` chunking (SD1/SD2), or both SDXL encoders'
  penultimate states plus TE2's pooled output, optionally cached (``cache_text_encoder_outputs``);
* loss: DDPM noise with offset / multires / ip-noise, timesteps in ``[min_timestep, max_timestep)``, the UNet's
  prediction against ε or v, element loss (l2 / l1 / huber / smooth_l1), alpha masks, prior weights and the
  SNR-based weights (:mod:`.noise`, :mod:`lora_compat.semantics`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from lora_compat.train.family import FamilyModels, StepContext, TrainingFamily, quiet_diffusers


class SDUNetFamily(TrainingFamily):
    """SD1 / SD2 / SDXL: a UNet denoiser with CLIP text encoders and a KL VAE."""

    names = ("sd1", "sd2", "sdxl")
    fixed_timesteps = True

    def load(self, plan: Any, *, seed: int) -> FamilyModels:
        from lora_compat.train import models as mdl
        from lora_compat.train.noise import make_noise_scheduler

        m = plan.model
        comps = mdl.load_models(str(m.base_model or ""), m.family, v_parameterization=m.v_parameterization,
                                seed=seed, tokenizer_dir=m.tokenizer_dir)
        if plan.noise.zero_terminal_snr:
            comps.noise_scheduler = make_noise_scheduler(zero_terminal_snr=True)
        tes = list(comps.text_encoders)
        for module in (comps.unet, comps.vae, *tes):
            module.requires_grad_(False)
        parts = {"unet": comps.unet, "text_encoder": tes[0]}
        if len(tes) > 1:
            parts["text_encoder_2"] = tes[1]
        return FamilyModels(denoiser=comps.unet, vae=comps.vae, text_encoders=tes, tokenizers=list(comps.tokenizers),
                            noise_scheduler=comps.noise_scheduler, parts=parts,
                            frozen_in_mixed_precision=[comps.unet, *tes], extra={"family": m.family})

    # ---- latents ----------------------------------------------------------------------------------------
    def raw_latents(self, models: FamilyModels, images: Any) -> Any:
        vae = models.vae
        return vae.encode(images.to(vae.device, dtype=vae.dtype)).latent_dist.sample()

    def encode_images(self, models: FamilyModels, images: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.raw_latents(models, images).float() * models.vae.config.scaling_factor

    def scale_latents(self, models: FamilyModels, raw: Any) -> Any:
        import torch

        return raw.to(models.vae.device, dtype=torch.float32) * models.vae.config.scaling_factor

    # ---- text -------------------------------------------------------------------------------------------
    def encode_text(self, models: FamilyModels, batch: dict[str, Any], plan: Any, ctx: StepContext) -> Any:
        import torch

        tes = [ctx.run_parts.get(name, te) for name,
               te in zip(("text_encoder", "text_encoder_2"), models.text_encoders, strict=False)]
        grad = contextlib.nullcontext() if ctx.train_text_encoders else torch.no_grad()
        if plan.precision.full_fp16 and ctx.mixed_precision == "fp16":
            # sd-scripts (full_fp16): the text conditioning is cast to the fp16 weight dtype
            context, pooled = self._encode_text(models, batch, plan, ctx, tes, grad)
            return context.to(torch.float16), None if pooled is None else pooled.to(torch.float16)
        return self._encode_text(models, batch, plan, ctx, tes, grad)

    def _encode_text(self, models: FamilyModels, batch: dict[str, Any], plan: Any, ctx: StepContext, tes: list[Any],
                     grad: Any) -> Any:
        import torch

        from lora_compat.train import models as mdl

        captions = batch["captions"]
        m = plan.model
        toks, dev = models.tokenizers, ctx.device
        with ctx.autocast(), grad:
            if m.family != "sdxl":
                ids = mdl.tokenize(toks[0], captions, m.max_token_length).to(dev)
                return mdl.encode_sd(tes[0], ids, m.clip_skip), None
            cache = ctx.cache.get("text_encoder_outputs")
            if cache is None:
                ids1 = mdl.tokenize(toks[0], captions, m.max_token_length).to(dev)
                ids2 = mdl.tokenize(toks[1], captions, m.max_token_length).to(dev)
                return mdl.encode_sdxl(tes[0], tes[1], ids1, ids2)
            disk = ctx.cache.get("te_disk")
            if disk is not None:
                _from_disk(disk, cache, captions, batch.get("image_paths") or [], dev)
            # frozen encoders, fixed captions: each caption is encoded once and reused
            for cap in set(captions) - set(cache):
                i1 = mdl.tokenize(toks[0], [cap], m.max_token_length).to(dev)
                i2 = mdl.tokenize(toks[1], [cap], m.max_token_length).to(dev)
                cache[cap] = mdl.encode_sdxl(tes[0], tes[1], i1, i2)
            if disk is not None:
                _to_disk(disk, cache, captions, batch.get("image_paths") or [])
            return torch.cat([cache[c][0] for c in captions]), torch.cat([cache[c][1] for c in captions])

    def prepare_text_cache(self, models: FamilyModels, plan: Any, dataset: Any, ctx: StepContext) -> None:
        """SDXL ``cache_text_encoder_outputs``: each caption encoded once (at its first batch) and kept in
        memory; with ``_to_disk`` also read from / written to sd-scripts' ``<image>_te_outputs.npz`` files
        (:mod:`lora_compat.train.te_cache`), so a later run with the same captions, text encoders and settings
        runs no text encoder at all."""
        if not plan.model.cache_text_encoder_outputs:
            return
        # captions are then the raw file text (no prefix/suffix, wildcards, dropout: reference §4.4.5)
        dataset.raw_captions = True
        ctx.cache["text_encoder_outputs"] = {}
        if plan.model.cache_text_encoder_outputs_to_disk:
            from lora_compat.train.te_cache import cache_settings, text_encoder_fingerprint

            # the fingerprint is taken before the network build casts the frozen encoders
            settings = cache_settings(max_token_length=plan.model.max_token_length,
                                      mixed_precision=ctx.mixed_precision,
                                      fingerprint=text_encoder_fingerprint(list(models.text_encoders)))
            ctx.cache["te_disk"] = {"settings": settings, "width1": models.text_encoders[0].config.hidden_size,
                                    "done": set()}

    # ---- sampling ---------------------------------------------------------------------------------------
    def open_sampler(self, models: FamilyModels, plan: Any, ctx: StepContext) -> Any:
        from lora_compat.train.sd_sampling import SDSampler

        return SDSampler(models, plan, ctx)

    # ---- loss -------------------------------------------------------------------------------------------
    def loss(self, models: FamilyModels, latents: Any, conditioning: Any, batch: dict[str, Any], plan: Any,
             ctx: StepContext) -> Any:
        import torch

        from lora_compat.train import models as mdl
        from lora_compat.train.noise import noise_and_timesteps, per_sample_loss, target_for

        sched, dev, ns = models.noise_scheduler, ctx.device, plan.noise
        if ctx.fixed_timestep is not None:  # validation: sd-scripts sets min_timestep = max_timestep = t
            ns = dataclasses.replace(ns, min_timestep=ctx.fixed_timestep, max_timestep=ctx.fixed_timestep)
        context, pooled = conditioning
        noise, noisy, timesteps = noise_and_timesteps(latents, sched, ns)
        kwargs: dict[str, Any] = {}
        if plan.model.family == "sdxl":
            time_ids = torch.tensor([mdl.sdxl_time_ids(o, c, t) for o, c, t in
                                     zip(batch["original_sizes"], batch["crop_top_lefts"], batch["target_sizes"],
                                         strict=True)],
                                    dtype=torch.float32, device=dev)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
        unet = ctx.run_parts.get("unet", models.denoiser)
        with ctx.autocast():
            pred = unet(noisy, timesteps, context, **kwargs).sample
        target = target_for(latents, noise, timesteps, sched, ns.v_parameterization)
        mask = None
        if batch.get("alpha_masks") is not None:
            # alpha-mask subsets mask the loss even without --masked_loss; area-resized to latent size (§4.9.3)
            m = batch["alpha_masks"].to(dev, dtype=torch.float32).unsqueeze(1)
            mask = torch.nn.functional.interpolate(m, size=latents.shape[2:], mode="area")
        return per_sample_loss(pred, target, timesteps, sched, ns, batch["loss_weights"].to(dev), mask)

    # ---- memory / speed ---------------------------------------------------------------------------------
    def enable_gradient_checkpointing(self, models: FamilyModels, train_text_encoders: bool) -> None:
        models.denoiser.enable_gradient_checkpointing()
        if train_text_encoders:
            for te in models.text_encoders:
                # transformers 5 renamed it; the old name still works but warns
                (getattr(te, "activation_checkpointing_enable", None) or te.gradient_checkpointing_enable)()

    def set_attention(self, models: FamilyModels, mode: str | None) -> None:
        from lora_compat.train import models as mdl

        mdl.set_attention(models.denoiser, mode)

    # ---- network ----------------------------------------------------------------------------------------
    def build_network(self, models: FamilyModels, plan: Any, *, mixed_precision: str, say: Any) -> list[Any]:
        import torch

        from lora_compat.train import network as netmod

        nets: list[netmod.PartNetwork] = []
        for adapter in plan.adapters:
            model = models.parts[adapter.part]
            targets = netmod.targets_from_plan(adapter, plan.family, model)
            netmod.inject(model, targets, adapter.kind, adapter.peft_kwargs)
            nets.append(netmod.PartNetwork(adapter.part, model, targets, adapter.lr, adapter.kind))
        if mixed_precision in ("fp16", "bf16"):
            # sd-scripts keeps the frozen base in the mixed-precision dtype (memory) and the network in float32
            # (unless full_bf16); the VAE stays float32.
            half = torch.float16 if mixed_precision == "fp16" else torch.bfloat16
            with quiet_diffusers():  # diffusers warns about any .to(dtype) on a model, even with nothing to keep
                for m in models.frozen_in_mixed_precision:
                    m.to(half)
            for net in nets:
                netmod.cast_adapters(net, torch.float32)
        if plan.precision.fp8_base:
            # sd-scripts: the frozen denoiser (and the text encoders unless fp8_base_unet) stored in
            # float8_e4m3fn, computed in the mixed-precision dtype; after the adapters exist, which keep theirs
            compute = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)
            _store_in_fp8(models, text_encoders=not plan.precision.fp8_base_unet, compute_dtype=compute)
        if plan.precision.full_bf16 or plan.precision.full_fp16:
            # sd-scripts: network.to(weight_dtype), the network itself trained in bf16 / fp16 (full_fp16: with
            # the engine's patched grad scaler, :func:`lora_compat.train.precision.allow_fp16_grad_unscaling`)
            half = torch.bfloat16 if plan.precision.full_bf16 else torch.float16
            for net in nets:
                netmod.cast_adapters(net, half)
        if plan.network_weights:
            netmod.load_network_weights(plan.network_weights, nets, say)
        eo = plan.engine_options
        for net in nets:
            netmod.install_kohya_dropouts(net, (eo.get("network_dropout") or {}).get("p"),
                                          (eo.get("rank_dropout") or {}).get("p"),
                                          (eo.get("module_dropout") or {}).get("p"))
        return nets

    def param_groups(self, plan: Any, nets: list[Any]) -> list[dict[str, Any]]:
        from lora_compat.train.network import optimizer_param_groups

        return optimizer_param_groups(plan, nets)

    def state_dict(self, nets: list[Any], save_precision: str | None) -> dict[str, Any]:
        from lora_compat.train.saving import kohya_state_dict

        return kohya_state_dict(nets, save_precision)

    def adapter_record(self, nets: list[Any]) -> list[dict[str, Any]]:
        from lora_compat.train.network import lora_layers

        out = []
        for net in nets:
            layers = lora_layers(net)
            out.append({"part": net.part, "kind": net.kind, "targets": sorted(t.path for t, _ in layers),
                        "ranks": {t.path: t.rank for t, _ in layers}, "lr": net.lr})
        return out

    def save_peft(self, folder: Any, nets: list[Any], kohya_file: Any) -> Any:
        from lora_compat.train.saving import save_peft

        return save_peft(folder, nets)

    def apply_max_norm(self, nets: list[Any], max_norm: float) -> Any:
        from lora_compat.train.network import apply_max_norm

        return apply_max_norm(nets, max_norm)


def _from_disk(disk: dict[str, Any], cache: dict[str, Any], captions: list[str], paths: list[str], device: Any
               ) -> None:
    """Fill the in-memory cache with the captions whose image has a valid ``_te_outputs.npz``."""
    import torch

    from lora_compat.train.te_cache import load_te_outputs, te_outputs_npz_path

    for cap, path in zip(captions, paths, strict=True):
        if cap in cache or path in disk["done"]:
            continue
        found = load_te_outputs(te_outputs_npz_path(path), cap, disk["settings"])
        if found is not None:
            hs1, hs2, pool2 = (torch.from_numpy(a).to(device) for a in found)
            cache[cap] = (torch.cat([hs1, hs2], dim=-1).unsqueeze(0), pool2.unsqueeze(0))
            disk["done"].add(path)


def _to_disk(disk: dict[str, Any], cache: dict[str, Any], captions: list[str], paths: list[str]) -> None:
    """Write the ``_te_outputs.npz`` of every image of the batch that has no valid one yet (one per image, also
    when another image with the same caption was encoded first)."""
    from lora_compat.train.te_cache import load_te_outputs, save_te_outputs, te_outputs_npz_path

    for cap, path in zip(captions, paths, strict=True):
        if path in disk["done"]:
            continue
        npz = te_outputs_npz_path(path)
        if load_te_outputs(npz, cap, disk["settings"]) is None:
            context, pooled = cache[cap]
            w = disk["width1"]
            save_te_outputs(npz, (context[0, :, :w], context[0, :, w:], pooled[0]), cap, disk["settings"])
        disk["done"].add(path)


def _store_in_fp8(models: FamilyModels, *, text_encoders: bool, compute_dtype: Any) -> None:
    """``fp8_base`` for SD1/SD2/SDXL: the frozen denoiser (and the text encoders when ``text_encoders``) kept in
    float8_e4m3fn, computed in ``compute_dtype``."""
    from lora_compat.train.flux.memory import apply_fp8_base

    # sd-scripts: unet.to(float8_e4m3fn), the text encoders too unless fp8_base_unet (their embeddings back in
    # the compute dtype); here every Linear is stored in fp8 and up-cast around its forward, other base
    # tensors (convolutions, norms, embeddings) rounded through fp8 and kept in the compute dtype: the same
    # effective weights. The LoRA keeps its own dtype.
    for module in (models.denoiser, *(models.text_encoders if text_encoders else ())):
        apply_fp8_base(module, compute_dtype=compute_dtype)


FAMILY = SDUNetFamily()
