"""The cloud database: SQLAlchemy 2 models, engine, Alembic migrations, query functions.

SQL lives only here. Engine-specific fast paths (PostgreSQL COPY, BRIN) stay in one
dialect module each.
"""
