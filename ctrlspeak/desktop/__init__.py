"""The desktop: the hotkey, global keys, delivering text (paste, type, clipboard), tray, notifications."""
