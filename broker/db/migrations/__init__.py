"""Alembic migrations; run with ``broker migrate``."""
