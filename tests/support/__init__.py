"""Helpers shared by the test layers (not fixtures: those live in conftest.py files)."""
