"""The training plan: what the engine will run, resolved from a canonical config (no torch import).

A :class:`Plan` holds the family, the step arithmetic sd-scripts would do, the optimizer parameter groups, for
the UNet and each text encoder the PEFT config kwargs whose target set equals the module set sd-scripts'
``networks/lora.py`` would wrap, and everything else ``train`` runs: model, precision, noise and loss, optimizer
and scheduler, the dataset blueprint, outputs and metadata. Options PEFT cannot express are in
``engine_options`` (the engine implements them itself); options the engine cannot run as sd-scripts would are in
``unsupported`` (``refused`` ones stop ``train``); options it does not run at all are in ``ignored``.

``make_plan(cfg)`` is the only constructor, used by ``lora-compat plan`` and by the training engine.
"""

from __future__ import annotations

from lora_compat.config.dialects.native import network_kind
from lora_compat.plan.build import RunOverrides, make_plan, plan_family, trainable
from lora_compat.plan.network import block_index, block_lr_weights, module_path, module_rows
from lora_compat.plan.options import ENGINE_IGNORED
from lora_compat.plan.parts import (
    KINDS,
    PEFT_CONFIG_CLASS,
    AdapterPlan,
    DatasetBlueprint,
    DatasetPlan,
    ModelPlan,
    NoisePlan,
    OptimizerPlan,
    OutputPlan,
    ParamGroupPlan,
    Plan,
    PrecisionPlan,
    SchedulerPlan,
    StepPlan,
    Unsupported,
)
from lora_compat.plan.steps import plan_steps
from lora_compat.semantics.args import network_args as parse_network_args

__all__ = [
    "ENGINE_IGNORED",
    "KINDS",
    "PEFT_CONFIG_CLASS",
    "AdapterPlan",
    "DatasetBlueprint",
    "DatasetPlan",
    "ModelPlan",
    "NoisePlan",
    "OptimizerPlan",
    "OutputPlan",
    "ParamGroupPlan",
    "Plan",
    "PrecisionPlan",
    "RunOverrides",
    "SchedulerPlan",
    "StepPlan",
    "Unsupported",
    "block_index",
    "block_lr_weights",
    "make_plan",
    "module_path",
    "module_rows",
    "network_kind",
    "parse_network_args",
    "plan_family",
    "plan_steps",
    "trainable",
]
