"""The outcome of a pre-flight check (:func:`lora_compat.weights.check.check_lora`), for every family's rules."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """Outcome of :func:`check_lora`: modules that will not apply (or apply with a wrong scale) and why."""

    target: str
    modules: int
    problems: list[tuple[str, str]] = field(default_factory=list)  # (module label, reason)
    details: dict[str, str] = field(default_factory=dict)          # module label -> numbers for its problem
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The ``check --format json`` object (stable contract; see docs/cli.md)."""
        reasons = Counter(r for _, r in self.problems)
        return {"target": self.target, "ok": self.ok, "modules": self.modules,
                "failing": len({m for m, _ in self.problems}),
                "problems": [{"module": m, "reason": r, **({"detail": self.details[m]} if m in self.details else {})}
                             for m, r in self.problems],
                "reasons": dict(reasons), "notes": list(self.notes)}
