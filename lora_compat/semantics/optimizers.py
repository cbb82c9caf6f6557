"""The optimizer sd-scripts builds: ``train_util.get_optimizer``, as data and pure functions.

One catalogue (:data:`OPTIMIZERS`) of every optimizer name sd-scripts maps itself: where the class lives,
the pip package it needs, the constructor keywords it accepts, and what sd-scripts adds to the keyword
arguments. :func:`effective_optimizer` applies sd-scripts' rules (``use_8bit_adam`` / ``use_lion_optimizer``,
the ``AdamW`` default, ``optimizer_args`` parsing, ``SGDNesterov`` momentum, Adafactor ``relative_step``) and
gives what ``ss_optimizer`` records. Lint, plan and the engine all ask here.

sd-scripts falls back to ``torch.optim.<Name>`` or imports a dotted ``module.Class`` for any other name;
lora-compat never imports what a config names, so such names are reported (``spec is None``), never run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lora_compat.semantics.args import ArgProblem, literal_args

_TORCH_ADAM = frozenset({"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable",
                         "differentiable", "fused", "decoupled_weight_decay"})
_TORCH_SGD = frozenset({"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                        "differentiable", "fused"})
_BNB = frozenset({"lr", "betas", "eps", "weight_decay", "amsgrad", "optim_bits", "args", "min_8bit_size",
                  "percentile_clipping", "block_wise", "is_paged"})
_BNB_LION = frozenset({"lr", "betas", "weight_decay", "optim_bits", "args", "min_8bit_size",
                       "percentile_clipping", "block_wise", "is_paged"})
_BNB_SGD = frozenset({"lr", "momentum", "dampening", "weight_decay", "nesterov", "args", "min_8bit_size",
                      "percentile_clipping", "block_wise"})
_DADAPT = frozenset({"lr", "betas", "eps", "weight_decay", "log_every", "decouple", "use_bias_correction", "d0",
                     "growth_rate", "fsdp_in_use", "momentum", "bias_correction", "no_prox"})
_SCHEDULE_FREE = frozenset({"lr", "betas", "eps", "weight_decay", "warmup_steps", "r", "weight_lr_power",
                            "foreach", "silent_sgd_phase", "momentum"})


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer sd-scripts knows by name.

    ``module``/``cls``: where sd-scripts takes the class from; ``class_path``: the module that *defines* it plus
    its name, which is what sd-scripts records in ``ss_optimizer`` (``cls.__module__ + "." + cls.__name__``).
    ``package``: the pip distribution to install (None: torch / transformers, always there with training).
    ``keywords``: constructor keyword arguments (None: not checked). ``added_kwargs``: what sd-scripts adds to
    the keyword arguments when the user did not (recorded in ``ss_optimizer``); ``call_kwargs``: passed to the
    constructor without being recorded.
    """

    name: str
    module: str
    cls: str
    class_path: str
    package: str | None = None
    keywords: frozenset[str] | None = None
    added_kwargs: tuple[tuple[str, Any], ...] = ()
    call_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def schedule_free(self) -> bool:
        """Schedule-free optimizers: sd-scripts gives them a constant dummy LR schedule (no warmup check)."""
        return self.name.lower().endswith("schedulefree")

    @property
    def adaptive(self) -> bool:
        """D-Adaptation / Prodigy: the learning rate is a multiplier (around 1.0), only the first group's counts."""
        return self.name.lower().startswith("dadapt") or self.name.lower() == "prodigy"


def _spec(name: str, module: str, cls: str, defined_in: str, package: str | None = None,
          keywords: frozenset[str] | None = None, **extra: Any) -> tuple[str, OptimizerSpec]:
    return name.lower(), OptimizerSpec(name, module, cls, f"{defined_in}.{cls}", package, keywords,
                                       tuple(extra.get("added", {}).items()), tuple(extra.get("call", {}).items()))


#: Lower-cased ``optimizer_type`` -> its :class:`OptimizerSpec` (sd-scripts' own name map).
OPTIMIZERS: dict[str, OptimizerSpec] = dict([
    _spec("AdamW", "torch.optim", "AdamW", "torch.optim.adamw", None, _TORCH_ADAM),
    _spec("SGDNesterov", "torch.optim", "SGD", "torch.optim.sgd", None, _TORCH_SGD,
          added={"momentum": 0.9}, call={"nesterov": True}),
    _spec("AdamW8bit", "bitsandbytes.optim", "AdamW8bit", "bitsandbytes.optim.adamw", "bitsandbytes", _BNB),
    _spec("PagedAdamW8bit", "bitsandbytes.optim", "PagedAdamW8bit", "bitsandbytes.optim.adamw", "bitsandbytes", _BNB),
    _spec("PagedAdamW", "bitsandbytes.optim", "PagedAdamW", "bitsandbytes.optim.adamw", "bitsandbytes", _BNB),
    _spec("PagedAdamW32bit", "bitsandbytes.optim", "PagedAdamW32bit", "bitsandbytes.optim.adamw", "bitsandbytes",
          _BNB),
    _spec("Lion8bit", "bitsandbytes.optim", "Lion8bit", "bitsandbytes.optim.lion", "bitsandbytes", _BNB_LION),
    _spec("PagedLion8bit", "bitsandbytes.optim", "PagedLion8bit", "bitsandbytes.optim.lion", "bitsandbytes",
          _BNB_LION),
    # sd-scripts builds SGD8bit(nesterov=True) and then, by a fall-through, builds it again without nesterov:
    # what runs is plain SGD8bit with momentum 0.9 (reference §4.10).
    _spec("SGDNesterov8bit", "bitsandbytes.optim", "SGD8bit", "bitsandbytes.optim.sgd", "bitsandbytes", _BNB_SGD,
          added={"momentum": 0.9}),
    _spec("Lion", "lion_pytorch", "Lion", "lion_pytorch.lion_pytorch", "lion-pytorch",
          frozenset({"lr", "betas", "weight_decay", "use_triton", "decoupled_weight_decay", "cautious_factor"})),
    _spec("Prodigy", "prodigyopt", "Prodigy", "prodigyopt.prodigy", "prodigyopt",
          frozenset({"lr", "betas", "beta3", "eps", "weight_decay", "decouple", "use_bias_correction",
                     "safeguard_warmup", "d0", "d_coef", "growth_rate", "fsdp_in_use", "slice_p"})),
    _spec("DAdaptation", "dadaptation.experimental", "DAdaptAdamPreprint",
          "dadaptation.experimental.dadapt_adam_preprint", "dadaptation", _DADAPT),
    _spec("DAdaptAdamPreprint", "dadaptation.experimental", "DAdaptAdamPreprint",
          "dadaptation.experimental.dadapt_adam_preprint", "dadaptation", _DADAPT),
    _spec("DAdaptAdaGrad", "dadaptation", "DAdaptAdaGrad", "dadaptation.dadapt_adagrad", "dadaptation", _DADAPT),
    _spec("DAdaptAdam", "dadaptation", "DAdaptAdam", "dadaptation.dadapt_adam", "dadaptation", _DADAPT),
    _spec("DAdaptAdan", "dadaptation", "DAdaptAdan", "dadaptation.dadapt_adan", "dadaptation", _DADAPT),
    _spec("DAdaptAdanIP", "dadaptation.experimental", "DAdaptAdanIP", "dadaptation.experimental.dadapt_adan_ip",
          "dadaptation", _DADAPT),
    _spec("DAdaptLion", "dadaptation", "DAdaptLion", "dadaptation.dadapt_lion", "dadaptation", _DADAPT),
    _spec("DAdaptSGD", "dadaptation", "DAdaptSGD", "dadaptation.dadapt_sgd", "dadaptation", _DADAPT),
    _spec("Adafactor", "transformers.optimization", "Adafactor", "transformers.optimization", None,
          frozenset({"lr", "eps", "clip_threshold", "decay_rate", "beta1", "weight_decay", "scale_parameter",
                     "relative_step", "warmup_init"})),
    _spec("RAdamScheduleFree", "schedulefree", "RAdamScheduleFree", "schedulefree.radam_schedulefree",
          "schedulefree", _SCHEDULE_FREE),
    _spec("AdamWScheduleFree", "schedulefree", "AdamWScheduleFree", "schedulefree.adamw_schedulefree",
          "schedulefree", _SCHEDULE_FREE),
    _spec("SGDScheduleFree", "schedulefree", "SGDScheduleFree", "schedulefree.sgd_schedulefree", "schedulefree",
          _SCHEDULE_FREE),
])

#: Plain ``torch.optim`` names that sd-scripts reaches through its "any optimizer" fallback
#: (``getattr(torch.optim, name)``) and that lora-compat maps without importing anything a config names.
TORCH_FALLBACK: dict[str, OptimizerSpec] = dict([
    _spec("Adam", "torch.optim", "Adam", "torch.optim.adam", None, _TORCH_ADAM),
    _spec("SGD", "torch.optim", "SGD", "torch.optim.sgd", None, _TORCH_SGD),
    _spec("Adagrad", "torch.optim", "Adagrad", "torch.optim.adagrad", None,
          frozenset({"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "foreach", "maximize",
                     "differentiable", "fused"})),
    _spec("RMSprop", "torch.optim", "RMSprop", "torch.optim.rmsprop", None,
          frozenset({"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "capturable", "foreach",
                     "maximize", "differentiable"})),
    _spec("RAdam", "torch.optim", "RAdam", "torch.optim.radam", None,
          frozenset({"lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "foreach", "maximize",
                     "capturable", "differentiable"})),
])


def optimizer_spec(name: str) -> OptimizerSpec | None:
    """The catalogue entry for an ``optimizer_type`` (case-insensitive, as sd-scripts lower-cases it)."""
    key = name.lower()
    if key in OPTIMIZERS:
        return OPTIMIZERS[key]
    # the fallback is case-sensitive in sd-scripts (getattr(torch.optim, name)): only the exact class name
    for spec in TORCH_FALLBACK.values():
        if spec.name == name:
            return spec
    return None


def ss_optimizer(class_path: str, kwargs: Mapping[str, Any]) -> str:
    """``ss_optimizer`` as sd-scripts formats it: ``module.Class`` then ``(k=v,...)`` of the recorded kwargs."""
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return class_path + (f"({args})" if args else "")


def adafactor_relative_step(kwargs: Mapping[str, Any]) -> bool:
    """Adafactor's ``relative_step`` as sd-scripts settles it: True unless the (parsed) ``optimizer_args`` say
    ``relative_step=False``; ``warmup_init=True`` forces it back on."""
    if "relative_step" not in kwargs:
        return True
    return bool(kwargs["relative_step"]) or bool(kwargs.get("warmup_init", False))


@dataclass(frozen=True)
class EffectiveOptimizer:
    """The optimizer a config makes sd-scripts build.

    ``name``: the effective ``optimizer_type`` as written (``AdamW`` when unset); ``spec``: its catalogue entry,
    None when sd-scripts would import it from ``torch.optim`` / a dotted path (lora-compat refuses those);
    ``kwargs``: the keyword arguments sd-scripts passes and records (parsed ``optimizer_args`` plus its own
    additions); ``relative_step``: Adafactor with ``relative_step`` on, which discards every learning rate and
    forces the ``adafactor:<lr>`` schedule; ``problems``: ``optimizer_args`` items sd-scripts stops on;
    ``conflict``: an assertion sd-scripts raises (``use_8bit_adam`` together with ``optimizer_type`` ...);
    ``source``: which option chose it.
    """

    name: str
    spec: OptimizerSpec | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    relative_step: bool = False
    problems: tuple[ArgProblem, ...] = ()
    conflict: str | None = None
    source: str = "optimizer_type"

    @property
    def call_kwargs(self) -> dict[str, Any]:
        """Every keyword the constructor gets: :attr:`kwargs` plus the unrecorded ones (``nesterov=True``)."""
        return {**dict(self.spec.call_kwargs if self.spec else ()), **self.kwargs}

    @property
    def unknown_keywords(self) -> list[str]:
        """``optimizer_args`` keys the constructor does not take (``TypeError`` in sd-scripts)."""
        if self.spec is None or self.spec.keywords is None:
            return []
        return [k for k in self.kwargs if k not in self.spec.keywords]

    def ss_optimizer(self, class_path: str | None = None) -> str:
        """``ss_optimizer`` as sd-scripts writes it: the class path, then ``(k=v,...)`` of the recorded kwargs.

        ``class_path`` is the real class's ``__module__.__name__`` when the engine has imported it; the
        catalogue's pinned path otherwise."""
        return ss_optimizer(class_path or (self.spec.class_path if self.spec else self.name), self.kwargs)


def effective_optimizer(optimizer_type: Any, optimizer_args: Any = None, *, use_8bit_adam: Any = False,
                        use_lion_optimizer: Any = False) -> EffectiveOptimizer:
    """What ``train_util.get_optimizer`` builds for these options (reference §4.10)."""
    written = optimizer_type if isinstance(optimizer_type, str) else None
    conflict = None
    source = "optimizer_type"
    name = written or ""
    if use_8bit_adam:
        if use_lion_optimizer:
            conflict = "use_8bit_adam and use_lion_optimizer are both set (sd-scripts asserts)"
        elif name:
            conflict = "use_8bit_adam and optimizer_type are both set (sd-scripts asserts)"
        name, source = "AdamW8bit", "use_8bit_adam"
    elif use_lion_optimizer:
        if name:
            conflict = "use_lion_optimizer and optimizer_type are both set (sd-scripts asserts)"
        name, source = "Lion", "use_lion_optimizer"
    if not name:
        name, source = "AdamW", "default"
    spec = optimizer_spec(name)
    kwargs, problems = literal_args(optimizer_args)
    for key, value in (spec.added_kwargs if spec else ()):
        kwargs.setdefault(key, value)
    relative_step = False
    if spec is not None and spec.name == "Adafactor":
        relative_step = adafactor_relative_step(kwargs)
        if relative_step != bool(kwargs.get("relative_step", False)):
            kwargs["relative_step"] = True  # absent (its default) or forced on by warmup_init
    return EffectiveOptimizer(name, spec, kwargs, relative_step, tuple(problems), conflict, source)
