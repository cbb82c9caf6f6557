"""Read every LoRA layout into one intermediate form: a list of :class:`AdapterModule` per file.

Layouts: ``kohya`` (sd-scripts / LyCORIS names ``lora_unet_...``: LoRA, LoCon, LoHa, LoKr, DoRA ``dora_scale``),
``peft`` (a folder with ``adapter_model.safetensors`` + ``adapter_config.json``, optionally one sub-folder per
component), ``diffusers`` (``unet.``/``text_encoder.``/``text_encoder_2.`` prefixed PEFT names, the mixed
``lora.down`` naming, ``lora_adapter_metadata``, ``.alpha`` keys) and ``diffusers-old`` (attention-processor keys,
read only). Names are resolved against the pinned tables of :mod:`lora_compat.arch`, never by ``_`` -> ``.``
guessing; anything that does not resolve is an error naming the keys. No torch here.

Scale convention of the intermediate form: ``alpha`` is the kohya alpha, i.e. the module's effective scale is
``alpha / rank`` (``None`` = no alpha = scale 1), except LoKr with both factors full where kohya's scale is 1.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from lora_compat import arch as archmod
from lora_compat.arch import ModuleInfo
from lora_compat.arch.families import family_from_metadata
from lora_compat.errors import UserError, Where
from lora_compat.weights.peft_patterns import PatternError, PatternIndex
from lora_compat.weights.safetensors_io import SafetensorsFile, TensorEntry, read_header
from lora_compat.weights.untrusted import (
    FLOAT32_MAX,
    PEFT_TYPES,
    PeftConfig,
    parse_json,
    peft_config,
    read_small_file,
)

LAYOUTS = ("kohya", "peft", "diffusers", "diffusers-old")
ALGOS = ("lora", "loha", "lokr")
#: dtypes an adapter factor may have (integer "weights" make every consumer fail or compute garbage)
WEIGHT_DTYPES = ("F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2")

KOHYA_PREFIXES = ("lora_unet_", "lora_te1_", "lora_te2_", "lora_te_")
# kohya/LyCORIS parameter suffix -> (algo, role). LoRA accepts A1111's lora_A/lora_B spelling after a kohya name.
KOHYA_PARAMS: dict[str, tuple[str, str]] = {
    "lora_down.weight": ("lora", "down"), "lora_up.weight": ("lora", "up"), "lora_mid.weight": ("lora", "mid"),
    "lora_A.weight": ("lora", "down"), "lora_B.weight": ("lora", "up"),
    "hada_w1_a": ("loha", "w1_a"), "hada_w1_b": ("loha", "w1_b"), "hada_w2_a": ("loha", "w2_a"),
    "hada_w2_b": ("loha", "w2_b"), "hada_t1": ("loha", "t1"), "hada_t2": ("loha", "t2"),
    "lokr_w1": ("lokr", "w1"), "lokr_w1_a": ("lokr", "w1_a"), "lokr_w1_b": ("lokr", "w1_b"),
    "lokr_w2": ("lokr", "w2"), "lokr_w2_a": ("lokr", "w2_a"), "lokr_w2_b": ("lokr", "w2_b"), "lokr_t2": ("lokr", "t2"),
    "alpha": ("", "alpha"), "dora_scale": ("", "dora"),
}
# Recognised but not convertible kinds: say what they are instead of "unknown key".
UNSUPPORTED_KOHYA_PARAMS = {
    "diff": "full-weight diff (LyCORIS full)", "diff_b": "bias diff (LyCORIS full)", "on_input": "IA3",
    "weight": "IA3", "w_norm": "norm delta (LyCORIS norms)", "b_norm": "norm delta (LyCORIS norms)",
    "a1.weight": "GLoRA", "a2.weight": "GLoRA", "b1.weight": "GLoRA", "b2.weight": "GLoRA",
    "oft_blocks": "OFT", "oft_diag": "OFT", "scale": "A1111 'scale' override", "lora_B.bias": "LoRA bias",
}
# PEFT/diffusers parameter suffixes (after the module path) -> (algo, role)
PATH_PARAMS: list[tuple[str, tuple[str, str]]] = [
    (".lora_A.weight", ("lora", "down")), (".lora_B.weight", ("lora", "up")),
    (".lora_A.default.weight", ("lora", "down")), (".lora_B.default.weight", ("lora", "up")),
    (".lora.down.weight", ("lora", "down")), (".lora.up.weight", ("lora", "up")),
    (".lora_linear_layer.down.weight", ("lora", "down")), (".lora_linear_layer.up.weight", ("lora", "up")),
    (".lora_magnitude_vector", ("", "dora")), (".lora_magnitude_vector.weight", ("", "dora")),
    (".alpha", ("", "alpha")),
    (".hada_w1_a", ("loha", "w1_a")), (".hada_w1_b", ("loha", "w1_b")), (".hada_w2_a", ("loha", "w2_a")),
    (".hada_w2_b", ("loha", "w2_b")), (".hada_t1", ("loha", "t1")), (".hada_t2", ("loha", "t2")),
    (".lokr_w1", ("lokr", "w1")), (".lokr_w1_a", ("lokr", "w1_a")), (".lokr_w1_b", ("lokr", "w1_b")),
    (".lokr_w2", ("lokr", "w2")), (".lokr_w2_a", ("lokr", "w2_a")), (".lokr_w2_b", ("lokr", "w2_b")),
    (".lokr_t2", ("lokr", "t2")),
]
# Old attention-processor names (diffusers <= 0.18, and diffusers' own kohya conversion): suffix -> (module, role)
OLD_PROC = re.compile(
    r"^(?P<base>.*?)(?:\.processor)?\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<role>down|up)\.weight$"
)
OLD_PROC_UNET = {"to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0"}
OLD_PROC_TE = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}
PART_COMPONENT = archmod.PART_COMPONENTS      # unet / te1 / te2 -> diffusers component (the one table in arch)
COMPONENT_PREFIXES = {f"{component}.": part for part, component in PART_COMPONENT.items()}


class AdaptedModule(Protocol):
    """What the generic readers, checks and writers read of the module an adapter adapts: an SD
    :class:`~lora_compat.arch.ModuleInfo` or a FLUX ``FluxSlice`` (:mod:`lora_compat.weights.flux_layouts`)."""

    @property
    def kohya_name(self) -> str: ...
    @property
    def part(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...
    @property
    def kernel(self) -> int: ...
    @property
    def sgm_path(self) -> str | None: ...
    @property
    def is_conv3x3(self) -> bool: ...
    @property
    def group(self) -> str: ...


InfoT = TypeVar("InfoT", bound=AdaptedModule)


@dataclass
class AdapterModule(Generic[InfoT]):
    """One adapted base module with its tensors (by role) and its kohya-convention alpha."""

    info: InfoT
    algo: str                                  # lora | loha | lokr
    tensors: dict[str, TensorEntry]           # role -> tensor (down/up/mid, w1_a.., w1/w2.., t1/t2)
    source: SafetensorsFile
    alpha: float | None = None                 # kohya alpha; None = missing (scale 1)
    alpha_key: str | None = None
    dora: TensorEntry | None = None
    dora_axis: str | None = None               # "out" | "in"
    keys: list[str] = field(default_factory=list)  # source keys, for messages

    @property
    def part(self) -> str:
        return self.info.part

    @property
    def rank(self) -> int | None:
        """The rank kohya divides alpha by (None for LoKr with two full factors)."""
        t = self.tensors
        if self.algo == "lora":
            return t["down"].shape[0]
        if self.algo == "loha":
            return t["w1_b"].shape[0]
        if "w2_b" in t:
            return t["w2_b"].shape[0]
        if "w1_b" in t:
            return t["w1_b"].shape[0]
        return None

    @property
    def lora_rank(self) -> int:
        """The rank of a plain LoRA module (rows of its ``down``): FLUX files hold only these."""
        return self.tensors["down"].shape[0]

    @property
    def scale(self) -> float:
        """Effective multiplier of B.A (kohya semantics: alpha / rank, 1 without alpha)."""
        r = self.rank
        if self.alpha is None or r is None:
            return 1.0
        return self.alpha / r

    @property
    def name(self) -> str:
        return self.info.kohya_name


@dataclass
class LoraFile(Generic[InfoT]):
    """A parsed LoRA artefact: its layout, architecture, modules and metadata."""

    path: Path
    layout: str
    arch: str
    modules: list[AdapterModule[InfoT]]
    metadata: dict[str, str]
    files: list[SafetensorsFile]
    peft_configs: dict[str, PeftConfig] = field(default_factory=dict)  # part -> adapter_config.json (peft)
    naming: str = ""                                            # "sgm" | "diffusers" (kohya UNet spelling)
    custom_widths: bool = False                                 # widths differ from the real model (tiny/test)
    warnings: list[str] = field(default_factory=list)

    @property
    def algo(self) -> str:
        """lora, locon (LoRA with conv/resnet modules), loha, lokr, mixed; "+dora" when DoRA magnitudes exist."""
        algos = {m.algo for m in self.modules}
        if len(algos) > 1:
            base = "mixed"
        elif algos == {"lora"}:
            base = "locon" if any(m.info.group in ("resnet", "sampler") or m.info.is_conv3x3 for m in self.modules) \
                else "lora"
        else:
            base = next(iter(algos), "lora")
        if any(m.dora is not None for m in self.modules):
            base += "+dora"
        return base


# --- kohya --------------------------------------------------------------------------------------------------------

def _split_kohya(key: str) -> tuple[str, str]:
    name, _, param = key.partition(".")
    return name, param


def read_sd_kohya(sf: SafetensorsFile, arch_opt: str) -> LoraFile:
    """Read an SD1/SD2/SDXL kohya file (every key ``lora_unet_``/``lora_te*_``)."""
    groups: dict[str, dict[str, tuple[str, TensorEntry]]] = {}
    for key, entry in sf.tensors.items():
        name, param = _split_kohya(key)
        if param not in KOHYA_PARAMS:
            if param in UNSUPPORTED_KOHYA_PARAMS:
                raise UserError(f"{UNSUPPORTED_KOHYA_PARAMS[param]} modules cannot be converted (only LoRA, LoCon, "
                                "LoHa, LoKr and DoRA)", file=str(sf.path), key=key)
            raise UserError(f"unknown parameter {param!r} after a kohya module name", file=str(sf.path), key=key)
        slot = groups.setdefault(name, {})
        algo, role = KOHYA_PARAMS[param]
        if role in slot:
            raise UserError(f"two tensors for the same role ({role})", file=str(sf.path), key=key)
        slot[role] = (algo, entry)
    # Rule out architectures whose name prefixes cannot occur (an SDXL file has lora_te2_ names) before building
    # their tables; when none is left, all are tried so that the error names the unknown modules.
    cands = [a for a in archmod.ARCHS if all(n.startswith(archmod.kohya_name_prefixes(a)) for n in groups)]
    arch, modules, custom = _assemble(sf, groups, lambda a, n: archmod.lookup_kohya(n, a), arch_opt,
                                      peft_naming=False, cands=cands or None)
    spellings: set[str] = set()
    for m in modules:
        if m.part == "unet":
            name = m.keys[0].partition(".")[0]
            spellings.add("sgm" if name == "lora_unet_" + (m.info.sgm_path or "").replace(".", "_") else "diffusers")
    if len(spellings) > 1:
        raise UserError("mixes SGM (input_blocks/output_blocks) and diffusers (down_blocks/up_blocks) UNet names; "
                        "consumers drop one of the two sets silently, so this file is refused", file=str(sf.path))
    return LoraFile(sf.path, "kohya", arch, _ordered(modules, arch), dict(sf.metadata), [sf],
                    naming=next(iter(spellings), ""), custom_widths=custom)


def _assemble(sf: SafetensorsFile, groups: dict, resolve, arch_opt: str, *, peft_naming: bool,
              cands: list[str] | None = None) -> tuple[str, list[AdapterModule], bool]:
    """Pick the one architecture under which every module resolves with fitting shapes, and build the modules.

    Shapes must be self-consistent and, normally, match the real model's widths (pinned tables). A file where *no*
    module has the real widths but everything else fits is accepted as a custom-width model (tiny test models,
    pruned models): the third return value says so. A file where some modules fit and others do not is refused.
    """
    if arch_opt != "auto":
        cands = [arch_opt]
    elif cands is None:
        cands = list(archmod.ARCHS)
    strict: list[str] = []
    custom: list[str] = []
    problems: dict[str, str] = {}
    kind_exact: dict[str, bool] = {}
    checked: dict = {}  # (arch, name) -> (out, in) the tensors imply; validated once, reused when building
    # Per group, once: its adapter kinds and the tensors that carry shapes (alpha and DoRA scale do not).
    algos_of = {name: {al for al, _ in roles.values() if al} for name, roles in groups.items()}
    core_of = {name: {r: e for r, (_, e) in roles.items() if r != "alpha" and r != "dora"}
               for name, roles in groups.items()}
    for a in cands:
        fit = misfit = 0
        first_misfit = ""
        kind_exact[a] = True
        for name in groups:
            info = resolve(a, name)
            if info is None:
                problems[a] = f"{_label(name)} is not a {a} module"
                break
            algos = algos_of[name]
            if len(algos) != 1:
                continue  # reported precisely by _build_module below
            probe = AdapterModule(info, next(iter(algos)), core_of[name], sf)
            try:
                checked[(a, name)] = _validate_shapes(probe, {}, widths=False)
            except UserError as exc:
                problems[a] = f"{_label(name)}: {exc.reason}"
                break
            if "down" in probe.tensors and (len(probe.tensors["down"].shape) == 4) != (info.kind == "conv"):
                kind_exact[a] = False  # 1x1 tensors on a Linear (or 2-D on a 1x1 conv): legal, but less likely
            if checked[(a, name)] == (info.out_features, info.in_features):
                fit += 1
            else:
                try:
                    _validate_shapes(probe, {}, widths=True)  # raises: the message names the mismatch
                except UserError as exc:
                    misfit += 1
                    first_misfit = first_misfit or f"{_label(name)}: {exc.reason}"
            if fit and misfit:
                problems[a] = first_misfit  # some modules fit the real widths and some do not: not this arch
                break
        else:
            if misfit == 0:
                strict.append(a)
            else:  # fit == 0: no module has the real widths (a tiny/custom model)
                custom.append(a)
    fits = strict or custom
    if len(fits) > 1 and any(kind_exact[a] for a in fits):
        fits = [a for a in fits if kind_exact[a]]
    if not fits:
        if arch_opt != "auto":
            raise UserError(f"does not fit --arch {arch_opt}: {problems.get(arch_opt)}", file=str(sf.path))
        if all("is not a" in v for v in problems.values()):
            names = sorted({v.split(" is not a")[0] for v in problems.values()})
            raise UserError(f"unknown module names for SD1, SD2 and SDXL (e.g. {', '.join(names[:3])})",
                            file=str(sf.path))
        raise UserError("fits none of SD1, SD2, SDXL: " + "; ".join(f"{a}: {p}" for a, p in problems.items()),
                        file=str(sf.path))
    arch = fits[0]
    if len(fits) > 1:
        hint = family_from_metadata(sf.metadata)
        if hint not in fits:
            raise UserError(f"fits several architectures ({', '.join(fits)}) and the metadata does not say which; "
                            "pass --arch", file=str(sf.path))
        arch = hint
    modules = []
    for name, roles in groups.items():
        info = resolve(arch, name)
        algos = set(algos_of[name])
        tensors = {r: e for r, (_, e) in roles.items()}
        modules.append(_build_module(sf, info, algos, tensors, [e.name for _, e in roles.values()], _label(name),
                                     peft_naming=peft_naming, widths=bool(strict), dims=checked.get((arch, name))))
    _check_duplicates(sf, modules)
    return arch, modules, not strict


def _label(name) -> str:
    if isinstance(name, tuple):
        part, path = name
        return f"{PART_COMPONENT.get(part, '?')}.{path}" if part else path
    return name


def _build_module(sf: SafetensorsFile, info: ModuleInfo, algos: set[str], roles: dict[str, TensorEntry],
                  keys: list[str], label: str, *, peft_naming: bool, widths: bool = True,
                  dims: tuple[int, int] | None = None) -> AdapterModule:
    where: Where = {"file": str(sf.path), "key": label}
    if not algos:
        raise UserError(f"has only {', '.join(sorted(roles))} and no adapter weights (stray key)", **where)
    if len(algos) > 1:
        raise UserError(f"mixes adapter kinds {sorted(algos)} in one module", **where)
    algo = algos.pop()
    alpha_entry = roles.pop("alpha", None)
    dora = roles.pop("dora", None)
    mod = AdapterModule(info, algo, roles, sf, keys=keys)
    if dims is not None and (not widths or dims == (info.out_features, info.in_features)):
        fout, fin = dims  # already validated during architecture detection
    else:
        fout, fin = _validate_shapes(mod, where, widths=widths)
    for entry in (*roles.values(), *((dora,) if dora is not None else ())):
        if entry.dtype not in WEIGHT_DTYPES:
            raise UserError(f"{entry.dtype} adapter weights: LoRA factors and DoRA magnitudes must be floating "
                            f"point ({', '.join(WEIGHT_DTYPES)})", file=str(sf.path), key=entry.name)
    if alpha_entry is not None:
        if alpha_entry.numel != 1:
            raise UserError(f"alpha must be a single value, got shape {list(alpha_entry.shape)}", **where)
        value = float(sf.read_scalar(alpha_entry.name))
        if not math.isfinite(value):
            raise UserError(f"alpha is {value}", **where)
        if abs(value) > FLOAT32_MAX:
            raise UserError(f"alpha {value:g} does not fit a float32 .alpha tensor", **where)
        if value == 0:
            # sd-scripts reads 0 as "alpha = rank", ComfyUI/A1111/diffusers as "scale 0": never guess.
            raise UserError("alpha is 0, which consumers disagree on (sd-scripts: scale 1, others: module off); "
                            "refusing", **where)
        mod.alpha = float(value)
        mod.alpha_key = alpha_entry.name
    if dora is not None:
        mod.dora, mod.dora_axis = dora, _dora_axis(dora, info, fout, fin, where, peft_naming)
    return mod


def _validate_shapes(mod: AdapterModule, where: Where, *, widths: bool = True) -> tuple[int, int]:
    """Check a module's tensors are complete and self-consistent; return the (out, in) sizes they imply.

    With ``widths`` the sizes must also equal the real base module's (pinned table). The kernel size and the
    Linear/Conv kind always come from the table.
    """
    info, t = mod.info, mod.tensors
    k = info.kernel
    conv = info.kind == "conv"

    def need(*roles: str) -> None:
        missing = [r for r in roles if r not in t]
        if missing:
            raise UserError(f"{mod.algo} module lacks {', '.join(missing)} (unpaired tensors)", **where)

    def only(*roles: str) -> None:
        extra = set(t) - set(roles)
        if extra:
            raise UserError(f"unexpected tensors {sorted(extra)} in a {mod.algo} module", **where)

    def bad(msg: str) -> UserError:
        return UserError(f"shape mismatch for {info.part} {info.diffusers_path} ({info.kind} {info.in_features}->"
                         f"{info.out_features}{f', {k}x{k}' if k > 1 else ''}): {msg}", **where)

    def shp(role: str) -> tuple[int, ...]:
        return t[role].shape

    if mod.algo == "lora":
        # The common case (down + up, maybe mid) without helper calls: this runs for every module of every file.
        down_entry, up_entry = t.get("down"), t.get("up")
        if down_entry is None or up_entry is None or len(t) > 3 or (len(t) == 3 and "mid" not in t):
            need("down", "up")
            only("down", "up", "mid")
        assert down_entry is not None and up_entry is not None  # need() raised otherwise
        down, up = down_entry.shape, up_entry.shape
        if len(down) not in (2, 4) or len(up) not in (2, 4) or down[0] <= 0:
            raise bad(f"down {list(down)}, up {list(up)}")
        r = down[0]
        fout, fin = up[0], down[1]
        if "mid" in t:
            ok = (len(down) == 4 and down[2:] == (1, 1) and shp("mid") == (r, r, k, k) and up == (fout, r, 1, 1)
                  and k > 1)
            if not ok:
                raise bad(f"Tucker down {list(down)}, mid {list(shp('mid'))}, up {list(up)}")
        else:
            kd = down[2:] if len(down) == 4 else (1, 1)
            if kd != (k, k) or up[1:] not in ((r,), (r, 1, 1)) or (conv and k > 1 and len(down) != 4):
                raise bad(f"down {list(down)}, up {list(up)}")
    elif mod.algo == "loha":
        need("w1_a", "w1_b", "w2_a", "w2_b")
        only("w1_a", "w1_b", "w2_a", "w2_b", "t1", "t2")
        tucker = "t1" in t or "t2" in t
        dims = []
        for i in ("1", "2"):
            a, b = shp(f"w{i}_a"), shp(f"w{i}_b")
            if len(a) != 2 or len(b) != 2:
                raise bad(f"hada_w{i}_a {list(a)}, hada_w{i}_b {list(b)}")
            ri = b[0]
            if tucker:
                need("t1", "t2")
                if not (k > 1 and a[0] == ri and shp(f"t{i}") == (ri, ri, k, k)):
                    raise bad(f"hada_t{i} {list(shp(f't{i}'))}, hada_w{i}_a {list(a)}, hada_w{i}_b {list(b)}")
                dims.append((a[1], b[1], ri))
            else:
                if a[1] != ri or b[1] % (k * k):
                    raise bad(f"hada_w{i}_a {list(a)}, hada_w{i}_b {list(b)}")
                dims.append((a[0], b[1] // (k * k), ri))
        if dims[0] != dims[1]:
            raise bad(f"hada_w1 and hada_w2 factors differ ({dims[0]} vs {dims[1]})")
        fout, fin, _ = dims[0]
    else:  # lokr
        only("w1", "w1_a", "w1_b", "w2", "w2_a", "w2_b", "t2")
        if "w1" in t:
            if "w1_a" in t or "w1_b" in t:
                raise UserError("LoKr module has both lokr_w1 and lokr_w1_a/b", **where)
            if len(shp("w1")) != 2:
                raise bad(f"lokr_w1 {list(shp('w1'))}")
            a_, b_ = shp("w1")
        else:
            need("w1_a", "w1_b")
            wa, wb = shp("w1_a"), shp("w1_b")
            if len(wa) != 2 or len(wb) != 2 or wa[1] != wb[0]:
                raise bad(f"lokr_w1_a {list(wa)}, lokr_w1_b {list(wb)}")
            a_, b_ = wa[0], wb[1]
        if "w2" in t:
            if "w2_a" in t or "w2_b" in t or "t2" in t:
                raise UserError("LoKr module has both lokr_w2 and lokr_w2_a/b", **where)
            w2 = shp("w2")
            if len(w2) == 2 and k == 1:
                c_, d_ = w2
            elif len(w2) == 4 and w2[2:] == (k, k):
                c_, d_ = w2[:2]
            else:
                raise bad(f"lokr_w2 {list(w2)}")
        else:
            need("w2_a", "w2_b")
            wa, wb = shp("w2_a"), shp("w2_b")
            if "t2" in t:
                t2 = shp("t2")
                if not (len(wa) == 2 and len(wb) == 2 and t2 == (wa[0], wb[0], k, k) and k > 1):
                    raise bad(f"lokr_t2 {list(t2)}, lokr_w2_a {list(wa)}, lokr_w2_b {list(wb)}")
                c_, d_ = wa[1], wb[1]
            else:
                if len(wa) != 2 or len(wb) != 2 or wa[1] != wb[0] or wb[1] % (k * k):
                    raise bad(f"lokr_w2_a {list(wa)}, lokr_w2_b {list(wb)}")
                c_, d_ = wa[0], wb[1] // (k * k)
        fout, fin = a_ * c_, b_ * d_
    if fout <= 0 or fin <= 0:
        raise bad(f"empty module ({fout}x{fin})")
    if widths and (fout, fin) != (info.out_features, info.in_features):
        raise bad(f"tensors give {fin}->{fout}")
    return fout, fin


def _dora_axis(entry: TensorEntry, info: ModuleInfo, fout: int, fin: int, where: Where, peft_naming: bool) -> str:
    """Which axis a DoRA magnitude normalises: PEFT always the output rows; LyCORIS either (by shape)."""
    s = entry.shape
    if peft_naming:
        want = (fout,) if info.kind == "linear" else (1, fout, 1, 1)
        if s != want:
            raise UserError(f"lora_magnitude_vector shape {list(s)}, expected {list(want)}", **where)
        return "out"
    conv = info.kind == "conv"
    if s in ((fout,), (fout, 1)) or (conv and s == (fout, 1, 1, 1)):
        return "out"
    if s == (1, fin) or (conv and s == (1, fin, 1, 1)):
        return "in"
    raise UserError(f"dora_scale shape {list(s)} fits neither the output ({fout}) nor the input ({fin}) axis",
                    **where)


def _check_duplicates(sf: SafetensorsFile, modules: list[AdapterModule]) -> None:
    seen: dict[tuple[str, str], AdapterModule] = {}
    for m in modules:
        key = (m.info.part, m.info.diffusers_path)
        if key in seen:
            raise UserError(f"two spellings of the same module: {seen[key].keys[0]} and {m.keys[0]}",
                            file=str(sf.path))
        seen[key] = m


def _ordered(modules: list[AdapterModule], arch: str) -> list[AdapterModule]:
    index = {(m.part, m.diffusers_path): i for i, m in enumerate(archmod.all_modules(arch))}
    return sorted(modules, key=lambda m: index[(m.info.part, m.info.diffusers_path)])


# --- architecture detection ---------------------------------------------------------------------------------------

# --- PEFT / diffusers (path-named) --------------------------------------------------------------------------------

def _parse_path_key(key: str) -> tuple[str | None, str, str, str] | None:
    """(component part or None, module path, algo, role) of a PEFT/diffusers key, or None if not recognisable."""
    part = None
    rest = key
    if rest.startswith("base_model.model."):
        rest = rest[len("base_model.model."):]
    for prefix, p in COMPONENT_PREFIXES.items():
        if rest.startswith(prefix):
            part, rest = p, rest[len(prefix):]
            break
    m = OLD_PROC.match(rest)
    if m:
        base = m.group("base")
        is_te = ".self_attn" in "." + base or base.endswith("self_attn")
        proj = (OLD_PROC_TE if is_te else OLD_PROC_UNET)[m.group("proj")]
        return part, f"{base}.{proj}", "lora", m.group("role")
    for suffix, (algo, role) in PATH_PARAMS:
        if rest.endswith(suffix):
            return part, rest[: -len(suffix)], algo, role
    return None


def _guess_part(path: str) -> str:
    return "te" if path.startswith(("text_model.", "encoder.layers.", "text_projection")) else "unet"


def read_sd_named(sf: SafetensorsFile, arch_opt: str, layout: str | None, part_hint: str | None = None
                     ) -> LoraFile:
    """Read a PEFT ``adapter_model.safetensors`` (``layout="peft"``) or a diffusers file (``layout=None``)."""
    groups: dict[tuple[str | None, str], dict[str, tuple[str, TensorEntry]]] = {}
    unknown: list[str] = []
    old_style = False
    for key, entry in sf.tensors.items():
        p = _parse_path_key(key)
        if p is None:
            unknown.append(key)
            continue
        part, path, algo, role = p
        if part is None and part_hint is not None:
            part = part_hint
        if "_lora." in key or ".processor." in key or ".lora_linear_layer." in key or ".lora." in key:
            old_style = True
        slot = groups.setdefault((part, path), {})
        if role in slot:
            raise UserError(f"two tensors for the same role ({role}) of module {path}", file=str(sf.path), key=key)
        slot[role] = (algo, entry)
    if unknown:
        raise UserError(f"unknown LoRA layout: {len(unknown)} key(s) match no kohya, PEFT or diffusers naming "
                        f"(e.g. {', '.join(unknown[:3])})", file=str(sf.path))

    def resolve(a: str, name):
        part, path = name
        if part is not None:
            return archmod.lookup_path(path, part, a)
        if _guess_part(path) == "unet":
            return archmod.lookup_path(path, "unet", a)
        # prefix-less text-encoder file: te1 or te2 by which table's widths fit the tensors
        return _te_by_width(a, path, groups[name])

    arch, modules, custom = _assemble(sf, groups, resolve, arch_opt, peft_naming=True)
    if layout is None:
        layout = "diffusers-old" if old_style else "diffusers"
    lf = LoraFile(sf.path, layout, arch, _ordered(modules, arch), dict(sf.metadata), [sf], custom_widths=custom)
    if layout in ("diffusers", "diffusers-old"):
        _apply_diffusers_scales(lf)
    return lf


def _te_by_width(arch: str, path: str, roles: dict) -> ModuleInfo | None:
    """te1 or te2 for a text-encoder path without component prefix: by the real widths, else by existence."""
    widths = {d for _, e in roles.values() for d in e.shape}
    found = [i for i in (archmod.lookup_path(path, p, arch) for p in archmod.te_parts(arch)) if i is not None]
    for info in found:
        if info.in_features in widths and info.out_features in widths:
            return info
    return found[0] if found else None


def _apply_diffusers_scales(lf: LoraFile) -> None:
    """Turn diffusers' scale sources into kohya alphas: ``lora_adapter_metadata`` > ``.alpha`` keys > scale 1."""
    raw = lf.metadata.get("lora_adapter_metadata")
    if raw is None:
        return  # .alpha keys (if any) were read per module; otherwise diffusers uses alpha = r: scale 1
    where = "lora_adapter_metadata"
    meta = parse_json(raw, file=str(lf.path), key=where, what="the value")
    if not isinstance(meta, dict):
        raise UserError("must be a JSON object", file=str(lf.path), key=where)
    if any(m.alpha_key for m in lf.modules):
        raise UserError("has both .alpha tensors and lora_adapter_metadata (diffusers refuses this too)",
                        file=str(lf.path))
    by_comp: dict[str, dict] = {}
    for k, v in meta.items():
        comp, _, field_name = k.partition(".")
        if comp not in ("unet", "text_encoder", "text_encoder_2", "transformer") or not field_name:
            comp, field_name = "", k  # model-level file: unprefixed LoraConfig
        by_comp.setdefault(comp, {})[field_name] = v
    configs = {comp: peft_config(cfg, file=str(lf.path), key=where, prefix=f"{comp}." if comp else "",
                                 require_type=False) for comp, cfg in by_comp.items()}
    indexes = {comp: config_indexes(cfg, lf.path, where) for comp, cfg in configs.items()}
    for m in lf.modules:
        comp = PART_COMPONENT[m.part] if PART_COMPONENT[m.part] in configs else ""
        cfg = configs.get(comp)
        if cfg is None:
            continue
        _apply_peft_scale(m, cfg, lf.path, where, indexes[comp])


def config_indexes(cfg: PeftConfig, path: Path | None = None, where: str | None = None
                   ) -> tuple[PatternIndex, PatternIndex]:
    """(alpha_pattern, rank_pattern) indexes of a validated PEFT config; build once, use for every module.

    UserError for a pattern key that cannot be matched in bounded time (see :mod:`.peft_patterns`)."""
    out = []
    for field_name, pats in (("alpha_pattern", cfg.alpha_pattern), ("rank_pattern", cfg.rank_pattern)):
        try:
            out.append(PatternIndex(pats))
        except PatternError as exc:
            raise UserError(f"{field_name}: {exc}", file=str(path) if path else None, key=where) from None
    return out[0], out[1]


def _apply_peft_scale(m: AdapterModule, cfg: PeftConfig, path: Path, where: str,
                      idx: tuple[PatternIndex, PatternIndex] | None = None) -> None:
    """Set the module's kohya alpha from a PEFT config (patterns matched like PEFT's get_pattern_key)."""
    names = [m.info.diffusers_path, m.info.te_path(5)]
    if idx is None:
        idx = config_indexes(cfg, path, where)
    alpha = idx[0].lookup_any(names, cfg.alpha)
    rank_cfg = idx[1].lookup_any(names, cfg.r)
    label = m.info.diffusers_path
    r = m.rank
    if m.algo in ("lora", "loha") and r is not None and rank_cfg != r:
        raise UserError(f"config rank {rank_cfg} for {label} differs from the tensors' rank {r}; "
                        "PEFT would refuse to load it", file=str(path), key=where)
    if m.algo == "lora":
        # rsLoRA: PEFT scale = lora_alpha / sqrt(r); kohya scale = alpha / r  =>  alpha = lora_alpha * sqrt(r)
        kohya_alpha = alpha * math.sqrt(m.lora_rank) if cfg.use_rslora else alpha
    elif m.algo == "loha":
        kohya_alpha = alpha
    elif r is None:  # PEFT LoKr: scale = alpha / r always, r from the config (tensors may not show it)
        # kohya's scale for two full factors is 1: only alpha == r is expressible
        if alpha != float(rank_cfg):
            raise UserError(f"LoKr module {label} has two full factors and alpha/r = {alpha:g}/{rank_cfg} != 1, "
                            "which kohya/LyCORIS cannot express", file=str(path), key=where)
        m.alpha, m.alpha_key = None, None
        return
    else:
        kohya_alpha = alpha * r / rank_cfg if rank_cfg != r else alpha
    if not math.isfinite(kohya_alpha) or abs(kohya_alpha) > FLOAT32_MAX:
        raise UserError(f"the scale of {label} ({alpha:g} with rank {rank_cfg}) does not fit a float32 kohya "
                        "alpha", file=str(path), key=where)
    m.alpha = float(kohya_alpha)
    m.alpha_key = None


# --- PEFT folders -------------------------------------------------------------------------------------------------

PEFT_COMPONENT_DIRS = {"unet": "unet", "text_encoder": "te1", "text_encoder_2": "te2"}
SUPPORTED_PEFT_TYPES = PEFT_TYPES


def _load_peft_config(cfg_path: Path) -> PeftConfig:
    """Read and validate one ``adapter_config.json`` (a regular file of at most 16 MiB, strict bounded JSON)."""
    cfg = parse_json(read_small_file(cfg_path), file=str(cfg_path), what="adapter_config.json")
    return peft_config(cfg, file=str(cfg_path))


def read_sd_peft_dir(path: Path, arch_opt: str) -> LoraFile:
    """Read an SD PEFT folder (``adapter_config.json`` at the top or one sub-folder per component)."""
    if os.path.lexists(path / "adapter_config.json"):
        comps: dict[str | None, Path] = {None: path}
    else:
        comps = {part: path / d for d, part in PEFT_COMPONENT_DIRS.items()
                 if os.path.lexists(path / d / "adapter_config.json")}
        if not comps:
            raise UserError("folder holds no adapter_config.json (not a PEFT adapter folder)", file=str(path))
    files: list[SafetensorsFile] = []
    modules: list[AdapterModule] = []
    configs: dict[str, PeftConfig] = {}
    arch = arch_opt
    metadata: dict[str, str] = {}
    custom = False
    for part, d in comps.items():
        cfg_path = d / "adapter_config.json"
        cfg = _load_peft_config(cfg_path)
        weights = d / "adapter_model.safetensors"
        if not os.path.lexists(weights):
            if os.path.lexists(d / "adapter_model.bin"):
                raise UserError("only adapter_model.bin (pickle) found; re-save with safetensors", file=str(d))
            raise UserError("adapter_model.safetensors is missing", file=str(d))
        sf = read_header(weights)
        if not sf.tensors:
            raise UserError("the file holds no tensors", file=str(weights))
        lf = read_sd_named(sf, arch, "peft", part_hint=part)
        assert cfg.peft_type is not None  # peft_config() requires it in adapter_config.json
        want_algo = PEFT_TYPES[cfg.peft_type]
        idx = config_indexes(cfg, cfg_path, "adapter_config.json")
        for m in lf.modules:
            if m.algo != want_algo:
                raise UserError(f"holds {m.algo} tensors but adapter_config.json says {cfg.peft_type}",
                                file=str(weights), key=m.keys[0])
            if m.alpha_key:
                raise UserError("PEFT adapters carry no .alpha tensors", file=str(weights), key=m.alpha_key)
            if m.dora is not None and not cfg.use_dora:
                raise UserError("has lora_magnitude_vector but use_dora is false", file=str(weights),
                                key=m.dora.name)
            _apply_peft_scale(m, cfg, cfg_path, "adapter_config.json", idx)
        custom = custom or lf.custom_widths
        if arch == "auto":
            arch = lf.arch
        elif lf.arch != arch:
            raise UserError(f"components disagree on the architecture ({arch} vs {lf.arch})", file=str(d))
        for m in lf.modules:
            configs[m.part] = cfg
        modules += lf.modules
        files.append(sf)
        for k, v in sf.metadata.items():
            metadata.setdefault(k, v)
    seen = set()
    for m in modules:
        key = (m.part, m.info.diffusers_path)
        if key in seen:
            raise UserError(f"module {m.info.diffusers_path} appears in two components", file=str(path))
        seen.add(key)
    return LoraFile(path, "peft", arch, _ordered(modules, arch), metadata, files, peft_configs=configs,
                    custom_widths=custom)
