"""A paste target for desktop tests: a Tk window with one Text widget.

    python _tk_target.py TITLE DUMP_FILE

Every 100 ms the widget's content is written to DUMP_FILE (atomically, so a reader never sees
half a write). The Text widget holds the keyboard focus, so keys sent to the window land in it.
"""
from __future__ import annotations

import os
import sys
import tkinter as tk


def main() -> None:
    title, dump = sys.argv[1], sys.argv[2]
    root = tk.Tk()
    root.title(title)
    root.geometry("600x200+10+10")
    text = tk.Text(root)
    text.pack(fill="both", expand=True)
    text.focus_set()
    last: list[str | None] = [None]

    def save() -> None:
        content = text.get("1.0", "end-1c")
        if content != last[0]:
            tmp = f"{dump}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(content)
            os.replace(tmp, dump)
            last[0] = content
        root.after(100, save)

    save()
    root.mainloop()


if __name__ == "__main__":
    main()
