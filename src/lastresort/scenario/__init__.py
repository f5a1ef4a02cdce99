"""Scripted scenarios: scenario files, the runner and its checks, the pytest plugin, the demo walk."""
