"""Rule families. Importing this package registers every rule (one module per family)."""

from lora_compat.lint.rules import (  # noqa: F401
    lc1_types,
    lc2_semantics,
    lc3_misconceptions,
    lc4_arch,
    lc5_security,
    lc6_legacy,
)
