"""Alembic migrations of the posgate database (revision ids ``0001_core``, ``0002_console``...)."""
