"""The state store: SQLAlchemy models, sessions and keyword-only data-access functions.

The database is the source of truth for every job; queue messages carry only ids.
"""
