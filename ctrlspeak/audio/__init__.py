"""Audio on the daemon side: capture, files, segmentation, voice activity, the journal, sounds."""
