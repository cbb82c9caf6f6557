"""Rules about frontend quirks."""
