"""Training engine: diffusers + PEFT + accelerate with sd-scripts' semantics (heavy imports are lazy)."""
