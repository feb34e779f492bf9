"""The hotkey state machine, fed synthetic timed key events (no display needed)."""
from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlspeak.desktop.hotkey import HotkeyConfig, HotkeyEvent, TapDetector, key_matches

ARMED, TRIGGER, DISARMED = HotkeyEvent.ARMED, HotkeyEvent.TRIGGER, HotkeyEvent.DISARMED
HOLD_START, HOLD_END = HotkeyEvent.HOLD_START, HotkeyEvent.HOLD_END


def run(det: TapDetector, script: list[tuple[str, str, float]]) -> list[HotkeyEvent]:
    """Feed ("p"|"r"|"t", key, time) steps; return every event, in order."""
    out: list[HotkeyEvent] = []
    for op, key, t in script:
        if op == "p":
            out += det.press(key, t)
        elif op == "r":
            out += det.release(key, t)
        else:
            out += det.tick(t)
    return out


def taps(n: int, start: float = 0.0, key: str = "ctrl", down: float = 0.05, gap: float = 0.1):
    """n clean taps: each held `down` s, `gap` s between a release and the next press."""
    steps = []
    t = start
    for _ in range(n):
        steps.append(("p", key, t))
        t += down
        steps.append(("r", key, t))
        t += gap
    return steps


def tap_detector(**kw) -> TapDetector:
    return TapDetector(HotkeyConfig(**kw))


# -- config -------------------------------------------------------------------------


def test_config_defaults_and_normalised_key():
    cfg = HotkeyConfig(key=" Ctrl_R ")
    assert (cfg.mode, cfg.key, cfg.taps) == ("tap", "ctrl_r", 3)
    assert (cfg.window_s, cfg.max_tap_s, cfg.hold_delay_s) == (0.5, 0.35, 0.15)


@pytest.mark.parametrize(
    "kw, word",
    [
        ({"mode": "double"}, "mode"),
        ({"key": ""}, "key"),
        ({"key": None}, "key"),
        ({"taps": 0}, "taps"),
        ({"taps": 6}, "taps"),
        ({"taps": 2.0}, "taps"),
        ({"taps": True}, "taps"),
        ({"window_s": 0}, "window_s"),
        ({"window_s": -1.0}, "window_s"),
        ({"window_s": float("nan")}, "window_s"),
        ({"max_tap_s": float("inf")}, "max_tap_s"),
        ({"max_tap_s": "0.3"}, "max_tap_s"),
        ({"hold_delay_s": -0.01}, "hold_delay_s"),
        ({"hold_delay_s": 60}, "hold_delay_s"),
    ],
)
def test_config_rejects_bad_values_with_the_field_name(kw, word):
    with pytest.raises(ValueError, match=word):
        HotkeyConfig(**kw)


def test_zero_hold_delay_is_valid():
    assert HotkeyConfig(mode="hold", hold_delay_s=0).hold_delay_s == 0


@pytest.mark.parametrize(
    "configured, key, expected",
    [
        ("ctrl", "ctrl", True),
        ("ctrl", "ctrl_l", True),
        ("ctrl", "ctrl_r", True),
        ("ctrl", "shift", False),
        ("ctrl", "c", False),
        ("ctrl_r", "ctrl_r", True),
        ("ctrl_r", "ctrl", False),
        ("ctrl_r", "ctrl_l", False),
        # pynput reports the left Ctrl as Key.ctrl on X11 and macOS
        ("ctrl_l", "ctrl", True),
        ("ctrl_l", "ctrl_l", True),
        ("ctrl_l", "ctrl_r", False),
        ("alt", "alt_gr", False),
        ("a", "a", True),
        ("a", "a_r", True),
    ],
)
def test_key_matches(configured, key, expected):
    assert key_matches(configured, key) is expected


# -- tap mode -----------------------------------------------------------------------


def test_triple_tap_triggers_exactly_once():
    det = tap_detector()
    events = run(det, taps(3))
    assert events == [ARMED, TRIGGER]
    assert not det.armed
    # nothing is left pending: time passing afterwards reports nothing
    assert det.next_deadline() is None
    assert det.tick(100.0) == []


def test_trigger_arrives_on_the_third_release_not_before():
    det = tap_detector()
    steps = taps(3)
    assert run(det, steps[:-1]) == [ARMED]
    assert det.armed
    assert run(det, steps[-1:]) == [TRIGGER]


def test_left_and_right_ctrl_mix():
    det = tap_detector()
    script = taps(1, 0.0, "ctrl_l") + taps(1, 0.2, "ctrl_r") + taps(1, 0.4, "ctrl")
    assert run(det, script) == [ARMED, TRIGGER]


def test_specific_right_ctrl_ignores_left_and_left_resets_it():
    det = tap_detector(key="ctrl_r")
    assert run(det, taps(3, key="ctrl")) == []
    # a left Ctrl tap in the middle is "another key": the right-Ctrl sequence restarts
    script = taps(2, 10.0, "ctrl_r") + taps(1, 10.4, "ctrl") + taps(1, 10.6, "ctrl_r")
    assert run(det, script) == [ARMED, DISARMED, ARMED]


def test_too_slow_taps_do_not_trigger():
    det = tap_detector()
    # 0.6 s between a release and the next press: over the 0.5 s window every time
    assert run(det, taps(3, gap=0.6)) == [ARMED, DISARMED, ARMED, DISARMED, ARMED]
    assert det.armed


def test_window_is_measured_from_release_to_next_press():
    det = tap_detector()
    # long-ish taps (0.3 s) with 0.45 s gaps: 2.1 s overall, each step within limits
    assert run(det, taps(3, down=0.3, gap=0.45)) == [ARMED, TRIGGER]


def test_other_key_between_taps_resets():
    det = tap_detector()
    script = taps(2) + [("p", "a", 0.32), ("r", "a", 0.36)] + taps(1, 0.4)
    assert run(det, script) == [ARMED, DISARMED, ARMED]
    assert det.armed  # the tap after the letter began a new sequence


def test_other_key_released_between_taps_does_not_reset():
    # typing "x" then tapping: x's release can land after the first Ctrl press
    det = tap_detector()
    script = [("p", "x", 0.0), ("p", "ctrl", 0.02), ("r", "x", 0.04), ("r", "ctrl", 0.06)]
    script += taps(2, 0.15)
    assert run(det, script) == [ARMED, TRIGGER]


def test_long_press_resets():
    det = tap_detector()
    script = taps(2) + [("p", "ctrl", 0.4), ("r", "ctrl", 0.4 + 0.36)] + taps(1, 0.9)
    assert run(det, script) == [ARMED, DISARMED, ARMED]


def test_long_press_alone_never_arms():
    det = tap_detector()
    assert run(det, [("p", "ctrl", 0.0), ("r", "ctrl", 1.0)]) == []
    assert not det.armed


def test_ctrl_c_does_not_count():
    det = tap_detector()
    ctrl_c = lambda t: [("p", "ctrl", t), ("p", "c", t + 0.03), ("r", "c", t + 0.06), ("r", "ctrl", t + 0.09)]
    assert run(det, ctrl_c(0.0) + ctrl_c(0.2) + ctrl_c(0.4)) == []
    # and Ctrl+C after a real tap abandons the armed sequence
    assert run(det, taps(1, 1.0) + ctrl_c(1.2) + taps(2, 1.4)) == [ARMED, DISARMED, ARMED]


def test_ctrl_with_both_sides_down_is_a_chord():
    det = tap_detector()
    script = [("p", "ctrl_l", 0.0), ("p", "ctrl_r", 0.02), ("r", "ctrl_r", 0.04), ("r", "ctrl_l", 0.06)]
    assert run(det, script * 1) == []
    assert not det.armed


def test_auto_repeat_does_not_count_as_taps():
    det = tap_detector()
    # a held key repeats as press, press, press... without releases
    script = [("p", "ctrl", 0.0), ("p", "ctrl", 0.03), ("p", "ctrl", 0.06), ("p", "ctrl", 0.09), ("r", "ctrl", 0.12)]
    assert run(det, script) == []
    # after the repeat, ordinary taps work again from one
    assert run(det, taps(3, 0.3)) == [ARMED, TRIGGER]


def test_auto_repeat_while_armed_disarms():
    det = tap_detector()
    script = taps(1) + [("p", "ctrl", 0.2), ("p", "ctrl", 0.23), ("r", "ctrl", 0.26)] + taps(1, 0.4)
    assert run(det, script) == [ARMED, DISARMED, ARMED]


def test_four_taps_trigger_once_then_start_a_new_sequence():
    det = tap_detector()
    assert run(det, taps(4)) == [ARMED, TRIGGER, ARMED]
    assert det.armed
    # the 4th release was at 0.5; a press at 1.2 is past the window: a fresh sequence
    assert run(det, taps(2, 1.2)) == [DISARMED, ARMED]


def test_six_quick_taps_trigger_twice():
    assert run(tap_detector(), taps(6)) == [ARMED, TRIGGER, ARMED, TRIGGER]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_configurable_tap_count(n):
    det = tap_detector(taps=n)
    events = run(det, taps(n - 1))
    assert TRIGGER not in events
    events += run(det, taps(1, 10.0 if n == 1 else (n - 1) * 0.15))
    expected = [TRIGGER] if n == 1 else [ARMED, TRIGGER]
    assert events == expected


def test_single_tap_mode_never_arms():
    det = tap_detector(taps=1)
    assert run(det, taps(3)) == [TRIGGER, TRIGGER, TRIGGER]
    assert det.next_deadline() is None


def test_tick_disarms_once_after_the_window():
    det = tap_detector()
    assert run(det, taps(1)) == [ARMED]  # released at 0.05
    assert det.next_deadline() == pytest.approx(0.55)
    assert det.tick(0.3) == []
    assert det.tick(0.55) == []  # the window is inclusive: a press at 0.55 would still count
    assert det.tick(0.56) == [DISARMED]
    assert det.tick(0.9) == []  # once only
    assert not det.armed
    assert det.next_deadline() is None


def test_press_exactly_at_the_window_edge_still_counts():
    det = tap_detector()
    script = [("p", "ctrl", 0.0), ("r", "ctrl", 0.1), ("p", "ctrl", 0.6), ("r", "ctrl", 0.7)]
    assert run(det, script) == [ARMED]
    assert det.armed


def test_tick_disarms_while_ctrl_is_held_for_a_shortcut():
    det = tap_detector()
    run(det, taps(1))
    run(det, [("p", "ctrl", 0.2)])
    # the armed deadline is now the tap limit of the press in progress
    assert det.next_deadline() == pytest.approx(0.2 + 0.35)
    assert det.tick(0.5) == []
    assert det.tick(0.6) == [DISARMED]
    assert det.release("ctrl", 0.9) == []  # the long press reports nothing more


def test_tick_with_nothing_armed_reports_nothing():
    det = tap_detector()
    assert det.tick(0.0) == []
    assert det.next_deadline() is None
    det.press("ctrl", 1.0)
    assert det.next_deadline() is None  # a lone press: nothing to disarm
    assert det.tick(5.0) == []


def test_reset_forgets_silently():
    det = tap_detector()
    run(det, taps(2))
    det.reset()
    assert not det.armed
    assert det.tick(10.0) == []
    assert run(det, taps(3, 20.0)) == [ARMED, TRIGGER]


def test_reset_in_mid_press_forgets_the_press():
    det = tap_detector()
    det.press("ctrl", 0.0)
    det.reset()
    assert det.release("ctrl", 0.05) == []  # its press was forgotten: not a tap
    assert not det.armed


def test_release_of_a_key_pressed_before_listening_is_ignored():
    det = tap_detector()
    assert det.release("ctrl", 0.0) == []
    assert det.release("a", 0.0) == []
    assert run(det, taps(3, 0.1)) == [ARMED, TRIGGER]


def test_time_going_backwards_is_not_a_tap():
    det = tap_detector()
    assert run(det, [("p", "ctrl", 5.0), ("r", "ctrl", 4.0)]) == []
    assert not det.armed


def test_other_tap_key():
    det = tap_detector(key="shift", taps=2)
    assert run(det, taps(2, key="ctrl")) == []
    assert run(det, taps(2, 5.0, key="shift_r")) == [ARMED, TRIGGER]


# -- hold mode ----------------------------------------------------------------------


def hold_detector(**kw) -> TapDetector:
    return TapDetector(HotkeyConfig(mode="hold", **kw))


def test_hold_start_after_delay_and_end_on_release():
    det = hold_detector(hold_delay_s=0.15)
    assert det.press("ctrl", 0.0) == []
    assert det.next_deadline() == pytest.approx(0.15)
    assert det.tick(0.1) == []
    assert det.tick(0.15) == [HOLD_START]
    assert det.holding
    assert det.tick(0.5) == []
    assert det.next_deadline() is None
    assert det.release("ctrl", 2.0) == [HOLD_END]
    assert not det.holding
    assert not det.armed


def test_hold_release_past_the_delay_without_a_tick_reports_both():
    det = hold_detector()
    det.press("ctrl_r", 0.0)
    assert det.release("ctrl_r", 0.4) == [HOLD_START, HOLD_END]


def test_short_press_in_hold_mode_is_nothing():
    det = hold_detector()
    assert run(det, taps(5)) == []


def test_hold_cancelled_by_another_key_before_the_delay():
    det = hold_detector()
    script = [("p", "ctrl", 0.0), ("p", "c", 0.05), ("r", "c", 0.1), ("t", "", 0.5), ("r", "ctrl", 0.6)]
    assert run(det, script) == []
    assert det.next_deadline() is None
    # the next hold works again
    assert run(det, [("p", "ctrl", 1.0), ("t", "", 1.2), ("r", "ctrl", 2.0)]) == [HOLD_START, HOLD_END]


def test_keys_typed_after_hold_start_do_not_end_the_hold():
    det = hold_detector()
    script = [("p", "ctrl", 0.0), ("t", "", 0.2), ("p", "a", 0.3), ("r", "a", 0.35), ("r", "ctrl", 1.0)]
    assert run(det, script) == [HOLD_START, HOLD_END]


def test_hold_auto_repeat_is_one_hold_and_can_start_it():
    det = hold_detector()
    # no tick: the repeated presses carry the time forward
    script = [("p", "ctrl", 0.0), ("p", "ctrl", 0.1), ("p", "ctrl", 0.2), ("p", "ctrl", 0.3), ("r", "ctrl", 0.4)]
    assert run(det, script) == [HOLD_START, HOLD_END]


def test_zero_hold_delay_starts_on_press():
    det = hold_detector(hold_delay_s=0)
    assert det.press("ctrl", 0.0) == [HOLD_START]
    assert det.release("ctrl", 0.01) == [HOLD_END]


def test_hold_mode_ignores_other_keys_when_idle():
    det = hold_detector(key="ctrl_r")
    assert run(det, [("p", "ctrl", 0.0), ("t", "", 1.0), ("r", "ctrl", 2.0)]) == []


# -- properties ---------------------------------------------------------------------

KEYS = ["ctrl", "ctrl_l", "ctrl_r", "shift", "a", "c"]

step = st.tuples(
    st.sampled_from(["p", "r", "t"]),
    st.sampled_from(KEYS),
    st.floats(min_value=0.0, max_value=0.8, allow_nan=False),
)
configs = st.builds(
    HotkeyConfig,
    mode=st.sampled_from(["tap", "hold"]),
    key=st.sampled_from(["ctrl", "ctrl_r", "ctrl_l", "shift"]),
    taps=st.integers(1, 5),
    window_s=st.floats(0.05, 1.0),
    max_tap_s=st.floats(0.05, 1.0),
    hold_delay_s=st.floats(0.0, 0.5),
)


def as_timeline(steps):
    """Turn (op, key, dt) steps into (op, key, t) with non-decreasing t."""
    t = 0.0
    out = []
    for op, key, dt in steps:
        t += dt
        out.append((op, key, t))
    return out


def completed_taps(cfg: HotkeyConfig, script) -> int:
    """An upper bound on taps: releases of the hotkey that follow a press of it."""
    n = 0
    down: set[str] = set()
    for op, key, _ in script:
        if op == "p" and key_matches(cfg.key, key):
            down.add(key)
        elif op == "r" and key in down:
            down.discard(key)
            n += 1
    return n


@settings(max_examples=400, deadline=None)
@given(configs, st.lists(step, max_size=60))
def test_random_streams_keep_the_invariants(cfg, steps):
    det = TapDetector(cfg)
    script = as_timeline(steps)
    events = run(det, script)

    assert all(isinstance(e, HotkeyEvent) for e in events)
    if cfg.mode == "tap":
        assert HOLD_START not in events and HOLD_END not in events
        assert events.count(TRIGGER) <= completed_taps(cfg, script) // cfg.taps
        # ARMED and DISARMED/TRIGGER alternate: a sequence opens before it closes
        is_open = False
        for e in events:
            if e is ARMED:
                assert not is_open
                is_open = True
            elif cfg.taps > 1 and e in (TRIGGER, DISARMED):
                assert is_open
                is_open = False
            elif cfg.taps == 1:
                assert e is TRIGGER
        assert det.armed == is_open
    else:
        assert set(events) <= {HOLD_START, HOLD_END}
        # strictly alternating, starting with HOLD_START
        for i, e in enumerate(events):
            assert e is (HOLD_START if i % 2 == 0 else HOLD_END)
        assert det.holding == (len(events) % 2 == 1)


@settings(max_examples=300, deadline=None)
@given(configs, st.lists(step, max_size=40))
def test_ticking_past_the_deadline_always_makes_progress(cfg, steps):
    # the adapter sleeps until next_deadline(); if ticking there changed nothing it would spin
    det = TapDetector(cfg)
    script = as_timeline(steps)
    run(det, script)
    for _ in range(5):
        deadline = det.next_deadline()
        if deadline is None:
            break
        t = deadline + 1e-6
        det.tick(t)
        after = det.next_deadline()
        assert after is None or after > t
    else:
        pytest.fail("the deadline kept moving")


@settings(max_examples=300, deadline=None)
@given(
    configs,
    st.lists(
        st.tuples(
            st.sampled_from(["p", "r", "t"]),
            st.sampled_from(KEYS + ["", "vk65027", "ü"]),
            st.floats(allow_nan=True, allow_infinity=True) | st.floats(-sys.float_info.max, sys.float_info.max),
        ),
        max_size=40,
    ),
)
def test_arbitrary_times_never_raise(cfg, script):
    det = TapDetector(cfg)
    events = run(det, script)
    assert all(isinstance(e, HotkeyEvent) for e in events)


# --- which key source the daemon starts (ctrlspeak.daemon.key_sources) -----------------------------------

from ctrlspeak.daemon import key_sources  # noqa: E402

X11 = {"DISPLAY": ":0"}
XWAYLAND = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-1", "XDG_SESSION_TYPE": "wayland"}
WAYLAND = {"WAYLAND_DISPLAY": "wayland-1"}


@pytest.mark.parametrize("setting, env, evdev_ok, compositor_ok, expected", [
    ("auto", X11, True, True, "x11"),
    ("auto", {}, True, False, "x11"),  # no display at all: pynput's own check says DISPLAY is unset
    ("auto", XWAYLAND, True, True, "evdev"),
    ("auto", WAYLAND, True, False, "evdev"),
    ("auto", WAYLAND, False, True, "compositor"),
    ("auto", {"XDG_SESSION_TYPE": "wayland"}, False, True, "compositor"),
    ("auto", XWAYLAND, False, False, "none"),  # XWayland keys only while an X window has focus: not a hotkey
    ("x11", XWAYLAND, True, True, "x11"),
    ("evdev", X11, False, False, "evdev"),  # explicit: its source says why it cannot run
    ("compositor", X11, True, False, "compositor"),
    ("none", X11, True, True, "none"),
])
def test_pick_backend(setting, env, evdev_ok, compositor_ok, expected):
    assert key_sources.pick_backend(setting, env, evdev_ok=evdev_ok, compositor_ok=compositor_ok) == expected


def _start(monkeypatch, backend, env, evdev_why):
    from ctrlspeak import config
    from ctrlspeak.desktop import evdev_keys

    monkeypatch.setattr(evdev_keys, "evdev_problem", lambda: evdev_why)
    notices, closers = [], []
    hotkey = key_sources.start_hotkey(config.Config(hotkey_backend=backend), closers, post=lambda e: None,
                                 publish=lambda e: notices.append(e.message), env=env)
    return hotkey, notices, closers


def test_wayland_without_evdev_or_sway_gives_a_notice_naming_doctor(monkeypatch):
    hotkey, notices, closers = _start(monkeypatch, "auto", WAYLAND, "no permission to read 3 of the 9 devices")
    assert hotkey is None and closers == []
    [notice] = notices
    assert "global keys unavailable" in notice and "no permission" in notice and "SWAYSOCK" in notice
    assert "ctrlspeak doctor" in notice and "ctrlspeak toggle" in notice


def test_explicit_evdev_says_its_reason(monkeypatch):
    hotkey, notices, _ = _start(monkeypatch, "evdev", X11, "there is no /dev/input on this system")
    assert hotkey is None and "evdev: there is no /dev/input" in notices[0]


def test_none_starts_nothing_and_says_nothing(monkeypatch):
    assert _start(monkeypatch, "none", WAYLAND, None) == (None, [], [])


def test_sway_without_the_compositor_source_is_unavailable_not_a_crash(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_compositor(name, *args, **kwargs):
        if name == "ctrlspeak.desktop.compositor_keys":
            raise ImportError("No module named 'ctrlspeak.desktop.compositor_keys'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_compositor)
    hotkey, notices, _ = _start(monkeypatch, "auto", {**WAYLAND, "SWAYSOCK": "/run/user/1000/sway-ipc.sock"},
                                "no keyboard")
    assert hotkey is None and "compositor key source is unavailable" in notices[0]


def test_sway_whose_socket_is_gone_gives_the_compositor_sources_reason(monkeypatch, tmp_path):
    env = {**WAYLAND, "SWAYSOCK": str(tmp_path / "sway-ipc.sock")}  # nothing listens there
    hotkey, notices, closers = _start(monkeypatch, "auto", env, "no keyboard")
    assert hotkey is None and closers == []
    assert "global keys unavailable" in notices[0] and "ctrlspeak doctor" in notices[0]
