"""Helpers the test tiers share (tests/README.md, "Shared helpers")."""
