"""Checking protocols before any child arrives: graph, safety properties, bounds, report."""
