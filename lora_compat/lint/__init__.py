"""The lint wing: a registry of coded rules over the canonical model, reporters, safe fixes, docs.

Public entry points: :func:`lora_compat.lint.runner.lint_paths`, :func:`lora_compat.lint.runner.lint_config`,
:func:`lora_compat.lint.registry.all_rules` / ``get_rule`` / ``select_rules``.
"""
