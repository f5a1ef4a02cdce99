"""Protocols for people: cards, diagrams (Mermaid, DOT), documentation pages."""
