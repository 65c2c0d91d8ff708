"""Helpers shared by the test packages: services a test needs, signal capture, subprocess
launchers and the SSE wire format. Fixtures that wrap them live in tests/conftest.py."""
