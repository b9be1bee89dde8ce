"""Alembic migrations of the ML Portfolio schema (applied by :func:`portfolio.storage.make_engine`)."""
