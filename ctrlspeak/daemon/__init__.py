"""The dictation daemon (``ctrlspeak run``): its loop, events, published status and signals."""
