"""Rules about arch."""
