"""Rules about caches."""
