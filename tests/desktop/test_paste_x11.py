"""Paste and type into a real Tk window and a real xterm on a private Xvfb, with the real xclip,
xdotool and xprop (which names the focused app, so a terminal gets its own chord).

Only X is needed here (no D-Bus, no audio), so this module starts its own Xvfb rather than the
full stack in harness.py. Missing tools skip the module locally and fail it on CI (CI=...).
"""
from __future__ import annotations

import importlib.util
import os
import select
import shutil
import subprocess
import sys
import time
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ctrlspeak.desktop.clipboard import ClipboardContent, XclipClipboard, detect_clipboard
from ctrlspeak.desktop.output import NullKeyGuard, Output

pytestmark = pytest.mark.desktop

HERE = Path(__file__).resolve().parent
TOOLS = ("Xvfb", "xdpyinfo", "xdotool", "xclip")


def _require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    try:
        import tkinter  # noqa: F401
    except ImportError:
        missing.append("python3-tk (tkinter)")
    if missing:
        message = f"desktop test needs {', '.join(missing)} (apt install xvfb x11-utils xdotool xclip python3-tk)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def x11_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A private Xvfb; yields an environment whose DISPLAY points at it."""
    _require_tools()
    log = (tmp_path_factory.mktemp("xvfb") / "xvfb.log").open("wb")
    read_fd, write_fd = os.pipe()
    # -displayfd: Xvfb picks a free display itself and writes its number once it accepts clients,
    # so parallel sessions on a shared machine cannot race for the same :N.
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read_fd, 16) if ready else b""
            if not chunk:
                raise RuntimeError(f"Xvfb did not report a display (exit status {proc.poll()})")
            number += chunk
        env = {**os.environ, "DISPLAY": f":{int(number)}"}
        env.pop("WAYLAND_DISPLAY", None)
        subprocess.run(["xdpyinfo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=10, check=True)
        yield env
    finally:
        os.close(read_fd)
        proc.terminate()  # the xclip clipboard owners exit with the server
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


class TkWindow:
    def __init__(self, proc: subprocess.Popen, dump: Path) -> None:
        self.proc = proc
        self.dump = dump

    def text(self) -> str:
        try:
            return self.dump.read_text("utf-8")
        except FileNotFoundError:
            return ""

    def wait_text(self, expected: str, timeout: float = 5.0) -> None:
        wait_for(lambda: self.text() == expected, timeout, f"the window to hold {expected!r} (has {self.text()!r})")


@pytest.fixture
def tk_window(x11_env, tmp_path, request) -> Iterator[TkWindow]:
    """A fresh Tk text window, focused, that mirrors its text into a file every 100 ms."""
    title = f"CtrlspeakPaste{os.getpid()}{request.node.name.replace('[', '').replace(']', '')}"[:60]
    title = "".join(c for c in title if c.isalnum())
    dump = tmp_path / "window.txt"
    err = (tmp_path / "tk.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(HERE / "_tk_target.py"), title, str(dump)],
                            env=x11_env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--name", f"^{title}$"], env=x11_env,
                               capture_output=True, text=True, timeout=20, check=True)
        window_id = found.stdout.split()[0]
        # No window manager: windowactivate fails, windowfocus --sync works.
        subprocess.run(["xdotool", "windowfocus", "--sync", window_id], env=x11_env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=True)
        window = TkWindow(proc, dump)
        wait_for(dump.exists, 10, "the Tk main loop")
        yield window
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        err.close()


@pytest.fixture
def xclip(x11_env) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        if "-i" in args:
            # the xclip child that owns the clipboard inherits stdout/stderr: never a pipe
            return subprocess.run(["xclip", "-selection", "clipboard", *args], input=input, env=x11_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5, check=True)
        return subprocess.run(["xclip", "-selection", "clipboard", *args], env=x11_env,
                              capture_output=True, timeout=5, check=False)
    return run


def png_bytes(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([200, 10, 10]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_detects_xclip(x11_env):
    assert isinstance(detect_clipboard(x11_env), XclipClipboard)


def test_paste_lands_in_window_and_previous_text_is_restored(x11_env, tk_window, xclip):
    xclip("-i", input=b"previous clipboard")
    out = Output("paste", key_guard=NullKeyGuard(), env=x11_env)

    delivery = out.deliver("hello from ctrlspeak")

    assert delivery.method == "paste" and delivery.pasted, delivery
    tk_window.wait_text("hello from ctrlspeak")
    assert xclip("-o").stdout == b"previous clipboard"
    time.sleep(0.3)  # and nothing else arrives later
    assert tk_window.text() == "hello from ctrlspeak"


def test_unicode_paste(x11_env, tk_window, xclip):
    xclip("-i", input="before ✓".encode())
    text = "Grüße, 你好 — ✓"
    assert Output("paste", key_guard=NullKeyGuard(), env=x11_env).deliver(text).pasted
    tk_window.wait_text(text)
    assert xclip("-o").stdout.decode() == "before ✓"


def test_image_clipboard_is_restored_byte_identical(x11_env, tk_window, xclip):
    image = png_bytes()
    xclip("-i", "-t", "image/png", input=image)

    delivery = Output("paste", key_guard=NullKeyGuard(), env=x11_env).deliver("hello from ctrlspeak")

    assert delivery.pasted
    tk_window.wait_text("hello from ctrlspeak")
    assert "image/png" in xclip("-o", "-t", "TARGETS").stdout.decode().split()
    assert xclip("-o", "-t", "image/png").stdout == image


def test_empty_clipboard_is_left_empty(x11_env, tk_window):
    clipboard = XclipClipboard({"xclip": shutil.which("xclip")}, x11_env)
    clipboard.restore(None)
    assert clipboard.get() is None
    assert Output("paste", key_guard=NullKeyGuard(), env=x11_env).deliver("some words").pasted
    tk_window.wait_text("some words")
    assert clipboard.get() is None


def test_type_mode_types_into_window(x11_env, tk_window, xclip):
    xclip("-i", input=b"untouched")
    delivery = Output("type", key_guard=NullKeyGuard(), env=x11_env).deliver("typed by ctrlspeak, 1-2-3!")
    assert delivery.method == "type" and delivery.pasted
    tk_window.wait_text("typed by ctrlspeak, 1-2-3!")
    assert xclip("-o").stdout == b"untouched"


def test_clipboard_round_trips_a_non_text_target(x11_env):
    clipboard = detect_clipboard(x11_env)
    content = ClipboardContent("application/x-ctrlspeak-test", bytes(range(256)))
    clipboard.restore(content)
    assert clipboard.get() == content
    clipboard.set_text("text wins")
    assert clipboard.get() == ClipboardContent.from_text("text wins")


def test_without_xdotool_text_stays_on_clipboard(x11_env, tk_window, xclip, tmp_path):
    # only xclip on PATH, and a DISPLAY that differs from this process's (so pynput is not used)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "xclip").symlink_to(shutil.which("xclip"))
    env = {**x11_env, "PATH": str(bin_dir)}
    if os.environ.get("DISPLAY") == env["DISPLAY"]:
        pytest.skip("this process already uses the test display")
    xclip("-i", input=b"previous clipboard")

    delivery = Output("paste", key_guard=NullKeyGuard(), env=env).deliver("hello from ctrlspeak")

    assert delivery.method == "clipboard" and not delivery.pasted
    assert "xdotool" in delivery.detail and "on the clipboard" in delivery.detail
    assert xclip("-o").stdout == b"hello from ctrlspeak"
    time.sleep(0.3)
    assert tk_window.text() == ""


def test_without_xdotool_pynput_pastes(x11_env, tk_window, xclip, tmp_path):
    # A child process, so that pynput binds to the test display and this process stays clean.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "xclip").symlink_to(shutil.which("xclip"))
    if importlib.util.find_spec("pynput") is None:  # importing it here would need a DISPLAY
        pytest.skip("pynput is not installed")
    xclip("-i", input=b"previous clipboard")
    code = (
        "from ctrlspeak.desktop.output import NullKeyGuard, Output\n"
        "d = Output('paste', key_guard=NullKeyGuard()).deliver('pasted by pynput')\n"
        "print(d.method, d.pasted)\n"
    )
    env = {**x11_env, "PATH": str(bin_dir), "PYTHONPATH": str(HERE.parent.parent)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=(tmp_path / "child.log").open("wb"), timeout=30)
    assert proc.stdout.decode().split() == ["paste", "True"], (tmp_path / "child.log").read_text()
    tk_window.wait_text("pasted by pynput")
    assert xclip("-o").stdout == b"previous clipboard"


# -- a terminal: the chord follows the focused app's WM_CLASS ----------------------------------

class Terminal:
    """An xterm whose pty is raw and whose input goes to a file: what a paste or typing sends."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def received(self) -> bytes:
        return self.out.read_bytes() if self.out.exists() else b""

    def wait_received(self, expected: bytes, timeout: float = 5.0) -> None:
        wait_for(lambda: self.received() == expected, timeout,
                 f"the terminal to receive {expected!r} (has {self.received()!r})")


@pytest.fixture
def xterm(x11_env, tmp_path, request) -> Iterator[Callable[..., Terminal]]:
    """Start an xterm (extra xterm arguments as given), focused; stopped after the test."""
    if shutil.which("xterm") is None or shutil.which("xprop") is None:
        message = "terminal paste test needs xterm and xprop (apt install xterm x11-utils)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> Terminal:
        name = f"ctrlspeakterm{os.getpid()}x{len(procs)}"
        out = tmp_path / f"{name}.out"
        log = (tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen(["xterm", "-name", name, *args, "-e", "sh", "-c", f"stty raw -echo; exec cat > '{out}'"],
                                env=x11_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        procs.append(proc)
        found = subprocess.run(["xdotool", "search", "--sync", "--classname", f"^{name}$"], env=x11_env,
                               capture_output=True, text=True, timeout=20, check=True)
        subprocess.run(["xdotool", "windowfocus", "--sync", found.stdout.split()[0]], env=x11_env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=True)
        wait_for(out.exists, 10, "the shell in the xterm to open its output file")
        time.sleep(0.2)  # stty runs before cat: let the pty be raw before keys arrive
        return Terminal(out)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_a_terminal_that_pastes_with_ctrl_shift_v_gets_it(x11_env, xterm, xclip):
    # xterm pastes the CLIPBOARD with no key of its own (Ctrl+Shift+V sends 0x16): bind it as
    # the terminals in chord.TERMINALS have it, and say so in the table, as a person would
    terminal = xterm("-xrm", "*VT100.translations: #override Ctrl Shift <Key>V: insert-selection(CLIPBOARD)")
    xclip("-i", input=b"previous clipboard")
    out = Output("paste", key_guard=NullKeyGuard(), env=x11_env, paste_chords=(("XTerm", "ctrl+shift+v"),))

    delivery = out.deliver("echo pasted into a terminal")

    assert delivery.method == "paste" and delivery.pasted and "ctrl+shift+v" in delivery.detail, delivery
    terminal.wait_received(b"echo pasted into a terminal")
    assert xclip("-o").stdout == b"previous clipboard"
    time.sleep(0.3)
    assert terminal.received() == b"echo pasted into a terminal"  # no stray 0x16 from a Ctrl+V


def test_a_stock_xterm_gets_the_text_typed(x11_env, xterm, xclip):
    terminal = xterm()
    xclip("-i", input=b"untouched")

    delivery = Output("paste", key_guard=NullKeyGuard(), env=x11_env).deliver("ls -la ~/notes")

    assert delivery.method == "type" and delivery.pasted, delivery
    terminal.wait_received(b"ls -la ~/notes")
    assert xclip("-o").stdout == b"untouched"


def test_ctrl_v_into_a_terminal_is_what_this_fixes(x11_env, xterm, xclip):
    """The measured failure: the ordinary chord (table entry ctrl+v) sends a literal 0x16."""
    terminal = xterm()
    xclip("-i", input=b"previous clipboard")
    delivery = Output("paste", key_guard=NullKeyGuard(), env=x11_env,
                      paste_chords=(("xterm", "ctrl+v"),)).deliver("lost words")
    assert delivery.method == "paste"
    terminal.wait_received(b"\x16")
