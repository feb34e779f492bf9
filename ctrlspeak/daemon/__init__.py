"""The dictation daemon (``ctrlspeak run``): one loop that owns the daemon's state.

``core`` (the loop and the Daemon), ``events`` (what other threads post to it),
``recording`` (the recording being made), ``dictation`` (segments to text to history),
``model_view`` (what is said about the model), ``commands`` (commands and hotkey events),
``microphone`` (the audio source and PortAudio's release), ``wiring`` (building the edges),
``publisher`` (the status bus and the snapshot), ``status`` (status events and their sinks),
``worker_link`` (the supervisor and the newest WorkerState), ``stopping``, ``signals``,
``keepalive``, ``download_view``, ``native_stderr``.
"""
