"""The daemon's side of the worker: its process handle, the supervisor, its requests, restarts and deadlines."""
