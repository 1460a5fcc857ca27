"""Persistence: the read models (register, inbox, schedules) and the embedded adapters' tables."""
