"""Rules about noise."""
