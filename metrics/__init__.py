"""Working-day calendar, indicator registry, computation, composite index and ranking."""
