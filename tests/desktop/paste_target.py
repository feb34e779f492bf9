"""A Tk text window for end-to-end tests: whatever lands in it (typed or pasted) is mirrored to a file.

Run by `harness.PasteTarget` with the Desktop's environment. Every 100 ms the window:
- runs the command in `--command` if that file exists (`clear` empties the text, `quit` exits),
- writes its full contents to `--out` (atomically, through a temporary file and a rename),
- and only then deletes the command file, so a caller that sees the command file gone can read `--out`
  and knows the command took effect.
The first write happens once the main loop runs, which is how the harness knows the program is up.
"""
from __future__ import annotations

import argparse
import os
import tkinter as tk
from pathlib import Path

POLL_MS = 100


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--title", default="PasteTarget")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", type=Path, required=True)
    args = parser.parse_args()

    root = tk.Tk()
    root.title(args.title)
    root.geometry("640x240+40+40")
    text = tk.Text(root, wrap="word", font=("DejaVu Sans Mono", 14))
    text.pack(fill="both", expand=True)
    # With no window manager, X input focus lands on the toplevel; Tk forwards keys to this widget.
    text.focus_set()

    last: str | None = None

    def tick() -> None:
        nonlocal last
        command = None
        if args.command.exists():
            command = args.command.read_text(encoding="utf-8").strip()
            if command == "clear":
                text.delete("1.0", "end")
            elif command == "quit":
                args.command.unlink()
                root.destroy()
                return
        content = text.get("1.0", "end-1c")
        if content != last or command is not None:
            write_atomically(args.out, content)
            last = content
        if command is not None:
            args.command.unlink()
        root.after(POLL_MS, tick)

    root.after(0, tick)
    root.mainloop()


if __name__ == "__main__":
    main()
