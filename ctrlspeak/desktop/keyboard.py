"""Global keys: a pynput listener feeding a :class:`~ctrlspeak.desktop.hotkey.TapDetector`.

Threads and who does what::

    pynput listener thread --_on_press/_on_release--> detector (under _cond)
                                                        |  events appended to _pending
    caller of synthesizing() (pynput Controller's       |
    fake-event notification runs here too) ------------>|  ignored while synthesizing
                                                        v
    "ctrlspeak-hotkey" dispatcher thread: delivers _pending to on_event, in order;
        otherwise sleeps in _cond.wait(until detector.next_deadline()), then ticks the
        detector (an armed sequence times out -> DISARMED). No deadline: wait() forever.

The callback contract: ``on_event(event)`` runs on the dispatcher thread, one call at a
time, in the order the events happened, never while an internal lock is held; it may call
any method of :class:`GlobalHotkey` (``stop`` included). It should return quickly: key
events keep being detected meanwhile, but their events queue up behind it. An exception
it raises is logged and the next event is still delivered.

pynput is imported only inside :meth:`GlobalHotkey.start` and :func:`hotkey_available`:
on Linux importing it without a reachable X display raises. Which keys were pressed is
never logged, at any level.
"""
from __future__ import annotations

import collections
import contextlib
import enum
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

from ctrlspeak import errors
from ctrlspeak.desktop.hotkey import HotkeyEvent, TapDetector

log = logging.getLogger(__name__)

#: Key events this long after a synthesizing() block ends are still ours: the X server
#: delivers a synthesized key to the listener within a few ms, 0.2 s covers a loaded box.
SYNTH_GRACE_S = 0.2
_MODIFIER_FAMILIES = frozenset({"ctrl", "shift", "alt", "cmd"})
# X11 keysyms pynput reports as a bare KeyCode although they are a named modifier:
# AltGr sends ISO_Level3_Shift on most layouts (pynput's Key.alt_gr is Mode_switch).
_X11_KEYSYM_NAMES = {0xFE03: "alt_gr"}
_PROBE_TIMEOUT_S = 3.0  # an X server that accepts the socket but never answers
_READY_TIMEOUT_S = 5.0
_JOIN_TIMEOUT_S = 1.0
# Detector deadlines are inclusive ("within window_s"); tick a little after them.
_TICK_SLACK_S = 0.005

_NO_X11_HINT = "global keys need an X11 session (or XWayland); bind `ctrlspeak toggle` to a desktop shortcut instead"
_MACOS_PERMISSION = (
    "macOS does not let this program read the keyboard: allow your terminal (or the Python "
    "running ctrlspeak) in System Settings > Privacy & Security > Accessibility and Input "
    "Monitoring, then restart ctrlspeak"
)


def _uses_x11() -> bool:
    # pynput's own choice: xorg everywhere but macOS and Windows, unless overridden
    return sys.platform not in ("darwin", "win32") and not os.environ.get("PYNPUT_BACKEND")


def key_name(key: object) -> str:
    """A pynput ``Key``/``KeyCode`` (or None) as a normalised lowercase name.

    ``Key.ctrl`` -> "ctrl" (pynput's name for the left Ctrl on X11 and macOS),
    ``Key.ctrl_r`` -> "ctrl_r", ``KeyCode(char="A")`` -> "a", a KeyCode without a
    character -> "vk<code>", None (pynput could not decode the key) -> "unknown".
    """
    if key is None:
        return "unknown"
    if isinstance(key, enum.Enum):
        return key.name.lower()
    char = getattr(key, "char", None)
    if isinstance(char, str) and char:
        # Shift+A arrives as "A" but its release as "a": one name for both
        return char.lower()
    vk = getattr(key, "vk", None)
    if vk is None:
        return "unknown"
    if sys.platform not in ("darwin", "win32") and vk in _X11_KEYSYM_NAMES:
        return _X11_KEYSYM_NAMES[vk]
    return f"vk{vk}"


def is_modifier(name: str) -> bool:
    return name.split("_", 1)[0] in _MODIFIER_FAMILIES


def _is_wayland() -> bool:
    return bool(os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("XDG_SESSION_TYPE") == "wayland"


def _x11_problem(display: str | None, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """Why pynput's X11 listener cannot work on ``display``, or None if it can."""
    if not display:
        if _is_wayland():
            return "this is a Wayland session without X11 (DISPLAY is not set): global keys cannot be read under Wayland"
        return "no X display: DISPLAY is not set"
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            import Xlib.display
            import Xlib.error
        except ImportError as exc:
            outcome.append(f"python-xlib is missing ({exc}); reinstall ctrlspeak's dependencies")
            return
        try:
            conn = Xlib.display.Display(display)
        except (Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, OSError) as exc:
            outcome.append(f"cannot connect to X display {display!r}: {exc}")
            return
        try:
            if conn.has_extension("RECORD"):
                outcome.append(None)
            else:
                outcome.append(f"the X server on {display!r} lacks the RECORD extension that reading global keys needs")
        finally:
            conn.close()

    # A thread, so that a server which accepts the connection and never answers costs
    # `timeout` seconds rather than a hung daemon.
    thread = threading.Thread(target=probe, name="ctrlspeak-x11-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"the X server on {display!r} did not answer within {timeout:g} s"
    return outcome[0]


def _macos_trusted() -> bool | None:
    """Whether macOS lets this process monitor input; None if that cannot be asked."""
    try:
        import HIServices  # pyobjc, installed with pynput on macOS
    except ImportError:
        return None
    return bool(HIServices.AXIsProcessTrusted())


def hotkey_available() -> tuple[bool, str]:
    """A cheap probe for ``ctrlspeak doctor``: (works?, one line saying why / what to do)."""
    if sys.platform == "darwin":
        trusted = _macos_trusted()
        if trusted is False:
            return False, _MACOS_PERMISSION
        if trusted is None:
            return False, "pyobjc is missing, so pynput cannot read the keyboard: reinstall ctrlspeak's dependencies"
        return True, "global keys available (macOS accessibility permission granted)"
    if _uses_x11():
        display = os.environ.get("DISPLAY")
        problem = _x11_problem(display)
        if problem:
            return False, f"{problem}; {_NO_X11_HINT}"
    try:
        import pynput.keyboard  # noqa: F401  (the import itself is the check)
    except ImportError as exc:
        return False, f"pynput cannot read the keyboard: {str(exc).splitlines()[0]}"
    if _uses_x11() and _is_wayland():
        return True, (
            "global keys work only while an X11 (XWayland) window has focus in this Wayland "
            "session; bind `ctrlspeak toggle` to a desktop shortcut for the rest"
        )
    if _uses_x11():
        return True, f"global keys available on X11 display {os.environ.get('DISPLAY')}"
    return True, "global keys available"


class GlobalHotkey:
    """Reads global key events with pynput and turns them into :class:`HotkeyEvent` s."""

    def __init__(
        self,
        detector: TapDetector,
        on_event: Callable[[HotkeyEvent], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._detector = detector
        self._on_event = on_event
        self._clock = clock
        # One plain lock for everything; on_event is always called with it released.
        self._cond = threading.Condition(threading.Lock())
        self._running = False
        self._listener: object | None = None
        self._dispatcher: threading.Thread | None = None
        self._display: str | None = None
        self._pending: collections.deque[HotkeyEvent] = collections.deque()
        self._modifiers: set[str] = set()
        self._synth_depth = 0
        self._synth_until = -math.inf
        # Bumped by every start(): a listener or dispatcher left over from an earlier
        # start (stop() called from on_event cannot join its own thread) stays inert.
        self._generation = 0

    # -- lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Started, not stopped, and pynput's listener thread is still alive."""
        with self._cond:
            listener = self._listener
        return listener is not None and listener.is_alive()  # type: ignore[attr-defined]

    def start(self) -> None:
        """Start listening. Raises :class:`errors.HotkeyUnavailable` if keys cannot be read."""
        with self._cond:
            if self._running:
                return
        display = os.environ.get("DISPLAY") if _uses_x11() else None
        if _uses_x11():
            problem = _x11_problem(display)
            if problem:
                raise errors.HotkeyUnavailable(problem)
            if _is_wayland():
                log.warning("Wayland session: global keys are seen only while an X11 (XWayland) window has focus")
        try:
            from pynput import keyboard as pynput_keyboard
        except ImportError as exc:
            raise errors.HotkeyUnavailable(f"pynput cannot read the keyboard: {str(exc).splitlines()[0]}") from exc

        with self._cond:
            self._generation += 1
            generation = self._generation
        listener = pynput_keyboard.Listener(
            on_press=lambda key, injected=False: self._on_press(key, generation),
            on_release=lambda key, injected=False: self._on_release(key, generation),
        )
        listener.start()
        ready = _wait_ready(listener, _READY_TIMEOUT_S)
        trusted = getattr(listener, "IS_TRUSTED", True) if sys.platform == "darwin" else True
        if not (ready and trusted and listener.is_alive()):
            _stop_listener(listener, display, ready=ready)
            if sys.platform == "darwin":
                raise errors.HotkeyUnavailable(_MACOS_PERMISSION)
            raise errors.HotkeyUnavailable(
                "pynput's keyboard listener did not start" + (f" on X display {display!r}" if display else "")
            )

        with self._cond:
            self._detector.reset()
            self._pending.clear()
            self._modifiers.clear()
            self._listener = listener
            self._display = display
            self._running = True
            self._dispatcher = threading.Thread(
                target=self._dispatch, args=(generation,), name="ctrlspeak-hotkey", daemon=True
            )
            self._dispatcher.start()
        log.info("global hotkey listening%s", f" on X display {display}" if display else "")

    def stop(self) -> None:
        """Stop listening. Idempotent, bounded (about a second at worst), callable from on_event."""
        with self._cond:
            listener, dispatcher, display = self._listener, self._dispatcher, self._display
            self._running = False
            self._listener = None
            self._dispatcher = None
            self._pending.clear()
            self._modifiers.clear()
            self._detector.reset()
            self._cond.notify_all()
        if listener is not None:
            _stop_listener(listener, display)
        if dispatcher is not None and dispatcher is not threading.current_thread():
            dispatcher.join(_JOIN_TIMEOUT_S)
            if dispatcher.is_alive():
                log.warning("the hotkey callback is still running after stop(); leaving it to finish")

    # -- modifier state -------------------------------------------------------------

    def modifiers_held(self) -> bool:
        """Whether Ctrl/Shift/Alt/AltGr/Cmd is down, as the listener last saw it."""
        with self._cond:
            return bool(self._modifiers)

    def wait_modifiers_released(self, timeout: float) -> bool:
        """Block until no modifier is held (True) or ``timeout`` seconds pass (False).

        A paste synthesized while the person still holds Ctrl from the last tap, or Shift,
        would become another shortcut; the daemon waits on this first.
        """
        with self._cond:
            return self._cond.wait_for(lambda: not self._modifiers, timeout)

    # -- synthesized keys -----------------------------------------------------------

    @contextlib.contextmanager
    def synthesizing(self) -> Iterator[None]:
        """Key events during the block and for SYNTH_GRACE_S after it are ours: ignore them.

        pynput's listener hears keys the program itself sends (the X server reports them
        like any other, and pynput's Controller also notifies listeners directly), so the
        daemon's own Ctrl+V would otherwise count as a Ctrl tap. pynput's ``injected``
        flag cannot tell them apart: on X11 it is False for every XTEST key (ours, and
        xdotool's in the end-to-end tests) and True only for the Controller's in-process
        copy. Entering the block abandons an armed sequence (DISARMED).
        """
        with self._cond:
            if self._running and self._synth_depth == 0 and self._detector.armed:
                # the sequence cannot complete across our own keys; say so, as for any reset
                self._pending.append(HotkeyEvent.DISARMED)
            self._synth_depth += 1
            self._detector.reset()
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._synth_depth -= 1
                self._synth_until = max(self._synth_until, self._clock() + SYNTH_GRACE_S)

    # -- listener callbacks (pynput's thread, or a Controller caller's) ----------------

    def _current(self, generation: int) -> bool:
        return self._running and generation == self._generation

    def _ignoring(self, now: float) -> bool:
        return self._synth_depth > 0 or now < self._synth_until

    def _on_press(self, key: object, generation: int) -> None:
        name = key_name(key)
        with self._cond:
            if not self._current(generation):
                return
            now = self._clock()
            if self._ignoring(now):
                return
            if is_modifier(name):
                self._modifiers.add(name)
            self._pending.extend(self._detector.press(name, now))
            # always: the detector's deadline may have moved
            self._cond.notify_all()

    def _on_release(self, key: object, generation: int) -> None:
        name = key_name(key)
        with self._cond:
            if not self._current(generation):
                return
            # Releases clear modifier state even while synthesizing: a release can only
            # make the state less stuck, and the person may let go during our paste.
            self._modifiers.discard(name)
            now = self._clock()
            if not self._ignoring(now):
                self._pending.extend(self._detector.release(name, now))
            self._cond.notify_all()

    # -- dispatcher thread ----------------------------------------------------------

    def _dispatch(self, generation: int) -> None:
        with self._cond:
            while self._current(generation):
                if self._pending:
                    event = self._pending.popleft()
                    self._cond.release()
                    try:
                        self._deliver(event)
                    finally:
                        self._cond.acquire()
                    continue
                deadline = self._detector.next_deadline()
                if deadline is None:
                    self._cond.wait()
                    continue
                delay = deadline + _TICK_SLACK_S - self._clock()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                # past the deadline, tick always moves it on (tested), so this cannot spin
                self._pending.extend(self._detector.tick(self._clock()))

    def _deliver(self, event: HotkeyEvent) -> None:
        log.debug("hotkey event %s", event.name)
        try:
            self._on_event(event)
        except Exception:
            log.exception("the hotkey event handler failed on %s", event.name)


def _wait_ready(listener: threading.Thread, timeout: float) -> bool:
    """pynput's ``Listener.wait()`` without its hang when the listener dies while starting."""
    waiter = threading.Thread(target=listener.wait, name="ctrlspeak-hotkey-ready", daemon=True)  # type: ignore[attr-defined]
    waiter.start()
    deadline = time.monotonic() + timeout
    # bounded, start-up only: a dead listener never wakes the waiter, so check both
    while waiter.is_alive() and listener.is_alive() and time.monotonic() < deadline:
        waiter.join(0.05)
    return not waiter.is_alive()


def _stop_listener(listener: threading.Thread, display: str | None, *, ready: bool = True) -> None:
    if not listener.is_alive():
        # it died while starting: pynput's stop() would wait for a readiness that never comes
        return
    if not ready:
        # still starting (a server slower than _READY_TIMEOUT_S): stop() blocks until it is
        # ready, so let a thread of its own wait for that
        threading.Thread(target=listener.stop, name="ctrlspeak-hotkey-stop", daemon=True).start()  # type: ignore[attr-defined]
        return
    listener.stop()  # type: ignore[attr-defined]
    if type(listener).__module__.endswith("._xorg"):
        _wake_x11_listener(listener, display)
    # Thread.join, not pynput's join: that one re-raises listener errors here
    threading.Thread.join(listener, _JOIN_TIMEOUT_S)
    if listener.is_alive():
        log.warning("pynput's keyboard listener did not stop within %.1f s; abandoning its thread", _JOIN_TIMEOUT_S)


def _wake_x11_listener(listener: object, display: str | None) -> None:
    """Make pynput's X11 listener thread notice stop() now.

    Its stop() queues RecordDisableContext on the recording connection without flushing
    it, so the thread sleeps until the next key event arrives (pynput PR #583). Disabling
    the same RECORD context from a connection of our own wakes it at once.
    """
    context = getattr(listener, "_context", None)
    if context is None:
        return
    try:
        import Xlib.display
        import Xlib.error
    except ImportError:
        return
    try:
        conn = Xlib.display.Display(display)
    except (Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, OSError) as exc:
        log.debug("cannot reach the X server to stop the key listener: %s", exc)
        return
    try:
        # the listener may have freed the context already (BadRecordContext): expected
        conn.set_error_handler(lambda err, request: log.debug("X error while stopping the key listener: %s", err))
        conn.record_disable_context(context)
        conn.sync()
    except (Xlib.error.XError, Xlib.error.ConnectionClosedError, OSError) as exc:
        log.debug("could not disable the key listener's RECORD context: %s", exc)
    finally:
        conn.close()
