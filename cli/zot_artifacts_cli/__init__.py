"""The ``zot-artifacts`` client CLI, built on the Python SDK."""
