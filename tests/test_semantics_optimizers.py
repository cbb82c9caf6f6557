"""The optimizer sd-scripts builds (train_util.get_optimizer): one catalogue, one effective choice."""

from __future__ import annotations

from lora_compat.semantics import adafactor_relative_step, effective_optimizer, optimizer_spec


def test_default_and_legacy_flags():
    assert effective_optimizer(None).name == "AdamW" and effective_optimizer("").source == "default"
    eight = effective_optimizer(None, use_8bit_adam=True)
    assert eight.name == "AdamW8bit" and eight.spec.package == "bitsandbytes" and eight.conflict is None
    assert effective_optimizer(None, use_lion_optimizer=True).spec.class_path == "lion_pytorch.lion_pytorch.Lion"
    assert "assert" in effective_optimizer("AdamW", use_8bit_adam=True).conflict
    assert "assert" in effective_optimizer("Lion", use_lion_optimizer=True).conflict


def test_names_are_case_insensitive_except_the_torch_fallback():
    assert optimizer_spec("adamw8bit").name == "AdamW8bit" and optimizer_spec("PRODIGY").name == "Prodigy"
    assert optimizer_spec("Adam").class_path == "torch.optim.adam.Adam"
    assert optimizer_spec("adam") is None            # getattr(torch.optim, "adam") fails in sd-scripts
    assert optimizer_spec("torch.optim.Adam") is None and optimizer_spec("os.system") is None


def test_adafactor_relative_step_has_one_answer():
    """relative_step defaults to True; False turns it off unless warmup_init=True; 'true' is no literal."""
    assert effective_optimizer("Adafactor").relative_step
    assert effective_optimizer("Adafactor").ss_optimizer() == "transformers.optimization.Adafactor(relative_step=True)"
    off = effective_optimizer("Adafactor", ["relative_step=False", "scale_parameter=False"])
    assert not off.relative_step and off.kwargs == {"relative_step": False, "scale_parameter": False}
    forced = effective_optimizer("Adafactor", ["relative_step=False", "warmup_init=True"])
    assert forced.relative_step and forced.kwargs["relative_step"] is True
    bad = effective_optimizer("Adafactor", ["relative_step=true"])
    assert [p.item for p in bad.problems] == ["relative_step=true"]   # sd-scripts' literal_eval stops here
    assert adafactor_relative_step({}) and not adafactor_relative_step({"relative_step": 0})
    assert not effective_optimizer("AdamW", ["relative_step=True"]).relative_step


def test_recorded_kwargs_as_sd_scripts_writes_them():
    nest = effective_optimizer("SGDNesterov", ["weight_decay=0.01"])
    assert nest.kwargs == {"weight_decay": 0.01, "momentum": 0.9} and nest.call_kwargs["nesterov"] is True
    assert nest.ss_optimizer() == "torch.optim.sgd.SGD(weight_decay=0.01,momentum=0.9)"
    assert effective_optimizer("SGDNesterov", ["momentum=0.5"]).kwargs == {"momentum": 0.5}
    # SGDNesterov8bit is rebuilt without nesterov by sd-scripts: plain SGD8bit with momentum 0.9
    n8 = effective_optimizer("SGDNesterov8bit")
    assert n8.spec.cls == "SGD8bit" and "nesterov" not in n8.call_kwargs and n8.kwargs == {"momentum": 0.9}
    assert effective_optimizer("Prodigy",
                               ["decouple=True"]).ss_optimizer() == "prodigyopt.prodigy.Prodigy(decouple=True)"


def test_unknown_keywords_and_flags():
    assert effective_optimizer("AdamW", ["decouple=True", "weight_decay=0.1"]).unknown_keywords == ["decouple"]
    assert effective_optimizer("Adafactor", ["betas=0.9,0.99"]).unknown_keywords == ["betas"]
    assert optimizer_spec("AdamWScheduleFree").schedule_free and optimizer_spec("DAdaptAdam").adaptive
    assert not optimizer_spec("AdamW").schedule_free and not optimizer_spec("AdamW").adaptive
