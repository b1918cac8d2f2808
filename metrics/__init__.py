"""Indicator registry, computation, composite index and ranking, exports and the bulletin."""
