"""The spine: load -> detect dialect -> validate -> normalize into the canonical option model."""
