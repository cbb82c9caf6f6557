"""What a lint rule reports: a :class:`Finding` pointing at the original file/key/line, and an optional :class:`Fix`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
SEVERITY_RANK = {INFO: 0, WARNING: 1, ERROR: 2}

# Fix actions, applied to the ORIGINAL file (JSON or TOML) at the key as written there.
SET, RENAME, DELETE = "set", "rename", "delete"


@dataclass(frozen=True)
class Fix:
    """A safe, mechanical edit of the original file.

    ``key`` is the key path as written in the file (``Origin.key``), e.g. ``"save_model_as"`` or
    ``"saving_args.args.save_model_as"``; ``value`` is the new value for :data:`SET`, ``new_key`` the new last
    key part for :data:`RENAME`.
    """

    description: str
    file: str
    key: str
    action: str = SET
    value: Any = None
    new_key: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Finding:
    """One problem in one config, located at the key as written in the original file."""

    code: str
    name: str
    severity: str
    file: str
    line: int | None
    key: str | None
    message: str
    col: int | None = None
    fix: Fix | None = field(default=None, compare=False)
    note: str | None = None     # the reader note code this finding reports (``explain`` it), if any

    def to_json(self) -> dict[str, Any]:
        """The stable ``--format json`` shape of one finding (fields are only ever added)."""
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "key": self.key,
            "message": self.message,
            "fixable": self.fix is not None,
            "note": self.note,
        }
