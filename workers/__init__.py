"""The transcription worker process: its entry point and its outbound channels (torch lives here)."""
