"""vectors tests."""
