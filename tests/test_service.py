"""`ctrlspeak service`: the systemd unit (checked by systemd-analyze), the launchd plist, install and
uninstall into a private HOME, and the sd_notify client against a real datagram socket."""
from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from ctrlspeak import errors, sdnotify, service
from ctrlspeak.commands import service as service_cmd

PYTHON_ARGV = ["-m", "ctrlspeak", "run"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need(tool: str) -> str:
    """The tool's path; skip without it, but fail when CI is set (a broken CI image must show)."""
    path = shutil.which(tool)
    if path is None:
        if in_ci():
            pytest.fail(f"{tool} is required when CI is set", pytrace=False)
        pytest.skip(f"{tool} not installed")
    return path


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`systemd-analyze verify --user` without a running user manager.

    --user needs an XDG_RUNTIME_DIR (mode 0700) to set up its lookup paths; a private one works
    as root and as a user, with no manager and no bus. It exits 0 on unknown keys and bad values
    and only prints warnings, so callers must treat any stderr as failure.
    """
    runtime = tmp_path / "verify-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path),
           "XDG_RUNTIME_DIR": str(runtime), "XDG_CONFIG_HOME": str(tmp_path / "verify-config"),
           "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run([need("systemd-analyze"), "verify", "--user", str(unit)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def clean(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0 and result.stderr.strip() == ""


@pytest.fixture
def odd_python(tmp_path: Path) -> str:
    """A working python reachable through a path with a space, '$' and '%' in it.

    '%n' is a real specifier (the unit name): left unescaped it would change the path.
    """
    folder = tmp_path / "my venv $HOME 100%name" / "bin"
    folder.mkdir(parents=True)
    link = folder / "python"
    link.symlink_to(sys.executable)
    return str(link)


def unit_keys(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(f"{section}.{key}", []).append(value)
    return keys


# --- the unit ----------------------------------------------------------------------------------

def test_unit_for_a_python_path_with_space_dollar_percent_verifies_clean(tmp_path, odd_python):
    env = {"DISPLAY": ":0", "XAUTHORITY": "/run/user/1000/gdm/Xauthority 2%",
           "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
    text = service.systemd_unit([odd_python, *PYTHON_ARGV], env)
    unit = tmp_path / "ctrlspeak.service"
    unit.write_text(text)
    result = verify(unit, tmp_path)
    assert clean(result), result.stderr
    keys = unit_keys(text)
    assert keys["Service.Type"] == ["notify"] and keys["Service.NotifyAccess"] == ["main"]
    assert keys["Service.Restart"] == ["on-failure"] and keys["Service.RestartSec"] == ["2"]
    assert int(keys["Service.TimeoutStartSec"][0]) >= 120
    assert keys["Unit.After"] == ["graphical-session.target"] == keys["Unit.PartOf"]
    assert keys["Install.WantedBy"] == ["graphical-session.target"]
    assert keys["Service.ExecStart"] == ['"' + odd_python.replace("%", "%%") + '" -m ctrlspeak run']
    # install-time values are fallbacks, never DISPLAY=... that would override a fresh login's
    assert 'Environment="CTRLSPEAK_SESSION_XAUTHORITY=/run/user/1000/gdm/Xauthority 2%%"' in text
    assert not any(v.startswith(('"DISPLAY=', "DISPLAY=")) for v in keys["Service.Environment"])


def test_restart_prevent_statuses_are_the_no_restart_error_codes():
    keys = unit_keys(service.systemd_unit(["/usr/bin/python3", *PYTHON_ARGV], {}))
    wanted = {errors.info_for(code).exit_status for code in service.NO_RESTART_CODES}
    assert {int(s) for s in keys["Service.RestartPreventExitStatus"][0].split()} == wanted
    assert "Service.Environment" not in keys


@pytest.mark.parametrize("breakage", ["misspelled key", "bad Type=", "unescaped %", "unquoted space"])
def test_the_verify_check_catches_broken_units(tmp_path, odd_python, breakage):
    """The check above is only worth something if it fails on broken units."""
    good = service.systemd_unit([odd_python, *PYTHON_ARGV], {"DISPLAY": ":0"})
    unit = tmp_path / "ctrlspeak.service"
    unit.write_text(good)
    assert clean(verify(unit, tmp_path))
    exec_good = '"' + odd_python.replace("%", "%%") + '"'
    broken = {
        "misspelled key": good.replace("RestartSec=2", "RestartSex=2"),
        "bad Type=": good.replace("Type=notify", "Type=notifyy"),
        "unescaped %": good.replace(exec_good, '"' + odd_python + '"'),
        "unquoted space": good.replace(exec_good, odd_python.replace("%", "%%")),
    }[breakage]
    assert broken != good
    unit.write_text(broken)
    result = verify(unit, tmp_path)
    assert not clean(result)
    assert result.stderr.strip()  # even where the exit status is 0


@pytest.mark.parametrize("word, quoted", [
    ("plain/path-1.0", "plain/path-1.0"),
    ("a b", '"a b"'),
    ("50%", "50%%"),
    ("$HOME", "$$HOME"),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    (";", "\\;"),
    ("", '""'),
])
def test_systemd_word_quoting(word, quoted):
    assert service.systemd_word(word) == quoted


def test_executable_path_keeps_dollar_but_doubles_percent():
    assert service.systemd_word("/opt/$x/50%/python", executable=True) == "/opt/$x/50%%/python"


@pytest.mark.parametrize("path", ['/opt/it\'s/python', '/opt/a"b/python', "/opt/back\\slash/python"])
def test_executable_paths_systemd_refuses_are_a_service_error(path):
    with pytest.raises(errors.ServiceError) as info:
        service.systemd_unit([path, *PYTHON_ARGV], {})
    assert info.value.code == "ERR_SERVICE"


def test_relative_python_is_refused():
    with pytest.raises(errors.ServiceError):
        service.daemon_argv("python3")


def test_session_environment_picks_set_one_line_values():
    env = {"DISPLAY": ":1", "WAYLAND_DISPLAY": "", "XAUTHORITY": "/x\ny", "PULSE_SERVER": "unix:/p", "HOME": "/h"}
    assert service.session_environment(env) == {"DISPLAY": ":1", "PULSE_SERVER": "unix:/p"}


def test_session_fallbacks_fill_only_what_is_missing():
    recorded = {f"{service.FALLBACK_PREFIX}{k}": v for k, v in {
        "DISPLAY": ":0", "XAUTHORITY": "/old/auth", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/old/bus"}.items()}
    bare = dict(recorded)
    assert service.apply_session_fallbacks(bare) == ["DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS"]
    assert bare["DISPLAY"] == ":0"
    # a fresh display from the login wins, and its XAUTHORITY is not mixed with the stale one
    fresh = dict(recorded, DISPLAY=":1")
    assert service.apply_session_fallbacks(fresh) == ["DBUS_SESSION_BUS_ADDRESS"]
    assert fresh["DISPLAY"] == ":1" and "XAUTHORITY" not in fresh
    assert service.apply_session_fallbacks({"DISPLAY": ":2"}) == []


def test_platform_choice():
    assert service.current_platform("linux") == "linux"
    assert service.current_platform("darwin") == "macos"
    with pytest.raises(errors.ServiceError):
        service.current_platform("win32")


# --- the plist -----------------------------------------------------------------------------------

def test_launchd_plist_parses_with_the_expected_keys(tmp_path):
    argv = ["/Users/me/my venv/bin/python", *PYTHON_ARGV]
    data = service.launchd_plist(argv, {"PATH": "/Users/me/my venv/bin:/usr/bin"}, tmp_path / "Logs")
    plist = plistlib.loads(data)
    assert plist["Label"] == service.LAUNCHD_LABEL
    assert plist["ProgramArguments"] == argv
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ProcessType"] == "Interactive"
    assert plist["EnvironmentVariables"]["PATH"].startswith("/Users/me/my venv/bin")
    for key in ("StandardOutPath", "StandardErrorPath"):
        assert Path(plist[key]).parent == tmp_path / "Logs"


def test_launchd_path_starts_with_the_python_dir_and_has_homebrew():
    value = service.launchd_path_value({"PATH": "/usr/bin:relative:/usr/bin"}, "/opt/venv/bin/python").split(":")
    assert value[0] == "/opt/venv/bin"
    assert "/opt/homebrew/bin" in value and "relative" not in value and value.count("/usr/bin") == 1


# --- install / uninstall / status through the command ---------------------------------------------

def command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ctrlspeak")
    service_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["service", *argv])
    return args.func(args)


@pytest.fixture
def session(isolated_env, monkeypatch):
    """A private HOME/XDG tree with no reachable user manager (never touch the real one)."""
    runtime = isolated_env / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":42")
    return isolated_env


def fake_tool(folder: Path, name: str, script: str) -> Path:
    """A stand-in for systemctl/launchctl that logs its arguments (the real ones must not run here)."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + f'printf "%s\\n" "$*" >> "{folder}/{name}.log"\n' + textwrap.dedent(script))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return folder / f"{name}.log"


def test_install_without_user_manager_writes_enables_and_says_what_to_run(session, capsys):
    need("systemctl")
    unit = session / "config" / "systemd" / "user" / service.UNIT_NAME
    assert command("install") == 0
    out = capsys.readouterr().out
    assert unit.is_file()
    assert unit.read_text() == service.systemd_unit(service.daemon_argv(), {"DISPLAY": ":42",
                                                                            "XDG_RUNTIME_DIR": str(session / "runtime")})
    assert "systemctl --user import-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY DBUS_SESSION_BUS_ADDRESS" in out
    assert "systemctl --user daemon-reload" in out and "systemctl --user enable --now ctrlspeak.service" in out
    link = unit.parent / "graphical-session.target.wants" / service.UNIT_NAME
    assert link.is_symlink()  # systemctl enable works on files without a running manager

    first = unit.read_bytes()
    assert command("install") == 0  # idempotent: same file, no temp files left beside it
    assert unit.read_bytes() == first
    assert sorted(p.name for p in unit.parent.iterdir()) == ["ctrlspeak.service", "graphical-session.target.wants"]

    assert command("status", "--json") == 0
    assert '"installed": true' in capsys.readouterr().out

    assert command("uninstall") == 0
    assert not unit.exists() and not link.is_symlink()
    assert command("uninstall") == 0
    assert "was not installed" in capsys.readouterr().out


def test_install_without_systemctl_is_a_clear_message(session, monkeypatch, capsys):
    empty = session / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert command("install") == 0
    out = capsys.readouterr().out
    assert "systemctl is not installed" in out and "autostart" in out
    assert service.unit_path().is_file()
    assert command("status") == 0
    assert "installed" in capsys.readouterr().out
    assert command("uninstall") == 0
    assert not service.unit_path().exists()


def test_a_failing_systemctl_step_is_a_service_error(session, monkeypatch):
    tools = session / "bin"
    fake_tool(tools, "systemctl", """\
        case "$*" in
          *daemon-reload*) echo "Failed to reload daemon: Access denied" >&2; exit 1 ;;
        esac
        exit 0
        """)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    with pytest.raises(errors.ServiceError) as info:
        command("install")
    assert info.value.code == "ERR_SERVICE"
    assert "daemon-reload" in info.value.message and "Access denied" in info.value.message
    assert service.unit_path().is_file()  # the unit is written before systemctl is asked


MANAGER_WITH_DISPLAY = """\
    case "$*" in *show-environment*) printf 'HOME=/h\\nDISPLAY=:42\\n' ;; esac
    exit 0
    """


def test_install_and_uninstall_drive_a_reachable_user_manager(session, monkeypatch):
    tools = session / "bin"
    calls = fake_tool(tools, "systemctl", MANAGER_WITH_DISPLAY)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setenv("XAUTHORITY", "/tmp/xauth")
    assert command("install") == 0
    assert calls.read_text().splitlines() == [
        "--user show-environment",
        "--user import-environment DISPLAY XAUTHORITY",
        "--user daemon-reload",
        "--user enable ctrlspeak.service",
        "--user show-environment",
        "--user restart --no-block ctrlspeak.service",
    ]
    calls.unlink()
    assert command("uninstall") == 0
    assert calls.read_text().splitlines() == [
        "--user show-environment",
        "--user disable --now ctrlspeak.service",
        "--user daemon-reload",
        "--user reset-failed ctrlspeak.service",
    ]


def test_install_from_a_shell_without_display_enables_but_does_not_start(session, monkeypatch, capsys):
    tools = session / "bin"
    calls = fake_tool(tools, "systemctl", "exit 0\n")  # a manager whose environment has no display
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.delenv("DISPLAY")
    assert command("install") == 0
    assert "not started" in capsys.readouterr().out
    log = calls.read_text()
    assert "--user enable ctrlspeak.service" in log and "restart" not in log and "import-environment" not in log


def test_macos_install_writes_a_parseable_plist_and_falls_back_to_load(session, monkeypatch, capsys):
    tools = session / "bin"
    calls = fake_tool(tools, "launchctl", """\
        case "$1" in bootstrap) echo "Bootstrap failed: 5: Input/output error" >&2; exit 5 ;; esac
        exit 0
        """)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    assert command("--platform", "macos", "install") == 0
    path = session / "home" / "Library" / "LaunchAgents" / f"{service.LAUNCHD_LABEL}.plist"
    with open(path, "rb") as fh:
        plist = plistlib.load(fh)
    assert plist["ProgramArguments"] == [sys.executable, *PYTHON_ARGV]
    assert Path(plist["StandardErrorPath"]).parent == session / "home" / "Library" / "Logs" / "ctrlspeak"
    assert Path(plist["StandardErrorPath"]).parent.is_dir()
    log = calls.read_text()
    assert f"bootstrap gui/{os.getuid()} {path}" in log and f"load -w {path}" in log
    assert command("--platform", "macos", "uninstall") == 0
    assert not path.exists()
    assert f"bootout gui/{os.getuid()}/{service.LAUNCHD_LABEL}" in calls.read_text()


def test_macos_install_without_launchctl_prints_the_command(session, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(session))
    assert command("--platform", "macos", "install") == 0
    assert f"launchctl bootstrap gui/{os.getuid()}" in capsys.readouterr().out


# --- sd_notify -------------------------------------------------------------------------------------

def test_notify_without_socket_is_false():
    assert sdnotify.notify("READY=1", {}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_notify_to_a_path_socket(tmp_path):
    address = tmp_path / "n.sock"
    assert len(str(address)) < 100, "AF_UNIX paths are capped at 108 bytes"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(address))
        receiver.settimeout(5)
        env = {"NOTIFY_SOCKET": str(address)}
        assert sdnotify.ready(env) is True
        assert receiver.recv(4096) == b"READY=1"
        assert sdnotify.status("loading\nparakeet", env) is True
        assert receiver.recv(4096) == b"STATUS=loading parakeet"
        assert sdnotify.stopping(env) is True
        assert receiver.recv(4096) == b"STOPPING=1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_notify_to_an_abstract_socket():
    name = f"ctrlspeak-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(5)
        assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert receiver.recv(4096) == b"READY=1"


def test_notify_to_a_socket_nobody_listens_on_is_false(tmp_path):
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False
