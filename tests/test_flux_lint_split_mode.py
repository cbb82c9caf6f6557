"""FLUX split_mode (deprecated) -> blocks_to_swap, one home (lora_compat.arch.flux.split_mode_blocks_to_swap) for
plan and lint LC426: flux_train_network.py FluxNetworkTrainer.assert_extra_args sets blocks_to_swap 18 only when
blocks_to_swap is None; a given blocks_to_swap, 0 included, wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_compat.arch.flux import split_mode_blocks_to_swap
from lora_compat.config.load import load_config
from lora_compat.plan import make_plan


@pytest.mark.parametrize(("given", "split", "want"), [(None, True, 18), (0, True, 0), (8, True, 8),
                                                     (None, False, None), (4, False, 4)])
def test_split_mode_blocks_to_swap(given, split, want) -> None:
    assert split_mode_blocks_to_swap(given, split) == want


@pytest.mark.parametrize(("extra", "swap", "noted"), [("", 18, True), ("--blocks_to_swap 0", None, False),
                                                      ("--blocks_to_swap 6", 6, False)])
def test_plan_follows_sd_scripts(tmp_path: Path, extra: str, swap, noted: bool) -> None:
    cmd = tmp_path / "train.sh"
    cmd.write_text("accelerate launch flux_train_network.py --network_module networks.lora_flux --split_mode "
                   f"{extra}\n", encoding="utf-8")
    plan = make_plan(load_config(str(cmd)))
    assert plan.flux.blocks_to_swap == swap
    assert any("split_mode is deprecated: sd-scripts sets blocks_to_swap 18" in n for n in plan.notes) == noted
