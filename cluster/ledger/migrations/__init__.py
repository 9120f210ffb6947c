"""Alembic migrations of the ledger, shipped as package data and run at start."""
