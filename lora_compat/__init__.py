"""lora-compat: make kohya-era LoRA configs and weights portable and trustworthy."""

__version__ = "0.1.0"
