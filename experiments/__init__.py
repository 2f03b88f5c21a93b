"""One script per result (see docs/results.md); the Python ones are importable for their tests."""
