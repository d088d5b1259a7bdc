"""The results store: SQLAlchemy models, Alembic migrations and the repository over them."""
