"""Output without a desktop: a fake clipboard object and fake paste tools (shell scripts) on PATH.

The real clipboard and a real X server are in tests/desktop/test_paste_x11.py.
"""
from __future__ import annotations

import contextlib
import io
import logging
import stat
import time
from pathlib import Path

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop import keysend
from ctrlspeak.desktop.clipboard import ClipboardContent
from ctrlspeak.desktop.focus import FocusedApp
from ctrlspeak.desktop.output import Delivery, NullKeyGuard, Output, paste_tools_status

# Not a display anyone has: pynput (which uses os.environ's DISPLAY) must never be chosen.
FAKE_X = {"DISPLAY": "ctrlspeak-test-display:0"}
FAKE_WAYLAND = {"WAYLAND_DISPLAY": "ctrlspeak-test-wayland"}


class FakeClipboard:
    """Records every call into a shared event list; holds one ClipboardContent."""

    name = "fake"

    def __init__(self, events: list[str], content: ClipboardContent | None = None, *, fail_set: bool = False) -> None:
        self.events = events
        self.content = content
        self.fail_set = fail_set

    def get(self) -> ClipboardContent | None:
        self.events.append("get")
        return self.content

    def set_text(self, text: str) -> None:
        self.events.append("set_text")
        if self.fail_set:
            raise errors.PasteFailed("xclip failed (exit 1): Error: Can't open display")
        self.content = ClipboardContent.from_text(text)

    def read_text(self) -> str | None:
        self.events.append("read_text")
        return self.content.text if self.content is not None and self.content.is_text else None

    def restore(self, content: ClipboardContent | None) -> None:
        self.events.append("restore")
        self.content = content


class RecordingGuard:
    """A KeyGuard that records the order of calls and what the paste tool had done by then."""

    def __init__(self, events: list[str], tool_log: Path, released: bool = True) -> None:
        self.events = events
        self.tool_log = tool_log
        self.released = released
        self.inside = False

    @contextlib.contextmanager
    def synthesizing(self):
        self.events.append(f"enter(tool_ran={self.tool_log.exists()})")
        self.inside = True
        try:
            yield
        finally:
            self.inside = False
            self.events.append(f"exit(tool_ran={self.tool_log.exists()})")

    def wait_modifiers_released(self, timeout: float) -> bool:
        self.events.append(f"wait({timeout})")
        return self.released


@pytest.fixture
def tools(tmp_path):
    """A bin/ directory for fake tools, and the file they log their arguments to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "tool.log"

    def add(name: str, exit_code: int = 0, stderr: str = "") -> None:
        script = bin_dir / name
        script.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "{name} $*" >> "{log}"\n'
            f'if [ "$1" = type ]; then /bin/cat >> "{log}.stdin"; fi\n'
            + (f'echo "{stderr}" >&2\n' if stderr else "")
            + f"exit {exit_code}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)

    add.bin = bin_dir  # type: ignore[attr-defined]
    add.log = log  # type: ignore[attr-defined]
    return add


def make_output(mode: str, events: list[str], clipboard, env: dict, tools, *, released: bool = True, **kw) -> Output:
    sleeps = kw.pop("sleeps", None)

    def sleep(seconds: float) -> None:
        events.append(f"sleep({seconds})")
        if sleeps is not None:
            sleeps.append(seconds)

    guard = RecordingGuard(events, tools.log, released)
    return Output(mode, key_guard=guard, clipboard=clipboard, env={**env, "PATH": str(tools.bin)},
                  platform="linux", sleep=sleep, **kw)


def test_stdout_mode_prints_one_line_and_flushes():
    stream = io.StringIO()
    out = Output("stdout", key_guard=NullKeyGuard(), stdout=stream, clock=lambda: 7.0)
    assert out.deliver("hello\nworld") == Delivery("stdout", True, "printed 11 characters", 7.0)
    assert stream.getvalue() == "hello world\n"


def test_unknown_mode_is_a_usage_error():
    with pytest.raises(errors.UsageError):
        Output("shout", key_guard=NullKeyGuard())


def test_paste_saves_sets_waits_pastes_inside_guard_then_restores(tools):
    tools("xdotool")
    events: list[str] = []
    previous = ClipboardContent.from_text("previous clipboard")
    clipboard = FakeClipboard(events, previous)
    out = make_output("paste", events, clipboard, FAKE_X, tools, restore_delay_s=0.4, modifier_timeout_s=3.0)

    delivery = out.deliver("hello from ctrlspeak")

    assert delivery.method == "paste" and delivery.pasted
    assert "xdotool" in delivery.detail and "restored" in delivery.detail
    assert events == [
        "get", "set_text", "wait(3.0)",
        "enter(tool_ran=False)", "exit(tool_ran=True)",  # the paste happened inside synthesizing()
        "sleep(0.4)", "read_text", "restore",
    ]
    assert tools.log.read_text() == "xdotool key --clearmodifiers ctrl+v\n"
    assert clipboard.content == previous


def test_the_text_is_inserted_at_the_keystroke_not_after_the_restore_wait(tools):
    """Issue 10, item 17: latency included the 0.4 s clipboard-restore wait after the paste."""
    tools("xdotool")
    events: list[str] = []
    now = [100.0]

    def sleep(seconds: float) -> None:  # the restore wait passes on the fake clock
        events.append(f"sleep({seconds})")
        now[0] += seconds

    out = Output("paste", key_guard=RecordingGuard(events, tools.log, True),
                 clipboard=FakeClipboard(events, ClipboardContent.from_text("mine")),
                 env={**FAKE_X, "PATH": str(tools.bin)}, platform="linux", sleep=sleep, clock=lambda: now[0],
                 restore_delay_s=0.4)
    delivery = out.deliver("hello")
    assert delivery.pasted and "restored" in delivery.detail and now[0] == pytest.approx(100.4)
    assert delivery.inserted_at == pytest.approx(100.0)


def test_target_is_the_focused_x11_window_and_unknown_elsewhere(tools):
    tools("xdotool")
    (tools.bin / "xdotool").write_text("#!/bin/sh\n[ \"$1\" = getwindowfocus ] && echo 4194318\n")
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events, None), FAKE_X, tools)
    assert out.target() == "4194318"
    wayland = Output("paste", key_guard=NullKeyGuard(), env={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux")
    assert wayland.target() is None
    assert Output("stdout", key_guard=NullKeyGuard()).target() is None


def test_restores_an_image(tools):
    tools("xdotool")
    events: list[str] = []
    png = ClipboardContent("image/png", b"\x89PNG\r\n\x1a\n...")
    clipboard = FakeClipboard(events, png)
    make_output("paste", events, clipboard, FAKE_X, tools).deliver("text")
    assert clipboard.content == png


def test_empty_clipboard_is_cleared_again(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, None)
    delivery = make_output("paste", events, clipboard, FAKE_X, tools).deliver("text")
    assert delivery.pasted and "cleared" in delivery.detail
    assert events[-1] == "restore" and clipboard.content is None


def test_no_restore_when_disabled(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("old"))
    delivery = make_output("paste", events, clipboard, FAKE_X, tools, restore_clipboard=False).deliver("new")
    assert delivery.pasted
    assert "get" not in events and "restore" not in events
    assert clipboard.content.text == "new"


def test_clipboard_changed_after_paste_is_not_overwritten(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("old"))

    def someone_copies(seconds: float) -> None:
        clipboard.content = ClipboardContent.from_text("copied meanwhile")

    out = Output("paste", key_guard=NullKeyGuard(), clipboard=clipboard,
                 env={**FAKE_X, "PATH": str(tools.bin)}, platform="linux", sleep=someone_copies)
    delivery = out.deliver("new")
    assert delivery.pasted and "not restored" in delivery.detail
    assert "restore" not in events
    assert clipboard.content.text == "copied meanwhile"


@pytest.mark.parametrize("env, tool", [(FAKE_X, "xdotool"), (FAKE_WAYLAND, "wtype")])
def test_no_paste_tool_leaves_text_on_clipboard(tools, env, tool):
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("previous clipboard"))
    delivery = make_output("paste", events, clipboard, env, tools).deliver("hello")

    assert delivery.method == "clipboard" and delivery.pasted is False
    assert tool in delivery.detail and "install" in delivery.detail
    assert "the text is on the clipboard" in delivery.detail
    assert "\n" not in delivery.detail
    assert "restore" not in events
    assert clipboard.content.text == "hello"


def test_failing_paste_tool_leaves_text_on_clipboard(tools):
    tools("xdotool", exit_code=1, stderr="XTEST extension missing")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("previous clipboard"))
    delivery = make_output("paste", events, clipboard, FAKE_X, tools).deliver("hello")

    assert delivery == Delivery(
        "clipboard", False,
        "xdotool failed (exit 1): XTEST extension missing; the text is on the clipboard, paste it with Ctrl+V")
    assert "restore" not in events and not any(e.startswith("sleep") for e in events)
    assert clipboard.content.text == "hello"


def test_xdotool_that_cannot_open_the_display_counts_as_failure(tools):
    # xdotool exits 0 here, complaining only on stderr
    tools("xdotool", exit_code=0, stderr="Error: Can't open display: (null)")
    events: list[str] = []
    clipboard = FakeClipboard(events, None)
    delivery = make_output("paste", events, clipboard, FAKE_X, tools).deliver("hello")
    assert not delivery.pasted and "Can't open display" in delivery.detail
    assert clipboard.content.text == "hello"


def test_wayland_paste_uses_wtype(tools):
    tools("wtype")
    events: list[str] = []
    clipboard = FakeClipboard(events, None)
    delivery = make_output("paste", events, clipboard, FAKE_WAYLAND, tools).deliver("hi")
    assert delivery.pasted
    # -s 30: the first key is not lost; -p F20: GTK apps act on the chord (wayland-testing notes)
    assert tools.log.read_text() == "wtype -s 30 -M ctrl -k v -m ctrl -p F20\n"


def test_held_modifier_blocks_a_paste_that_cannot_clear_it(tools):
    tools("wtype")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("old"))
    out = make_output("paste", events, clipboard, FAKE_WAYLAND, tools, released=False, modifier_timeout_s=0.5)
    delivery = out.deliver("hi")
    assert not delivery.pasted and "modifier key was still held" in delivery.detail
    assert not tools.log.exists() and not any(e.startswith("enter") for e in events)
    assert clipboard.content.text == "hi"


def test_held_modifier_is_cleared_by_xdotool(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, None)
    delivery = make_output("paste", events, clipboard, FAKE_X, tools, released=False).deliver("hi")
    assert delivery.pasted
    assert "--clearmodifiers" in tools.log.read_text()


def test_clipboard_that_cannot_be_set_raises(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, None, fail_set=True)
    with pytest.raises(errors.PasteFailed):
        make_output("paste", events, clipboard, FAKE_X, tools).deliver("hello")
    assert not tools.log.exists()


def test_no_clipboard_tool_raises_with_what_to_install(tools):
    tools("xdotool")
    out = Output("paste", key_guard=NullKeyGuard(), env={**FAKE_X, "PATH": str(tools.bin)}, platform="linux")
    with pytest.raises(errors.PasteFailed) as info:
        out.deliver("hello")
    assert "xclip" in info.value.message and "install" in info.value.message
    assert info.value.code == "ERR_PASTE_FAILED"


def test_type_mode_types_after_modifiers_inside_guard(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("untouched"))
    delivery = make_output("type", events, clipboard, FAKE_X, tools).deliver("héllo -world")
    assert delivery.method == "type" and delivery.pasted
    assert events == ["wait(3.0)", "enter(tool_ran=False)", "exit(tool_ran=True)"]
    assert tools.log.read_text() == "xdotool type --clearmodifiers --delay 5 --file -\n"
    # the text goes through stdin, not argv (which other users can read)
    assert Path(f"{tools.log}.stdin").read_text("utf-8") == "héllo -world"
    assert clipboard.content.text == "untouched"


def test_type_mode_on_wayland_passes_text_after_double_dash(tools):
    tools("wtype")
    events: list[str] = []
    delivery = make_output("type", events, FakeClipboard(events), FAKE_WAYLAND, tools).deliver("-k not an option")
    assert delivery.pasted
    assert tools.log.read_text() == "wtype -s 30 -- -k not an option\n"


def test_type_mode_without_tool_falls_back_to_clipboard(tools):
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("old"))
    delivery = make_output("type", events, clipboard, FAKE_X, tools).deliver("hello")
    assert delivery.method == "clipboard" and not delivery.pasted
    assert "xdotool" in delivery.detail and "on the clipboard" in delivery.detail
    assert clipboard.content.text == "hello"


def test_transcript_is_not_logged_above_debug(tools, caplog):
    tools("xdotool", exit_code=1, stderr="boom")
    events: list[str] = []
    secret = "my bank password is swordfish"
    with caplog.at_level(logging.DEBUG, logger="ctrlspeak"):
        make_output("paste", events, FakeClipboard(events, None), FAKE_X, tools).deliver(secret)
    assert any(secret in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert not any(secret in r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)


def test_paste_tools_status(tools):
    tools("xclip")
    rows = paste_tools_status({**FAKE_X, "PATH": str(tools.bin)}, platform="linux")
    present = {tool: ok for tool, ok, _ in rows}
    assert present["xclip"] is True and present["xdotool"] is False
    assert all(hint for _, _, hint in rows)
    wayland = [tool for tool, _, _ in paste_tools_status({**FAKE_WAYLAND, "PATH": str(tools.bin)}, platform="linux")]
    assert wayland == ["wl-copy", "wl-paste", "wtype", "ydotool"]
    mac = [tool for tool, _, _ in paste_tools_status({"PATH": str(tools.bin)}, platform="darwin")]
    assert mac[:2] == ["pbcopy", "pbpaste"]


def test_null_key_guard():
    guard = NullKeyGuard()
    assert guard.wait_modifiers_released(0.0) is True
    with guard.synthesizing():
        pass


# -- choosing a clipboard backend (clipboard.py; the real tools run in tests/desktop) --------------

@pytest.mark.parametrize("env, platform, present, expected", [
    (FAKE_X, "linux", ["xclip", "xsel"], "XclipClipboard"),
    (FAKE_X, "linux", ["xsel"], "XselClipboard"),
    (FAKE_X, "linux", [], None),
    ({**FAKE_WAYLAND, **FAKE_X}, "linux", ["wl-copy", "wl-paste", "xclip"], "WaylandClipboard"),
    ({**FAKE_WAYLAND, **FAKE_X}, "linux", ["xclip"], "XclipClipboard"),  # XWayland
    (FAKE_WAYLAND, "linux", ["xclip"], None),
    ({}, "linux", ["xclip", "wl-copy", "wl-paste"], None),  # no graphical session
    (FAKE_X, "darwin", ["pbcopy", "pbpaste", "xclip"], "MacClipboard"),  # XQuartz sets DISPLAY
])
def test_detect_clipboard(tools, env, platform, present, expected):
    from ctrlspeak.desktop.clipboard import detect_clipboard, missing_clipboard_reason

    for tool in present:
        tools(tool)
    found = detect_clipboard({**env, "PATH": str(tools.bin)}, platform=platform)
    assert (type(found).__name__ if found else None) == expected
    if found is None:
        assert missing_clipboard_reason({**env, "PATH": str(tools.bin)}, platform=platform)


def test_missing_clipboard_reason_names_the_package(tools):
    from ctrlspeak.desktop.clipboard import missing_clipboard_reason

    assert "xclip" in missing_clipboard_reason({**FAKE_X, "PATH": str(tools.bin)}, platform="linux")
    assert "wl-clipboard" in missing_clipboard_reason({**FAKE_WAYLAND, "PATH": str(tools.bin)}, platform="linux")


def test_clipboard_content_repr_hides_the_data():
    content = ClipboardContent.from_text("my secret")
    assert "secret" not in repr(content)
    assert content.is_text and content.text == "my secret"
    with pytest.raises(ValueError):
        ClipboardContent("image/png", b"..").text


def _fake_xclip(tools, body: str) -> dict[str, str]:
    script = tools.bin / "xclip"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return {**FAKE_X, "PATH": str(tools.bin)}


def test_clipboard_tool_that_hangs_times_out(tools, monkeypatch):
    from ctrlspeak.desktop import clipboard as clipboard_module

    monkeypatch.setattr(clipboard_module, "TOOL_TIMEOUT_S", 0.3)
    env = _fake_xclip(tools, "exec /bin/sleep 30\n")
    clipboard = clipboard_module.detect_clipboard(env, platform="linux")
    with pytest.raises(errors.PasteFailed, match="did not answer"):
        clipboard.get()
    with pytest.raises(errors.PasteFailed, match="did not finish"):
        clipboard.set_text("x")


def test_set_text_does_not_wait_for_the_owner_child(tools, tmp_path):
    """Like xclip, the fake leaves a child holding stdout/stderr; set_text must return anyway."""
    from ctrlspeak.desktop.clipboard import detect_clipboard

    store = tmp_path / "clip"
    env = _fake_xclip(tools, f"""
case "$*" in
  *-i*) /bin/cat > "{store}"; (/bin/sleep 3 &) ; exit 0 ;;
  *TARGETS*) [ -f "{store}" ] && echo UTF8_STRING && exit 0; exit 1 ;;
  *) /bin/cat "{store}" ;;
esac
""")
    clipboard = detect_clipboard(env, platform="linux")
    assert clipboard.get() is None
    start = time.monotonic()
    clipboard.set_text("héllo")
    assert time.monotonic() - start < 1.0
    assert clipboard.get() == ClipboardContent.from_text("héllo")


def test_failing_clipboard_tool_reports_its_stderr(tools):
    from ctrlspeak.desktop.clipboard import detect_clipboard

    env = _fake_xclip(tools, "echo \"Error: Can't open display: nowhere\" >&2\nexit 1\n")
    with pytest.raises(errors.PasteFailed, match="Can't open display") as info:
        detect_clipboard(env, platform="linux").set_text("x")
    assert "paste it by hand" not in info.value.hint  # the text is NOT on the clipboard


# -- the paste chord follows the focused app (focus.py, chord.py, keysend.py) --------------------

def _focus(*names: str, source: str = "x11"):

    return lambda: FocusedApp(names, source)


def test_a_terminal_gets_ctrl_shift_v_through_xdotool(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("old"))
    out = make_output("paste", events, clipboard, FAKE_X, tools, focus=_focus("gnome-terminal-server", "Gnome-terminal"))
    delivery = out.deliver("ls -la")
    assert delivery.pasted and "ctrl+shift+v" in delivery.detail
    assert tools.log.read_text() == "xdotool key --clearmodifiers ctrl+shift+v\n"
    assert clipboard.content.text == "old"


def test_any_other_app_gets_ctrl_v(tools):
    tools("xdotool")
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), FAKE_X, tools, focus=_focus("Navigator", "firefox"))
    assert out.deliver("hi").pasted
    assert tools.log.read_text() == "xdotool key --clearmodifiers ctrl+v\n"


def test_the_config_table_wins_over_the_terminal_list(tools):
    tools("xdotool")
    events: list[str] = []
    table = (("XTERM", "shift+insert"),)
    out = make_output("paste", events, FakeClipboard(events), FAKE_X, tools, paste_chords=table,
                      focus=_focus("xterm", "XTerm"))
    assert out.deliver("hi").pasted
    assert tools.log.read_text() == "xdotool key --clearmodifiers shift+Insert\n"


def test_a_table_entry_of_type_types_and_leaves_the_clipboard_alone(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("untouched"))
    out = make_output("paste", events, clipboard, FAKE_X, tools, paste_chords=(("emacs", "type"),),
                      focus=_focus("emacs", "Emacs"))
    delivery = out.deliver("typed into emacs")
    assert delivery.method == "type" and delivery.pasted
    assert tools.log.read_text() == "xdotool type --clearmodifiers --delay 5 --file -\n"
    assert "get" not in events and "set_text" not in events
    assert clipboard.content.text == "untouched"


def test_a_sway_terminal_gets_the_shift_chord_through_wtype(tools):
    tools("wtype")
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), FAKE_WAYLAND, tools, focus=_focus("foot", source="sway"))
    assert out.deliver("hi").pasted
    assert tools.log.read_text() == "wtype -s 30 -M ctrl -M shift -k v -m shift -m ctrl -p F20\n"


def test_an_app_that_cannot_be_known_gets_ctrl_v(tools):
    tools("wtype")
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), FAKE_WAYLAND, tools, focus=lambda: None)
    assert out.deliver("hi").pasted
    assert tools.log.read_text() == "wtype -s 30 -M ctrl -k v -m ctrl -p F20\n"


def _fake_ydotool(tools, tmp_path) -> dict[str, str]:
    """A ydotool that logs its arguments and the socket it was given; a socket file for it."""
    socket = tmp_path / "ydotool.sock"
    socket.touch()
    script = tools.bin / "ydotool"
    script.write_text("#!/bin/sh\n"
                      f'printf "%s\\n" "ydotool $* socket=$YDOTOOL_SOCKET" >> "{tools.log}"\n'
                      f'if [ "$1" = type ]; then /bin/cat >> "{tools.log}.stdin"; fi\n')
    script.chmod(0o755)
    return {**FAKE_WAYLAND, "XDG_CURRENT_DESKTOP": "ubuntu:GNOME", "YDOTOOL_SOCKET": str(socket)}


def test_gnome_pastes_with_ydotool_key_codes_when_its_daemon_runs(tools, tmp_path):
    tools("wtype")  # present, but GNOME has no virtual-keyboard protocol for it
    env = _fake_ydotool(tools, tmp_path)
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), env, tools, focus=lambda: None)
    delivery = out.deliver("hi")
    assert delivery.pasted and "ydotool" in delivery.detail
    assert tools.log.read_text() == f"ydotool key 29:1 47:1 47:0 29:0 socket={tmp_path / 'ydotool.sock'}\n"


def test_ydotool_types_ascii_through_stdin_and_leaves_other_text_on_the_clipboard(tools, tmp_path):
    env = _fake_ydotool(tools, tmp_path)
    events: list[str] = []
    out = make_output("type", events, FakeClipboard(events), env, tools)
    assert out.deliver("-k plain words").pasted
    assert tools.log.read_text().startswith("ydotool type --file - socket=")
    assert Path(f"{tools.log}.stdin").read_text() == "-k plain words"
    clipboard = FakeClipboard(events)
    delivery = make_output("type", events, clipboard, env, tools).deliver("Grüße")
    assert delivery.method == "clipboard" and "ASCII" in delivery.detail
    assert clipboard.content.text == "Grüße"


class FakeRemoteKeys:
    """The desktop portal's keyboard (ctrlspeak.desktop.portal_input) as Output sees it."""

    name = "portal"

    def __init__(self, ready: bool = True) -> None:
        self.ready = ready
        self.sent: list[tuple[str, str]] = []

    def chord(self, chord: str) -> None:
        self.sent.append(("chord", chord))

    def type(self, text: str) -> None:
        self.sent.append(("type", text))


def test_gnome_pastes_and_types_any_text_through_the_portal_keyboard_before_ydotool(tools, tmp_path):
    env = _fake_ydotool(tools, tmp_path)
    remote = FakeRemoteKeys()
    events: list[str] = []
    clipboard = FakeClipboard(events)
    out = make_output("paste", events, clipboard, env, tools, focus=lambda: None, remote_keys=remote)
    delivery = out.deliver("hi")
    assert delivery.pasted and "portal" in delivery.detail
    typed = make_output("type", events, clipboard, env, tools, focus=lambda: None, remote_keys=remote)
    assert typed.deliver("Grüße").pasted, "keysyms type what ydotool's ASCII table cannot"
    assert remote.sent == [("chord", "ctrl+v"), ("type", "Grüße")]
    assert not tools.log.exists() or tools.log.read_text() == "", "ydotool was not needed"
    remote.ready = False  # not granted (yet): ydotool serves as before
    assert make_output("paste", events, clipboard, env, tools, focus=lambda: None,
                       remote_keys=remote).deliver("hi").pasted
    assert tools.log.read_text().startswith("ydotool key 29:1 47:1")


def test_sway_keeps_wtype_even_with_a_portal_keyboard(tools):
    tools("wtype")
    remote = FakeRemoteKeys()
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), FAKE_WAYLAND, tools, focus=lambda: None,
                      remote_keys=remote)
    assert out.deliver("hi").pasted and remote.sent == []


def test_wayland_without_a_key_tool_says_what_to_install_once(tools):
    events: list[str] = []
    clipboard = FakeClipboard(events)
    out = make_output("paste", events, clipboard, {**FAKE_WAYLAND, "XDG_CURRENT_DESKTOP": "GNOME"}, tools,
                      focus=lambda: None)
    first = out.deliver("one")
    assert first.method == "clipboard" and not first.pasted
    assert keysend.WAYLAND_NO_KEYER in first.detail and "ydotoold" in first.detail
    second = out.deliver("two")
    assert second == Delivery("clipboard", False, "the text is on the clipboard, paste it with Ctrl+V")
    assert clipboard.content.text == "two"
    # a new Output (the next daemon run) without a login's runtime directory says it again
    again = make_output("paste", events, clipboard, FAKE_WAYLAND, tools, focus=lambda: None).deliver("three")
    assert "install wtype" in again.detail


def test_the_setup_hint_is_said_once_per_login_across_daemon_restarts(tools, tmp_path):
    events: list[str] = []
    clipboard = FakeClipboard(events)
    login = {**FAKE_WAYLAND, "XDG_RUNTIME_DIR": str(tmp_path / "run-1")}
    (tmp_path / "run-1").mkdir()
    first = make_output("paste", events, clipboard, login, tools, focus=lambda: None).deliver("one")
    assert "install wtype" in first.detail
    restarted = make_output("paste", events, clipboard, login, tools, focus=lambda: None).deliver("two")
    assert restarted == Delivery("clipboard", False, "the text is on the clipboard, paste it with Ctrl+V")
    (tmp_path / "run-2").mkdir()  # the next login: a fresh runtime directory
    next_login = {**login, "XDG_RUNTIME_DIR": str(tmp_path / "run-2")}
    assert "install wtype" in make_output("paste", events, clipboard, next_login, tools,
                                          focus=lambda: None).deliver("three").detail


def test_a_failing_tool_is_reported_every_time(tools):
    tools("xdotool", exit_code=1, stderr="XTEST extension missing")
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), FAKE_X, tools)
    assert "XTEST" in out.deliver("one").detail and "XTEST" in out.deliver("two").detail


def test_text_left_on_the_clipboard_names_the_terminal_chord(tools):
    events: list[str] = []
    out = make_output("paste", events, FakeClipboard(events), FAKE_WAYLAND, tools, focus=_focus("kitty", source="sway"))
    assert out.deliver("hi").detail.endswith("paste it with Ctrl+Shift+V")
    # xterm gets the text typed; with nothing to type with, it is on the clipboard all the same
    xterm = make_output("paste", events, FakeClipboard(events), FAKE_X, tools, focus=_focus("xterm", "XTerm"))
    delivery = xterm.deliver("hi")
    assert delivery.method == "clipboard" and delivery.detail.endswith("paste it with Ctrl+Shift+V")


def test_xterm_gets_the_text_typed_by_default(tools):
    tools("xdotool")
    events: list[str] = []
    clipboard = FakeClipboard(events, ClipboardContent.from_text("untouched"))
    delivery = make_output("paste", events, clipboard, FAKE_X, tools, focus=_focus("xterm", "XTerm")).deliver("ls")
    assert delivery.method == "type" and tools.log.read_text().startswith("xdotool type ")
    assert "set_text" not in events


def test_focus_is_not_asked_without_a_desktop_session_or_in_stdout_mode(tools):
    asked: list[int] = []

    def focus():
        asked.append(1)
        return None

    Output("stdout", key_guard=NullKeyGuard(), stdout=io.StringIO(), focus=focus).deliver("x")
    events: list[str] = []
    headless = Output("paste", key_guard=NullKeyGuard(), clipboard=FakeClipboard(events),
                      env={"PATH": str(tools.bin)}, platform="linux", focus=focus)
    assert "no graphical session" in headless.deliver("x").detail
    assert asked == []


def test_the_daemon_output_takes_the_config_paste_chord_table():
    from ctrlspeak import config
    from ctrlspeak.daemon import wiring

    cfg = config.Config(paste_chord=(("emacs", "type"),))
    out = wiring.make_output(cfg, None, None)
    assert out._paste_chords == (("emacs", "type"),)


def test_a_profiles_output_mode_applies_in_its_app_only(tools):
    """``[profile."APP"] output``: "stdout" prints in that app, "type" types there, "paste"
    pastes there even when the configured mode types; other apps get the configured mode."""
    tools("xdotool")
    events: list[str] = []
    stream = io.StringIO()
    clipboard = FakeClipboard(events, ClipboardContent.from_text("old"))
    focused = ["Navigator"]
    out = make_output("paste", events, clipboard, FAKE_X, tools, stdout=stream,
                      app_outputs=(("Kitty", "stdout"), ("emacs", "type")),
                      focus=lambda: FocusedApp((focused[0],), "x11"))
    assert out.deliver("one").method == "paste"
    focused[0] = "kitty"
    d = out.deliver("two")
    assert d.method == "stdout" and stream.getvalue() == "two\n"
    focused[0] = "Emacs"
    assert out.deliver("three").method == "type"
    assert clipboard.content.text == "old"
    typing = make_output("type", events, clipboard, FAKE_X, tools, app_outputs=(("firefox", "paste"),),
                         focus=lambda: FocusedApp(("firefox",), "x11"))
    assert typing.deliver("four").method == "paste"


def test_an_unknown_profile_output_mode_is_a_usage_error():
    with pytest.raises(errors.UsageError, match="unknown output mode 'screen'"):
        Output("paste", key_guard=NullKeyGuard(), app_outputs=(("x", "screen"),))


def test_no_per_app_mode_means_no_focus_query(tools):
    tools("xdotool")
    events: list[str] = []
    asked: list[int] = []

    def focus():
        asked.append(1)
        return None

    out = make_output("type", events, FakeClipboard(events), FAKE_X, tools, focus=focus)
    out.deliver("hi")
    assert not asked


def test_one_delivery_asks_the_focus_once_and_reuses_what_the_text_pipeline_asked(tools):
    """The pipeline's app_names(), the profile's output mode and the paste chord are one
    question: each focus query is a process (xdotool) or an IPC round trip."""
    tools("xdotool")
    asked: list[str] = []
    now = [100.0]

    def focus() -> FocusedApp:
        asked.append("focus")
        return FocusedApp(("foot",), "x11")

    out = make_output("paste", [], FakeClipboard([]), FAKE_X, tools, focus=focus, clock=lambda: now[0],
                      app_outputs=(("gedit", "type"),))
    out.deliver("one")
    assert asked == ["focus"], "the output mode and the chord share one query"
    assert out.app_names() == ("foot",) and len(asked) == 2
    out.deliver("two")
    assert len(asked) == 2, "the pipeline's answer stands for the delivery right after it"
    out.app_names()
    now[0] += 5.0
    out.deliver("three")
    assert len(asked) == 4, "an answer older than a moment is asked again"
