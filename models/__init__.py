"""ASR models: the registry, the hub and the download on one side, the NeMo backends on the other.

Torch-free, so the daemon may import them: :mod:`~ctrlspeak.models.registry` (names, aliases,
the cache check), :mod:`~ctrlspeak.models.hub` (where the hub is and what a file is),
:mod:`~ctrlspeak.models.download` (the resumable fetch) and :mod:`~ctrlspeak.models.cache`
(what a model takes on disk, and freeing it).

Worker-only, because they import torch and NeMo: :mod:`~ctrlspeak.models.backends` (loading and
running Parakeet, Canary and streaming models), :mod:`~ctrlspeak.models.fastload` (the fast
restore through a weights cache), :mod:`~ctrlspeak.models.int8` (the int8 encoder) and
:mod:`~ctrlspeak.models.streaming` (cache-aware streaming of live audio, chunk by chunk).
``tests/test_main_process_imports.py`` holds the daemon to this.
"""
