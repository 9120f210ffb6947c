"""The usage ledger: managed keys, one record per request, budget reservations.

SQLAlchemy 2 Core over SQLite (WAL) or PostgreSQL, one schema (`schema`), Alembic
migrations run at start (`database.migrate`), writes grouped into few transactions
(`writer.GroupCommitWriter`), and the operations they run (`operations`).
"""
