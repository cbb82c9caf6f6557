"""Scheduler names that are not sd-scripts' (shared by the unknown-scheduler and foreign-scheduler rules)."""

from __future__ import annotations

# Scheduler names from other frameworks (PyTorch / Keras / seed 003) that sd-scripts' lr_scheduler does not know.
FOREIGN_SCHEDULERS = frozenset({
    "step", "steplr", "plateau", "reducelronplateau", "exponential", "exponentiallr", "multistep", "multisteplr",
    "cosine_annealing", "cosineannealinglr", "cosineannealingwarmrestarts", "onecycle", "onecyclelr", "cyclic",
})
