"""Rules about captions."""
