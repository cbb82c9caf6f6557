"""Rules about schema."""
