"""Triggers: webhook signatures and ingress, schedules."""
