"""The local stack: runs template.yaml's functions on one machine, with no cloud account and no Docker."""
