"""The data plane: Celery tasks and the training and evaluation core (torch lives here only)."""
