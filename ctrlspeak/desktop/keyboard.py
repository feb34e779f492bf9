"""Global keys: a key source feeding a :class:`~ctrlspeak.desktop.hotkey.TapDetector`.

Threads and who does what::

    key source's thread --press/release(name)--> detector (under _cond)
                                                   |  events appended to _pending
    caller of synthesizing() (pynput Controller's  |
    fake-event notification runs here too) ------->|  ignored while synthesizing
                                                   v
    "ctrlspeak-hotkey" dispatcher thread: delivers _pending to on_event, in order;
        otherwise sleeps in _cond.wait(until detector.next_deadline()), then ticks the
        detector (an armed sequence times out -> DISARMED). No deadline: wait() forever.

The callback contract: ``on_event(event)`` runs on the dispatcher thread, one call at a
time, in the order the events happened, never while an internal lock is held; it may call
any method of :class:`GlobalHotkey` (``stop`` included). It should return quickly: key
events keep being detected meanwhile, but their events queue up behind it. An exception
it raises is logged and the next event is still delivered.

Where keys come from is a :class:`KeySource`: pynput on X11 and macOS
(:mod:`ctrlspeak.desktop.x11_keys`, the default), the kernel's input devices
(:mod:`ctrlspeak.desktop.evdev_keys`), a compositor's IPC
(:mod:`ctrlspeak.desktop.compositor_keys`). The time of a key is taken here, on arrival,
with one clock for every source. Which keys were pressed is never logged, at any level.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from ctrlspeak.desktop.hotkey import HotkeyEvent, TapDetector
from ctrlspeak.desktop.keys import is_modifier

log = logging.getLogger(__name__)

#: Key events this long after a synthesizing() block ends are still ours: the X server
#: delivers a synthesized key to the listener within a few ms, 0.2 s covers a loaded box.
SYNTH_GRACE_S = 0.2
# on_event may be busy when stop() is called; waiting longer would stall the daemon's shutdown
JOIN_TIMEOUT_S = 1.0
# Detector deadlines are inclusive ("within window_s"); tick a little after them.
_TICK_SLACK_S = 0.005


class KeySource(Protocol):
    """Where key events come from.

    ``start(press, release)`` begins calling ``press(name)`` / ``release(name)`` on the
    source's own thread with names as :mod:`ctrlspeak.desktop.keys` gives them ("ctrl" for
    the left Ctrl, "ctrl_r", "shift", "a"...), or raises :class:`errors.HotkeyUnavailable`
    saying why it cannot. ``stop()`` is idempotent and joins the source's thread within a
    bound; a stopped source may be started again. ``name`` is "x11", "evdev" or
    "compositor". A source may also have a bool ``alive`` (its thread still runs).
    """

    name: str

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None: ...

    def stop(self) -> None: ...


class GlobalHotkey:
    """Reads global key events from a :class:`KeySource` and turns them into :class:`HotkeyEvent` s."""

    def __init__(
        self,
        detector: TapDetector,
        on_event: Callable[[HotkeyEvent], None],
        clock: Callable[[], float] = time.monotonic,
        source: KeySource | None = None,
    ) -> None:
        if source is None:
            from ctrlspeak.desktop.x11_keys import X11Keys

            source = X11Keys()
        self._detector = detector
        self._on_event = on_event
        self._clock = clock
        self._source = source
        # One plain lock for everything; on_event is always called with it released.
        self._cond = threading.Condition(threading.Lock())
        self._running = False
        self._dispatcher: threading.Thread | None = None
        self._pending: collections.deque[HotkeyEvent] = collections.deque()
        self._modifiers: set[str] = set()
        self._synth_depth = 0
        self._synth_until = -math.inf
        # Bumped by every start(): a source thread or dispatcher left over from an earlier
        # start (stop() called from on_event cannot join its own thread) stays inert.
        self._generation = 0

    # -- lifecycle ------------------------------------------------------------------

    @property
    def source_name(self) -> str:
        return self._source.name

    @property
    def running(self) -> bool:
        """Started, not stopped, and the source's thread is still alive."""
        with self._cond:
            running = self._running
        return running and bool(getattr(self._source, "alive", True))

    def start(self) -> None:
        """Start listening. Raises :class:`errors.HotkeyUnavailable` if keys cannot be read."""
        with self._cond:
            if self._running:
                return
            self._generation += 1
            generation = self._generation
        # keys arriving before _running is set below are dropped by _current()
        self._source.start(lambda name: self._on_press(name, generation),
                           lambda name: self._on_release(name, generation))
        with self._cond:
            self._detector.reset()
            self._pending.clear()
            self._modifiers.clear()
            self._running = True
            self._dispatcher = threading.Thread(
                target=self._dispatch, args=(generation,), name="ctrlspeak-hotkey", daemon=True
            )
            self._dispatcher.start()
        log.info("global hotkey listening (%s)", self._source.name)

    def stop(self) -> None:
        """Stop listening. Idempotent, bounded (about a second at worst), callable from on_event."""
        with self._cond:
            was_running, dispatcher = self._running, self._dispatcher
            self._running = False
            self._dispatcher = None
            self._pending.clear()
            self._modifiers.clear()
            self._detector.reset()
            self._cond.notify_all()
        if was_running:
            self._source.stop()
        if dispatcher is not None and dispatcher is not threading.current_thread():
            dispatcher.join(JOIN_TIMEOUT_S)
            if dispatcher.is_alive():
                log.warning("the hotkey callback is still running after stop(); leaving it to finish")

    # -- modifier state -------------------------------------------------------------

    def modifiers_held(self) -> bool:
        """Whether Ctrl/Shift/Alt/AltGr/Cmd is down, as the key source last saw it."""
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
        copy. Under Wayland ydotool's keys come back the same way, through the uinput
        keyboard it creates, which the evdev source reads like any other. Entering the
        block abandons an armed sequence (DISARMED).
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

    # -- source callbacks (the source's thread, or a pynput Controller caller's) -------

    def _current(self, generation: int) -> bool:
        return self._running and generation == self._generation

    def _ignoring(self, now: float) -> bool:
        return self._synth_depth > 0 or now < self._synth_until

    def _on_press(self, name: str, generation: int) -> None:
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

    def _on_release(self, name: str, generation: int) -> None:
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
