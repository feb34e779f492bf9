"""Doctor checks for the machine beyond the desktop: the service manager, the model cache
and the compute device (judged by :mod:`ctrlspeak.compute`, without importing torch).
"""
from __future__ import annotations

from collections.abc import Mapping

from ctrlspeak import compute, config, errors, service
from ctrlspeak.doctor.probe import MISSING, OK, PROBE_TIMEOUT_S, WARN, Check, detect_session, given_env, which


def check_service(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = given_env(env)
    if detect_session(env, sys_platform).kind == "macos":
        if which("launchctl", env):
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

    env = given_env(env)
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
    env = given_env(env)
    try:
        preference = config.load(env=env).compute_device
    except errors.ConfigError:
        preference = "auto"  # the model row reports the broken config
    device, why = compute.likely_device(preference)
    if device == "none":
        return Check("compute", MISSING, why, "install torch and nemo_toolkit[asr] (pip install ctrlspeak)", True)
    return Check("compute", OK, f"{device} ({why})", "", True)
