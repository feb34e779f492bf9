"""Runtime patches applied in the worker before NeMo is imported."""
