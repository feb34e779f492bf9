"""Hotkey detection as a pure state machine: taps of one key, or holding it.

No pynput, no threads, no clock: the caller feeds key presses and releases with their
times (seconds, any monotonic origin) and calls :meth:`TapDetector.tick` when
:meth:`TapDetector.next_deadline` has passed, so tests drive it with synthetic events and
the pynput adapter (:mod:`ctrlspeak.desktop.keyboard`) drives it with real ones.

Key names are normalised lowercase strings ("ctrl", "ctrl_l", "ctrl_r", "shift", "a",
"space", "vk65027"...). A configured key without a side ("ctrl") matches both sides; a
left key ("ctrl_l") also matches the plain name, because pynput reports the left key as
``Key.ctrl`` on X11 and macOS (``Key.ctrl_l`` is an alias of it); a right key
("ctrl_r") matches only itself.

Tap mode (the default: three taps of Ctrl)::

    press  -> release  within max_tap_s                 = one tap
    tap 1 completes                                      -> ARMED (taps > 1 only)
    next press within window_s of the previous release  -> the sequence goes on
    tap N completes                                      -> TRIGGER, sequence over
    window passes / any other key pressed / key held
    too long / auto-repeat while a sequence is armed     -> DISARMED

Hold mode: HOLD_START once the key has been down for hold_delay_s with no other key
pressed since it went down, HOLD_END on its release. Another key pressed before the delay
cancels (it was a shortcut such as Ctrl+C); once HOLD_START has fired, other keys do not
end the hold, only the key's own release does.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

MODES = ("tap", "hold")
MAX_TAPS = 5
# Upper bounds: beyond these a "tap" or a "window" stops being a gesture and becomes a
# misconfiguration (a 10 s window would swallow ordinary Ctrl use for 10 s).
_MAX_SECONDS = 5.0


class HotkeyEvent(enum.Enum):
    ARMED = "armed"  # first tap of a multi-tap sequence done: open the microphone early
    TRIGGER = "trigger"  # N taps: toggle recording
    HOLD_START = "hold_start"
    HOLD_END = "hold_end"
    DISARMED = "disarmed"  # an armed sequence was abandoned (never follows TRIGGER)


@dataclass(frozen=True)
class HotkeyConfig:
    mode: str = "tap"
    #: normalised key name; "ctrl" matches either Ctrl, "ctrl_r" only the right one
    key: str = "ctrl"
    #: taps that make a TRIGGER (tap mode)
    taps: int = 3
    #: each tap must start within this many seconds of the previous tap's release
    window_s: float = 0.5
    #: a press held longer than this is not a tap (it is Ctrl held for a shortcut)
    max_tap_s: float = 0.35
    #: hold mode: how long the key must be down, alone, before HOLD_START
    hold_delay_s: float = 0.15

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"hotkey mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValueError(f"hotkey key must be a non-empty key name such as 'ctrl' or 'ctrl_r', not {self.key!r}")
        # config files and env vars say "Ctrl_R"; the detector compares normalised names
        object.__setattr__(self, "key", self.key.strip().lower())
        if isinstance(self.taps, bool) or not isinstance(self.taps, int) or not 1 <= self.taps <= MAX_TAPS:
            raise ValueError(f"hotkey taps must be an integer from 1 to {MAX_TAPS}, not {self.taps!r}")
        _check_seconds("window_s", self.window_s, allow_zero=False)
        _check_seconds("max_tap_s", self.max_tap_s, allow_zero=False)
        _check_seconds("hold_delay_s", self.hold_delay_s, allow_zero=True)


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
        and value <= _MAX_SECONDS
    )
    if not ok:
        low = "0" if allow_zero else "more than 0"
        raise ValueError(f"hotkey {name} must be a number of seconds from {low} to {_MAX_SECONDS:g}, not {value!r}")


def key_matches(configured: str, key: str) -> bool:
    """Whether an event's key name counts as the configured hotkey (see module docstring)."""
    if key == configured:
        return True
    if configured.endswith("_r"):
        return False
    if configured.endswith("_l"):
        return key == configured[:-2]
    return key in (configured + "_l", configured + "_r")


class TapDetector:
    """Feeds on (key, time) events and returns the :class:`HotkeyEvent` s they cause.

    Every method returns a (possibly empty) list, in order. Times should not go backwards;
    if they do, the odd interval is treated as "not a tap" rather than raising.
    """

    def __init__(self, config: HotkeyConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget everything, silently (the caller knows it is discarding the state)."""
        # The press that may become a tap (tap mode) or a hold (hold mode).
        self._press_key: str | None = None
        self._press_t = 0.0
        # Tap mode: the current press can no longer count (chord, held too long, repeat).
        self._spoiled = False
        self._count = 0  # completed taps in the current sequence
        self._last_release = 0.0
        # Hold mode: HOLD_START has been emitted for the current press.
        self._holding = False

    @property
    def armed(self) -> bool:
        """A tap sequence is under way (at least one tap done, TRIGGER not yet reached)."""
        return self._count > 0

    @property
    def holding(self) -> bool:
        """Hold mode: between HOLD_START and HOLD_END."""
        return self._holding

    def next_deadline(self) -> float | None:
        """When :meth:`tick` may next have something to report; None when idle.

        After ``tick(t)`` for any ``t`` past this deadline the deadline is None or later,
        so a caller that sleeps until it cannot spin.
        """
        if self.config.mode == "hold":
            if self._press_key is not None and not self._spoiled and not self._holding:
                return self._press_t + self.config.hold_delay_s
            return None
        if self._count == 0:
            # Nothing armed: an over-long press is found on its release, silently.
            return None
        if self._press_key is not None and not self._spoiled:
            return self._press_t + self.config.max_tap_s
        return self._last_release + self.config.window_s

    def tick(self, t: float) -> list[HotkeyEvent]:
        """Let time pass: times out an armed sequence, or starts a hold."""
        return self._advance(t)

    def press(self, key: str, t: float) -> list[HotkeyEvent]:
        events = self._advance(t)
        if self.config.mode == "hold":
            self._press_hold(key, t, events)
        else:
            self._press_tap(key, t, events)
        return events

    def release(self, key: str, t: float) -> list[HotkeyEvent]:
        events = self._advance(t)
        if key != self._press_key:
            # another key, or one that went down before we started listening
            return events
        if self.config.mode == "hold":
            if self._holding:
                events.append(HotkeyEvent.HOLD_END)
            self._press_key = None
            self._holding = False
            self._spoiled = False
            return events
        duration = t - self._press_t
        spoiled = self._spoiled or not 0 <= duration <= self.config.max_tap_s
        self._press_key = None
        self._spoiled = False
        if spoiled:
            self._disarm(events)
            return events
        self._count += 1
        self._last_release = t
        if self._count >= self.config.taps:
            self._count = 0
            events.append(HotkeyEvent.TRIGGER)
        elif self._count == 1:
            events.append(HotkeyEvent.ARMED)
        return events

    # -- internals ------------------------------------------------------------------

    def _press_tap(self, key: str, t: float, events: list[HotkeyEvent]) -> None:
        if self._press_key is not None:
            # Auto-repeat (the same key again, no release between) or a chord (Ctrl+C,
            # both Ctrls): the press in progress is not a tap, and the sequence is over.
            self._spoiled = True
            self._disarm(events)
            return
        if not key_matches(self.config.key, key):
            self._disarm(events)
            return
        self._press_key = key
        self._press_t = t
        self._spoiled = False

    def _press_hold(self, key: str, t: float, events: list[HotkeyEvent]) -> None:
        if self._press_key is not None:
            if key != self._press_key and not self._holding:
                self._spoiled = True  # a shortcut: never becomes a hold
            return  # auto-repeat of the held key, or keys typed while holding
        if not key_matches(self.config.key, key):
            return
        self._press_key = key
        self._press_t = t
        self._spoiled = False
        self._holding = False
        if self.config.hold_delay_s == 0:
            self._holding = True
            events.append(HotkeyEvent.HOLD_START)

    def _advance(self, t: float) -> list[HotkeyEvent]:
        events: list[HotkeyEvent] = []
        if self.config.mode == "hold":
            if (
                self._press_key is not None
                and not self._spoiled
                and not self._holding
                and t - self._press_t >= self.config.hold_delay_s
            ):
                self._holding = True
                events.append(HotkeyEvent.HOLD_START)
            return events
        if self._press_key is not None:
            if not self._spoiled and t - self._press_t > self.config.max_tap_s:
                # held for a shortcut: the sequence is over now, not only at release
                self._spoiled = True
                self._disarm(events)
        elif self._count and t - self._last_release > self.config.window_s:
            self._disarm(events)
        return events

    def _disarm(self, events: list[HotkeyEvent]) -> None:
        if self._count:
            self._count = 0
            events.append(HotkeyEvent.DISARMED)
