"""`ctrlspeak doctor`: each probe in a controlled environment, then the whole command on a real
virtual desktop (Xvfb + D-Bus + dunst + trayer + PulseAudio, from tests/desktop/harness.py)."""
from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ctrlspeak import doctor
from ctrlspeak.commands import doctor as doctor_cmd
from ctrlspeak.doctor import MISSING, OK, WARN, Check


def tool_dir(tmp_path: Path, *names: str) -> str:
    """A PATH holding only these tools (each a copy of /bin/true, so which() finds them)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(folder)


# --- one probe at a time ---------------------------------------------------------------------------

def test_no_display_means_hotkey_missing_with_the_toggle_hint():
    check = doctor.check_hotkey({"PATH": os.defpath}, sys_platform="linux")
    assert (check.status, check.required) == (MISSING, True)
    assert "DISPLAY" in check.detail and "ctrlspeak toggle" in check.fix


NO_INPUT_GROUP = "no permission to read 7 of the 9 devices in /dev/input (not in the input group)"
INPUT_FIX_WORDS = ("sudo usermod -aG input $USER", "log out", "/etc/udev/rules.d/70-ctrlspeak.rules",
                   'TAG+="uaccess"', "sudo udevadm control --reload && sudo udevadm trigger")


def test_wayland_hotkey_is_a_warning_not_required():
    check = doctor.check_hotkey({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, sys_platform="linux",
                                evdev=lambda: NO_INPUT_GROUP)
    assert (check.status, check.required) == (WARN, False)
    assert "ctrlspeak toggle" in check.fix and "input group" in check.detail
    for words in INPUT_FIX_WORDS:
        assert words in check.fix


def test_wayland_hotkey_through_readable_input_devices_is_ok():
    check = doctor.check_hotkey({"WAYLAND_DISPLAY": "wayland-0"}, sys_platform="linux", evdev=lambda: None)
    assert (check.status, check.required) == (OK, False) and "evdev" in check.detail


def test_wayland_hotkey_on_sway_says_its_ipc_stands_in():
    env = {"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/user/1000/sway-ipc.1000.42.sock"}
    check = doctor.check_hotkey(env, sys_platform="linux", evdev=lambda: NO_INPUT_GROUP)
    assert check.status == WARN and "sway" in check.detail and "usermod" in check.fix


def test_evdev_row_says_whether_keys_can_be_read_and_how_to_allow_it():
    check = doctor.check_evdev({"WAYLAND_DISPLAY": "wayland-0"}, sys_platform="linux", evdev=lambda: NO_INPUT_GROUP)
    assert (check.status, check.required) == (WARN, False) and "input group" in check.detail
    for words in INPUT_FIX_WORDS:
        assert words in check.fix
    check = doctor.check_evdev({"DISPLAY": ":0"}, sys_platform="linux", evdev=lambda: None)
    assert (check.status, check.fix) == (OK, "")
    assert doctor.check_evdev({}, sys_platform="darwin", evdev=lambda: "never asked").status == OK


def test_evdev_row_on_this_machine_never_raises():
    check = doctor.check_evdev({"WAYLAND_DISPLAY": "wayland-0"}, sys_platform="linux")
    assert check.status in (OK, WARN) and check.name == "evdev"


def test_unreachable_x_display_is_missing_and_says_why(tmp_path):
    env = {"DISPLAY": ":9876", "PATH": os.environ["PATH"], "XAUTHORITY": str(tmp_path / "none")}
    started = time.monotonic()
    check = doctor.check_hotkey(env, sys_platform="linux")
    assert check.status == MISSING and ":9876" in check.detail
    assert time.monotonic() - started < doctor.PROBE_TIMEOUT_S + 1


def test_clipboard_without_xclip_or_xsel_is_missing(tmp_path):
    check = doctor.check_clipboard({"DISPLAY": ":0", "PATH": tool_dir(tmp_path, "xdotool")}, sys_platform="linux")
    assert (check.status, check.required) == (MISSING, True)
    assert "xclip" in check.fix


@pytest.mark.parametrize("tools, session, status, detail", [
    (("xsel",), {"DISPLAY": ":0"}, OK, "xsel"),
    (("xclip", "xsel"), {"DISPLAY": ":0"}, OK, "xclip"),
    (("wl-copy", "wl-paste"), {"WAYLAND_DISPLAY": "wayland-1"}, OK, "wl-copy"),
    (("xclip",), {"WAYLAND_DISPLAY": "wayland-1", "DISPLAY": ":0"}, WARN, "Xwayland"),
    (("xclip",), {"WAYLAND_DISPLAY": "wayland-1"}, MISSING, "wl-copy"),
])
def test_clipboard_tool_by_session(tmp_path, tools, session, status, detail):
    check = doctor.check_clipboard({**session, "PATH": tool_dir(tmp_path, *tools)}, sys_platform="linux")
    assert check.status == status and detail in check.detail


def test_macos_clipboard_uses_pbcopy(tmp_path):
    env = {"PATH": tool_dir(tmp_path, "pbcopy", "pbpaste")}
    assert doctor.check_clipboard(env, sys_platform="darwin").status == OK
    assert doctor.check_clipboard({"PATH": str(tmp_path / "nothing")}, sys_platform="darwin").status == MISSING


@pytest.mark.parametrize("tools, session, status", [
    (("xdotool",), {"DISPLAY": ":0"}, OK),
    (("wtype",), {"WAYLAND_DISPLAY": "wayland-1"}, OK),
    (("ydotool",), {"WAYLAND_DISPLAY": "wayland-1"}, WARN),
    ((), {"WAYLAND_DISPLAY": "wayland-1"}, MISSING),
    # GNOME and KDE: wtype cannot type there; the portal's keyboard can, where a session bus is
    (("wtype",), {"WAYLAND_DISPLAY": "wayland-1", "XDG_CURRENT_DESKTOP": "GNOME"}, MISSING),
    ((), {"WAYLAND_DISPLAY": "wayland-1", "XDG_CURRENT_DESKTOP": "KDE",
          "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}, OK),
    (("xdotool",), {}, MISSING),
])
def test_paste_tool_by_session(tmp_path, tools, session, status):
    check = doctor.check_paste({**session, "PATH": tool_dir(tmp_path, *tools)}, sys_platform="linux")
    assert check.status == status and check.required


def test_notifications_without_a_bus_warn_and_start_nothing(tmp_path):
    env = {"PATH": os.environ["PATH"], "DISPLAY": ":0", "XDG_RUNTIME_DIR": str(tmp_path)}
    check = doctor.check_notifications(env, sys_platform="linux")
    assert (check.status, check.required) == (WARN, False)
    assert "DBUS_SESSION_BUS_ADDRESS" in check.detail


def test_session_bus_defaults_to_the_runtime_dir_socket(tmp_path):
    (tmp_path / "bus").touch()
    env = doctor.session_bus_env({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert env is not None and env["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path={tmp_path / 'bus'}"


def test_service_manager_missing_is_only_a_warning(tmp_path):
    check = doctor.check_service({"PATH": str(tmp_path), "HOME": str(tmp_path)}, sys_platform="linux")
    assert (check.status, check.required) == (WARN, False)
    assert "systemctl is not installed" in check.detail and "autostart" in check.fix


@pytest.mark.parametrize("bundled, status", [(False, MISSING), (True, WARN)])
def test_model_not_cached_is_missing_and_names_the_download(isolated_env, monkeypatch, bundled, status):
    """Without the bundled tiny-en it is missing; with it, a warning (the demo model stands in)."""
    from ctrlspeak.models import registry

    bundled_dir = isolated_env / "bundled"
    bundled_dir.mkdir()
    if bundled:
        (bundled_dir / registry.spec_for("tiny-en").bundled_file).write_bytes(b"nemo")
    monkeypatch.setattr(registry, "BUNDLED_DIR", bundled_dir)
    env = {"CTRLSPEAK_CONFIG": str(isolated_env / "none.toml"), "CTRLSPEAK_MODEL": "canary-180m",
           "CTRLSPEAK_HF_CACHE_DIR": str(isolated_env / "hf")}
    check = doctor.check_model(env)
    assert check.required and check.status == status
    assert ("tiny-en" in check.detail) is bundled
    assert "ctrlspeak models download canary-180m" in check.fix


def test_unknown_model_and_broken_config_are_missing(isolated_env):
    bad = isolated_env / "bad.toml"
    bad.write_text("model = [\n")
    check = doctor.check_model({"CTRLSPEAK_CONFIG": str(bad)})
    assert check.status == MISSING and "bad.toml" in check.detail
    check = doctor.check_model({"CTRLSPEAK_CONFIG": str(isolated_env / "none.toml"), "CTRLSPEAK_MODEL": "nope"})
    assert check.status == MISSING and "nope" in check.detail


def test_cached_model_is_ok(isolated_env):
    from ctrlspeak.models import registry

    cache = isolated_env / "hf"
    ref = registry.resolve("canary-180m")
    snap = cache / f"models--{ref.hf_id.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap / ref.filename).write_bytes(b"nemo")
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0" * 40)
    env = {"CTRLSPEAK_CONFIG": str(isolated_env / "none.toml"), "CTRLSPEAK_MODEL": "canary-180m",
           "CTRLSPEAK_HF_CACHE_DIR": str(cache)}
    check = doctor.check_model(env)
    assert check.status == OK and ref.filename in check.detail


@pytest.mark.parametrize("torch_version, cuda, driver, preference, status, detail", [
    (None, None, False, "auto", MISSING, "torch is not installed"),
    ("2.5.1", "12.4", True, "auto", OK, "cuda (torch 2.5.1 built for CUDA 12.4, NVIDIA driver present)"),
    ("2.5.1", "12.4", False, "auto", OK, "cpu (no NVIDIA driver found;"),
    ("2.5.1", None, True, "auto", OK, "cpu (torch has no CUDA build;"),
    ("2.5.1", "12.4", True, "cpu", OK, "cpu (chosen explicitly)"),
])
def test_compute_reports_the_likely_device(isolated_env, monkeypatch, torch_version, cuda, driver, preference,
                                           status, detail):
    """The device for a faked torch build, driver and config (never this machine's own)."""
    from ctrlspeak import compute

    monkeypatch.setattr(compute, "torch_build", lambda: {"version": torch_version, "cuda": cuda})
    monkeypatch.setattr(compute, "nvidia_driver_present", lambda: driver)
    monkeypatch.setattr(compute.sys, "platform", "linux")
    config = isolated_env / "config.toml"
    config.write_text(f'compute_device = "{preference}"\n')
    check = doctor.check_compute({"CTRLSPEAK_CONFIG": str(config)})
    assert check.status == status
    assert check.detail.startswith(detail), check.detail


def test_parse_xdpyinfo_extensions_stops_at_the_screen_section():
    text = ("name of display:    :3\nnumber of extensions:    3\n    BIG-REQUESTS\n"
            "    RECORD  (opcode: 146, base error: 154)\n    XTEST  (opcode: 132)\n"
            "default screen number:    0\nscreen #0:\n  dimensions:    640x480 pixels\n")
    assert doctor.parse_xdpyinfo_extensions(text) == ["BIG-REQUESTS", "RECORD", "XTEST"]


def test_exit_status_counts_only_required_missing_parts():
    ok = Check("a", OK, "")
    assert doctor.exit_status([ok, Check("tray", WARN, "", required=False)]) == 0
    assert doctor.exit_status([ok, Check("notifications", MISSING, "", required=False)]) == 0
    assert doctor.exit_status([ok, Check("microphone", WARN, "", required=True)]) == 0
    assert doctor.exit_status([ok, Check("microphone", MISSING, "", required=True)]) == 1


def test_a_probe_that_raises_becomes_a_row(monkeypatch):
    def broken(env):
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "PROBES", (("broken", broken),))
    (check,) = doctor.run_checks({})
    assert check.name == "broken" and check.status == WARN and "boom" in check.detail


def test_table_and_json_render_every_check():
    checks = [Check("hotkey", OK, "fine", "", True), Check("model", MISSING, "not cached", "download it", True)]
    table = doctor.format_table(checks)
    assert "hotkey" in table and "-> download it" in table and "required parts missing: model" in table
    data = json.loads(doctor.to_json(checks))
    assert data["ok"] is False and [c["name"] for c in data["checks"]] == ["hotkey", "model"]


# --- the whole command on a real virtual desktop ----------------------------------------------------

@pytest.fixture(scope="module")
def desktop() -> Iterator[object]:
    from tests.desktop.harness import STACK_TOOLS, Desktop, require

    require((*STACK_TOOLS, "trayer"), modules=("sounddevice", "Xlib"))
    with Desktop(start_tray=True) as stack:
        yield stack


def desktop_env(stack: object, home: Path) -> dict[str, str]:
    return {**stack.env, "HOME": str(home), "CTRLSPEAK_CONFIG": str(home / "none.toml"),
            "CTRLSPEAK_HF_CACHE_DIR": str(home / "hf")}


def tone(seconds: float, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.desktop
def test_doctor_command_on_the_virtual_desktop(desktop, tmp_path, monkeypatch, capsys):
    desktop.reset()
    for key, value in desktop_env(desktop, tmp_path).items():
        monkeypatch.setenv(key, value)
    desktop.mic.play(tone(4.0), lead_s=0, tail_s=0)
    parser = argparse.ArgumentParser(prog="ctrlspeak")
    doctor_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--json"])
    status = args.func(args)
    desktop.mic.clear()
    data = json.loads(capsys.readouterr().out)
    rows = {c["name"]: c for c in data["checks"]}
    assert list(rows) == [name for name, _ in doctor.PROBES]
    for name in ("hotkey", "notifications", "tray", "clipboard", "paste", "microphone"):
        assert rows[name]["status"] == OK, rows[name]
    assert "RECORD and XTEST" in rows["hotkey"]["detail"]
    assert "dBFS" in rows["microphone"]["detail"]
    # the only required part this machine may lack is a cached model (and torch)
    expected = 1 if any(r["required"] and r["status"] == MISSING for r in rows.values()) else 0
    assert status == expected and data["ok"] is (expected == 0)


@pytest.mark.desktop
def test_microphone_level_is_measured(desktop, tmp_path):
    desktop.reset()
    desktop.mic.play(tone(4.0, amplitude=0.1), lead_s=0, tail_s=0)
    check = doctor.check_microphone(desktop_env(desktop, tmp_path))
    desktop.mic.clear()
    assert check.status == OK, check
    dbfs = float(check.detail.split("peak ")[1].split(" dBFS")[0])
    assert -23.0 < dbfs < -17.0  # 0.1 full scale is -20 dBFS


@pytest.mark.desktop
def test_a_dead_microphone_warns_without_hanging(desktop, tmp_path):
    """A pipe source with no writer delivers nothing: stop() would hang there, abort() must not."""
    desktop.reset()
    desktop.mic.stop_feed()
    try:
        time.sleep(0.3)
        started = time.monotonic()
        check = doctor.check_microphone(desktop_env(desktop, tmp_path))
        took = time.monotonic() - started
    finally:
        desktop.mic.resume_feed()
    assert check.status == WARN, check
    assert took < doctor.PROBE_TIMEOUT_S + 1.0


@pytest.mark.desktop
def test_silence_is_flagged(desktop, tmp_path):
    desktop.reset()  # the virtual mic writes exact zeros between plays
    check = doctor.check_microphone(desktop_env(desktop, tmp_path))
    assert check.status == WARN and "silence" in check.detail
