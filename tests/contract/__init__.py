"""Shared test suites that several implementations must pass (see engine_contract)."""
