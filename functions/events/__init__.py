"""Events capability."""
