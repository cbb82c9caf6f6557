"""Reader of Derrian's LoRA_Easy_Training_Scripts UI TOML (dialect ``derrian-toml``, eras U1 and U2).

Reference: legacy-dialects.md §4. Sections ``X.args`` become training options, ``X.dataset_args`` the
``[general]`` level of a dataset config, ``[[subsets]]`` the subsets of one dataset. Reproduced UI behaviour:
falsy values dropped (U2 also drops the string "false"), ``sdxl`` -> script choice (and ``clip_skip`` removed),
``network_module`` chosen from ``fa`` / ``algo`` / ``unit`` / Flux, nested args tables -> ``k=v`` lists,
``warmup_ratio`` -> steps of the UI's own estimate, ``full_fp16``/``full_bf16`` forcing the precision,
``cache_latents`` switching off subset ``random_crop``/``color_aug``, UI-only keys recorded.

Key -> option mapping: ``schemas/derrian-toml.schema.json`` (nested per section, ``x-canonical``).
``classify(data) -> (era, tab, reasons)`` is called by ``lora_compat.config.detect``.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from lora_compat.arch.families import DERRIAN_SECTIONS
from lora_compat.config.dialects.coerce import (
    ANY,
    BOOL,
    FLOAT,
    FLOAT_LIST,
    INT,
    STR,
    UNSET,
    Normalizer,
    args_table_to_list,
    canonical_kind,
    coerce,
    is_zero_like,
    show,
)
from lora_compat.config.model import (
    CONVERTED,
    DEFAULT,
    DERIVED,
    FRONTEND,
    KEPT,
    RENAMED,
    CanonicalConfig,
    Dataset,
    Setting,
    Subset,
)
from lora_compat.resources import load_schema
from lora_compat.semantics.steps import (
    batches_per_epoch,
    derrian_ui_max_train_steps,
    derrian_ui_warmup_steps,
    max_train_steps_for_epochs,
)

DIALECT = "derrian-toml"
SCHEMA = "derrian-toml.schema.json"
SECTIONS = ("general_args", "network_args", "optimizer_args", "saving_args", "bucket_args", "noise_args",
            "sample_args", "logging_args", "flux_args", "textual_inversion_args", "extra_args")
IMAGE_EXTENSIONS = ("png", "bmp", "gif", "jpeg", "jpg", "webp")
BLOCK_ARRAYS = ("down_lr_weight", "up_lr_weight", "block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas")
# the only strings the U2 backend normalises (backslashes -> slashes) before writing its TOML
_U2_NORMALISED = ("pretrained_model_name_or_path", "output_dir", "sample_prompts", "logging_dir")
CUSTOM_OPTIMIZERS = {"came": "LoraEasyCustomOptimizer.came.CAME", "compass": "LoraEasyCustomOptimizer.compass.Compass",
                     "lpfadamw": "LoraEasyCustomOptimizer.lpfadamw.LPFAdamW",
                     "rmsprop": "LoraEasyCustomOptimizer.rmsprop.RMSProp"}


@cache
def _schema() -> dict[str, Any]:
    return load_schema(SCHEMA)


def _section_props(section: str, part: str) -> dict[str, Any]:
    sec = _schema().get("properties", {}).get(section, {})
    return sec.get("properties", {}).get(part, {}).get("properties", {})


def classify(data: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    """U1 or U2 from the markers of legacy-dialects.md §1 step 1; tab "lora", "textual_inversion" or "flux"."""
    u2: list[str] = []
    u1: list[str] = []
    if isinstance(data.get("train_mode"), dict):
        u2.append("[train_mode]")
    subsets = data.get("subsets")
    if not isinstance(subsets, list):
        subsets = []
    if any(isinstance(s, dict) and "name" in s for s in subsets):
        u2.append("subset name")
    u2 += [f"[{s}]" for s in ("flux_args", "textual_inversion_args", "extra_args") if s in data]
    args = {s: (data.get(s) or {}).get("args", {}) if isinstance(data.get(s), dict) else {} for s in SECTIONS}
    if isinstance(args["saving_args"], dict) and "easy_name" in args["saving_args"]:
        u2.append("saving_args.args.easy_name")
    nargs = args["network_args"].get("network_args", {}) if isinstance(args["network_args"], dict) else {}
    if isinstance(nargs, dict):
        u2 += [f"network_args.{k}" for k in ("constraint", "use_tucker", "dora_wd", "bypass_mode") if k in nargs]
        u1 += [f"network_args.{k}" for k in ("use_conv_cp",) if k in nargs]
    oargs = args["optimizer_args"] if isinstance(args["optimizer_args"], dict) else {}
    st = str(oargs.get("lr_scheduler_type", ""))
    if st.endswith(("CosineAnnealingWarmRestarts.CosineAnnealingWarmRestarts", "RexAnnealingWarmRestarts")):
        u2.append("U2 scheduler class path")
    if st == "LoraEasyCustomOptimizer.CustomOptimizers.CosineAnnealingWarmupRestarts":
        u1.append("U1 scheduler class path")
    if "loss_type" in oargs:
        u2.append("optimizer_args.args.loss_type")
    sargs = oargs.get("lr_scheduler_args", {}) if isinstance(oargs.get("lr_scheduler_args"), dict) else {}
    if "first_cycle_steps" in sargs:
        u1.append("lr_scheduler_args.first_cycle_steps")
    empty = [s for s in SECTIONS if isinstance(data.get(s), dict) and not data[s]]
    if empty:
        u1.append("empty sections " + ", ".join(empty))
    mode = (data.get("train_mode") or {}).get("train_mode") if isinstance(data.get("train_mode"), dict) else None
    tab = "textual_inversion" if mode == "textual_inversion" else ("flux" if data.get("flux_args") else "lora")
    if u2:
        return "U2", tab, ["U2: " + ", ".join(u2)]
    return "U1", tab, ["U1: " + (", ".join(u1) if u1 else "no U2 marker (U1 layout; loads identically in U2)")]


def _dataset_kind(name: str) -> str:
    from lora_compat.config import options

    spec = options.dataset_spec(name) or {}
    t = spec.get("type")
    if name == "face_crop_aug_range":
        return FLOAT_LIST
    return {"integer": INT, "number": FLOAT, "boolean": BOOL, "string": STR}.get(str(t), ANY)


class _UiReader:
    def __init__(self, doc: Any, era: str, tab: str | None):
        self.doc, self.era = doc, era
        self.data: dict[str, Any] = doc.data
        self.cfg = CanonicalConfig(dialect=DIALECT, source=doc.path, era=era, tab=tab, files=[doc.path])
        self.n = Normalizer(doc, self.cfg)
        self.sdxl = False

    def args(self, section: str) -> dict[str, Any]:
        sec = self.data.get(section)
        a = sec.get("args") if isinstance(sec, dict) else None
        return a if isinstance(a, dict) else {}

    # ---- one value -----------------------------------------------------------------------------------
    def put(self, name: str, key: str, raw: Any, *, kind: str | None = None, target: dict[str, Setting] | None = None,
            dataset: bool = False) -> Any:
        vk = kind or (_dataset_kind(name) if dataset else canonical_kind(name))
        if self.era == "U2" and isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            raw_b = raw.strip().lower() == "true"
        else:
            raw_b = raw
        c = coerce(raw_b, vk)
        if not c.ok:
            self.n.invalid(name, key, raw, c.error or "invalid value")
            return None
        if c.value is UNSET:
            return UNSET
        if is_zero_like(c.value) or c.value is False:
            self._falsy(name, key, c.value, dataset)
            return UNSET
        leaf = key.rsplit(".", 1)[-1]
        if c.changed or raw_b is not raw:
            kind_p, conv = CONVERTED, f"{leaf} {show(raw)} -> {name} {show(c.value)}"
        elif leaf != name:
            kind_p, conv = RENAMED, f"{leaf} -> {name}"
        else:
            kind_p, conv = KEPT, None
        self.n.put(name, c.value, kind=kind_p, keys=key, conversion=conv, target=target)
        return c.value

    def _falsy(self, name: str, key: str, value: Any, dataset: bool) -> None:
        from lora_compat.config import options

        default = options.dataset_default(name) if dataset else options.default(name)
        if value is False or default in (None, 0, 0.0, False, "", []) or default == value:
            return
        if key == "flux_args.args.guidance_scale":
            return   # derrian-flux-guidance-zero says it, with what it also does to the network module
        self.n.note("derrian-toml-falsy-dropped", f"{key} {show(value)} is dropped by the UI; sd-scripts uses "
                    f"{show(default)}", key, option=name, value=value, default=default)

    # ---- reading ---------------------------------------------------------------------------------------
    def run(self) -> CanonicalConfig:
        self.easy_name = self.args("saving_args").get("easy_name")
        for key, val in self.data.items():
            if key not in SECTIONS and key not in ("subsets", "train_mode") and key not in DERRIAN_SECTIONS:
                # a section that picks another script ([anima_args]) decides the family: LC412 names it
                self.n.unknown(key, val, "not a section of the Derrian UI TOML")
        g = self.args("general_args")
        self.sdxl = bool(coerce(g.get("sdxl"), BOOL).value) if "sdxl" in g else False
        train_mode = self.data.get("train_mode")
        mode = train_mode.get("train_mode") if isinstance(train_mode, dict) else None
        if mode and mode != "lora":
            self.n.note("derrian-toml-not-lora", f"train_mode {show(mode)}: not LoRA training", "train_mode.train_mode",
                        train_mode=mode)
        if "train_mode" in self.data:
            self.n.frontend_only("train_mode", self.data["train_mode"],
                                 "selects the training script (lora / textual_inversion)")
        for section in SECTIONS:
            sec = self.data.get(section)
            if sec is None:
                continue
            if not isinstance(sec, dict):
                self.n.invalid(section, section, sec, "expected a table")
                continue
            for part, val in sec.items():
                if part not in ("args", "dataset_args") or not isinstance(val, dict):
                    self.n.unknown(f"{section}.{part}", val, "expected 'args' or 'dataset_args' tables")
                    continue
                if section == "textual_inversion_args" and val:
                    self.n.note("derrian-toml-not-lora", f"[{section}] is set: not SD LoRA training",
                                f"{section}.{part}")
                for key, raw in val.items():
                    self.one(section, part, key, raw)
        self.network_module()
        self.flux()
        self.warmup()
        self.subsets()
        return self.cfg

    def one(self, section: str, part: str, key: str, raw: Any) -> None:
        path = f"{section}.{part}.{key}"
        props = _section_props(section, part)
        p = props.get(key)
        if section == "extra_args":
            self._extra(path, key, raw, part)
            return
        if key in ("network_args", "optimizer_args", "lr_scheduler_args") and isinstance(raw, dict):
            self._table(path, key, raw)
            return
        if section == "flux_args" and raw is False and key in props and canonical_kind(key) != BOOL:
            return   # FluxUI stores a disabled input as false; the backend drops it (flux() notes what matters)
        if p is None:
            self.n.unknown(path, raw, f"not a key of [{section}.{part}] (the UI drops it on load/save)")
            return
        canon = p.get("x-canonical")
        if canon is None:
            self.n.frontend_only(path, raw, p.get("x-frontend-only") or "UI-only")
            if section == "saving_args":
                self.n.note("derrian-toml-ui-only", f"{key} is a UI-only setting", path)
            return
        if key == "sdxl":
            if self.sdxl:
                self.n.put("sdxl", True, kind=RENAMED, keys=path,
                           conversion="sdxl -> sdxl_train_network.py (pseudo-option sdxl)")
            return
        if key == "clip_skip" and self.sdxl:
            self.n.note("derrian-toml-clip-skip-sdxl", "clip_skip removed for SDXL", path, value=raw)
            return
        if key == "fa":
            return   # handled in network_module()
        if key == "warmup_ratio":
            return   # handled in warmup()
        if key == "dim_from_weights":
            if isinstance(raw, str) and raw:
                self.n.put("dim_from_weights", True, kind=FRONTEND, keys=path,
                           conversion=f"dim_from_weights {show(raw)} (a path) -> dim_from_weights true")
                self.n.note("derrian-toml-dim-from-weights-path", "dim_from_weights holds a path", path)
            else:
                self.put("dim_from_weights", path, raw)
            return
        if key in ("full_fp16", "full_bf16") and coerce(raw, BOOL).value is True:
            mp = "fp16" if key == "full_fp16" else "bf16"
            self.put(key, path, raw)
            self.n.put("mixed_precision", mp, kind=FRONTEND, keys=path, conversion=f"{key} -> mixed_precision {mp}")
            self.n.note("derrian-toml-precision-forced", f"{key} forces mixed_precision {mp}", path)
            return
        if key == "optimizer_type" and isinstance(raw, str) and raw.lower() in CUSTOM_OPTIMIZERS:
            cls = CUSTOM_OPTIMIZERS[raw.lower()]
            self.n.put("optimizer_type", cls, kind=FRONTEND, keys=path,
                       conversion=f"optimizer_type {show(raw)} -> {cls}")
            self.n.note("derrian-toml-custom-optimizer", f"{raw} is remapped to Derrian's bundled {cls}", path,
                        optimizer=cls)
            return
        if key == "lr_scheduler_type" and isinstance(raw, str) and raw.startswith("LoraEasyCustomOptimizer"):
            self.n.note("derrian-toml-custom-scheduler", f"{raw} is Derrian's own scheduler class", path, scheduler=raw)
        if key == "mixed_precision" and self.cfg.get("mixed_precision") \
                and self.cfg.options["mixed_precision"].prov.kind == FRONTEND:
            return   # full_fp16/full_bf16 already forced it
        if self.era == "U2" and isinstance(raw, str) and ('"' in raw or "\\" in raw) and key not in _U2_NORMALISED:
            self.n.note("derrian-toml-u2-quoting", f"{key} holds a quote or backslash; the U2 backend wrote it "
                        "into its TOML without escaping", path, value=raw)
        if isinstance(self.easy_name, str) and self.easy_name and isinstance(raw, str) and "${replace}" in raw \
                and key in ("output_dir", "output_name", "resume", "log_prefix"):
            new = raw.replace("${replace}", self.easy_name)
            self.n.put(canon, new, kind=FRONTEND, keys=[path, "saving_args.args.easy_name"],
                       conversion=f"{key} {show(raw)} with easy_name {show(self.easy_name)} -> {show(new)}")
            self.n.note("derrian-toml-easy-name", f"{key}: ${{replace}} -> {self.easy_name}", path)
            return
        dataset = part == "dataset_args"
        if dataset:
            if key == "resolution" and isinstance(raw, list):
                vk = ANY
            else:
                vk = None
            self.put(canon, path, raw, kind=vk, target=self.cfg.general, dataset=True)
        else:
            self.put(canon, path, raw)

    def _table(self, path: str, key: str, table: dict[str, Any]) -> None:
        items: dict[str, Any] = {}
        for k, v in table.items():
            if k == "preset" and v == "":
                continue
            if k in BLOCK_ARRAYS and isinstance(v, list):
                v = ",".join(str(x) for x in v)
            if key == "optimizer_args" and isinstance(v, str) and v.lower() in ("true", "false"):
                v = v.capitalize()
            if v in ("", None) or (isinstance(v, (list, dict)) and not v):
                continue
            items[k] = v
            if k == "constrain":
                self.n.note("derrian-toml-constrain-misspelt", "'constrain' is passed as written", f"{path}.{k}")
        if key == "network_args":
            self._net_table = items   # consulted by network_module()
        if key == "lr_scheduler_args":
            self._sched_table = items
            return                     # emitted by warmup() (it may add generated entries)
        lst = args_table_to_list(items)
        if lst:
            self.n.put(key, lst, kind=CONVERTED, keys=path, conversion=f"[{path}] table -> {key} {show(lst)}")

    def _extra(self, path: str, key: str, raw: Any, part: str) -> None:
        from lora_compat.config import options

        if part == "dataset_args":
            if options.is_dataset_param(key):
                self.put(key, path, raw, target=self.cfg.general, dataset=True)
            else:
                self.n.unknown(path, raw, "not a dataset-config key")
            return
        if key == "network_module":
            self._extra_module = (path, raw)
            return
        if options.is_option(key):
            self.put(key, path, raw)
        else:
            self.n.unknown(path, raw, "not an sd-scripts option")

    def network_module(self) -> None:
        net = self.args("network_args")
        table = getattr(self, "_net_table", None) or {}
        base = "network_args.args"
        module, why, key = "networks.lora", "default", None
        if coerce(net.get("fa"), BOOL).value is True:
            module, why, key = "networks.lora_fa", "fa true", f"{base}.fa"
        if "algo" in table:
            module, why, key = "lycoris.kohya", "network_args has algo", f"{base}.network_args.algo"
        elif "unit" in table:
            module, why, key = "networks.dylora", "network_args has unit", f"{base}.network_args.unit"
        flux = self.args("flux_args")
        # the backend (utils/validation.py) drops falsy values first, then picks networks.lora_flux only when no
        # fa/algo/unit chose a module and guidance_scale survived: a guidance_scale of 0 leaves networks.lora
        if self.era == "U2" and module == "networks.lora" and "guidance_scale" in flux and \
                coerce(flux.get("guidance_scale"), FLOAT).value not in (UNSET, None, 0, 0.0):
            module, why, key = "networks.lora_flux", "Flux (guidance_scale)", "flux_args.args.guidance_scale"
        extra = getattr(self, "_extra_module", None)
        if extra:
            module, why, key = str(extra[1]), "extra_args network_module", extra[0]
        self.n.put("network_module", module, kind=DERIVED if key else DEFAULT, keys=key,
                   conversion=f"network_module {show(module)} ({why})")
        if key:
            self.n.note("derrian-toml-network-module", f"network_module {module} chosen by the UI ({why})", key)

    def flux(self) -> None:
        """What FluxUI.py writes that changes meaning on its way to flux_train_network.py (main_ui_files/FluxUI.py,
        backend utils/validation.py): a disabled input is stored as ``false`` and dropped, so sd-scripts' own
        defaults apply; a ``guidance_scale`` of 0 is dropped too."""
        flux = self.args("flux_args")
        if not flux:
            return
        base = "flux_args.args"
        sampling = str(flux.get("timestep_sampling") or "sigma")
        shift = flux.get("discrete_flow_shift")
        if "discrete_flow_shift" in flux and coerce(shift, FLOAT).value in (UNSET, None, 0, 0.0, False) \
                and sampling == "sigma":
            self.n.note("derrian-flux-shift-not-passed",
                        "discrete_flow_shift is only passed with timestep_sampling \"shift\"; sigma sampling still "
                        "reads it, so sd-scripts' default 3.0 shifts the scheduler", f"{base}.discrete_flow_shift",
                        option="discrete_flow_shift", default=3.0)
        if "guidance_scale" in flux and coerce(flux.get("guidance_scale"), FLOAT).value in (0, 0.0):
            self.n.note("derrian-flux-guidance-zero",
                        "guidance_scale 0 is dropped as falsy: sd-scripts uses 3.5, and the backend no longer picks "
                        "networks.lora_flux", f"{base}.guidance_scale", option="guidance_scale", default=3.5)

    def warmup(self) -> None:
        opt = self.args("optimizer_args")
        sched_items = dict(getattr(self, "_sched_table", None) or {})
        base = "optimizer_args.args"
        ratio = coerce(opt.get("warmup_ratio"), FLOAT)
        custom = bool(opt.get("lr_scheduler_type"))
        steps = self._steps()
        if ratio.ok and ratio.value not in (UNSET, 0, 0.0):
            key = f"{base}.warmup_ratio"
            r = ratio.value
            if steps is None:
                self.n.note("derrian-toml-warmup-unresolved", f"warmup_ratio {r} of the UI's step estimate", key,
                            ratio=r)
            elif custom:
                # the backend (utils/validation.py validate_warmup_ratio): warmup_steps = round(steps x ratio)
                # // lr_scheduler_num_cycles, passed inside lr_scheduler_args to the custom scheduler
                cycles = coerce(opt.get("lr_scheduler_num_cycles"), INT).value or 1
                ws = round(steps * r) // cycles
                sched_items["warmup_steps"] = ws
                self.n.note("derrian-toml-warmup-ratio", f"warmup_ratio {r}: round({steps} steps x {r}) // "
                            f"{cycles} cycles -> scheduler warmup_steps {ws}", key, steps=steps, warmup=ws)
            else:
                ws = derrian_ui_warmup_steps(steps, r)
                approx = self.era == "U2" and self._steps_from_images
                caveat = " (U1 count; the U2 backend counts per bucket and may differ)" if approx else ""
                if ws:
                    self.n.put("lr_warmup_steps", ws, kind=DERIVED, keys=key,
                               conversion=f"warmup_ratio {show(opt.get('warmup_ratio'))} x {steps} steps -> "
                                          f"lr_warmup_steps {ws}{caveat}")
                self.n.note("derrian-toml-warmup-ratio", f"warmup_ratio {r} x {steps} steps = {ws}{caveat}", key,
                            steps=steps, warmup=ws, approximate=approx)
        if custom and steps is not None and str(opt.get("lr_scheduler_type", "")).endswith("Restarts"):
            cycles = coerce(opt.get("lr_scheduler_num_cycles"), INT).value or 1
            sched_items["first_cycle_steps" if self.era == "U1" else "first_cycle_max_steps"] = steps // cycles
            if self.era == "U2" or "warmup_steps" in sched_items:
                self.cfg.options.pop("lr_scheduler_num_cycles", None)
        if sched_items:
            lst = args_table_to_list(sched_items)
            self.n.put("lr_scheduler_args", lst, kind=CONVERTED if "warmup_steps" not in sched_items else DERIVED,
                       keys=f"{base}.lr_scheduler_args" if "lr_scheduler_args" in opt else None,
                       conversion=f"lr_scheduler_args -> {show(lst)}")

    def _steps(self) -> int | None:
        """The UI's step estimate: max_train_steps, else from the subsets' images.

        U1: Σ images x repeats x epochs // batch. U2 (backend, 2024-05-18 on): bucket-aware like sd-scripts,
        Σ over buckets of ceil(images x repeats / batch), then ceil(/ gradient accumulation) x epochs; the
        image sizes need Pillow, without it (or for unreadable images) the U1 count is used and the result is
        marked approximate.
        """
        g = self.args("general_args")
        mts = coerce(g.get("max_train_steps"), INT)
        self._steps_from_images = False
        if mts.ok and mts.value not in (UNSET, 0):
            return mts.value
        subs = [s for s in (self.data.get("subsets") or []) if isinstance(s, dict)] \
            if isinstance(self.data.get("subsets"), list) else []
        if not subs:
            return None
        folders = []
        for s in subs:
            path = _image_folder(s.get("image_dir"), self.doc.path)
            if path is None:
                return None
            folders.append((path, coerce(s.get("num_repeats"), INT).value or 1))
        epochs = coerce(g.get("max_train_epochs"), INT).value or 1
        ds = (self.data.get("general_args") or {}).get("dataset_args") or {}
        batch = coerce(ds.get("batch_size"), INT).value or 1
        if self.era == "U2":
            steps = self._bucket_steps(folders, batch, epochs)
            if steps is not None:
                return steps
        self._steps_from_images = True     # U1 formula (exact for U1, an approximation for U2)
        total = sum(len(_images(path)) * repeats for path, repeats in folders)
        return derrian_ui_max_train_steps(total, epochs, batch)

    def _bucket_steps(self, folders: list[tuple[str, int]], batch: int, epochs: int) -> int | None:
        try:
            from PIL import Image  # optional: only needed when image folders are present
        except ImportError:
            return None
        from lora_compat.semantics import BucketSelector, round_bucket_limits

        ds = (self.data.get("general_args") or {}).get("dataset_args") or {}
        bk = (self.data.get("bucket_args") or {}).get("dataset_args") or {}
        reso = ds.get("resolution", 512)
        reso = (reso, reso) if isinstance(reso, int) else tuple(reso)
        grad_acc = coerce(self.args("general_args").get("gradient_accumulation_steps"), INT).value or 1
        selector = None
        if bk.get("enable_bucket"):
            lo, hi = round_bucket_limits(bk.get("min_bucket_reso", 256), bk.get("max_bucket_reso", 1024),
                                         bk.get("bucket_reso_steps", 64))
            selector = BucketSelector(reso, min_bucket_reso=lo, max_bucket_reso=hi,
                                      bucket_reso_steps=bk.get("bucket_reso_steps", 64),
                                      no_upscale=bool(bk.get("bucket_no_upscale")))
        counts: dict[tuple[int, int], int] = {}
        try:
            for path, repeats in folders:
                for name in _images(path):
                    with Image.open(os.path.join(path, name)) as im:
                        size = im.size
                    bucket = selector.select(*size)[0] if selector else reso
                    counts[bucket] = counts.get(bucket, 0) + repeats
        except (OSError, ValueError, ZeroDivisionError):
            return None
        return max_train_steps_for_epochs(epochs, batches_per_epoch(counts.values(), batch), 1, grad_acc)

    def subsets(self) -> None:
        subs = self.data.get("subsets")
        if subs is None:
            return
        if not isinstance(subs, list):
            self.n.invalid("subsets", "subsets", subs, "expected an array of tables [[subsets]]")
            return
        props = _schema()["properties"]["subsets"]["items"]["properties"]
        cache = coerce(self.args("general_args").get("cache_latents"), BOOL).value is True
        ds = Dataset(origin=self.n.origin("subsets"))
        from lora_compat.config import options

        for i, s in enumerate(subs):
            base = f"subsets[{i}]"
            if not isinstance(s, dict):
                self.n.invalid("subsets", base, s, "expected a table")
                continue
            sub = Subset(origin=self.n.origin(base))
            for key, raw in s.items():
                path = f"{base}.{key}"
                p = props.get(key)
                if p is not None and p.get("x-canonical") is None:
                    self.n.frontend_only(path, raw, p.get("x-frontend-only") or "UI-only")
                    continue
                if p is None and not options.is_dataset_param(key):
                    self.n.unknown(path, raw, "not a subset key")
                    continue
                if cache and key in ("random_crop", "color_aug") and coerce(raw, BOOL).value is True:
                    self.n.note("derrian-toml-cache-latents-disables-aug",
                                f"{key} disabled because cache_latents is on",
                                path)
                    continue
                self.put(key, path, raw, target=sub.params, dataset=True)
            if not sub.params.get("image_dir") or not sub.params["image_dir"].value:
                # the UI's empty template: its backend refuses the subset until a folder is chosen (validation.py
                # validate_subset: "Image directory path for '<name>' does not exist"). Like any folder that is not
                # on this machine it never blocks reading: image_dir = "" is kept (sd-scripts' schema takes the
                # string; its folder is unknown) and a note says so; only train needs the folder.
                self.n.put("image_dir", "", kind=KEPT, keys=f"{base}.image_dir" if "image_dir" in s else base,
                           target=sub.params)
                self.n.note("image-folder-unset", "the subset has no image folder yet (image_dir is empty): its "
                            "images are unknown; the UI and train need one", f"{base}.image_dir")
            ds.subsets.append(sub)
        self.cfg.datasets.append(ds)


def _image_folder(folder: Any, config_path: str) -> str | None:
    if not isinstance(folder, str) or not folder:
        return None
    path = folder if os.path.isabs(folder) else os.path.join(os.path.dirname(os.path.abspath(config_path)), folder)
    return path if os.path.isdir(path) else None


def _images(path: str) -> list[str]:
    """Image files of a subset folder (the extensions the Derrian UI counts)."""
    return sorted(f for f in os.listdir(path) if f.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS)


def read(doc: Any, detection: Any = None) -> CanonicalConfig:
    """Normalize a Derrian UI TOML document into the canonical model."""
    from lora_compat.errors import UserError

    if not isinstance(doc.data, dict):
        raise UserError("a Derrian UI TOML must be a table", file=doc.path)
    era, tab, _ = classify(doc.data)
    d_era = getattr(detection, "era", None)
    return _UiReader(doc, d_era if d_era in ("U1", "U2") else era, tab).run()
