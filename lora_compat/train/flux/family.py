"""FLUX.1 behind :class:`~lora_compat.train.family.TrainingFamily`: sd-scripts' ``flux_train_network.py``
(``FluxNetworkTrainer``) on diffusers' ``FluxTransformer2DModel`` + PEFT, run by the shared engine.

What it runs, stage by stage (everything read from the plan's :class:`~lora_compat.plan.flux.FluxPlan`):

* models: ``tiny:flux1-dev`` / ``tiny:flux1-schnell``, a diffusers FLUX.1 folder, or sd-scripts' single files
  (``pretrained_model_name_or_path`` = the BFL DiT, ``ae``, ``clip_l``, ``t5xxl``) (:mod:`.models`), loaded in the
  mixed-precision dtype as sd-scripts loads them (float32 without mixed precision); the loaded variant and block
  counts must be the plan's;
* latents: the AE posterior sample, shifted and scaled (``encode_images_to_latents``; cached that way too, in
  sd-scripts' ``_flux.npz`` files, so ``shift_scale_latents`` is the identity);
* text: CLIP-L's pooled output and T5-XXL's last hidden state at ``t5xxl_max_token_length`` with
  ``apply_t5_attn_mask`` (:mod:`.text`); ``cache_text_encoder_outputs`` keeps them per caption in memory or in
  ``_flux_te.npz`` files, and a trained CLIP-L is still run every step (sd-scripts' partial caching);
* loss: :func:`.loss.flux_loss_step` (noise before timesteps, the timestep sampling, packing, ids, the guidance
  vector, the prediction type, the flow target, Huber thresholds, SD3 weighting, masks, prior weights);
* network: :class:`.lora.FluxLoraNetwork`, sd-scripts' ``networks.lora_flux`` parameterisation (shared downs on
  the fused BFL projections) with its dropouts, LoRA+ and ``network_reg_lrs`` groups, max-norm, saved in kohya
  layout with sd-scripts' keys, shapes and dtypes;
* memory: mixed precision (frozen base in the mixed dtype, network float32 or bf16 with ``full_bf16``),
  ``fp8_base`` / ``fp8_base_unet`` (:func:`.memory.apply_fp8_base`), gradient checkpointing with or without
  ``cpu_offload_checkpointing``, ``blocks_to_swap`` (:class:`.memory.BlockSwap`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError
from lora_compat.train.family import FamilyModels, StepContext, TrainingFamily, quiet_diffusers

#: the models' keys in :attr:`FamilyModels.parts` (= the plan's adapter parts)
PARTS = ("transformer", "clip_l", "t5xxl")


@dataclass
class FluxPartNetwork:
    """The engine's view of one trained model part: the part, its model (what accelerate prepares) and the one
    :class:`~lora_compat.train.flux.lora.FluxLoraNetwork` spanning all parts."""

    part: str
    model: Any
    network: Any
    lr: float | None = None
    kind: str = "lora"


def weight_dtype(mixed_precision: str) -> Any:
    """sd-scripts' ``weight_dtype`` for a mixed precision (float32 for ``no``)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision, torch.float32)


def _mixed_of_plan(plan: Any) -> str:
    """The mixed precision the engine will use (fp16 runs as fp32 without a GPU, as the engine does)."""
    import torch

    mixed = plan.precision.mixed_precision
    return "no" if mixed == "fp16" and not torch.cuda.is_available() else mixed


def _network(nets: list[Any]) -> Any:
    return nets[0].network if nets else None


class FluxFamily(TrainingFamily):
    """FLUX.1 dev / schnell (``flux_train_network.py``)."""

    names = ("flux1",)

    # ---- models -----------------------------------------------------------------------------------------
    def load(self, plan: Any, *, seed: int) -> FamilyModels:
        from lora_compat.semantics.flux_options import FluxOptions
        from lora_compat.train.flux.models import load_flux_models
        from lora_compat.train.flux.sampling import make_flow_scheduler

        fp = plan.flux
        if fp is None:
            raise UserError("the plan has no FLUX.1 part (made by an older lora-compat?)", key="family")
        dtype = weight_dtype(_mixed_of_plan(plan))
        with quiet_diffusers():
            comps = load_flux_models(str(plan.model.base_model or ""), clip_l=fp.clip_l, t5xxl=fp.t5xxl, ae=fp.ae,
                                     tokenizer_dir=plan.model.tokenizer_dir, dtype=dtype, seed=seed)
        t = comps.transformer
        loaded = (f"flux1-{comps.variant}", t.config.num_layers, t.config.num_single_layers,
                  comps.clip_l.config.num_hidden_layers, comps.t5xxl.config.num_layers)
        planned = (fp.variant, fp.double_blocks, fp.single_blocks, fp.clip_l_layers, fp.t5_layers)
        if loaded != planned:
            raise UserError(f"the base model is {loaded[0]} with {loaded[1]} double / {loaded[2]} single blocks, "
                            f"CLIP-L {loaded[3]} and T5 {loaded[4]} layers; the plan expected {planned[0]} with "
                            f"{planned[1]} / {planned[2]}, {planned[3]}, {planned[4]} (it changed since the plan was "
                            "made)", key="pretrained_model_name_or_path")
        for m in (t, comps.vae, comps.clip_l, comps.t5xxl):
            m.requires_grad_(False)
        options = FluxOptions(**fp.options)
        options.validate()
        return FamilyModels(denoiser=t, vae=comps.vae, text_encoders=[comps.clip_l, comps.t5xxl],
                            tokenizers=[comps.clip_tokenizer, comps.t5_tokenizer],
                            noise_scheduler=make_flow_scheduler(options.discrete_flow_shift),
                            parts={"transformer": t, "clip_l": comps.clip_l, "t5xxl": comps.t5xxl},
                            extra={"options": options, "t5_max_length": fp.t5xxl_max_token_length,
                                   "variant": comps.variant, "plan_flux": fp})

    # ---- latents ----------------------------------------------------------------------------------------
    def raw_latents(self, models: FamilyModels, images: Any) -> Any:
        """sd-scripts caches FLUX latents already shifted and scaled (``FluxLatentsCachingStrategy``)."""
        from lora_compat.train.flux.models import encode_latents

        vae = models.vae
        return encode_latents(vae, images.to(vae.device))

    def encode_images(self, models: FamilyModels, images: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.raw_latents(models, images).float()

    def scale_latents(self, models: FamilyModels, raw: Any) -> Any:
        import torch

        return raw.to(models.vae.device, dtype=torch.float32)   # shift_scale_latents is the identity for FLUX

    def latent_cache_files(self, plan: Any) -> Any:
        from lora_compat.train.flux.cache import FluxLatentCacheFiles

        return FluxLatentCacheFiles()

    # ---- text -------------------------------------------------------------------------------------------
    def _encoders(self, models: FamilyModels, ctx: StepContext) -> tuple[Any, Any]:
        return ctx.run_parts.get("clip_l", models.text_encoders[0]), ctx.run_parts.get("t5xxl", models.text_encoders[1])

    def _tokens(self, models: FamilyModels, captions: list[str]) -> Any:
        from lora_compat.train.flux import text

        clip_tok, t5_tok = models.tokenizers
        return text.tokenize(clip_tok, t5_tok, captions, int(models.extra["t5_max_length"]))

    def encode_text(self, models: FamilyModels, batch: dict[str, Any], plan: Any, ctx: StepContext) -> Any:
        import torch

        from lora_compat.train.flux import text

        captions = batch["captions"]
        options = models.extra["options"]
        clip, t5 = self._encoders(models, ctx)
        cache = ctx.cache.get("flux_te")
        grad = contextlib.nullcontext() if ctx.train_text_encoders else torch.no_grad()
        dev = ctx.device
        if cache is None:
            with ctx.autocast(), grad:
                out = text.encode(clip, t5, self._tokens(models, captions),
                              apply_t5_attn_mask=options.apply_t5_attn_mask, device=dev)
            return tuple(o.to(dev) if o is not None else None for o in out)
        items = [cache["store"].get(c) for c in captions]   # every caption was cached before training
        l_pooled, t5_out, txt_ids, mask = (t.to(dev) for t in cache["store"].collate(items))
        if cache["clip_trained"]:
            # sd-scripts' partial caching: a trained CLIP-L is run every step, T5-XXL's output comes from the cache
            with ctx.autocast(), grad:
                tokens = self._tokens(models, captions)
                l_pooled = clip(tokens[0].to(dev))["pooler_output"]
        return l_pooled, t5_out, txt_ids, mask

    def prepare_text_cache(self, models: FamilyModels, plan: Any, dataset: Any, ctx: StepContext) -> None:
        """``cache_text_encoder_outputs`` (``_to_disk``): every caption encoded once, before training, with the
        frozen encoders in the mixed-precision dtype under autocast (sd-scripts' ``cache_text_encoder_outputs_if
        _needed``); captions are then the raw file text (no prefix/suffix, wildcards, dropout)."""
        import torch

        from lora_compat.train.flux import text
        from lora_compat.train.flux.cache import TextEncoderOutputCache, te_outputs_npz_path

        fp = plan.flux
        if not fp.cache_text_encoder_outputs:
            return
        dataset.raw_captions = True
        options = models.extra["options"]
        clip, t5 = models.text_encoders
        for m in (clip, t5):
            m.to(ctx.device)

        def encode(captions: list[str]) -> Any:
            with ctx.autocast(), torch.no_grad():
                return text.encode(clip, t5, self._tokens(models, captions),
                                   apply_t5_attn_mask=options.apply_t5_attn_mask, device=ctx.device)

        store = TextEncoderOutputCache(encode, apply_t5_attn_mask=options.apply_t5_attn_mask)
        to_disk = fp.cache_text_encoder_outputs_to_disk

        def npz(image_path: str | None) -> str | None:
            return te_outputs_npz_path(image_path) if to_disk and image_path else None

        for ds in dataset.datasets:
            for entry in ds.images.values():
                store.get(entry.caption, npz(entry.path))
        trained = {a.part for a in plan.adapters if a.lr}
        ctx.cache["flux_te"] = {"store": store, "npz": npz, "clip_trained": "clip_l" in trained}
        if plan.samples.enabled:
            from lora_compat.train.flux.sampler import cache_sample_prompts

            # sd-scripts' sample_prompts_te_outputs: the sample prompts encoded with the caches, before the network
            ctx.cache["flux_sample_te"] = cache_sample_prompts(encode, plan.samples.prompts)

    # ---- sample images and validation -------------------------------------------------------------------
    def open_sampler(self, models: FamilyModels, plan: Any, ctx: StepContext) -> Any:
        from lora_compat.train.flux.sampler import FluxSampler

        return FluxSampler(models, plan, ctx)

    def check_validation(self, plan: Any) -> None:
        """FLUX validates as ``flux_train_network.py`` does: each held-out batch once per validation timestep,
        but its ``get_noisy_model_input_and_timesteps`` ignores the fixed timestep sd-scripts sets (``min_timestep
        = max_timestep = t``), so every run draws its sigma with ``timestep_sampling`` from the validation-seeded
        RNG; :meth:`loss` does the same (it ignores :attr:`StepContext.fixed_timestep`). Every pass reseeds, so
        each pass sees the same noise and sigmas per batch and the curve is comparable."""
        return None

    # ---- loss -------------------------------------------------------------------------------------------
    def loss(self, models: FamilyModels, latents: Any, conditioning: Any, batch: dict[str, Any], plan: Any,
             ctx: StepContext) -> Any:
        import torch

        from lora_compat.train.flux.loss import flux_loss_step
        from lora_compat.train.flux.models import diffusers_dit

        dev = ctx.device
        transformer = ctx.run_parts.get("transformer", models.denoiser)
        swap = models.extra.get("block_swap")
        if swap is not None:
            swap.prepare_before_forward()   # sd-scripts' prepare_block_swap_before_forward
        network = models.extra.get("network")
        if network is not None:
            network.clear_caches()
        mask = None
        if batch.get("alpha_masks") is not None:
            m = batch["alpha_masks"].to(dev, dtype=torch.float32).unsqueeze(1)
            mask = torch.nn.functional.interpolate(m, size=latents.shape[2:], mode="area")
        step = flux_loss_step(diffusers_dit(transformer), latents.to(dev), conditioning, models.extra["options"],
                              models.noise_scheduler, weight_dtype=weight_dtype(ctx.mixed_precision),
                              loss_weights=batch["loss_weights"].to(dev), device=dev, autocast=ctx.autocast,
                              loss_mask=mask)
        return step.per_sample_loss

    # ---- network ----------------------------------------------------------------------------------------
    def build_network(self, models: FamilyModels, plan: Any, *, mixed_precision: str, say: Any) -> list[Any]:
        import torch

        from lora_compat.train.flux.lora import FluxLoraNetwork
        from lora_compat.train.flux.memory import apply_fp8_base

        fp = plan.flux
        planned = planned_modules(plan)
        args = network_args(plan)
        dtype = torch.bfloat16 if plan.precision.full_bf16 else torch.float32
        parts = {k: models.parts[k] for k in PARTS}
        with quiet_diffusers():
            network = FluxLoraNetwork(planned, parts, split_qkv=fp.split_qkv, dropout=args.dropout,
                                      rank_dropout=args.rank_dropout, module_dropout=args.module_dropout,
                                      dtype=dtype, args=args)
        compute = weight_dtype(mixed_precision)
        if fp.fp8_base:
            # sd-scripts: the DiT in fp8 (computed in the mixed dtype); the text encoders too unless fp8_base_unet
            apply_fp8_base(models.denoiser, compute_dtype=compute)
            if not fp.fp8_base_unet:
                for te in models.text_encoders:
                    apply_fp8_base(te, compute_dtype=compute)
        if plan.network_weights:
            load_network_weights(network, plan.network_weights, say)
        models.extra["network"] = network
        nets = []
        lrs = {a.part: a.lr for a in plan.adapters}
        for part in PARTS:
            if any(m.part == part for m in planned):
                nets.append(FluxPartNetwork(part, models.parts[part], network, lrs.get(part)))
        return nets

    def param_groups(self, plan: Any, nets: list[Any]) -> list[dict[str, Any]]:
        network = _network(nets)
        fp = plan.flux
        specs = network.group_plan(fp.text_encoder_lr, fp.unet_lr, fp.learning_rate)
        got = [(g.part, g.lr, g.lora_plus, g.pattern) for g in specs]
        want = [(g.part, g.lr, g.lora_plus, g.pattern) for g in plan.param_groups]
        if got != want:  # pragma: no cover - the plan and the network use one function
            raise AssertionError(f"optimizer groups {got} differ from the plan's {want}")
        return [{"params": network.group_tensors(g), "lr": g.lr, "name": g.description} for g in specs]

    def state_dict(self, nets: list[Any], save_precision: str | None) -> dict[str, Any]:
        import torch

        from lora_compat.train.saving import DTYPES

        network = _network(nets)
        dtype = getattr(torch, DTYPES[save_precision]) if save_precision else None
        return dict(network.kohya_state_dict(dtype)) if network is not None else {}

    def adapter_record(self, nets: list[Any]) -> list[dict[str, Any]]:
        network = _network(nets)
        out = []
        for net in nets:
            mods = [m for m in network.modules if m.planned.part == net.part]
            targets: dict[str, int] = {}
            for m in mods:
                for path in m.planned.paths:
                    targets[path if net.part != "clip_l" else path.removeprefix("text_model.")] = m.planned.rank
            out.append({"part": net.part, "kind": net.kind, "targets": sorted(targets), "ranks": targets,
                        "lr": net.lr})
        return out

    def save_peft(self, folder: Any, nets: list[Any], kohya_file: Any) -> Any:
        """The PEFT folders through the weights wing's converter (kohya FLUX -> ``transformer/``,
        ``text_encoder/``, ``text_encoder_2/`` adapters), from the final kohya file."""
        from lora_compat.weights.convert import ConvertOptions, convert

        if kohya_file is None or Path(str(kohya_file)).suffix != ".safetensors":
            raise UserError("--peft needs the final model saved as .safetensors (save_model_as)", key="save_model_as")
        convert(Path(str(kohya_file)), Path(str(folder)), ConvertOptions(to="peft", force=True))
        return Path(str(folder))

    def apply_max_norm(self, nets: list[Any], max_norm: float) -> Any:
        return _network(nets).apply_max_norm(max_norm)

    # ---- memory / speed ---------------------------------------------------------------------------------
    def enable_gradient_checkpointing(self, models: FamilyModels, train_text_encoders: bool) -> None:
        # applied in place_models: CPU-offloaded checkpointing needs the training device
        models.extra["gradient_checkpointing"] = (True, train_text_encoders)

    def memory_record(self, models: FamilyModels, ctx: StepContext) -> dict[str, Any]:
        """What the live models run with: base weight dtypes (fp8_base), checkpointing (and its CPU offload), the
        block swapper, the text-encoder output cache."""
        t = models.denoiser
        swap = models.extra.get("block_swap")
        ckpt = models.extra.get("gradient_checkpointing")
        te_cache = ctx.cache.get("flux_te")

        def linear_dtypes(m: Any) -> list[str]:
            return sorted({str(p.dtype).removeprefix("torch.") for n, p in m.named_parameters()
                           if "lora_" not in n and n.endswith(".weight") and p.ndim == 2})

        return {"transformer_linear_dtypes": linear_dtypes(t),
                "text_encoder_linear_dtypes": linear_dtypes(models.text_encoders[1]),
                "gradient_checkpointing": bool(getattr(t, "is_gradient_checkpointing", False)),
                "cpu_offload_checkpointing": bool(ckpt and models.extra.get("cpu_offload_checkpointing")),
                "blocks_to_swap": swap.blocks_to_swap if swap is not None else None,
                "text_encoder_outputs_cached": None if te_cache is None else len(te_cache["store"].memory)}

    def place_models(self, models: FamilyModels, device: Any) -> None:
        from lora_compat.train.flux.memory import BlockSwap, enable_gradient_checkpointing

        plan_flux = models.extra.get("plan_flux")
        for m in models.all_modules:
            m.to(device)
        ckpt = models.extra.get("gradient_checkpointing")
        if ckpt:
            offload = bool(plan_flux is not None and plan_flux.cpu_offload_checkpointing)
            enable_gradient_checkpointing(models.denoiser, cpu_offload=offload, device=device)
            models.extra["cpu_offload_checkpointing"] = offload
            if ckpt[1]:
                for te in models.text_encoders:
                    (getattr(te, "activation_checkpointing_enable", None) or te.gradient_checkpointing_enable)()
        if plan_flux is not None and plan_flux.blocks_to_swap:
            swap = BlockSwap(models.denoiser, plan_flux.blocks_to_swap, device)
            swap.move_to_device_except_swap_blocks()
            models.extra["block_swap"] = swap


FAMILY = FluxFamily()


# ---------------------------------------------------------------------------------------------------------
# the plan's adapters -> the network's planned modules

def network_args(plan: Any) -> Any:
    """``lora_flux.create_network``'s arguments of the plan (dropouts, LoRA+ ratios, ``network_reg_lrs``)."""
    from lora_compat.train.flux.network_spec import parse_network_args

    fp = plan.flux
    return parse_network_args(fp.network_dim, fp.network_alpha, fp.network_args, fp.network_dropout)


def planned_modules(plan: Any) -> list[Any]:
    """The plan's adapters as the network's :class:`~lora_compat.train.flux.network_spec.PlannedModule` list, in
    sd-scripts' state-dict order (CLIP-L, T5-XXL, DiT): each kohya name with its paths (a fused module lists them
    all), rank and alpha (int or float, as planned), and ``split_qkv``'s number of sub-LoRAs."""
    from lora_compat.arch.flux import flux_table
    from lora_compat.train.flux.network_spec import PlannedModule

    fp = plan.flux
    table = flux_table(fp.variant or "flux1-dev")
    out = []
    for adapter in plan.adapters:
        kw = adapter.peft_kwargs
        r, a = kw["r"], kw["lora_alpha"]
        seen: dict[str, tuple[int, Any]] = {}
        for path in kw["target_modules"]:
            name = adapter.kohya_names[path]
            rank = int(kw.get("rank_pattern", {}).get(path, r))
            alpha = kw.get("alpha_pattern", {}).get(path, a)
            if name in seen and seen[name] != (rank, alpha):
                raise UserError(f"plan: the parts of {name} have different ranks or alphas", key="network_args")
            seen[name] = (rank, alpha)
        for name, (rank, alpha) in seen.items():
            module = table.by_kohya[name]
            split = len(module.parts) if fp.split_qkv and module.fused and module.part == "transformer" else 1
            out.append(PlannedModule(module, rank, alpha, split))
    out.sort(key=lambda p: table.order[p.kohya_name])
    return out


def read_network_weights(path: str, family: str = "flux1") -> tuple[dict[str, Any], str]:
    """``network_weights`` as a kohya FLUX state dict, and the layout it was read from.

    sd-scripts reads a kohya file only. We read every layout the weights wing knows (kohya, ComfyUI, diffusers,
    PEFT folder, ai-toolkit, ...) through its converter into a temporary kohya file (exact: fused modules re-fused,
    alpha kept, kohya bytes copied). Refused in one line: pickles (they can run code), files of another model
    family or another network type and anything the weights wing cannot read."""
    import tempfile

    from safetensors.torch import load_file

    from lora_compat.weights.convert import ConvertOptions, convert

    where = f"network_weights {path!r}"
    with tempfile.TemporaryDirectory(prefix="lora-compat-network-weights-") as tmp:
        kohya = Path(tmp) / "network_weights.safetensors"
        try:
            report = convert(path, kohya, ConvertOptions(to="kohya"))
        except UserError as exc:
            raise UserError(f"{where}: {exc.reason}", key="network_weights") from None
        if report.arch != family:
            raise UserError(f"{where} is a {report.arch} LoRA ({report.src_layout} layout); this run trains {family}",
                            key="network_weights")
        if report.algo != "lora":
            raise UserError(f"{where} is a {report.algo} network; networks.lora_flux starts from LoRA weights only",
                            key="network_weights")
        return load_file(str(kohya)), report.src_layout


def load_network_weights(network: Any, path: str, say: Any, family: str = "flux1") -> None:
    """``network_weights``: start from a FLUX LoRA file (sd-scripts loads it with ``strict=False``: modules the
    file lacks keep their fresh weights). Ranks must match this network (sd-scripts: a size-mismatch error) and so
    must each alpha: sd-scripts would copy the file's alpha into the buffer but keep training at the network's
    ``alpha / r``, so the saved file would not be the trained function; we refuse that instead."""
    sd, layout = read_network_weights(path, family)
    try:
        unused = network.load_kohya_state_dict(sd, strict=False)
    except (KeyError, ValueError) as exc:
        raise UserError(f"network_weights {path!r}: {exc}", key="network_weights") from None
    loaded = len(sd) - len(unused)
    if not loaded:   # sd-scripts trains on from fresh weights, silently
        say(f"warning: network_weights {path!r}: none of its {len(sd)} tensors belongs to a module this network "
            f"trains (e.g. {next(iter(sd), '-')}); the run starts from fresh weights")
    say(f"network_weights: loaded {loaded} tensors from {path}" + (f" ({layout} layout)" if layout != "kohya" else "")
        + (f"; {len(unused)} unused" if unused else ""))
