"""Storage: SQLAlchemy Core tables, repositories, Alembic migrations (SQLite and PostgreSQL)."""
