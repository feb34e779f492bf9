"""The daemon's audio source (the microphone, or a file for ``bench``) and PortAudio's release.

The loop owns one :class:`Microphone`. Between recordings the audio system is shut down a
moment after the microphone closes (:data:`AUDIO_RELEASE_S`, once the stop sound has played),
so an idle daemon holds no audio device and no PortAudio threads; the next recording (or the
hotkey's pre-roll) starts it again. The release is a deadline the loop waits on, not a timer.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ctrlspeak import errors

log = logging.getLogger(__name__)

#: PortAudio is shut down this long after the microphone closes (release_portaudio)
AUDIO_RELEASE_S = 2.0


def trim_heap() -> None:
    """Hand the heap's free pages back to the OS (glibc's malloc_trim); elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Microphone:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        #: the audio source: a :class:`~ctrlspeak.audio.capture.Recorder` (or a file source)
        self.source: Any = None
        self.release_at: float | None = None  # when to shut PortAudio down (see tick)

    def check(self, device: str | int | None, publish_error: Callable[[errors.CtrlspeakError], None]) -> None:
        """Say at start, not at the first tap, when the microphone is missing. Not fatal:
        it is looked up again at every recording, so plugging one in later just works."""
        from ctrlspeak.audio.capture import describe_input, resolve_device

        try:
            log.info("microphone: %s", describe_input(resolve_device(device)))
        except errors.CtrlspeakError as exc:
            publish_error(exc)
        self.release_at = self._clock()  # nothing records until the first tap

    def preroll(self) -> None:
        """Open it ahead of a recording (the hotkey is armed): the first word is not cut off."""
        try:
            self.source.open()
        except errors.CtrlspeakError as exc:
            log.debug("pre-roll unavailable: %s", exc.message)

    def begin(self) -> np.ndarray:
        """Start recording; returns the pre-roll audio. Raises the source's error."""
        return self.source.begin()

    def end(self) -> None:
        """Stop recording and close it; PortAudio follows :data:`AUDIO_RELEASE_S` later."""
        self.source.end()
        overflows = getattr(self.source, "overflows", 0)
        if overflows:
            log.warning("the system was too busy to read the microphone %d time(s) during this recording: "
                        "some audio is missing", overflows)
        self.close_soon()

    def close_soon(self) -> None:
        self.source.close()
        # PortAudio goes down a moment later (the stop sound is still playing now)
        self.release_at = self._clock() + AUDIO_RELEASE_S

    def wait_s(self, now: float) -> float | None:
        return None if self.release_at is None else max(0.0, self.release_at - now)

    def tick(self, recording: bool) -> None:
        if self.release_at is None or self._clock() < self.release_at:
            return
        self.release_at = None
        if not recording and not getattr(self.source, "is_open", False):
            from ctrlspeak.audio.capture import release_portaudio

            if release_portaudio():
                log.debug("PortAudio shut down until the next recording")
        trim_heap()
