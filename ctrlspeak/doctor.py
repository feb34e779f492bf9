"""``ctrlspeak doctor``: which parts of dictation work on this machine, and what to fix.

Each probe is a small function returning a :class:`Check`; tests call them one by one
with a controlled environment (``env``: the variables and PATH to judge by). Probes never
raise and never wait more than :data:`PROBE_TIMEOUT_S`: anything that could block (the X
server, D-Bus, the audio system) runs in a child process that is killed at the deadline.

Exit status of the command: 1 when a *required* part is missing (microphone, clipboard,
a paste tool, a model, torch, and the global hotkey unless the session is Wayland, where
a desktop shortcut to ``ctrlspeak toggle`` replaces it); 0 otherwise, warnings included.

Daemon side: never imports torch (compute is judged by :mod:`ctrlspeak.compute`).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ctrlspeak import compute, config, errors, service
from ctrlspeak.service import CommandResult, run_command

OK, WARN, MISSING = "ok", "warn", "missing"
PROBE_TIMEOUT_S = 3.0
#: length of the microphone level check, and how long the child waits for that much audio
LEVEL_SECONDS = 0.5
LEVEL_DEADLINE_S = 1.0
TOGGLE_HINT = "bind `ctrlspeak toggle` to a keyboard shortcut in your desktop's settings"


@dataclass(frozen=True)
class Check:
    name: str
    #: "ok", "warn" (works partly, optional part absent, or cannot tell) or "missing"
    status: str
    detail: str
    #: what to install or change; empty when nothing is needed
    fix: str = ""
    #: a missing required part makes `ctrlspeak doctor` exit 1
    required: bool = False


@dataclass(frozen=True)
class Session:
    #: "x11", "wayland", "macos" or "none" (no display at all)
    kind: str
    display: str | None = None
    wayland_display: str | None = None


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def detect_session(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Session:
    env = _env(env)
    if (sys.platform if sys_platform is None else sys_platform) == "darwin":
        return Session("macos")
    display, wayland = env.get("DISPLAY") or None, env.get("WAYLAND_DISPLAY") or None
    if wayland or env.get("XDG_SESSION_TYPE") == "wayland":
        return Session("wayland", display, wayland)
    if display:
        return Session("x11", display)
    return Session("none")


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", os.defpath))


def _deadline() -> float:
    return time.monotonic() + PROBE_TIMEOUT_S


def _left(deadline: float | None) -> float:
    """Seconds a child may still run, so that one probe stays within PROBE_TIMEOUT_S in all."""
    return PROBE_TIMEOUT_S if deadline is None else max(0.2, deadline - time.monotonic())


def _python(code: str, env: Mapping[str, str], *args: str, deadline: float | None = None) -> CommandResult:
    """Run ``code`` in a child Python (same interpreter), killed at the deadline."""
    return run_command([sys.executable, "-c", code, *args], env, timeout=_left(deadline))


# --- X11 -------------------------------------------------------------------------------------

_X_CHILD = r"""
import json
from Xlib import display
d = display.Display()
owner = d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S%d" % d.get_default_screen()))
print(json.dumps({"extensions": sorted(d.list_extensions()), "tray_owner": int(getattr(owner, "id", owner))}))
"""


def x_server_facts(env: Mapping[str, str], deadline: float | None = None) -> dict[str, Any] | str:
    """Extensions and tray owner of the X display in ``env``, or the reason it cannot be asked."""
    if importlib.util.find_spec("Xlib") is not None:  # python-xlib comes with pynput on Linux
        out = _python(_X_CHILD, env, deadline=deadline)
        if out.ok:
            return json.loads(out.stdout.strip().splitlines()[-1])
        return f"cannot open X display {env.get('DISPLAY')!r}: {out.why()}"
    out = run_command(["xdpyinfo", "-queryExtensions"], env, timeout=_left(deadline))
    if out.returncode == 127:
        return "cannot inspect the X server: neither python-xlib nor xdpyinfo (x11-utils) is installed"
    if not out.ok:
        return f"cannot open X display {env.get('DISPLAY')!r}: {out.why()}"
    return {"extensions": parse_xdpyinfo_extensions(out.stdout), "tray_owner": None}


def parse_xdpyinfo_extensions(text: str) -> list[str]:
    """The indented names after ``number of extensions:`` up to the next unindented line."""
    names: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("number of extensions:"):
            break
    for line in lines:
        if not line[:1].isspace():
            break
        if line.strip():
            names.append(line.split()[0])
    return names


def check_hotkey(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = _env(env)
    session = detect_session(env, sys_platform)
    if session.kind == "macos":
        return _macos_accessibility()
    if session.kind == "wayland":
        return Check("hotkey", WARN, "Wayland session: programs cannot read global keys", TOGGLE_HINT, False)
    if session.kind == "none":
        return Check("hotkey", MISSING, "no X11 display (DISPLAY is unset)",
                     f"run ctrlspeak inside an X11 desktop session, or {TOGGLE_HINT}", True)
    facts = x_server_facts(env, _deadline())
    if isinstance(facts, str):
        return Check("hotkey", MISSING, facts,
                     f"check DISPLAY and XAUTHORITY (`ctrlspeak service install` again from the desktop), or {TOGGLE_HINT}", True)
    lacking = [ext for ext in ("RECORD", "XTEST") if ext not in facts["extensions"]]
    if lacking:
        return Check("hotkey", MISSING, f"X display {session.display} lacks {' and '.join(lacking)}",
                     'enable it in the X server (Xorg: Load "record" in the "Module" section), '
                     f"or {TOGGLE_HINT}", True)
    return Check("hotkey", OK, f"X display {session.display} has RECORD and XTEST", "", True)


def _macos_accessibility() -> Check:
    import ctypes

    try:
        lib = ctypes.cdll.LoadLibrary(
            "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices")
        lib.AXIsProcessTrusted.restype = ctypes.c_bool
        trusted = bool(lib.AXIsProcessTrusted())
    except (OSError, AttributeError) as exc:
        return Check("hotkey", WARN, f"cannot ask macOS for the Accessibility permission: {exc}",
                     "allow this terminal (or Python) in System Settings > Privacy & Security > Accessibility", True)
    if trusted:
        return Check("hotkey", OK, "Accessibility permission granted", "", True)
    return Check("hotkey", MISSING, "no Accessibility permission: global keys and the paste are blocked",
                 "allow this terminal (or Python) in System Settings > Privacy & Security > "
                 "Accessibility and Input Monitoring, then restart ctrlspeak", True)


# --- microphone ------------------------------------------------------------------------------

def measure_input(seconds: float = LEVEL_SECONDS, deadline: float = LEVEL_DEADLINE_S) -> dict[str, Any]:
    """Record ``seconds`` from the default input; runs in the doctor's child process."""
    try:
        import numpy as np
        import sounddevice as sd
    except OSError as exc:  # sounddevice raises OSError when the PortAudio library is missing
        return {"error": "portaudio", "message": str(exc)}
    try:
        device = sd.query_devices(kind="input")
    except sd.PortAudioError as exc:
        return {"error": "no_input", "message": str(exc)}
    rate = int(device["default_samplerate"]) or 16000
    wanted = max(1, int(rate * seconds))
    state = {"frames": 0, "peak": 0.0}
    enough = threading.Event()

    def on_audio(indata: Any, frames: int, _time: Any, _status: Any) -> None:
        if frames:
            state["peak"] = max(state["peak"], float(np.abs(indata).max()))
        state["frames"] += frames
        if state["frames"] >= wanted:
            enough.set()

    try:
        stream = sd.InputStream(channels=1, samplerate=rate, dtype="float32", callback=on_audio)
        stream.start()
        try:
            enough.wait(deadline)
        finally:
            # abort, not stop: stop() waits for buffers that a dead PulseAudio source never delivers
            stream.abort()
            stream.close()
    except sd.PortAudioError as exc:
        return {"error": "stream", "message": str(exc), "device": device["name"]}
    return {"device": device["name"], "rate": rate, "frames": state["frames"], "peak": state["peak"],
            "seconds": state["frames"] / rate}


_MIC_CHILD = """
import json, sys
from ctrlspeak.doctor import measure_input
print(json.dumps(measure_input(float(sys.argv[1]), float(sys.argv[2]))))
"""


def check_microphone(env: Mapping[str, str] | None = None) -> Check:
    env = _env(env)
    out = _python(_MIC_CHILD, env, str(LEVEL_SECONDS), str(LEVEL_DEADLINE_S), deadline=_deadline())
    if out.returncode == 124:
        return Check("microphone", WARN, f"the audio system did not answer within {PROBE_TIMEOUT_S:.0f} s",
                     "check that PulseAudio/PipeWire runs (`pactl info`), then try again", True)
    if not out.ok:
        return Check("microphone", MISSING, f"the level check failed: {out.why()}",
                     "install the PortAudio library (Debian/Ubuntu: libportaudio2)", True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    error = found.get("error")
    if error == "portaudio":
        return Check("microphone", MISSING, f"PortAudio is not usable: {found['message']}",
                     "install the PortAudio library (Debian/Ubuntu: libportaudio2)", True)
    if error == "no_input":
        return Check("microphone", MISSING, "no default input device",
                     "plug in a microphone or select one as the default input in the sound settings; "
                     "`ctrlspeak devices` lists the inputs", True)
    if error:
        return Check("microphone", MISSING, f"cannot record from {found.get('device')!r}: {found['message']}",
                     "select another input in the sound settings", True)
    name = found["device"]
    if found["frames"] == 0:
        return Check("microphone", WARN, f"{name!r} delivered no audio in {LEVEL_DEADLINE_S:.1f} s",
                     "the source may be suspended or gone: check `pactl list sources short` and the sound settings", True)
    if found["peak"] <= 0.0:
        return Check("microphone", WARN, f"{name!r} records digital silence", "unmute the microphone", True)
    dbfs = 20.0 * math.log10(found["peak"])
    return Check("microphone", OK, f"{name!r}: peak {dbfs:.1f} dBFS over {found['seconds']:.1f} s", "", True)


# --- clipboard, paste, notifications, tray -----------------------------------------------------

def _first(names: Sequence[str], env: Mapping[str, str]) -> str | None:
    return next((name for name in names if _which(name, env)), None)


def check_clipboard(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = _env(env)
    session = detect_session(env, sys_platform)
    if session.kind == "macos":
        if _which("pbcopy", env) and _which("pbpaste", env):
            return Check("clipboard", OK, "pbcopy/pbpaste", "", True)
        return Check("clipboard", MISSING, "pbcopy/pbpaste not found", "add /usr/bin to PATH", True)
    if session.kind == "wayland":
        if _which("wl-copy", env) and _which("wl-paste", env):
            return Check("clipboard", OK, "wl-copy/wl-paste", "", True)
        x_tool = _first(("xclip", "xsel"), env) if session.display else None
        if x_tool:
            return Check("clipboard", WARN, f"only {x_tool} through Xwayland: native Wayland apps may not see the text",
                         "install wl-clipboard", True)
        return Check("clipboard", MISSING, "wl-copy/wl-paste not found", "install wl-clipboard", True)
    tool = _first(("xclip", "xsel"), env)
    if session.kind == "none":
        return Check("clipboard", MISSING, "no display session: there is no clipboard to set",
                     "run ctrlspeak inside your desktop session", True)
    if tool:
        return Check("clipboard", OK, tool, "", True)
    return Check("clipboard", MISSING, "neither xclip nor xsel found", "install xclip (or xsel)", True)


def check_paste(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = _env(env)
    session = detect_session(env, sys_platform)
    has_pynput = importlib.util.find_spec("pynput") is not None
    if session.kind == "macos":
        if has_pynput:
            return Check("paste", OK, "pynput (Quartz events; needs the Accessibility permission)", "", True)
        return Check("paste", MISSING, "pynput is not installed", "reinstall ctrlspeak (pip install ctrlspeak)", True)
    if session.kind == "wayland":
        if _which("wtype", env):
            return Check("paste", OK, "wtype", "", True)
        if _which("ydotool", env):
            return Check("paste", WARN, "ydotool (needs ydotoold running and access to /dev/uinput)", "", True)
        return Check("paste", MISSING, "neither wtype nor ydotool found: the text stays on the clipboard",
                     "install wtype (wlroots compositors such as sway) or ydotool (GNOME, KDE)", True)
    if session.kind == "none":
        return Check("paste", MISSING, "no display session to paste into", "run ctrlspeak inside your desktop session", True)
    if _which("xdotool", env):
        return Check("paste", OK, "xdotool", "", True)
    if has_pynput:
        facts = x_server_facts(env, _deadline())
        if isinstance(facts, dict) and "XTEST" in facts["extensions"]:
            return Check("paste", OK, "pynput through XTEST (xdotool not found)", "", True)
    return Check("paste", MISSING, "no xdotool and no XTEST for pynput", "install xdotool", True)


def _dbus(env: Mapping[str, str], method: str, arg: str | None, deadline: float) -> CommandResult:
    """Call an org.freedesktop.DBus method on the session bus with whichever client is installed."""
    clients = (
        ["dbus-send", "--session", "--print-reply", "--reply-timeout=2000", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", f"org.freedesktop.DBus.{method}", *([f"string:{arg}"] if arg else [])],
        ["gdbus", "call", "--session", "--timeout", "2", "--dest", "org.freedesktop.DBus", "--object-path",
         "/org/freedesktop/DBus", "--method", f"org.freedesktop.DBus.{method}", *([arg] if arg else [])],
        ["busctl", "--user", "--timeout=2", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
         "org.freedesktop.DBus", method, *(["s", arg] if arg else [])],
    )
    result = CommandResult((), 127, "", "no D-Bus client found (dbus-send, gdbus or busctl)")
    for argv in clients:
        result = run_command(argv, env, timeout=_left(deadline))
        if result.returncode != 127:
            break
    return result


def session_bus_env(env: Mapping[str, str]) -> dict[str, str] | None:
    """``env`` with a session bus address, or None when there is no bus to ask.

    Without DBUS_SESSION_BUS_ADDRESS libdbus would autolaunch a new bus on the X display:
    a doctor must not start daemons, so only the systemd-style default socket is used.
    """
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return dict(env)
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):
        return {**env, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={os.path.join(runtime, 'bus')}"}
    return None


def _bus_name(env: Mapping[str, str], name: str, deadline: float) -> tuple[str, str]:
    """("owned" | "activatable" | "absent" | "no-bus", detail) for a well-known name."""
    bus_env = session_bus_env(env)
    if bus_env is None:
        return "no-bus", "DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus does not exist"
    env = bus_env
    owner = _dbus(env, "NameHasOwner", name, deadline)
    if not owner.ok:
        return "no-bus", owner.why()
    if re.search(r"\btrue\b", owner.stdout):
        return "owned", ""
    activatable = _dbus(env, "ListActivatableNames", None, deadline)
    if activatable.ok and f'{name}"' in activatable.stdout.replace("'", '"'):
        return "activatable", ""
    return "absent", ""


def check_notifications(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = _env(env)
    if detect_session(env, sys_platform).kind == "macos":
        if _which("osascript", env):
            return Check("notifications", OK, "osascript", "", False)
        return Check("notifications", WARN, "osascript not found", "add /usr/bin to PATH", False)
    state, why = _bus_name(env, "org.freedesktop.Notifications", _deadline())
    if state == "owned":
        return Check("notifications", OK, "a notification server owns org.freedesktop.Notifications", "", False)
    if state == "activatable":
        return Check("notifications", OK, "a notification server starts on demand (D-Bus activation)", "", False)
    if state == "no-bus":
        return Check("notifications", WARN, f"no D-Bus session bus: {why}",
                     "run ctrlspeak inside your desktop session (DBUS_SESSION_BUS_ADDRESS)", False)
    return Check("notifications", WARN, "no notification server on the session bus",
                 "optional: run a notification daemon (dunst, mako, or your desktop's own)", False)


def check_tray(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = _env(env)
    session = detect_session(env, sys_platform)
    if session.kind == "macos":
        return Check("tray", OK, "menu bar", "", False)
    deadline = _deadline()
    if session.display:
        facts = x_server_facts(env, deadline)
        if isinstance(facts, dict) and facts.get("tray_owner"):
            return Check("tray", OK, "an X11 system tray owns _NET_SYSTEM_TRAY_S0", "", False)
    if _bus_name(env, "org.kde.StatusNotifierWatcher", deadline)[0] == "owned":
        return Check("tray", OK, "a StatusNotifierWatcher is on the session bus", "", False)
    return Check("tray", WARN, "no tray host: the daemon runs without an icon",
                 "optional: a system tray (trayer, stalonetray, a panel) or GNOME's AppIndicator extension", False)


# --- service, model, compute -------------------------------------------------------------------

def check_service(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = _env(env)
    if detect_session(env, sys_platform).kind == "macos":
        if _which("launchctl", env):
            return Check("service", OK, "launchctl", "", False)
        return Check("service", WARN, "launchctl not found", "start `ctrlspeak run` by hand", False)
    installed = "unit installed" if service.unit_path(env).is_file() else "unit not installed"
    usable, why = service.user_manager(env, timeout=PROBE_TIMEOUT_S)
    if usable:
        fix = "" if installed == "unit installed" else "`ctrlspeak service install` starts ctrlspeak at login"
        return Check("service", OK, f"systemctl --user works; {installed}", fix, False)
    return Check("service", WARN, f"{why}; {installed}",
                 "log in to a desktop session (its systemd --user starts with it), "
                 "or start `ctrlspeak run` from your desktop's autostart", False)


def check_model(env: Mapping[str, str] | None = None) -> Check:
    from ctrlspeak.models import registry

    env = _env(env)
    try:
        cfg = config.load(env=env)
        ref = registry.resolve(cfg.model)
    except errors.CtrlspeakError as exc:
        return Check("model", MISSING, exc.message, exc.hint, True)
    path = registry.cached_path(ref, cfg.hf_cache_dir)
    if path is not None:
        return Check("model", OK, f"{cfg.model} is cached ({path})", "", True)
    fix = f"`ctrlspeak models download {cfg.model}` while online"
    tiny = registry.spec_for("tiny-en")
    if tiny is not None and registry.bundled_path(tiny).is_file():
        return Check("model", WARN, f"{cfg.model} is not cached; only the bundled tiny-en demo model is there",
                     fix, True)
    return Check("model", MISSING, f"{cfg.model} is not cached and no bundled model is installed", fix, True)


def check_compute(env: Mapping[str, str] | None = None) -> Check:
    env = _env(env)
    try:
        preference = config.load(env=env).compute_device
    except errors.ConfigError:
        preference = "auto"  # the model row reports the broken config
    device, why = compute.likely_device(preference)
    if device == "none":
        return Check("compute", MISSING, why, "install torch and nemo_toolkit[asr] (pip install ctrlspeak)", True)
    return Check("compute", OK, f"{device} ({why})", "", True)


# --- all together --------------------------------------------------------------------------------

PROBES: tuple[tuple[str, Callable[[Mapping[str, str]], Check]], ...] = (
    ("hotkey", check_hotkey), ("microphone", check_microphone), ("clipboard", check_clipboard),
    ("paste", check_paste), ("notifications", check_notifications), ("tray", check_tray),
    ("service", check_service), ("model", check_model), ("compute", check_compute),
)


def _guarded(name: str, probe: Callable[[Mapping[str, str]], Check], env: Mapping[str, str]) -> Check:
    try:
        return probe(env)
    except Exception as exc:  # noqa: BLE001 - a doctor reports a broken probe as a row, it does not crash
        return Check(name, WARN, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "please report this as a ctrlspeak bug", False)


def run_checks(env: Mapping[str, str] | None = None) -> list[Check]:
    """Every probe, concurrently (they mostly wait on children), in :data:`PROBES` order."""
    from concurrent.futures import ThreadPoolExecutor

    env = dict(_env(env))
    with ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="doctor") as pool:
        futures = [pool.submit(_guarded, name, probe, env) for name, probe in PROBES]
        return [f.result() for f in futures]


def exit_status(checks: Sequence[Check]) -> int:
    return 1 if any(c.required and c.status == MISSING for c in checks) else 0


def format_table(checks: Sequence[Check]) -> str:
    width = max(len("ITEM"), *(len(c.name) for c in checks))
    lines = [f"{'ITEM':<{width}}  STATUS   DETAIL"]
    for c in checks:
        lines.append(f"{c.name:<{width}}  {c.status:<7}  {c.detail}")
        if c.fix:
            lines.append(f"{'':<{width}}  {'':<7}  -> {c.fix}")
    missing = [c.name for c in checks if c.required and c.status == MISSING]
    lines.append("")
    lines.append(f"required parts missing: {', '.join(missing)}" if missing else "all required parts are present")
    return "\n".join(lines)


def to_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": exit_status(checks) == 0, "checks": [asdict(c) for c in checks]}, indent=2)
