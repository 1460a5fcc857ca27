"""Temporal activities: one module per outside system, each a class built around its adapter."""
