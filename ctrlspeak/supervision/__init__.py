"""The daemon's side of the worker: the process handle, the supervisor that keeps it alive, its requests, restart policy and deadlines."""
