"""A parsed input file together with the position of every key in it.

Readers (dialects) receive a :class:`Document` and build :class:`~lora_compat.config.model.Origin`
objects from it with :meth:`Document.origin`, so every canonical value can point back to
``file:line:col`` and the key exactly as the user wrote it.

Key paths are dotted, array elements written ``[i]``: ``lr_warmup``, ``optimizer_args.args.warmup_ratio``,
``subsets[0].num_repeats``, ``datasets[0].subsets[1].image_dir``; for command lines the option as written
in canonical long form: ``--network_dim``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lora_compat.config.model import Origin

_MISSING: Any = object()

JSON = "json"
TOML = "toml"
CMDLINE = "cmdline"


@dataclass
class Document:
    """One input file, parsed.

    ``data`` is the parsed JSON/TOML value (a dict for configs). For command lines it is a list of
    ``(option, values, line)`` tuples in the order written: ``option`` the long name without dashes as
    resolved by the parser (``network_dim``), ``values`` the list of raw string tokens that followed it,
    ``line`` its 1-based line in the file. ``positions`` maps key paths to 1-based ``(line, col)``.
    """

    path: str
    text: str
    fmt: str
    data: Any
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # loader facts (script name, launcher options ...)

    def position(self, key: str) -> tuple[int | None, int | None]:
        """``(line, col)`` of ``key``; falls back to the closest enclosing key path, else ``(None, None)``."""
        k = key
        while k:
            pos = self.positions.get(k)
            if pos is not None:
                return pos
            cut = max(k.rfind("."), k.rfind("["))
            if cut <= 0:
                break
            k = k[:cut]
        return (None, None)

    def origin(self, key: str, raw: Any = _MISSING) -> Origin:
        """An :class:`Origin` for ``key``; ``raw`` defaults to the value found at that key path."""
        line, col = self.position(key)
        if raw is _MISSING:
            raw = self.value_at(key, None)
        return Origin(file=self.path, key=key, line=line, col=col, raw=raw)

    def value_at(self, key: str, default: Any = None) -> Any:
        """The parsed value at a key path (JSON/TOML), or ``default`` when absent."""
        if self.fmt == CMDLINE:
            name = key.lstrip("-")
            found = default
            for opt, values, _line in self.data:
                if opt == name:
                    found = values
            return found
        cur = self.data
        try:
            for part in split_key_path(key):
                if isinstance(part, int):
                    if not isinstance(cur, list):
                        return default
                    cur = cur[part]
                else:
                    if not isinstance(cur, dict) or part not in cur:
                        return default
                    cur = cur[part]
        except IndexError:
            return default
        return cur


def join_key(prefix: str, key: str | int) -> str:
    """Extend a key path: ``join_key("a", "b") == "a.b"``, ``join_key("a", 0) == "a[0]"``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def split_key_path(key: str) -> list[str | int]:
    """``"datasets[0].subsets[1].image_dir"`` -> ``["datasets", 0, "subsets", 1, "image_dir"]``.

    Keys containing dots cannot be expressed; configs of the supported dialects never use them.
    """
    parts: list[str | int] = []
    for piece in key.split("."):
        while piece:
            br = piece.find("[")
            if br == -1:
                parts.append(piece)
                break
            if br > 0:
                parts.append(piece[:br])
            end = piece.find("]", br)
            if end == -1:
                parts.append(piece[br:])
                break
            idx = piece[br + 1:end]
            parts.append(int(idx) if idx.isdigit() else idx)
            piece = piece[end + 1:]
    return parts


_SEPARATOR = re.compile(r"\s*[=#*\-_~]{2,}.*|.*[=#*\-_~]{2,}\s*")


def is_separator(key: str) -> bool:
    """A key that only separates sections of a preset (``"=== Basic ==="``, ``"----"``), holding no setting."""
    return bool(_SEPARATOR.fullmatch(key))
