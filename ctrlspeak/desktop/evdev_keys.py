"""The "evdev" key source: keyboards read from the kernel's input devices (/dev/input/event*), read only.

Wayland gives no program the global keys, but the kernel does, to whoever may read
/dev/input/event* (the ``input`` group, or a udev ``uaccess`` rule). Devices are opened
read-only and never grabbed (EVIOCGRAB), so the desktop keeps every key; only keyboards are
kept open, told by their capabilities (:func:`ctrlspeak.desktop.evdev_codes.is_keyboard`).

One thread, "ctrlspeak-evdev", waits in a selector on every keyboard's fd, a wake pipe
(stop()) and, where the C library has it, an inotify watch on /dev/input (a keyboard
plugged in later); without inotify it rescans every RESCAN_S. A device that goes away
(ENODEV) is dropped and the others read on. Records are decoded here from their raw
bytes (:func:`~ctrlspeak.desktop.evdev_codes.decode_many`), and ``press``/``release`` run
on that thread. Key events and key codes are never logged; device names and counts are.

evdev (python-evdev) is imported only inside the default device opener, so the daemon
imports this module without it. Tests pass ``list_devices``/``open_device`` of their own.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import glob
import logging
import os
import re
import selectors
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from ctrlspeak import errors
from ctrlspeak.desktop.evdev_codes import EVENT, decode_many, is_keyboard

log = logging.getLogger(__name__)

INPUT_DIR = "/dev/input"
RESCAN_S = 2.0
JOIN_TIMEOUT_S = 1.0
_READ_BYTES = 64 * EVENT.size

#: what to run when /dev/input is not readable (same on Debian/Ubuntu, Arch and Fedora)
INPUT_GROUP_FIX = (
    "sudo usermod -aG input $USER, then log out and back in (Debian/Ubuntu, Arch, Fedora alike); "
    'or a udev rule: /etc/udev/rules.d/70-ctrlspeak.rules with KERNEL=="event*", SUBSYSTEM=="input", '
    'TAG+="uaccess", then sudo udevadm control --reload && sudo udevadm trigger'
)


class InputDevice(Protocol):
    """What the source needs of an opened device (python-evdev's ``InputDevice`` has it)."""

    fd: int
    name: str

    def capabilities(self) -> Mapping[int, Iterable[object]]: ...

    def close(self) -> None: ...


ListDevices = Callable[[], list[str]]
OpenDevice = Callable[[str], InputDevice]


def _event_number(path: str) -> tuple[int, str]:
    match = re.search(r"(\d+)$", path)
    return (int(match.group(1)) if match else -1, path)


def list_event_devices(input_dir: str = INPUT_DIR) -> list[str]:
    """Every /dev/input/event* path, readable or not (evdev's own list hides the unreadable)."""
    return sorted(glob.glob(os.path.join(input_dir, "event*")), key=_event_number)


def open_event_device(path: str) -> InputDevice:
    """python-evdev's device, opened read-only (evdev < 1.7 has no ``readonly``: it still never grabs)."""
    import evdev

    try:
        return evdev.InputDevice(path, readonly=True)  # type: ignore[return-value]
    except TypeError:
        return evdev.InputDevice(path)  # type: ignore[return-value]


def evdev_problem(list_devices: ListDevices | None = None, open_device: OpenDevice | None = None,
                  input_dir: str = INPUT_DIR) -> str | None:
    """None when at least one keyboard device can be read; else why not, in one line."""
    if list_devices is None:
        if not sys.platform.startswith("linux"):
            return "the kernel's input devices (evdev) exist only on Linux"
        if not os.path.isdir(input_dir):
            return f"there is no {input_dir} on this system (a container or a remote session?)"
        list_devices = lambda: list_event_devices(input_dir)  # noqa: E731
    if open_device is None:
        try:
            import evdev  # noqa: F401  (the import itself is the check)
        except ImportError as exc:
            return f"python-evdev is not installed ({exc}); reinstall ctrlspeak's dependencies"
        open_device = open_event_device
    paths = list_devices()
    if not paths:
        return f"no input devices in {input_dir}"
    denied = 0
    for path in paths:
        try:
            device = open_device(path)
        except PermissionError:
            denied += 1
            continue
        except OSError:
            continue  # gone since the listing, or not an evdev node
        try:
            if is_keyboard(device.capabilities()):
                return None
        finally:
            _close(device)
    if denied:
        return f"no permission to read {denied} of the {len(paths)} devices in {input_dir} (not in the input group)"
    return f"none of the {len(paths)} readable devices in {input_dir} is a keyboard"


def _close(device: InputDevice) -> None:
    try:
        device.close()
    except OSError:
        pass  # an unplugged device's fd may already be dead; nothing is left to release


class _Inotify:
    """An inotify watch on one folder, through the C library (the stdlib has no binding)."""

    # IN_CREATE: a new node; IN_ATTRIB: udev giving it its group or ACL a moment later
    _MASK = 0x100 | 0x004 | 0x200 | 0x080  # IN_CREATE | IN_ATTRIB | IN_DELETE | IN_MOVED_TO

    def __init__(self, folder: str) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(fd, os.fsencode(folder), self._MASK) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch on {folder} failed")
        self.fd = fd

    def drain(self) -> None:
        # which name changed does not matter: any change means "scan again"
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)


class EvdevKeys:
    """Keys from every keyboard among the kernel's input devices, and from those plugged in later."""

    name = "evdev"

    def __init__(self, list_devices: ListDevices | None = None, open_device: OpenDevice | None = None, *,
                 watch_dir: str | None = INPUT_DIR, rescan_s: float = RESCAN_S) -> None:
        """``watch_dir``: the folder inotify watches for new devices (None: rescan every ``rescan_s``)."""
        self._list = list_devices or (lambda: list_event_devices(INPUT_DIR))
        self._open = open_device or open_event_device
        self._watch_dir = watch_dir
        self._rescan_s = rescan_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake_w: int | None = None
        self._stopping = threading.Event()

    @property
    def alive(self) -> bool:
        with self._lock:
            thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None:
        reader = _Reader(self._list, self._open, press, release)
        reader.scan()
        if not reader.devices:
            reader.close()
            raise errors.HotkeyUnavailable(reader.why_none())
        inotify = None
        if self._watch_dir is not None:
            try:
                inotify = _Inotify(self._watch_dir)
            except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify
                log.info("cannot watch %s for new keyboards (%s); rescanning every %g s",
                         self._watch_dir, exc, self._rescan_s)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        self._stopping = stopping = threading.Event()
        thread = threading.Thread(target=reader.run, args=(wake_r, inotify, self._rescan_s, stopping),
                                  name="ctrlspeak-evdev", daemon=True)
        with self._lock:
            self._thread, self._wake_w = thread, wake_w
        thread.start()
        log.info("reading keys from %d keyboard(s): %s", len(reader.devices),
                 ", ".join(sorted(d.name for d in reader.devices.values())))

    def stop(self) -> None:
        with self._lock:
            thread, wake_w = self._thread, self._wake_w
            self._thread = self._wake_w = None
        if thread is None:
            return
        self._stopping.set()
        try:
            os.write(wake_w, b"x")  # type: ignore[arg-type]
        except OSError:
            pass  # the reader has ended already (its end of the pipe is closed)
        finally:
            os.close(wake_w)  # type: ignore[arg-type]
        if thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("the evdev reader did not stop within %.1f s; abandoning its thread", JOIN_TIMEOUT_S)


class _Reader:
    """The reader thread's state: the open keyboards and what the scans learnt. Used by one thread at a time."""

    def __init__(self, list_devices: ListDevices, open_device: OpenDevice,
                 press: Callable[[str], None], release: Callable[[str], None]) -> None:
        self._list, self._open = list_devices, open_device
        self._press, self._release = press, release
        self.devices: dict[str, InputDevice] = {}
        self._tails: dict[str, bytes] = {}
        self._not_keyboards: set[str] = set()  # opened once, not a keyboard: not opened again
        self._denied: set[str] = set()  # said once; tried again each scan (a group or ACL may come)
        self._seen = 0
        self._selector: selectors.BaseSelector | None = None

    def why_none(self) -> str:
        if self._denied:
            return (f"no permission to read {len(self._denied)} of the {self._seen} input devices "
                    "(not in the input group)")
        if not self._seen:
            return "no input devices found"
        return f"none of the {self._seen} input devices is a keyboard"

    def scan(self) -> None:
        try:
            paths = self._list()
        except OSError as exc:
            log.warning("cannot list the input devices: %s", exc)
            return
        self._seen = len(paths)
        present = set(paths)
        # a number freed by an unplugged mouse may come back as a keyboard
        self._not_keyboards &= present
        self._denied &= present
        for path in paths:
            if path in self.devices or path in self._not_keyboards:
                continue
            self._try_open(path)

    def _try_open(self, path: str) -> None:
        try:
            device = self._open(path)
        except PermissionError:
            if path not in self._denied:
                log.info("no permission to read %s", path)
                self._denied.add(path)
            return
        except OSError as exc:
            log.debug("cannot open %s: %s", path, exc.strerror or exc)
            return
        self._denied.discard(path)
        try:
            keyboard = is_keyboard(device.capabilities())
        except OSError:
            keyboard = False
        if not keyboard:
            _close(device)
            self._not_keyboards.add(path)
            return
        self.devices[path] = device
        self._tails[path] = b""
        if self._selector is not None:
            self._selector.register(device.fd, selectors.EVENT_READ, path)
            log.info("keyboard added: %s (%d watched)", device.name, len(self.devices))

    def _drop(self, path: str) -> None:
        device = self.devices.pop(path)
        self._tails.pop(path, None)
        if self._selector is not None:
            try:
                self._selector.unregister(device.fd)
            except (KeyError, ValueError):
                pass
        _close(device)
        log.info("keyboard gone: %s (%d watched)", device.name, len(self.devices))

    def run(self, wake_r: int, inotify: _Inotify | None, rescan_s: float, stopping: threading.Event) -> None:
        self._selector = selector = selectors.DefaultSelector()
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        if inotify is not None:
            selector.register(inotify.fd, selectors.EVENT_READ, "inotify")
        for path, device in self.devices.items():
            selector.register(device.fd, selectors.EVENT_READ, path)
        next_scan = time.monotonic() + rescan_s
        try:
            while not stopping.is_set():
                timeout = None if inotify is not None else max(0.0, next_scan - time.monotonic())
                for key, _ in selector.select(timeout):
                    if key.data == "wake" or stopping.is_set():
                        return
                    if key.data == "inotify":
                        inotify.drain()  # type: ignore[union-attr]
                        self.scan()
                    elif key.data in self.devices:
                        self._read(key.data)
                if inotify is None and time.monotonic() >= next_scan:
                    self.scan()
                    next_scan = time.monotonic() + rescan_s
        finally:
            self.close()
            selector.close()
            os.close(wake_r)
            if inotify is not None:
                inotify.close()

    def _read(self, path: str) -> None:
        device = self.devices[path]
        try:
            data = os.read(device.fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.ENODEV:
                log.info("reading %s failed (%s); dropping it", device.name, exc.strerror or exc)
            self._drop(path)
            return
        if not data:  # a real device never ends; a pipe standing in for one does
            self._drop(path)
            return
        keys, self._tails[path] = decode_many(self._tails[path] + data)
        for name, pressed in keys:
            try:
                (self._press if pressed else self._release)(name)
            except Exception as exc:  # noqa: BLE001 - one bad callback must not end the reader
                # the type only: the message could carry the key
                log.error("the key callback failed (%s)", type(exc).__name__)

    def close(self) -> None:
        for path in list(self.devices):
            _close(self.devices.pop(path))
        self._tails.clear()
