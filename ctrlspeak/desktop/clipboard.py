"""The system clipboard, behind one small interface, through the platform's command-line tools.

    get()       -> ClipboardContent | None   save what is there now (None: nothing)
    set_text(t)                              put a transcript there
    restore(c)                               put back what get() saved (None: clear it)
    read_text() -> str | None                the clipboard as text (to check it before restoring)

Backends: X11 through ``xclip`` (every target, so an image survives) or ``xsel`` (text only),
Wayland through ``wl-copy``/``wl-paste`` (any MIME type), macOS through ``pbcopy``/``pbpaste``
(text only: on macOS an image on the clipboard is lost when a transcript is pasted). xclip and
wl-copy serve one type per owner, so one type is saved: the text when there is text, else the
best other type (an image first). A copy that offered text/html and text/plain comes back as
the text.

Two things about these tools shape the code:

* ``xclip -i``, ``xsel -i`` and ``wl-copy`` leave a child running that owns the selection until
  someone else takes it. That child inherits our stdout/stderr, so reading those through a pipe
  would wait until the next copy. Their output goes to DEVNULL, their stderr to a temp file.
* The owning child may take the selection a moment after the tool we ran has exited, so
  :meth:`Clipboard.set_text` reads the text back until it is there, before anyone pastes it.

Every subprocess has a timeout: a clipboard owner that never answers costs seconds, not a hang.
Nothing here logs clipboard contents, only their type and size.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ctrlspeak import errors

log = logging.getLogger(__name__)

TEXT_MIME = "text/plain;charset=utf-8"

#: seconds one clipboard tool may run before we give up on it
TOOL_TIMEOUT_S = 2.0
#: seconds set_text waits for the new owner to answer with the new text
SETTLE_TIMEOUT_S = 1.0

# What to install, per tool: one line a person can act on.
INSTALL_HINTS: dict[str, str] = {
    "xclip": "install xclip (Debian/Ubuntu: sudo apt install xclip; Fedora: sudo dnf install xclip; Arch: sudo pacman -S xclip)",
    "xsel": "install xsel (sudo apt install xsel), or better xclip",
    "xdotool": "install xdotool (Debian/Ubuntu: sudo apt install xdotool; Fedora: sudo dnf install xdotool; Arch: sudo pacman -S xdotool)",
    "wl-copy": "install wl-clipboard (Debian/Ubuntu: sudo apt install wl-clipboard; Fedora: sudo dnf install wl-clipboard; Arch: sudo pacman -S wl-clipboard)",
    "wl-paste": "install wl-clipboard (Debian/Ubuntu: sudo apt install wl-clipboard; Fedora: sudo dnf install wl-clipboard; Arch: sudo pacman -S wl-clipboard)",
    "wtype": "install wtype (Debian/Ubuntu: sudo apt install wtype; Fedora: sudo dnf install wtype; Arch: sudo pacman -S wtype); GNOME and KDE do not support it: run ydotoold there",
    "ydotool": "install ydotool 1.x and run its daemon ydotoold (GNOME, KDE; it needs write access to /dev/uinput)",
    "xprop": "install xprop (Debian/Ubuntu: sudo apt install x11-utils; Fedora: sudo dnf install xprop; Arch: sudo pacman -S xorg-xprop): it names the focused app, so a terminal gets Ctrl+Shift+V",
    "pbcopy": "pbcopy ships with macOS; check PATH contains /usr/bin",
    "pbpaste": "pbpaste ships with macOS; check PATH contains /usr/bin",
    "pynput": "pip install pynput (and on macOS allow Accessibility access for the terminal or app running ctrlspeak)",
}

# X11 selection targets that carry text, best first. xclip serves its data for any target
# asked for, so TARGETS decides what the owner really holds.
#: the hint for failures of the clipboard itself (PasteFailed's default assumes the text is on it)
CLIPBOARD_HINT = "the clipboard tool failed; `ctrlspeak doctor` checks the clipboard and paste tools"

_X11_TEXT_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "text/plain;charset=UTF-8", "STRING", "TEXT", "text/plain")
# Targets that describe the selection rather than hold data.
_X11_META_TARGETS = frozenset({
    "TARGETS", "TIMESTAMP", "MULTIPLE", "SAVE_TARGETS", "DELETE", "INSERT_PROPERTY", "INSERT_SELECTION",
    "LENGTH", "TARGET_SIZES", "CLIENT_WINDOW", "HOST_NAME", "USER", "OWNER_OS", "FILE_NAME",
})
_WAYLAND_TEXT_TYPES = ("text/plain;charset=utf-8", "UTF8_STRING", "text/plain", "STRING", "TEXT")


@dataclass(frozen=True)
class ClipboardContent:
    """What the clipboard held: raw bytes and their type.

    ``mime`` is :data:`TEXT_MIME` for text (``data`` is then UTF-8), otherwise the target or MIME
    type exactly as the owner offered it (``image/png``), so restoring hands back the same bytes
    under the same name. ``data`` stays out of ``repr`` so the contents never reach a log.
    """

    mime: str
    data: bytes = field(repr=False)

    @classmethod
    def from_text(cls, text: str) -> ClipboardContent:
        return cls(TEXT_MIME, text.encode("utf-8"))

    @property
    def is_text(self) -> bool:
        return self.mime == TEXT_MIME

    @property
    def text(self) -> str:
        if not self.is_text:
            raise ValueError(f"clipboard content is {self.mime}, not text")
        return self.data.decode("utf-8", errors="replace")


class Clipboard:
    """One backend. Subclasses implement the three tool calls; the rest is shared."""

    name = "clipboard"
    #: False where the backend can only save text (other content is lost by a paste)
    keeps_non_text = True

    def __init__(self, tools: Mapping[str, str], env: Mapping[str, str] | None = None) -> None:
        self._tools = dict(tools)  # tool name -> absolute path
        self._env = dict(os.environ if env is None else env)

    # -- the interface ---------------------------------------------------------------------
    def get(self) -> ClipboardContent | None:
        """Save the current clipboard; None when it is empty or holds nothing we can read."""
        raise NotImplementedError

    def set_text(self, text: str) -> None:
        """Own the clipboard with ``text``; returns once reading it back gives ``text``."""
        self._write(ClipboardContent.from_text(text))
        self._wait_until_holds(text)

    def restore(self, content: ClipboardContent | None) -> None:
        """Put back what :meth:`get` returned; None clears the clipboard."""
        if content is None:
            self._clear()
        else:
            self._write(content)
            self._settle(content)

    def read_text(self) -> str | None:
        """The clipboard as text, or None when it holds no text."""
        content = self.get()
        return content.text if content is not None and content.is_text else None

    # -- for subclasses ---------------------------------------------------------------------
    def _write(self, content: ClipboardContent) -> None:
        raise NotImplementedError

    def _clear(self) -> None:
        self._write(ClipboardContent.from_text(""))

    def _wait_until_holds(self, text: str) -> None:
        if not self._settled(lambda: self.read_text() == text):
            raise errors.PasteFailed(
                f"the clipboard did not take the text within {SETTLE_TIMEOUT_S:.1f}s ({self.name})",
                hint="a clipboard manager may be fighting over the clipboard; run `ctrlspeak doctor`",
            )

    @staticmethod
    def _settled(done: Callable[[], bool]) -> bool:
        """Poll ``done`` until it holds (True) or SETTLE_TIMEOUT_S passes (False)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _settle(self, content: ClipboardContent) -> None:
        """Wait (briefly, without failing) until a read gives back what was restored.

        xclip's parent exits before its child owns the selection: a read straight after
        can still reach the previous owner."""
        if not (content.is_text or self.keeps_non_text):
            return
        if not self._settled(lambda: self.get() == content):
            log.warning("the restored clipboard (%s) did not read back within %.1fs", content.mime, SETTLE_TIMEOUT_S)

    def _read(self, tool: str, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        """Run a tool that prints the clipboard and exits (never forks an owner)."""
        cmd = [self._tools[tool], *args]
        try:
            return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=TOOL_TIMEOUT_S, env=self._env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise errors.PasteFailed(f"{tool} did not answer within {TOOL_TIMEOUT_S:.0f}s "
                                     "(the clipboard owner is not responding)", hint=CLIPBOARD_HINT) from exc
        except OSError as exc:
            raise errors.PasteFailed(f"cannot run {tool}: {exc}", hint=INSTALL_HINTS.get(tool)) from exc

    def _own(self, tool: str, args: Sequence[str], data: bytes) -> None:
        """Run a tool that reads ``data`` on stdin and leaves a child owning the clipboard."""
        cmd = [self._tools[tool], *args]
        # stderr to a file, not a pipe: the owning child inherits it and lives on.
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL, stderr=err,
                                      timeout=TOOL_TIMEOUT_S, env=self._env, check=False)
            except subprocess.TimeoutExpired as exc:
                raise errors.PasteFailed(f"{tool} did not finish within {TOOL_TIMEOUT_S:.0f}s",
                                         hint=CLIPBOARD_HINT) from exc
            except OSError as exc:
                raise errors.PasteFailed(f"cannot run {tool}: {exc}", hint=INSTALL_HINTS.get(tool)) from exc
            if proc.returncode != 0:
                err.seek(0)
                message = err.read(2000).decode("utf-8", errors="replace").strip().splitlines()
                raise errors.PasteFailed(f"{tool} failed (exit {proc.returncode}): "
                                         f"{message[-1] if message else 'no message'}", hint=CLIPBOARD_HINT)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class XclipClipboard(Clipboard):
    name = "x11 (xclip)"

    def _targets(self) -> list[str]:
        proc = self._read("xclip", ["-selection", "clipboard", "-o", "-t", "TARGETS"])
        if proc.returncode != 0:  # nobody owns the clipboard
            return []
        return [t.strip() for t in proc.stdout.decode("utf-8", errors="replace").splitlines() if t.strip()]

    def _fetch(self, target: str) -> bytes | None:
        proc = self._read("xclip", ["-selection", "clipboard", "-o", "-t", target])
        return proc.stdout if proc.returncode == 0 else None

    def get(self) -> ClipboardContent | None:
        targets = self._targets()
        for target in _X11_TEXT_TARGETS:
            if target in targets:
                data = self._fetch(target)
                if data is None:
                    continue
                if not data:
                    return None
                if target in ("STRING", "TEXT"):  # ICCCM: STRING is Latin-1
                    data = data.decode("latin-1").encode("utf-8")
                return ClipboardContent(TEXT_MIME, data)
        for target in _pick_binary(t for t in targets if t not in _X11_META_TARGETS):
            data = self._fetch(target)
            if data:
                return ClipboardContent(target, data)
        return None

    def read_text(self) -> str | None:
        # One call instead of two: used in set_text's read-back loop.
        if "UTF8_STRING" not in self._targets():
            return None
        data = self._fetch("UTF8_STRING")
        return None if data is None else data.decode("utf-8", errors="replace")

    def _write(self, content: ClipboardContent) -> None:
        target = "UTF8_STRING" if content.is_text else content.mime
        self._own("xclip", ["-selection", "clipboard", "-i", "-t", target], content.data)


class XselClipboard(Clipboard):
    """Fallback for X11 when only xsel is installed: it cannot name targets, so text only."""

    name = "x11 (xsel)"
    keeps_non_text = False

    def get(self) -> ClipboardContent | None:
        proc = self._read("xsel", ["--clipboard", "--output"])
        if proc.returncode != 0 or not proc.stdout:
            return None
        return ClipboardContent(TEXT_MIME, proc.stdout)

    def _write(self, content: ClipboardContent) -> None:
        if not content.is_text:
            log.warning("xsel cannot restore %s content; install xclip to keep images", content.mime)
            self._clear()
            return
        self._own("xsel", ["--clipboard", "--input"], content.data)

    def _clear(self) -> None:
        proc = self._read("xsel", ["--clipboard", "--clear"])
        if proc.returncode != 0:
            raise errors.PasteFailed(f"xsel --clear failed (exit {proc.returncode})", hint=CLIPBOARD_HINT)


class WaylandClipboard(Clipboard):
    name = "wayland (wl-clipboard)"

    def _types(self) -> list[str]:
        proc = self._read("wl-paste", ["--list-types"])
        if proc.returncode != 0:  # "Nothing is copied"
            return []
        return [t.strip() for t in proc.stdout.decode("utf-8", errors="replace").splitlines() if t.strip()]

    def _fetch(self, mime: str) -> bytes | None:
        proc = self._read("wl-paste", ["--no-newline", "--type", mime])
        return proc.stdout if proc.returncode == 0 else None

    def get(self) -> ClipboardContent | None:
        types = self._types()
        for mime in _WAYLAND_TEXT_TYPES:
            if mime in types:
                data = self._fetch(mime)
                if data is None:
                    continue
                return ClipboardContent(TEXT_MIME, data) if data else None
        for mime in _pick_binary(t for t in types if t not in _X11_META_TARGETS):
            data = self._fetch(mime)
            if data:
                return ClipboardContent(mime, data)
        return None

    def _write(self, content: ClipboardContent) -> None:
        self._own("wl-copy", ["--type", content.mime], content.data)

    def _clear(self) -> None:
        self._own("wl-copy", ["--clear"], b"")


class MacClipboard(Clipboard):
    """pbcopy/pbpaste move plain text only: an image on the clipboard does not survive a paste."""

    name = "macos (pbcopy)"
    keeps_non_text = False

    def __init__(self, tools: Mapping[str, str], env: Mapping[str, str] | None = None) -> None:
        super().__init__(tools, env)
        # Without a UTF-8 locale (launchd agents have none) pbcopy mangles non-ASCII text.
        self._env.setdefault("LANG", "en_US.UTF-8")
        self._env["LC_CTYPE"] = "UTF-8"

    def get(self) -> ClipboardContent | None:
        proc = self._read("pbpaste", [])
        if proc.returncode != 0 or not proc.stdout:
            return None
        return ClipboardContent(TEXT_MIME, proc.stdout)

    def _write(self, content: ClipboardContent) -> None:
        self._own("pbcopy", [], content.data if content.is_text else b"")


def _pick_binary(targets) -> list[str]:
    """Non-text targets worth saving, best first: images, then anything MIME-shaped."""
    candidates = list(targets)
    images = [t for t in candidates if t.startswith("image/")]
    images.sort(key=lambda t: t != "image/png")
    rest = [t for t in candidates if "/" in t and t not in images]
    return images + rest


# -- choosing a backend -------------------------------------------------------------------------

def display_kind(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str | None:
    """"mac", "wayland", "x11" or None (no graphical session, e.g. over ssh).

    macOS wins over DISPLAY because XQuartz sets DISPLAY there, yet apps use the Mac clipboard.
    """
    if platform == "darwin":
        return "mac"
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    if env.get("DISPLAY"):
        return "x11"
    return None


def which(tool: str, env: Mapping[str, str] = os.environ) -> str | None:
    """``shutil.which`` on the PATH of ``env`` (so callers and tests can narrow it)."""
    return shutil.which(tool, path=env.get("PATH", os.defpath))


def detect_clipboard(env: Mapping[str, str] = os.environ, *, platform: str = sys.platform) -> Clipboard | None:
    """The clipboard backend for this session, or None (see :func:`require_clipboard`)."""
    kind = display_kind(env, platform)
    found = {tool: path for tool in ("pbcopy", "pbpaste", "wl-copy", "wl-paste", "xclip", "xsel")
             if (path := which(tool, env))}
    if kind == "mac":
        if "pbcopy" in found and "pbpaste" in found:
            return MacClipboard(found, env)
        return None
    if kind == "wayland":
        if "wl-copy" in found and "wl-paste" in found:
            return WaylandClipboard(found, env)
        if not env.get("DISPLAY"):
            return None
        # XWayland: the compositor mirrors the X clipboard, which beats having none.
        log.info("wl-clipboard not found; using the XWayland clipboard")
    if kind in ("wayland", "x11"):
        if "xclip" in found:
            return XclipClipboard(found, env)
        if "xsel" in found:
            log.info("xclip not found; using xsel (images on the clipboard will not be restored)")
            return XselClipboard(found, env)
    return None


def missing_clipboard_reason(env: Mapping[str, str] = os.environ, *, platform: str = sys.platform) -> str:
    """One line: why :func:`detect_clipboard` found nothing, and what to install."""
    kind = display_kind(env, platform)
    if kind == "mac":
        return f"pbcopy/pbpaste not found: {INSTALL_HINTS['pbcopy']}"
    if kind == "wayland":
        return f"no Wayland clipboard tool: {INSTALL_HINTS['wl-copy']}"
    if kind == "x11":
        return f"no X11 clipboard tool: {INSTALL_HINTS['xclip']}"
    return "no graphical session (neither WAYLAND_DISPLAY nor DISPLAY is set), so there is no clipboard"


def require_clipboard(env: Mapping[str, str] = os.environ, *, platform: str = sys.platform) -> Clipboard:
    clipboard = detect_clipboard(env, platform=platform)
    if clipboard is None:
        raise errors.PasteFailed(missing_clipboard_reason(env, platform=platform),
                                 hint="install the clipboard tool named above; `ctrlspeak doctor` checks them all")
    return clipboard
