"""Doctor check for the microphone: a short level measurement in a child process, so a
stalled audio system costs the deadline, not a hang.
"""
from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any

from ctrlspeak.doctor.probe import MISSING, OK, PROBE_TIMEOUT_S, WARN, Check, given_env, new_deadline, run_python

#: length of the microphone level check, and how long the child waits for that much audio
LEVEL_SECONDS = 0.5
LEVEL_DEADLINE_S = 1.0


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
from ctrlspeak.doctor.microphone import measure_input
print(json.dumps(measure_input(float(sys.argv[1]), float(sys.argv[2]))))
"""


def check_microphone(env: Mapping[str, str] | None = None) -> Check:
    env = given_env(env)
    out = run_python(_MIC_CHILD, env, str(LEVEL_SECONDS), str(LEVEL_DEADLINE_S), deadline=new_deadline())
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
