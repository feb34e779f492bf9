"""A tray icon (pystray) showing idle, loading, recording, transcribing or error, with a
menu for toggle, model and quit.

pystray needs a tray host (an XEmbed system tray on X11, the menu bar on macOS); without
one it still runs, so the sink only starts when asked and logs failures once.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ctrlspeak.status import StatusEvent, describe

log = logging.getLogger(__name__)

COLOURS = {
    "idle": (120, 120, 120), "ready": (120, 120, 120), "done": (120, 120, 120),
    "loading": (230, 160, 20), "recording": (220, 40, 40), "transcribing": (40, 110, 220),
    "error": (150, 0, 150), "notice": (120, 120, 120),
}


def icon_image(state: str, size: int = 64) -> Any:
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    colour = COLOURS.get(state, COLOURS["idle"])
    draw.ellipse((4, 4, size - 4, size - 4), fill=colour + (255,))
    # a microphone glyph: capsule and stand
    w = size // 6
    draw.rounded_rectangle((size // 2 - w, size // 5, size // 2 + w, size // 2 + w), radius=w, fill="white")
    draw.line((size // 2, size // 2 + w, size // 2, size * 3 // 4), fill="white", width=max(2, size // 20))
    return img


def tray_host(env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Whether an icon can dock here, and why not. pystray without a host logs a traceback
    every few seconds, so the daemon only starts the icon when this says yes."""
    import os
    import sys

    env = dict(os.environ if env is None else env)
    if sys.platform == "darwin":
        return True, "the macOS menu bar"
    display = env.get("DISPLAY")
    if not display:
        return False, "no X display (Wayland trays need the AppIndicator backend, not available here)"
    try:
        from Xlib import display as xdisplay

        d = xdisplay.Display(display)
        try:
            screen = d.get_default_screen()
            owner = d.get_selection_owner(d.intern_atom(f"_NET_SYSTEM_TRAY_S{screen}"))
        finally:
            d.close()
    except Exception as exc:
        return False, f"cannot ask the X server: {exc}"
    if not owner:
        return False, "no system tray on this desktop"
    return True, "an X11 system tray"


class Tray:
    def __init__(self, on_toggle: Callable[[], None], on_model: Callable[[str], None],
                 on_quit: Callable[[], None], models: Sequence[str]) -> None:
        self._on_toggle, self._on_model, self._on_quit = on_toggle, on_model, on_quit
        self._models = list(models)
        self._icon: Any = None
        self._thread: threading.Thread | None = None
        self._current_model = ""

    def start(self) -> None:
        import pystray

        def model_item(name: str) -> Any:
            return pystray.MenuItem(name, lambda *_: self._on_model(name),
                                    checked=lambda _item: self._current_model == name, radio=True)

        menu = pystray.Menu(
            pystray.MenuItem("Start / stop dictation", lambda *_: self._on_toggle(), default=True),
            pystray.MenuItem("Model", pystray.Menu(*[model_item(m) for m in self._models])),
            pystray.Menu.SEPARATOR,
            pystray.MenuItem("Quit ctrlspeak", lambda *_: self._on_quit()),
        )
        self._icon = pystray.Icon("ctrlspeak", icon_image("loading"), "ctrlspeak: starting", menu)
        self._thread = threading.Thread(target=self._icon.run, name="tray", daemon=True)
        self._thread.start()

    def __call__(self, event: StatusEvent) -> None:
        if self._icon is None:
            return
        if event.model:
            self._current_model = event.model
        state = "idle" if event.state in ("ready", "done", "notice") else event.state
        self._icon.icon = icon_image(state)
        self._icon.title = f"ctrlspeak: {describe(event)}"[:120]

    def stop(self) -> None:
        if self._icon is not None:
            try:
                self._icon.stop()
            except Exception as exc:
                log.debug("stopping the tray icon: %s", exc)
            if self._thread is not None:
                self._thread.join(2.0)
