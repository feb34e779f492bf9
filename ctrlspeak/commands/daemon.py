"""``ctrlspeak run`` and the verbs that drive a running daemon over its control socket."""
from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
from pathlib import Path
from typing import Any

from ctrlspeak import config, errors
from ctrlspeak.commands import flags

CONTROL_VERBS = ("toggle", "start", "stop", "cancel", "status")


def add_parsers(sub: Any) -> None:
    r = sub.add_parser("run", help="run the dictation daemon (triple-tap Ctrl to dictate)")
    flags.add_model_flags(r)
    flags.add_mic_flags(r)
    r.add_argument("--output", choices=("paste", "type", "stdout"), help="how text is delivered (default: paste)")
    r.add_argument("--no-history", dest="history", action="store_false", default=None,
                   help="do not keep transcripts in the history database")
    r.add_argument("--no-tray", dest="tray", action="store_false", default=None, help="no tray icon")
    r.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                   help="live text while speaking: decode the words not yet final every live_interval_s")
    r.add_argument("--live-typing", action=argparse.BooleanOptionalAction, default=None,
                   help="type each segment at the cursor as soon as a pause makes it final; the rest at the stop")
    flags.add_chunk_flag(r)
    r.add_argument("--no-hotkey", dest="hotkey", action="store_false", default=True,
                   help="no global key listener (drive it with `ctrlspeak toggle`)")
    r.set_defaults(func=run)
    for verb, text in (("toggle", "start or stop dictation in the running daemon"),
                       ("start", "start dictation"), ("stop", "stop dictation and deliver the text"),
                       ("cancel", "stop dictation and throw the audio away"),
                       ("status", "show the daemon's state")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("--json", action="store_true", help="print the reply as JSON")
        if verb == "status":
            p.add_argument("--follow", "-f", action="store_true",
                           help="stream status events as JSON lines (for Waybar-style bars and scripts)")
        p.set_defaults(func=control_verb, verb=verb)
    d = sub.add_parser("devices", help="list microphones")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=devices)


class PrivateLogFile(logging.handlers.RotatingFileHandler):
    """The daemon's log, mode 0600 like every other file it writes (it names models, devices
    and paths), whatever the umask: created so, tightened if an older one is looser, and so is
    each new file after a rollover (the rotated ones keep their mode through the rename)."""

    def _open(self):  # noqa: ANN202 - logging's own hook
        import os

        open_flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.baseFilename, open_flags, 0o600)
        try:
            if os.fstat(fd).st_uid == os.geteuid():
                os.fchmod(fd, 0o600)
            return open(fd, self.mode, encoding=self.encoding, errors=self.errors)  # noqa: SIM115
        except BaseException:
            os.close(fd)
            raise


def _setup_daemon_logging(level: str) -> Path:
    import os

    from platformdirs import user_log_dir

    log_dir = Path(user_log_dir("ctrlspeak", appauthor=False))
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if log_dir.stat().st_uid == os.geteuid():
        os.chmod(log_dir, 0o700)
    path = log_dir / "ctrlspeak.log"
    handler = PrivateLogFile(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, getattr(logging, level.upper(), logging.WARNING), logging.INFO))
    for h in root.handlers:
        if h is not handler and isinstance(h, logging.StreamHandler):
            # journald/terminal: keep stderr at the configured level; the file gets INFO too
            h.setLevel(getattr(logging, level.upper(), logging.WARNING))
            h.addFilter(_not_on_console_already)
    return path


def _not_on_console_already(record: logging.LogRecord) -> bool:
    """Errors the status console line shows go to the log file only: not twice on stderr."""
    return not getattr(record, "on_console", False)


def run(args: argparse.Namespace) -> int:
    import os

    from ctrlspeak import service
    from ctrlspeak.daemon.core import Daemon

    # under systemd: restore DISPLAY & co. recorded at install time, where the login left them unset
    service.apply_session_fallbacks(os.environ)

    given = flags.config_flags(args)
    cfg = config.load(given)
    log_path = _setup_daemon_logging(cfg.log_level)
    logging.getLogger(__name__).info("ctrlspeak daemon starting; log file %s", log_path)
    from ctrlspeak.daemon.native_stderr import NativeStderr

    native = NativeStderr()  # PortAudio's and ALSA's raw lines off the console
    native.install()
    try:
        daemon = Daemon(cfg, given, console=True, hotkey=args.hotkey)
        return daemon.run()
    finally:
        native.close()


def control_verb(args: argparse.Namespace) -> int:
    from ctrlspeak import control

    if args.verb == "status" and args.follow:
        try:
            for event in control.follow():
                print(json.dumps(event), flush=True)
        except (KeyboardInterrupt, BrokenPipeError):
            return 0
        return 0
    reply = control.request(args.verb)
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    state = reply.get("state", "?")
    model = reply.get("model", "")
    line = f"{state}" + (f"  model={model}" if model else "") + (f"  pid={reply['pid']}" if "pid" in reply else "")
    download = reply.get("download")
    if download:  # a model download in progress: say how far and how long
        from ctrlspeak.transfer import Transfer, describe

        t = Transfer(download["done_bytes"], download.get("total_bytes"), download.get("rate_bps"),
                     download.get("eta_s"))
        line += f"\ndownloading {model or 'the model'}: {describe(t)}"
    err = reply.get("error")
    if err:
        line += f"\n{err['code']}: {err['message']} ({err['hint']})"
    print(line)
    if args.verb == "status" and err:
        return errors.info_for(err["code"]).exit_status
    return 0


def devices(args: argparse.Namespace) -> int:
    from ctrlspeak.audio.capture import list_input_devices

    found = list_input_devices()
    if args.json:
        print(json.dumps([d.__dict__ for d in found], indent=2))
        return 0
    if not found:
        raise errors.AudioDeviceError("no audio input device found")
    for d in found:
        mark = "*" if d.is_default else " "
        print(f"{mark} {d.index:>3}  {d.name}  ({d.channels} ch, {d.default_rate:.0f} Hz, {d.hostapi})")
    return 0
