"""What lint rules need to know about a config beyond one option, one topic per module (shared by rule files).

Each sd-scripts rule is computed in one place; rule files import these modules, never each other.
"""
