"""Delivering a transcript: paste it at the cursor, type it, or print it.

Paste mode, in order:

1. save the clipboard (:meth:`Clipboard.get`), put the transcript there (``set_text`` returns
   once the clipboard answers with it);
2. wait until no modifier key is held: the person may still be holding Ctrl from the triple tap,
   and Ctrl+Shift+V or Ctrl+Alt+V would do something else;
3. synthesize the paste chord inside ``key_guard.synthesizing()`` so the hotkey detector does not
   count our own Ctrl as a tap: ``xdotool key --clearmodifiers ctrl+v`` on X11 (pynput's
   Controller without xdotool), wtype or ydotool on Wayland (keysend.py), pynput Cmd+V on macOS.
   The chord follows the focused app (focus.py, chord.py): Ctrl+Shift+V in a terminal, Ctrl+V
   elsewhere, or what the config's ``[paste_chord]`` says, which may be "type" (no clipboard);
4. wait ``restore_delay_s``: the target app asks the clipboard owner for the data *after* it
   sees the key, asynchronously; restoring earlier would paste the old clipboard;
5. put the saved clipboard back, unless someone copied something else meanwhile.

When no paste can be synthesized the transcript stays on the clipboard (not restored) and
:meth:`Output.deliver` returns ``Delivery(method="clipboard", pasted=False, ...)`` saying so; a
missing tool's install line is given once per Output (one daemon run), not at every dictation. Only
when even the clipboard cannot be set does it raise :class:`errors.PasteFailed`: the caller must
then show the text some other way. A transcript is never dropped silently.

Transcripts are logged only at DEBUG; above that, only their length.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ContextManager, Protocol, TextIO

from ctrlspeak import errors
from ctrlspeak.desktop import chord as chords
from ctrlspeak.desktop import keysend, once
from ctrlspeak.desktop.clipboard import INSTALL_HINTS, Clipboard, ClipboardContent, display_kind, missing_clipboard_reason
from ctrlspeak.desktop.clipboard import detect_clipboard, which
from ctrlspeak.desktop.focus import FocusedApp, focused_app

log = logging.getLogger(__name__)

MODES = ("paste", "type", "stdout")
#: how long the focus the text pipeline asked about (app_names) stands for the delivery after
#: it: the two are milliseconds apart, and a focus query costs a process or an IPC round trip
ASKED_FRESH_S = 1.0
#: how the person is told to paste by hand, per chord
_CHORD_NAMES = {"ctrl+v": "Ctrl+V", "ctrl+shift+v": "Ctrl+Shift+V", "shift+insert": "Shift+Insert", "cmd+v": "Cmd+V"}


class KeyGuard(Protocol):
    """What output needs from the hotkey listener (``keyboard.GlobalHotkey`` provides it)."""

    def synthesizing(self) -> ContextManager[None]:
        """Keys synthesized inside this block are not hotkey input."""
        ...

    def wait_modifiers_released(self, timeout: float) -> bool:
        """Block until no modifier is held; False if one still is after ``timeout`` seconds."""
        ...


class NullKeyGuard:
    """For when no hotkey listener runs (Wayland, no display, ``ctrlspeak toggle``)."""

    @contextlib.contextmanager
    def synthesizing(self) -> Iterator[None]:
        yield

    def wait_modifiers_released(self, timeout: float) -> bool:
        return True


@dataclass(frozen=True)
class Delivery:
    """How a transcript reached the person.

    method: "paste", "type", "stdout", or "clipboard" (it could not be pasted or typed and is
        left on the clipboard for the person to paste);
    pasted: True when the text was inserted at the cursor (pasted, typed or printed);
    detail: one line for logs and notifications; never contains the transcript.
    inserted_at: ``time.monotonic()`` when the text reached the cursor (the paste keystroke was
        sent, the text typed or printed): the end of what the person waits for. The clipboard's
        restore comes after it. None when it was not inserted.
    """

    method: str
    pasted: bool
    detail: str
    inserted_at: float | None = None


@dataclass(frozen=True)
class _Synth:
    """A way to synthesize keys: ``run()`` raises PasteFailed when it fails."""

    name: str
    clears_modifiers: bool  # it releases held modifiers itself (xdotool --clearmodifiers)
    run: Callable[[], None]


@dataclass(frozen=True)
class _NoSynth:
    """Why no key tool can be used; ``setup`` when the fix is to install or start something
    (said once per Output), not a failure of this one delivery."""

    why: str
    setup: bool = True


class Output:
    def __init__(
        self,
        mode: str = "paste",
        *,
        key_guard: KeyGuard,
        restore_clipboard: bool = True,
        restore_delay_s: float = 0.4,
        modifier_timeout_s: float = 3.0,
        paste_chords: Sequence[tuple[str, str]] = (),
        app_outputs: Sequence[tuple[str, str]] = (),
        focus: Callable[[], FocusedApp | None] | None = None,
        remote_keys: Any = None,
        env: Mapping[str, str] = os.environ,
        stdout: TextIO | None = None,
        clipboard: Clipboard | None = None,
        platform: str = sys.platform,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``paste_chords``: the config's ``[paste_chord]`` pairs (app, chord); ``app_outputs``:
        (app, mode) pairs from ``[profile."APP"]`` output settings; ``focus`` names the
        focused app (default :func:`focus.focused_app` for ``env``); ``remote_keys``: the
        desktop portal's keyboard (:mod:`ctrlspeak.desktop.portal_input`), used on Wayland where
        wtype cannot be, once it is ``ready``; ``clipboard`` defaults to
        :func:`detect_clipboard` for ``env``, looked up when needed; ``platform``, ``sleep``
        and ``clock`` exist for tests."""
        if mode not in MODES:
            raise errors.UsageError(f"unknown output mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.restore_clipboard = restore_clipboard
        self.restore_delay_s = restore_delay_s
        self.modifier_timeout_s = modifier_timeout_s
        self._key_guard = key_guard
        self._remote_keys = remote_keys
        self._env = dict(env)
        self._stdout = stdout
        self._clipboard = clipboard
        self._platform = platform
        self._sleep = sleep
        self._clock = clock
        self._kind = display_kind(self._env, platform)
        self._paste_chords = tuple(paste_chords)
        self._app_outputs = tuple((app.casefold(), m) for app, m in app_outputs)
        for _app, m in self._app_outputs:
            if m not in MODES:
                raise errors.UsageError(f"unknown output mode {m!r}; choose one of {', '.join(MODES)}")
        self._focus = focus if focus is not None else lambda: focused_app(self._env, self._kind)
        # setup hints already given in this run (ctrlspeak.desktop.once keeps them for the login)
        self._told: set[str] = set()
        # (when, answer) of app_names(), for the next deliver() only
        self._asked: tuple[float, FocusedApp | None] | None = None

    def target(self) -> str | None:
        """Which window has the keyboard focus (an opaque id), or None when that cannot be known
        (Wayland, macOS, no xdotool): the daemon spaces consecutive dictations into one window."""
        if self.mode == "stdout" or self._kind != "x11":
            return None
        xdotool = which("xdotool", self._env)
        if not xdotool:
            return None
        try:
            proc = subprocess.run([xdotool, "getwindowfocus"], stdin=subprocess.DEVNULL, capture_output=True,
                                  env=self._env, timeout=2.0, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        window = proc.stdout.decode("ascii", "replace").strip()
        return window if proc.returncode == 0 and window.isdigit() else None

    def app_names(self) -> tuple[str, ...]:
        """The focused app's names, for the text pipeline's ``[profile."APP"]`` tables (the same
        query the paste chord makes); () where they cannot be known, and for stdout."""
        if self.mode == "stdout" or self._kind not in ("x11", "wayland"):
            return ()
        app = self._focus()
        self._asked = (self._clock(), app)
        return app.names if app is not None else ()

    def deliver(self, text: str) -> Delivery:
        log.debug("delivering %r", text)
        focus = self._focus_for_delivery()
        mode = self._mode_here(focus)
        if mode == "stdout":
            return self._print(text)
        if mode == "type":
            return self._type(text, focus)
        return self._paste(text, focus)

    def _focus_for_delivery(self) -> Callable[[], FocusedApp | None]:
        """The focused app for one delivery, asked at most once: the answer app_names() just
        gave the text pipeline where it is fresh, else one query when first needed."""
        asked, self._asked = self._asked, None
        if asked is not None and self._clock() - asked[0] <= ASKED_FRESH_S:
            return lambda: asked[1]
        memo: list[FocusedApp | None] = []

        def once() -> FocusedApp | None:
            if not memo:
                memo.append(self._focus())
            return memo[0]
        return once

    def _mode_here(self, focus: Callable[[], FocusedApp | None]) -> str:
        """The output mode for the focused app: its profile's ``output``, else the configured
        one. With output = "stdout" there is no window to ask about, and without any per-app
        mode nothing is asked (a focus query costs a process or an IPC round trip)."""
        if self.mode == "stdout" or not self._app_outputs or self._kind not in ("x11", "wayland"):
            return self.mode
        app = focus()
        names = {n.casefold() for n in app.names} if app is not None else set()
        for name, mode in self._app_outputs:
            if name in names:
                log.debug("focused app %s: output %s (its profile)", sorted(names), mode)
                return mode
        return self.mode

    # -- modes -------------------------------------------------------------------------------
    def _print(self, text: str) -> Delivery:
        stream = self._stdout if self._stdout is not None else sys.stdout
        print(" ".join(text.splitlines()), file=stream, flush=True)
        return Delivery("stdout", True, f"printed {len(text)} characters", self._clock())

    def _paste(self, text: str, focus: Callable[[], FocusedApp | None]) -> Delivery:
        chord = self._chord(focus)
        if chord == "type":
            log.info("the focused app is set to have text typed, not pasted ([paste_chord])")
            return self._type(text, focus)
        clipboard = self._require_clipboard()
        saved: ClipboardContent | None = None
        can_restore = False
        if self.restore_clipboard:
            try:
                saved = clipboard.get()
                can_restore = True
            except errors.PasteFailed as exc:
                # Restoring a guess would be worse than leaving the transcript there.
                log.warning("could not save the clipboard, it will not be restored: %s", exc.message)
        clipboard.set_text(text)

        synth = self._paste_synth(chord)
        if isinstance(synth, _NoSynth):
            return self._left_on_clipboard(synth, chord, focus)
        failure = self._synthesize(synth)
        if failure:
            return self._left_on_clipboard(_NoSynth(failure, setup=False), chord, focus)
        inserted_at = self._clock()
        log.info("pasted %d characters with %s", len(text), synth.name)
        detail = f"pasted {len(text)} characters with {synth.name}" + ("" if chord == "ctrl+v" else f" ({chord})")
        if can_restore:
            self._sleep(self.restore_delay_s)
            detail += self._restore(clipboard, saved, text)
        return Delivery("paste", True, detail, inserted_at)

    def _type(self, text: str, focus: Callable[[], FocusedApp | None]) -> Delivery:
        synth = self._type_synth(text)
        if not isinstance(synth, _NoSynth):
            failure = self._synthesize(synth)
            if not failure:
                log.info("typed %d characters with %s", len(text), synth.name)
                return Delivery("type", True, f"typed {len(text)} characters with {synth.name}", self._clock())
            synth = _NoSynth(failure, setup=False)
        self._require_clipboard().set_text(text)
        return self._left_on_clipboard(synth, None, focus)

    # -- steps -------------------------------------------------------------------------------
    def _require_clipboard(self) -> Clipboard:
        if self._clipboard is None:
            self._clipboard = detect_clipboard(self._env, platform=self._platform)
        if self._clipboard is None:
            raise errors.PasteFailed(
                f"cannot put the text on the clipboard: {missing_clipboard_reason(self._env, platform=self._platform)}",
                hint="install the tool named above (`ctrlspeak doctor` lists them); the text is in `ctrlspeak history`",
            )
        return self._clipboard

    def _synthesize(self, synth: _Synth) -> str:
        """Run ``synth`` once no modifier is held; returns why it failed, or ""."""
        released = self._key_guard.wait_modifiers_released(self.modifier_timeout_s)
        if not released:
            if not synth.clears_modifiers:
                return f"a modifier key was still held after {self.modifier_timeout_s:.0f}s"
            log.info("a modifier is still held; %s releases it for the paste", synth.name)
        try:
            with self._key_guard.synthesizing():
                synth.run()
        except errors.PasteFailed as exc:
            return exc.message
        return ""

    def _restore(self, clipboard: Clipboard, saved: ClipboardContent | None, text: str) -> str:
        try:
            if clipboard.read_text() != text:
                log.info("the clipboard changed after the paste; not restoring it")
                return "; clipboard changed meanwhile, not restored"
            clipboard.restore(saved)
        except errors.PasteFailed as exc:
            log.warning("could not restore the clipboard: %s", exc.message)
            return f"; clipboard not restored ({exc.message})"
        return "; clipboard restored" if saved is not None else "; clipboard cleared"

    def _chord(self, focus: Callable[[], FocusedApp | None]) -> str:
        """The paste chord for the focused app; Ctrl+V where the app cannot be known (GNOME and
        KDE on Wayland have no IPC for it: the README points terminal users to output = "type")."""
        if self._kind not in ("x11", "wayland"):
            return "ctrl+v"
        app = focus()
        if app is None:
            return "ctrl+v"
        chosen = chords.choose_chord(app.names, self._paste_chords)
        log.debug("focused app %s (%s): %s", app.names, app.source, chosen)
        return chosen

    def _left_on_clipboard(self, reason: _NoSynth, chord: str | None,
                           focus: Callable[[], FocusedApp | None]) -> Delivery:
        if chord is None or chord == "type":  # typing failed: the chord to paste with by hand
            chord = "ctrl+v"
            if self._kind in ("x11", "wayland") and (app := focus()) is not None:
                chord = chords.TERMINAL_CHORD if chords.is_terminal(app.names) else chords.DEFAULT_CHORD
        key = _CHORD_NAMES["cmd+v" if self._kind == "mac" else chord]
        if reason.setup and (reason.why in self._told or once.told_before(self._env, reason.why)):
            self._told.add(reason.why)
            log.info("not pasted (no key tool, as said before)")
            return Delivery("clipboard", False, f"the text is on the clipboard, paste it with {key}")
        if reason.setup:
            self._told.add(reason.why)
            once.mark_told(self._env, reason.why)
        log.warning("not pasted: %s", reason.why)
        return Delivery("clipboard", False, f"{reason.why}; the text is on the clipboard, paste it with {key}")

    # -- key synthesis -------------------------------------------------------------------------
    def _paste_synth(self, chord: str) -> _Synth | _NoSynth:
        kind = self._kind
        if kind == "x11":
            xdotool = which("xdotool", self._env)
            if xdotool:
                cmd = keysend.xdotool_chord(xdotool, chord)
                return _Synth("xdotool", True, lambda: self._run_tool(cmd))
            return self._pynput_synth(chord, f"xdotool not found ({INSTALL_HINTS['xdotool']})")
        if kind == "wayland":
            keyer = keysend.wayland_keyer(self._env)
            if (remote := self._remote(keyer)) is not None:
                return _Synth(remote.name, False, lambda: remote.chord(chord))
            if keyer is None:
                return _NoSynth(f"nothing to paste with: {keysend.WAYLAND_NO_KEYER} to have it pasted")
            cmd = keysend.chord_args(keyer, chord)
            return _Synth(keyer.name, False, lambda: self._run_tool(cmd, env_extra=keyer.env))
        if kind == "mac":
            return self._pynput_synth("cmd+v", "")
        return _NoSynth("no graphical session to paste into")

    def _type_synth(self, text: str) -> _Synth | _NoSynth:
        kind = self._kind
        timeout = 5.0 + 0.05 * len(text)
        if kind == "x11":
            xdotool = which("xdotool", self._env)
            if xdotool:
                # --file - keeps the transcript out of argv, which other users can read in /proc.
                cmd = [xdotool, "type", "--clearmodifiers", "--delay", "5", "--file", "-"]
                return _Synth("xdotool", True, lambda: self._run_tool(cmd, text, timeout))
            return self._pynput_synth(None, f"xdotool not found ({INSTALL_HINTS['xdotool']})", text)
        if kind == "wayland":
            keyer = keysend.wayland_keyer(self._env)
            if (remote := self._remote(keyer)) is not None:
                return _Synth(remote.name, False, lambda: remote.type(text))
            if keyer is None:
                return _NoSynth(f"nothing to type with: {keysend.WAYLAND_NO_KEYER} to have it typed")
            if keyer.name == "ydotool" and not keysend.ydotool_can_type(text):
                return _NoSynth("ydotool types ASCII only and the text has other characters", setup=False)
            cmd, stdin_text = keysend.type_args(keyer, text)
            return _Synth(keyer.name, False, lambda: self._run_tool(cmd, stdin_text, timeout, env_extra=keyer.env))
        if kind == "mac":
            return self._pynput_synth(None, "", text)
        return _NoSynth("no graphical session to type into")

    def _remote(self, keyer: keysend.Keyer | None) -> Any:
        """The portal's keyboard where wtype cannot serve: it sends keysyms through the person's
        layout and types any character, where ydotool sends US key positions and ASCII only."""
        if (keyer is None or keyer.name == "ydotool") and self._remote_keys is not None and self._remote_keys.ready:
            return self._remote_keys
        return None

    def _pynput_synth(self, combo: str | None, why_else: str, text: str = "") -> _Synth | _NoSynth:
        """pynput's Controller: ``combo`` ("ctrl+v", "ctrl+shift+v", "shift+insert", "cmd+v") or,
        when None, type ``text``."""
        prefix = f"{why_else}; " if why_else else ""
        # pynput talks to the display in os.environ, which is not ours to use if env differs.
        if self._kind == "x11" and os.environ.get("DISPLAY") != self._env.get("DISPLAY"):
            return _NoSynth(f"{prefix}pynput would use another display")
        if importlib.util.find_spec("pynput") is None:
            return _NoSynth(f"{prefix}pynput is not installed ({INSTALL_HINTS['pynput']})")

        def run() -> None:
            try:
                from pynput.keyboard import Controller, Key
            except Exception as exc:  # pynput raises assorted errors when it finds no backend
                raise errors.PasteFailed(f"pynput cannot send keys here: {exc}") from exc
            keyboard = Controller()
            try:
                if combo is None:
                    keyboard.type(text)
                else:
                    *held, last = combo.split("+")
                    key = Key.insert if last == "insert" else last
                    with contextlib.ExitStack() as stack:
                        for name in held:
                            stack.enter_context(keyboard.pressed(getattr(Key, name)))
                        keyboard.press(key)
                        keyboard.release(key)
            except Exception as exc:  # Controller errors are backend-specific (Xlib, Quartz)
                raise errors.PasteFailed(f"pynput failed to send keys: {exc}") from exc

        return _Synth("pynput", False, run)

    def _run_tool(self, cmd: Sequence[str], stdin_text: str | None = None, timeout: float = 5.0, *,
                  env_extra: Mapping[str, str] | None = None) -> None:
        name = os.path.basename(cmd[0])
        try:
            proc = subprocess.run(
                list(cmd), input=stdin_text.encode("utf-8") if stdin_text is not None else None,
                stdin=subprocess.DEVNULL if stdin_text is None else None,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**self._env, **(env_extra or {})},
                timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise errors.PasteFailed(f"{name} did not finish within {timeout:.0f}s") from exc
        except OSError as exc:
            raise errors.PasteFailed(f"cannot run {name}: {exc}") from exc
        # xdotool exits 0 even when it could not open the display, but says so on stderr.
        message = proc.stderr.decode("utf-8", errors="replace").strip()
        if proc.returncode != 0 or "Can't open display" in message or "Failed creating new xdo" in message:
            last = message.splitlines()[-1] if message else "no message"
            raise errors.PasteFailed(f"{name} failed (exit {proc.returncode}): {last}")


def paste_tools_status(env: Mapping[str, str] = os.environ, *, platform: str = sys.platform) -> list[tuple[str, bool, str]]:
    """(tool, present, what to install) for the tools this session's paste path uses, for `doctor`."""
    kind = display_kind(env, platform)
    if kind == "mac":
        tools = ["pbcopy", "pbpaste", "pynput"]
    elif kind == "wayland":
        tools = ["wl-copy", "wl-paste", "wtype", "ydotool"]
    elif kind == "x11":
        tools = ["xclip", "xsel", "xdotool", "xprop", "pynput"]
    else:  # no session now; show what a Linux desktop session will need
        tools = ["xclip", "xdotool", "xprop", "wl-copy", "wl-paste", "wtype", "ydotool"]
    rows = []
    for tool in tools:
        present = importlib.util.find_spec(tool) is not None if tool == "pynput" else which(tool, env) is not None
        rows.append((tool, present, INSTALL_HINTS[tool]))
    return rows
