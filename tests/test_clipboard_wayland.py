"""The Wayland clipboard (wl-copy / wl-paste) against fake tools that behave like wl-clipboard 2.1:
wl-copy leaves an owner child that holds stdout/stderr, text is offered under its usual aliases,
an empty clipboard makes wl-paste exit 1. The real tools on sway: /work/shared/notes/wayland-testing.md.
"""
from __future__ import annotations

import time

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop import clipboard as clipboard_module
from ctrlspeak.desktop.clipboard import ClipboardContent, WaylandClipboard, detect_clipboard
from ctrlspeak.desktop.output import NullKeyGuard, Output

WL_COPY = """#!/bin/sh
# wl-copy [--type T | --clear]: data on stdin; forks an owner that keeps our stdout/stderr
store="{store}"
if [ "$1" = --clear ]; then /bin/rm -rf "$store"; exit 0; fi
type="$2"
/bin/rm -rf "$store"; /bin/mkdir -p "$store"
/bin/cat > "$store/data"
case "$type" in
  text/*|TEXT|STRING|UTF8_STRING)
    printf '%s\\n' "$type" text/plain text/plain\\;charset=utf-8 TEXT STRING UTF8_STRING | /usr/bin/sort -u > "$store/types" ;;
  *) printf '%s\\n' "$type" > "$store/types" ;;
esac
(/bin/sleep 5 &)
exit 0
"""

WL_PASTE = """#!/bin/sh
store="{store}"
[ -f "$store/types" ] || {{ echo "Nothing is copied" >&2; exit 1; }}
if [ "$1" = --list-types ]; then /bin/cat "$store/types"; exit 0; fi
{hang}
/bin/cat "$store/data"
"""


@pytest.fixture
def wayland(tmp_path):
    """Fake wl-copy and wl-paste: (an env with them on PATH, a function that makes wl-paste hang,
    their bin directory)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    store = tmp_path / "clipboard"

    def write(name: str, text: str) -> None:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)

    write("wl-copy", WL_COPY.format(store=store))
    write("wl-paste", WL_PASTE.format(store=store, hang=""))
    env = {"WAYLAND_DISPLAY": "wayland-test", "PATH": str(bin_dir)}

    def hang() -> None:
        write("wl-paste", WL_PASTE.format(store=store, hang="exec /bin/sleep 30"))

    return env, hang, bin_dir


def test_text_round_trips_and_set_text_does_not_wait_for_the_owner(wayland):
    env, _, _ = wayland
    clipboard = detect_clipboard(env, platform="linux")
    assert isinstance(clipboard, WaylandClipboard)
    assert clipboard.get() is None
    start = time.monotonic()
    clipboard.set_text("héllo")  # the owner child holds stdout/stderr for 5 s: no pipe may wait on it
    assert time.monotonic() - start < 2.0
    assert clipboard.get() == ClipboardContent.from_text("héllo")


@pytest.mark.parametrize("mime, data", [("image/png", b"\x89PNG\r\n\x1a\n\x00\xff"),
                                        ("application/x-ctrlspeak-test", bytes(range(256)))])
def test_a_non_text_type_is_restored_under_its_own_type(wayland, mime, data):
    env, _, _ = wayland
    clipboard = detect_clipboard(env, platform="linux")
    clipboard.restore(ClipboardContent(mime, data))
    assert clipboard.get() == ClipboardContent(mime, data)
    clipboard.set_text("text wins")
    assert clipboard.read_text() == "text wins"
    clipboard.restore(None)
    assert clipboard.get() is None


def test_a_paste_on_wayland_restores_an_image(wayland, tmp_path):
    env, _, bin_dir = wayland
    log = tmp_path / "wtype.log"
    (bin_dir / "wtype").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n')
    (bin_dir / "wtype").chmod(0o755)
    clipboard = detect_clipboard(env, platform="linux")
    image = ClipboardContent("image/png", b"\x89PNG\r\n\x1a\nimage bytes")
    clipboard.restore(image)

    out = Output("paste", key_guard=NullKeyGuard(), env=env, platform="linux", restore_delay_s=0.0,
                 focus=lambda: None)
    delivery = out.deliver("dictated")

    assert delivery.pasted and "restored" in delivery.detail, delivery
    assert log.read_text() == "-s 30 -M ctrl -k v -m ctrl -p F20\n"
    assert clipboard.get() == image


def test_a_wl_paste_that_hangs_times_out(wayland, monkeypatch):
    env, hang, _ = wayland
    monkeypatch.setattr(clipboard_module, "TOOL_TIMEOUT_S", 0.3)
    clipboard = detect_clipboard(env, platform="linux")
    clipboard.restore(ClipboardContent.from_text("x"))
    hang()
    start = time.monotonic()
    with pytest.raises(errors.PasteFailed, match="did not answer"):
        clipboard.get()
    assert time.monotonic() - start < 2.0
