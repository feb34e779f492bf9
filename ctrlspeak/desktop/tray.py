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

from ctrlspeak.daemon.status import StatusEvent, describe, live_line

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
        # pystray drops a title set before the icon is visible (its setter only updates a
        # shown window), and the icon becomes visible on pystray's own setup thread. So the
        # latest event is kept, and applied when the icon is shown and on every event after.
        self._lock = threading.Lock()
        self._latest: StatusEvent | None = None
        self._live: dict[str, Any] | None = None  # the text so far, while recording or transcribing
        self._shown = False
        self._xdisplay: Any = None  # our own X connection, used from the sink thread only

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
        self._thread = threading.Thread(target=self._icon.run, kwargs={"setup": self._on_shown},
                                        name="tray", daemon=True)
        self._thread.start()

    def _on_shown(self, icon: Any) -> None:
        icon.visible = True
        with self._lock:
            self._shown = True
            self._apply()

    def __call__(self, event: StatusEvent | dict[str, Any]) -> None:
        """A status event, or a partial event's live text (a dict) for the tooltip."""
        if self._icon is None:
            return
        with self._lock:
            if isinstance(event, dict):
                self._live = event
            else:
                if event.model:
                    self._current_model = event.model
                if event.state not in ("recording", "transcribing"):
                    self._live = None  # delivered, or dropped: the tooltip says so
                self._latest = event
            if self._shown:
                self._apply()

    def _apply(self) -> None:
        event = self._latest
        if event is None:
            return
        state = "idle" if event.state in ("ready", "done", "notice") else event.state
        said = describe(event) if self._live is None else live_line(self._live, 100)
        image, title = icon_image(state), f"ctrlspeak: {said}"[:120]
        window = getattr(self._icon, "_window", None)
        if window is None or not hasattr(self._icon, "_icon_data"):  # not the X11 backend
            self._icon.icon = image
            self._icon.title = title
            return
        self._apply_x11(window, image, title)

    def _apply_x11(self, window: Any, image: Any, title: str) -> None:
        """Change the X11 icon without calling into pystray from this thread.

        pystray's setters signal its event-loop thread over its own X connection, and
        python-xlib is not thread-safe enough for that: in CI the icon stayed on "loading"
        after ready (a flush that returned early left the new title unsent), and the loop
        once deadlocked waiting for a reply that the other thread had taken. So this thread
        uses an X connection of its own: it sets the window's name, and sends the window an
        Expose, on which pystray's loop, alone on its connection, redraws from the new
        image.
        """
        from Xlib import X
        from Xlib.protocol import event as xevent

        icon = self._icon
        icon._title, icon._icon, icon._icon_data = title, image, None  # what pystray draws from
        try:
            if self._xdisplay is None:
                from Xlib import display as xdisplay

                self._xdisplay = xdisplay.Display()
            target = self._xdisplay.create_resource_object("window", window.id)
            target.set_wm_name(title)
            target.send_event(xevent.Expose(window=target, x=0, y=0, width=0, height=0, count=0),
                              event_mask=X.ExposureMask)
            self._xdisplay.flush()
        except Exception as exc:  # cosmetic: the icon shows the next state
            log.debug("updating the tray icon: %s", exc)

    def stop(self) -> None:
        if self._xdisplay is not None:
            try:
                self._xdisplay.close()
            except Exception as exc:
                log.debug("closing the tray's X connection: %s", exc)
            self._xdisplay = None
        if self._icon is not None:
            try:
                self._icon.stop()
            except Exception as exc:
                log.debug("stopping the tray icon: %s", exc)
            if self._thread is not None:
                self._thread.join(2.0)
