"""Tortoise models, one module per tortoise app (each app has its own migrations package)."""
