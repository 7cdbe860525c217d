"""The stub world and adapters; see docs/synthetic-world.md."""
