"""Convert a parsed LoRA (:class:`~lora_compat.weights.layouts.LoraFile`) to kohya, PEFT or diffusers layout.

Tensor bytes are copied untouched wherever the math allows (renames, 1x1 reshapes, DoRA ``[out]`` <->
``[out, 1]``); only ``--dtype`` casts and ``--bake-scale`` rewrite bytes. Alphas stay exact: per-module kohya
``.alpha`` tensors, PEFT ``rank_pattern``/``alpha_pattern``, diffusers ``lora_adapter_metadata``. No torch.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lora_compat.atomic import atomic_dir
from lora_compat.config.secrets import is_secret_key
from lora_compat.errors import UserError, Where
from lora_compat.weights.conversion import (
    DTYPES,
    FLOAT_DTYPES,
    ConvertOptions,
    ConvertReport,
    check_dst,
    count_bytes,
    fmt_alpha,
    path_metadata,
    provenance,
    source_metadata,
    verifier,
    write_file,
)
from lora_compat.weights.flux_layouts import FluxLoraFile
from lora_compat.weights.layouts import PART_COMPONENT, AdapterModule, LoraFile
from lora_compat.weights.reader import open_lora
from lora_compat.weights.safetensors_io import (
    ByteRange,
    CastRange,
    OutTensor,
    TensorEntry,
    encode_values,
    sd_scripts_hashes,
    write_safetensors,
)

TARGETS = ("kohya", "peft", "diffusers", "comfyui", "ai-toolkit")
SD_TARGETS = ("kohya", "peft", "diffusers")

KOHYA_ROLE_PARAM = {
    "lora": {"down": "lora_down.weight", "up": "lora_up.weight", "mid": "lora_mid.weight"},
    "loha": {r: f"hada_{r}" for r in ("w1_a", "w1_b", "w2_a", "w2_b", "t1", "t2")},
    "lokr": {r: f"lokr_{r}" for r in ("w1", "w1_a", "w1_b", "w2", "w2_a", "w2_b", "t2")},
}
PEFT_ROLE_PARAM = {
    "lora": {"down": "lora_A.weight", "up": "lora_B.weight"},
    "loha": KOHYA_ROLE_PARAM["loha"],
    "lokr": KOHYA_ROLE_PARAM["lokr"],
}
# Which tensor takes a baked scale (the scale multiplies the whole product, so any single factor works).
BAKE_ROLE = {"lora": "down", "loha": "w1_a", "lokr": ("w1", "w1_a")}
PEFT_TYPE = {"lora": "LORA", "loha": "LOHA", "lokr": "LOKR"}
PEFT_DIRS = {"unet": "unet", "te1": "text_encoder", "te2": "text_encoder_2"}
DROP_META_PREFIXES = ("sshs_",)
DROP_META_KEYS = ("modelspec.hash_sha256",)


def check_target(lf: LoraFile, to: str) -> None:
    """Refuse what the target layout cannot express (with the module that is the problem)."""
    if to == "kohya":
        return
    for m in lf.modules:
        where: Where = {"file": str(lf.path), "key": m.keys[0]}
        if m.algo == "lora" and "mid" in m.tensors:
            raise UserError(f"Tucker (lora_mid) LoCon modules have no {to} equivalent", **where)
        if m.dora is not None and m.dora_axis == "in":
            raise UserError(f"input-axis DoRA (dora_scale [1, in]) is different math from PEFT's output-axis DoRA; "
                            f"cannot convert to {to}", **where)
        if to == "diffusers" and m.algo != "lora":
            raise UserError(f"{m.algo} modules cannot be loaded by diffusers' SD/SDXL pipelines; convert to kohya "
                            "or peft instead", **where)
    if to == "peft":
        for part in {m.part for m in lf.modules}:
            mods = [m for m in lf.modules if m.part == part]
            algos = {m.algo for m in mods}
            if len(algos) > 1:
                raise UserError(f"{part} mixes {sorted(algos)}: one PEFT adapter holds one method", file=str(lf.path))
            if algos == {"lokr"}:
                lokr_peft_layout(mods, lf.path)  # raises when no PEFT LoKrConfig recreates these shapes
            if algos == {"loha"}:
                kinds = {("t1" in m.tensors) for m in mods if m.info.is_conv3x3}
                if len(kinds) > 1:
                    raise UserError("LoHa mixes Tucker and plain 3x3 convs; PEFT's use_effective_conv2d is global",
                                    file=str(lf.path))


def _out_dtype(entry: TensorEntry, opts: ConvertOptions, path: Path | None = None) -> str:
    want = DTYPES[opts.dtype]
    if want is None or entry.dtype == want:
        return entry.dtype
    if entry.dtype not in FLOAT_DTYPES:
        raise UserError(f"cannot cast {entry.dtype} to {opts.dtype} (--dtype casts F32, F16 and BF16)",
                        file=str(path) if path else None, key=entry.name)
    return want


def _source(entry: TensorEntry, path: Path, out_dtype: str, factor: float = 1.0):
    if out_dtype == entry.dtype and factor == 1.0:
        return ByteRange(path, entry.start, entry.nbytes)
    return CastRange(path, entry.start, entry.nbytes, entry.dtype, out_dtype, factor)


def _tensor_shape(m: AdapterModule, role: str, entry: TensorEntry) -> tuple[int, ...]:
    """Emit the shape the base module's type calls for: 2-D for Linear, 4-D for Conv (1x1 reshapes only, so the
    bytes are the same)."""
    s = entry.shape
    if m.algo == "lora" and role in ("down", "up") and "mid" not in m.tensors:
        if m.info.kind == "linear":
            return s[:2]
        return s if len(s) == 4 else (*s, 1, 1)
    return s


def _dora_shape(m: AdapterModule, peft: bool) -> tuple[int, ...]:
    if m.dora is None:
        raise ValueError(f"{m.name} has no DoRA magnitude")
    fout = m.dora.numel
    if m.dora_axis == "in":
        return m.dora.shape
    if peft:
        return (fout,) if m.info.kind == "linear" else (1, fout, 1, 1)
    return (fout, 1) if m.info.kind == "linear" else (fout, 1, 1, 1)


def _module_tensors(m: AdapterModule, names: dict[str, str], opts: ConvertOptions, bake: bool, peft: bool
                    ) -> list[OutTensor]:
    """Output tensors of one module: ``names`` maps role -> output key (dora under role "dora")."""
    out = []
    bake_role = None
    factor = 1.0
    if bake and m.scale != 1.0:
        roles = BAKE_ROLE[m.algo]
        bake_role = next(r for r in ((roles,) if isinstance(roles, str) else roles) if r in m.tensors)
        factor = m.scale
    for role, entry in m.tensors.items():
        dt = _out_dtype(entry, opts, m.source.path)
        f = factor if role == bake_role else 1.0
        if f != 1.0 and entry.dtype not in FLOAT_DTYPES:
            raise UserError(f"cannot bake a scale into a {entry.dtype} tensor (F32, F16 and BF16 only)",
                            file=str(m.source.path), key=entry.name)
        out.append(OutTensor(names[role], dt, _tensor_shape(m, role, entry), _source(entry, m.source.path, dt, f)))
    if m.dora is not None:
        dt = _out_dtype(m.dora, opts, m.source.path)
        out.append(OutTensor(names["dora"], dt, _dora_shape(m, peft), _source(m.dora, m.source.path, dt)))
    return out


def _effective_alpha(m: AdapterModule, bake: bool) -> float | None:
    """The kohya alpha to write: the module's own, its rank when missing or baked, None when scale is fixed 1."""
    r = m.rank
    if r is None:
        return m.alpha  # LoKr with two full factors: alpha is ignored by every consumer
    if bake or m.alpha is None:
        return float(r)
    return m.alpha


# --- metadata -----------------------------------------------------------------------------------------------------


MODELSPEC_ARCH = {"sd1": "stable-diffusion-v1/lora", "sd2": "stable-diffusion-v2-512/lora",
                  "sdxl": "stable-diffusion-xl-v1-base/lora"}


def _kohya_metadata(lf: LoraFile, opts: ConvertOptions, modules: list[AdapterModule], bake: bool,
                    bytes_changed: bool) -> tuple[dict[str, str], bool]:
    """kohya output metadata, and whether sshs_* hashes must be recomputed."""
    src = source_metadata(lf)
    had_hashes = any(k.startswith("sshs_") for k in src)
    meta = {k: v for k, v in src.items() if not k.startswith(DROP_META_PREFIXES) and k not in DROP_META_KEYS
            and not k.startswith("lora_compat.") and k != "lora_adapter_metadata" and not is_secret_key(k)}
    algos = {m.algo for m in modules}
    dora = any(m.dora is not None for m in modules)
    if algos - {"lora"} or dora or any("mid" in m.tensors for m in modules):
        meta["ss_network_module"] = "lycoris.kohya"
    elif "ss_network_module" not in meta or meta["ss_network_module"] == "lycoris.kohya":
        meta["ss_network_module"] = "networks.lora"
    ranks = Counter(m.rank for m in modules if m.rank is not None)
    alphas = Counter(a for m in modules if m.rank is not None and (a := _effective_alpha(m, bake)) is not None)
    if ranks and ("ss_network_dim" not in meta or lf.layout != "kohya"):
        meta["ss_network_dim"] = str(ranks.most_common(1)[0][0])
    if alphas and ("ss_network_alpha" not in meta or lf.layout != "kohya" or bake):
        meta["ss_network_alpha"] = str(fmt_alpha(alphas.most_common(1)[0][0]))
    if "ss_base_model_version" not in meta:
        meta["ss_base_model_version"] = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}[lf.arch]
    if lf.arch in ("sd1", "sd2"):
        meta["ss_v2"] = "True" if lf.arch == "sd2" else "False"
    if "modelspec.architecture" in meta or "modelspec.sai_model_spec" in meta:
        meta.setdefault("modelspec.architecture", MODELSPEC_ARCH[lf.arch])
    meta["format"] = "pt"
    meta.update(provenance(lf, opts))
    return meta, had_hashes


# --- PEFT configuration -------------------------------------------------------------------------------------------

def _config_path(m: AdapterModule) -> str:
    # Text-encoder paths without `text_model.`: PEFT matches target_modules by suffix and patterns by `(.*\.)?p$`,
    # so the short form matches both transformers-4 (`text_model.encoder...`) and transformers-5 models.
    return m.info.te_path(5) if m.part != "unet" else m.info.diffusers_path


def peft_config(modules: list[AdapterModule], bake: bool) -> dict:
    """A PEFT adapter config (LoraConfig/LoHaConfig fields) reproducing every module's rank and scale exactly."""
    algo = modules[0].algo
    lokr = lokr_peft_layout(modules, modules[0].source.path) if algo == "lokr" else None
    if lokr is not None:
        ranks = dict(lokr.ranks)
        alphas = {p: (float(ranks[p]) if bake else a) for p, a in lokr.alphas.items()}
    else:
        ranks, alphas = {}, {}
        for m in modules:
            r, a = m.rank, _effective_alpha(m, bake)
            assert r is not None and a is not None  # LoRA and LoHa modules always have a rank
            ranks[_config_path(m)], alphas[_config_path(m)] = r, a
    r_common = Counter(ranks.values()).most_common(1)[0][0]
    a_common = Counter(alphas.values()).most_common(1)[0][0]
    rank_pattern = {p: r for p, r in ranks.items() if r != r_common}
    alpha_pattern = {p: fmt_alpha(a) for p, a in alphas.items() if a != a_common}
    targets = sorted(ranks)
    cfg: dict = {"peft_type": PEFT_TYPE[algo], "r": r_common, "target_modules": targets,
                 "rank_pattern": rank_pattern, "alpha_pattern": alpha_pattern, "inference_mode": True,
                 "task_type": None, "base_model_name_or_path": None, "revision": None, "modules_to_save": None,
                 "layers_to_transform": None, "layers_pattern": None, "exclude_modules": None}
    if algo == "lora":
        cfg.update({"lora_alpha": fmt_alpha(a_common), "use_rslora": False,
                    "use_dora": any(m.dora is not None for m in modules), "lora_dropout": 0.0, "bias": "none",
                    "fan_in_fan_out": False, "init_lora_weights": True, "lora_bias": False})
    elif algo == "loha":
        cfg.update({"alpha": fmt_alpha(a_common), "rank_dropout": 0.0, "module_dropout": 0.0,
                    "use_effective_conv2d": any("t1" in m.tensors for m in modules), "init_weights": True})
    else:
        assert lokr is not None  # algo == "lokr"
        cfg.update({"alpha": fmt_alpha(a_common), "rank_dropout": 0.0, "module_dropout": 0.0,
                    "use_effective_conv2d": lokr.use_effective_conv2d, "decompose_both": lokr.decompose_both,
                    "decompose_factor": lokr.decompose_factor, "rank_dropout_scale": False, "init_weights": True})
    return cfg


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """LyCORIS/PEFT's split of ``dimension`` into (m, n), m <= n: ``factor`` if it divides, else the most square
    pair with m <= factor (``-1``: no bound)."""
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    if factor == -1:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    if m > n:
        m, n = n, m
    return m, n


@dataclass
class LokrPeftLayout:
    """The LoKrConfig fields that make PEFT recreate a set of LyCORIS LoKr modules with identical shapes."""

    decompose_factor: int
    decompose_both: bool
    use_effective_conv2d: bool
    ranks: dict[str, int]       # config path -> PEFT r
    alphas: dict[str, float]    # config path -> PEFT alpha (scale = alpha / r)


def _lokr_dims(m: AdapterModule) -> tuple[int, int, int, int]:
    t = {role: e.shape for role, e in m.tensors.items()}
    a, b = t["w1"] if "w1" in t else (t["w1_a"][0], t["w1_b"][1])
    k = m.info.kernel
    if "w2" in t:
        c, d = t["w2"][:2]
    elif "t2" in t:
        c, d = t["w2_a"][1], t["w2_b"][1]
    else:
        c, d = t["w2_a"][0], t["w2_b"][1] // (k * k)
    return a, b, c, d


def lokr_peft_layout(mods: list[AdapterModule], path: Path) -> LokrPeftLayout:
    """Find decompose_factor / decompose_both / use_effective_conv2d / per-module r that PEFT turns into exactly these
    factor shapes (PEFT builds them from its config, not from the checkpoint); UserError when none exists."""
    def refuse(msg: str) -> UserError:
        return UserError(f"LoKr -> PEFT: {msg}; convert to kohya instead", file=str(path))

    dims = {_config_path(m): _lokr_dims(m) for m in mods}
    decompose_both = any("w1" not in m.tensors for m in mods)
    effective = any("t2" in m.tensors for m in mods)
    ranks: dict[str, int] = {}
    alphas: dict[str, float] = {}
    for m in mods:
        p = _config_path(m)
        a, b, c, d = dims[p]
        w1_full, w2_full = "w1" in m.tensors, "w2" in m.tensors
        r = m.rank if m.rank is not None else max(a, b, c, d)  # both full: any r that keeps both full
        use_w1 = not (decompose_both and r < max(a, b) / 2)
        use_w2 = not (r < max(c, d) / 2)
        if use_w1 != w1_full or use_w2 != w2_full:
            raise refuse(f"{m.info.kohya_name}: rank {r} with factors {a}x{b}, {c}x{d} would not give the same "
                         "full/decomposed factors in PEFT")
        if m.info.is_conv3x3 and not w2_full and (("t2" in m.tensors) != effective):
            raise refuse("Tucker and plain decomposed 3x3 convs are mixed (use_effective_conv2d is global)")
        ranks[p] = r
        alphas[p] = m.scale * r  # PEFT scale = alpha / r for every LoKr module
    cands = [-1, *sorted({x for a, b, c, d in dims.values() for x in (a, b)})]
    for f in cands:
        if all(factorization(a * c, f) == (a, c)
               and factorization(b * d, f) == (b, d) for a, b, c, d in dims.values()):
            return LokrPeftLayout(f, decompose_both, effective, ranks, alphas)
    raise refuse("no decompose_factor makes PEFT split every module like this file")


def diffusers_adapter_metadata(lf: LoraFile, bake: bool) -> dict:
    """``lora_adapter_metadata`` for a pipeline-level diffusers file: component-prefixed LoraConfig fields."""
    out: dict = {}
    for part in ("unet", "te1", "te2"):
        mods = [m for m in lf.modules if m.part == part]
        if not mods:
            continue
        cfg = peft_config(mods, bake)
        keep = ("r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern", "use_dora", "use_rslora",
                "lora_dropout", "bias", "init_lora_weights", "lora_bias")
        for k in keep:
            out[f"{PART_COMPONENT[part]}.{k}"] = cfg[k]
    return out


# --- the conversion -----------------------------------------------------------------------------------------------

def _kohya_tensors(lf: LoraFile, opts: ConvertOptions, bake: bool) -> list[OutTensor]:
    out: list[OutTensor] = []
    for m in lf.modules:
        name = m.info.kohya_name
        names = {role: f"{name}.{KOHYA_ROLE_PARAM[m.algo][role]}" for role in m.tensors}
        names["dora"] = f"{name}.dora_scale"
        out += _module_tensors(m, names, opts, bake, peft=False)
        alpha = _effective_alpha(m, bake)
        if alpha is not None:
            out.append(OutTensor(f"{name}.alpha", "F32", (), encode_values([alpha], "F32")))
    return out


def _path_tensors(mods: list[AdapterModule], opts: ConvertOptions, bake: bool, prefix_of) -> list[OutTensor]:
    out: list[OutTensor] = []
    for m in mods:
        base = prefix_of(m)
        names = {role: f"{base}.{PEFT_ROLE_PARAM[m.algo][role]}" for role in m.tensors}
        names["dora"] = f"{base}.lora_magnitude_vector"
        out += _module_tensors(m, names, opts, bake, peft=True)
    return out


        # bytes sources are the new 4-byte alpha scalars: neither copied nor rewritten tensor data


def convert_loaded(lf: LoraFile, dst: Path, opts: ConvertOptions) -> ConvertReport:
    """Write ``lf`` to ``dst`` in layout ``opts.to``.

    Atomic: the output is built beside ``dst`` and renamed into place only when complete and, with
    ``opts.verify``, verified (else :class:`VerificationError` and nothing is written). ``dst`` must not exist
    unless ``opts.force``, and even then only a file or folder this tool could have written is replaced.
    """
    if opts.to not in TARGETS:
        raise UserError(f"unknown target layout {opts.to!r}; expected one of {', '.join(TARGETS)}")
    if opts.dtype not in DTYPES:
        raise UserError(f"unknown --dtype {opts.dtype!r}; expected one of {', '.join(DTYPES)}")
    if isinstance(lf, FluxLoraFile):
        from lora_compat.weights.flux_convert import convert_flux  # FLUX.1 / Chroma: fused <-> split modules

        return convert_flux(lf, Path(dst), opts)
    if opts.to not in SD_TARGETS:
        raise UserError(f"--to {opts.to} is defined for FLUX.1/Chroma LoRAs; {lf.arch} kohya files already load in "
                        "ComfyUI and ai-toolkit (use --to kohya)", file=str(lf.path))
    check_target(lf, opts.to)
    dst = Path(dst)
    check_dst(lf, dst, opts)
    bake = opts.bake_scale
    report = ConvertReport(lf.path, dst, lf.layout, lf.arch, lf.algo, opts.to, len(lf.modules),
                           dict(Counter(m.part for m in lf.modules)))
    check = verifier(lf, report) if opts.verify else None
    if opts.to == "kohya":
        tensors = _kohya_tensors(lf, opts, bake)
        bytes_changed = bake or opts.dtype != "keep" or lf.layout != "kohya"
        meta, had_hashes = _kohya_metadata(lf, opts, lf.modules, bake, bytes_changed)
        count_bytes(tensors, report)
        if had_hashes:
            model_hash, legacy_hash = sd_scripts_hashes(tensors, meta)
            meta = dict(meta, sshs_model_hash=model_hash, sshs_legacy_hash=legacy_hash)
            report.notes.append("recomputed sshs_model_hash / sshs_legacy_hash")
        write_file(dst, tensors, meta, check)
        report.outputs.append(dst)
    elif opts.to == "diffusers":
        def prefix_of(m: AdapterModule) -> str:
            return f"{PART_COMPONENT[m.part]}.{m.info.diffusers_path}"  # TE keys keep `text_model.` (ComfyUI)
        tensors = _path_tensors(lf.modules, opts, bake, prefix_of)
        meta = path_metadata(lf, opts)
        meta["lora_adapter_metadata"] = json.dumps(diffusers_adapter_metadata(lf, bake), sort_keys=True)
        count_bytes(tensors, report)
        write_file(dst, tensors, meta, check)
        report.outputs.append(dst)
    else:
        parts = [p for p in ("unet", "te1", "te2") if any(m.part == p for m in lf.modules)]
        meta = path_metadata(lf, opts)
        with atomic_dir(dst, replace=opts.force) as tmp:
            for part in parts:
                mods = [m for m in lf.modules if m.part == part]

                def prefix_of(m: AdapterModule) -> str:
                    return f"base_model.model.{m.info.te_path(opts.te_naming)}"
                tensors = _path_tensors(mods, opts, bake, prefix_of)
                count_bytes(tensors, report)
                sub = tmp / PEFT_DIRS[part]
                sub.mkdir()
                write_safetensors(sub / "adapter_model.safetensors", tensors, meta, order="source", atomic=False)
                cfg = peft_config(mods, bake)
                with open(sub / "adapter_config.json", "w", encoding="utf-8") as fh:
                    json.dump(cfg, fh, indent=2, sort_keys=True)
                    fh.write("\n")
                report.outputs.append(dst / PEFT_DIRS[part])
            if check is not None:
                check(tmp)
    report.written = True
    if bake:
        report.notes.append("scales baked into the weights (alpha = rank)")
    return report


# --- what --force may replace -------------------------------------------------------------------------------------


def convert(src: Path | str, dst: Path | str, opts: ConvertOptions) -> ConvertReport:
    """Read ``src`` (any supported layout) and write it to ``dst`` in ``opts.to`` layout."""
    lf = open_lora(Path(src), arch=opts.arch, allow_pickle=opts.allow_pickle)
    return convert_loaded(lf, Path(dst), opts)
