"""Rules about misconceptions."""
