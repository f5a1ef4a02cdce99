"""Protocols as data: the model, files (TOML/JSON), validation, conversion, built-in protocols.

Values only: nothing here knows who runs or stores a protocol.
"""
