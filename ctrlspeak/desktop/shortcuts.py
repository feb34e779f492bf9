"""What to bind where: the exact shortcut lines for each desktop, as text (``ctrlspeak shortcuts``).

Where the daemon cannot read keys itself (Wayland without /dev/input), the desktop has to hand
them over. sway can pass the triple tap itself (its IPC reports our release bindings, see
:mod:`ctrlspeak.desktop.compositor_keys`); every other desktop runs ``ctrlspeak toggle`` on a
chord. Pure functions from the environment to text; nothing here runs a command.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from ctrlspeak.desktop.compositor_keys import BINDING_LINES

Desktop = Literal["sway", "hyprland", "gnome", "kde", "other"]
DESKTOPS: tuple[Desktop, ...] = ("sway", "hyprland", "gnome", "kde", "other")

#: the CLI verb every binding runs (ctrlspeak/commands/daemon.py)
TOGGLE = "ctrlspeak toggle"
_GNOME_SCHEMA = "org.gnome.settings-daemon.plugins.media-keys"
_GNOME_PATH = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/ctrlspeak/"

# Measured on sway 1.7 (tests/wayland/test_compositor_keys_sway.py): a --release binding fires only
# when Ctrl went down and up alone, and the focused app still gets Ctrl, as a key and as a modifier.
CTRL_NOTE = ("Ctrl keeps working in applications: the release binding runs only when Ctrl is pressed\n"
             "and released alone, so Ctrl+C, Ctrl+V and the rest reach the focused window as before\n"
             "(and it still sees a lone Ctrl tap too).")

_NAMES = {"sway": "sway", "hyprland": "Hyprland", "gnome": "GNOME", "kde": "KDE Plasma", "other": "other desktops"}


def detect_desktop(env: Mapping[str, str]) -> Desktop | None:
    """The running desktop, from the variables a session sets; None when nothing says.

    XDG_CURRENT_DESKTOP is what the session itself declares (a colon-separated list such as
    "ubuntu:GNOME"); the compositors' own IPC variables come next, since some sway and Hyprland
    setups leave it unset; DESKTOP_SESSION (the display manager's session name) is the last hint.
    """
    for name in env.get("XDG_CURRENT_DESKTOP", "").lower().split(":"):
        found = _match(name)
        if found:
            return found
    if env.get("SWAYSOCK"):
        return "sway"
    if env.get("HYPRLAND_INSTANCE_SIGNATURE"):
        return "hyprland"
    session = env.get("DESKTOP_SESSION", "").lower()
    session = session.rsplit("/", 1)[-1]  # some display managers give a path to the .desktop file
    found = _match(session.removesuffix(".desktop"))
    if found:
        return found
    return "other" if env.get("XDG_CURRENT_DESKTOP") or env.get("DESKTOP_SESSION") else None


def _match(name: str) -> Desktop | None:
    name = name.strip()
    if not name:
        return None
    if "sway" in name:
        return "sway"
    if "hyprland" in name:
        return "hyprland"
    if "gnome" in name or name in ("ubuntu", "pop", "unity"):
        return "gnome"
    if "kde" in name or "plasma" in name:
        return "kde"
    return None


def shortcut_text(desktop: Desktop) -> str:
    """The binding for one desktop: the lines to add or commands to run, and why."""
    return _TEXTS[desktop]()


def render(env: Mapping[str, str], all_desktops: bool = False) -> str:
    """What ``ctrlspeak shortcuts`` prints: this desktop's binding, or every one."""
    desktop = detect_desktop(env)
    if all_desktops or desktop is None:
        head = ("" if all_desktops else
                "Could not tell which desktop this is (XDG_CURRENT_DESKTOP, SWAYSOCK, "
                "HYPRLAND_INSTANCE_SIGNATURE and DESKTOP_SESSION say nothing); here are all of them.\n\n")
        return head + "\n\n".join(_section(d) for d in DESKTOPS) + "\n"
    return _section(desktop) + "\n"


def _section(desktop: Desktop) -> str:
    return f"== {_NAMES[desktop]} ==\n{shortcut_text(desktop)}"


def _sway() -> str:
    lines = "\n".join(BINDING_LINES)
    return (
        "Add to ~/.config/sway/config, then run `swaymsg reload`.\n"
        "Triple-tap Ctrl (ctrlspeak follows these bindings over sway's IPC; hotkey_backend\n"
        "\"compositor\", or \"auto\" where /dev/input is not readable):\n\n"
        f"{lines}\n\n"
        f"{CTRL_NOTE}\n"
        "ctrlspeak must run inside the sway session (SWAYSOCK set); for the user service add\n"
        "`exec systemctl --user import-environment SWAYSOCK WAYLAND_DISPLAY` to the config too.\n\n"
        "Or the simple alternative, one chord that starts and stops dictation:\n\n"
        f"bindsym Ctrl+Alt+d exec {TOGGLE}"
    )


def _hyprland() -> str:
    from ctrlspeak.desktop.hyprland_keys import BINDING_LINES as HYPR_LINES

    lines = "\n".join(HYPR_LINES)
    return (
        "Add to ~/.config/hypr/hyprland.conf (it reloads by itself, or run `hyprctl reload`).\n"
        "Triple-tap Ctrl (each Ctrl release posts an event that ctrlspeak reads from Hyprland's\n"
        "event socket; hotkey_backend \"compositor\", or \"auto\" where /dev/input is not readable):\n\n"
        f"{lines}\n\n"
        "Whether Hyprland skips a release after Ctrl+C as sway does is verified only on paper here;\n"
        "only three Ctrl releases in quick succession toggle, as with the other key sources.\n\n"
        "Or the simple alternative, one chord that starts and stops dictation:\n\n"
        f"bind = CTRL ALT, D, exec, {TOGGLE}"
    )


def _gnome() -> str:
    key = f"{_GNOME_SCHEMA}.custom-keybinding:{_GNOME_PATH}"
    return (
        "Run these commands (or Settings > Keyboard > View and Customize Shortcuts > Custom Shortcuts,\n"
        f"with the command `{TOGGLE}`):\n\n"
        f"gsettings set {_GNOME_SCHEMA} custom-keybindings \"['{_GNOME_PATH}']\"\n"
        f"gsettings set {key} name 'ctrlspeak'\n"
        f"gsettings set {key} command '{TOGGLE}'\n"
        f"gsettings set {key} binding '<Control><Alt>d'\n\n"
        "The first command replaces the list of custom shortcuts: if "
        f"`gsettings get {_GNOME_SCHEMA} custom-keybindings`\n"
        f"shows others, put '{_GNOME_PATH}' into that list instead.\n"
        "GNOME does not pass key taps to programs, so the chord runs toggle."
    )


def _kde() -> str:
    return (
        "Plasma 6: System Settings > Keyboard > Shortcuts > Add New > Command or Script...\n"
        f"  command: {TOGGLE}\n"
        "  then click the new entry, Add custom shortcut, and press Ctrl+Alt+D.\n"
        "Plasma 5: System Settings > Shortcuts > Custom Shortcuts > Edit > New > Global Shortcut >\n"
        f"  Command/URL; Trigger: Ctrl+Alt+D; Action: {TOGGLE}.\n"
        "No kwriteconfig or kglobalaccel scripting is needed; the shortcut is saved by System Settings.\n"
        "KWin does not pass key taps to programs, so the chord runs toggle."
    )


def _other() -> str:
    return (
        "On X11 (any desktop) the triple tap of Ctrl works with no binding at all.\n"
        "Elsewhere, bind a chord such as Ctrl+Alt+D to the command\n\n"
        f"{TOGGLE}\n\n"
        "in the desktop's keyboard shortcut settings. If the desktop cannot find ctrlspeak, give the\n"
        "full path that `command -v ctrlspeak` prints."
    )


_TEXTS = {"sway": _sway, "hyprland": _hyprland, "gnome": _gnome, "kde": _kde, "other": _other}
