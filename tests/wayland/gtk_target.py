"""A GTK3 window with one TextView, run by the system python3 (python3-gi) under sway.

Every 100 ms it writes the buffer to --out (atomically), so a test sees what typing and
pasting put there; every key event the window gets is appended to --keys ("press Control_L"),
so a test sees what the compositor passed on (a bound key it kept is missing there). Its Wayland app_id is --app-id (GLib's prgname, set before GTK starts).
"""
from __future__ import annotations

import argparse
import os

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--keys", required=True)
    args = parser.parse_args()
    GLib.set_prgname(args.app_id)
    window = Gtk.Window(title=args.app_id)
    window.set_default_size(600, 300)
    view = Gtk.TextView()
    window.add(view)
    window.connect("destroy", Gtk.main_quit)
    keys = open(args.keys, "a", buffering=1, encoding="utf-8")

    def on_key(widget, event, kind: str) -> bool:
        keys.write(f"{kind} {Gdk.keyval_name(event.keyval)}\n")
        return False  # the TextView still handles it

    window.connect("key-press-event", on_key, "press")
    window.connect("key-release-event", on_key, "release")
    window.show_all()
    view.grab_focus()
    last = [None]

    def dump() -> bool:
        buffer = view.get_buffer()
        text = buffer.get_text(buffer.get_start_iter(), buffer.get_end_iter(), True)
        if text != last[0]:
            tmp = args.out + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, args.out)
            last[0] = text
        return True

    GLib.timeout_add(100, dump)
    dump()
    Gtk.main()


if __name__ == "__main__":
    main()
