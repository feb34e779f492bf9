"""The live overlay: a small window near the bottom of the screen with the words as they come.

A process of its own (``python -m ctrlspeak.desktop.overlay``), started by the daemon when
``live = true`` and there is an X display (XWayland included); it follows the control socket
like ``status --follow``, so the daemon stays lean and a crash here costs nothing. It never
takes focus and never blocks clicks: it is override-redirect (no window manager manages it,
so none gives it focus) and its X input shape is empty (clicks fall through to the window
below). Final words are white, the tentative tail grey; it goes away when the text is
delivered (or dropped). Its title holds the text too, for screen readers and tests.
"""
from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TITLE = "ctrlspeak live"
#: what the overlay shows at most: the end of a long dictation (the words being said)
SHOWN_CHARS = 240


def _follow(path: Path | None, events: queue.Queue[dict[str, Any] | None], wake: int) -> None:
    """On its own thread: the daemon's events into ``events``, a byte into ``wake`` for each
    (Tk is not thread-safe; a file handler on the pipe wakes its loop, so it never polls)."""
    from ctrlspeak import control

    try:
        for event in control.follow(path):
            events.put(event)
            os.write(wake, b"e")
    except Exception as exc:  # noqa: BLE001 - the daemon went away, or never answered: end quietly
        log.info("the overlay stops following: %s", exc)
    events.put(None)
    os.write(wake, b"e")


def _pass_clicks_through(window_id: int) -> None:
    """An empty input shape: the pointer goes through the window to the one below."""
    from Xlib import display
    from Xlib.ext import shape

    d = display.Display()
    try:
        d.create_resource_object("window", window_id).shape_rectangles(shape.SO.Set, shape.SK.Input, 0, 0, 0, [])
        d.flush()
    finally:
        d.close()


class Overlay:
    def __init__(self, root: Any) -> None:
        import tkinter as tk

        self._root = root
        root.withdraw()
        root.overrideredirect(True)
        root.attributes("-topmost", True)
        root.title(TITLE)
        root.configure(background="#202020")
        self._text = tk.Text(root, height=2, width=64, wrap="word", borderwidth=0, highlightthickness=0,
                             background="#202020", foreground="#ffffff", font=("DejaVu Sans", 14), padx=12, pady=8)
        self._text.tag_configure("tentative", foreground="#9a9a9a")
        self._text.pack()
        self._text.configure(state="disabled")
        self._shown = False

    def show(self, final: str, tentative: str) -> None:
        text = self._text
        text.configure(state="normal")
        text.delete("1.0", "end")
        room = max(0, SHOWN_CHARS - len(tentative))
        text.insert("end", ("…" + final[-room:] if len(final) > room else final) + (" " if final and tentative else ""))
        text.insert("end", tentative[-SHOWN_CHARS:], "tentative")
        text.see("end")
        text.configure(state="disabled")
        self._root.title(f"{TITLE}: {final} {tentative}".rstrip())
        if not self._shown:
            self._place()
            self._root.deiconify()
            self._root.update_idletasks()
            try:
                _pass_clicks_through(int(self._root.wm_frame(), 16))
            except Exception as exc:  # noqa: BLE001 - no SHAPE extension: still no focus, clicks blocked
                log.warning("the overlay cannot let clicks through: %s", exc)
            self._shown = True

    def hide(self) -> None:
        if self._shown:
            self._root.withdraw()
            self._root.title(TITLE)
            self._shown = False

    def _place(self) -> None:
        root = self._root
        root.update_idletasks()
        w, h = root.winfo_reqwidth(), root.winfo_reqheight()
        x = (root.winfo_screenwidth() - w) // 2
        y = root.winfo_screenheight() - h - root.winfo_screenheight() // 10
        root.geometry(f"+{x}+{y}")

    def take(self, event: dict[str, Any]) -> None:
        if event.get("event") == "partial":
            self.show(event.get("final", ""), event.get("tentative", ""))
        elif event.get("event") == "status" and event.get("state") not in ("recording", "transcribing", "notice"):
            self.hide()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ctrlspeak.desktop.overlay", description=__doc__.split("\n")[0])
    p.add_argument("--socket", type=Path, default=None, help="the daemon's control socket (default: its usual path)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="ctrlspeak overlay: %(message)s")
    import tkinter as tk

    try:
        root = tk.Tk(className="ctrlspeak-overlay")
    except tk.TclError as exc:
        print(f"ctrlspeak overlay: no display ({exc}); the overlay is off", file=sys.stderr)
        return 0
    overlay = Overlay(root)
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    readable, wake = os.pipe()
    threading.Thread(target=_follow, args=(args.socket, events, wake), name="overlay-follow", daemon=True).start()

    def take(fd: int, _mask: int) -> None:
        os.read(fd, 4096)
        try:
            while True:
                event = events.get_nowait()
                if event is None:  # the daemon is gone
                    root.destroy()
                    return
                overlay.take(event)
        except queue.Empty:
            pass

    root.createfilehandler(readable, tk.READABLE, take)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
