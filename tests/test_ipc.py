from __future__ import annotations

import dataclasses
import pickle
import traceback

import numpy as np
import pytest

from ctrlspeak import errors, ipc


def test_messages_are_frozen_and_picklable():
    req = ipc.TranscribeRequest("a1", np.zeros(16000, np.float32), ipc.TranscribeOptions(language="de"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.id = "b"  # type: ignore[misc]
    back = pickle.loads(pickle.dumps(req))
    assert back.id == "a1" and back.options.language == "de" and back.duration_s == 1.0
    for msg in (ipc.Shutdown("x"), ipc.Progress("import", 0.5, "m"),
                ipc.WorkerReady("m", "tdt", "cpu", "float32", 2, 1.0, 2.0, 3, 4)):
        assert pickle.loads(pickle.dumps(msg)) == msg


@pytest.mark.parametrize("audio", [np.zeros(10, np.float64), np.zeros((10, 2), np.float32), [0.0] * 10])
def test_request_rejects_anything_but_1d_float32(audio):
    with pytest.raises(TypeError):
        ipc.TranscribeRequest("x", audio)  # type: ignore[arg-type]


def test_failure_carries_code_hint_and_traceback():
    try:
        raise errors.ModelNotCached("not here", hint="download it")
    except errors.CtrlspeakError as exc:
        failure = ipc.Failure.from_exception("id1", exc, traceback.format_exc())
    err = pickle.loads(pickle.dumps(failure)).to_error()
    assert isinstance(err, errors.ModelNotCached)
    assert err.hint == "download it" and "raise errors.ModelNotCached" in err.detail


def test_failure_from_foreign_exception_is_internal():
    failure = ipc.Failure.from_exception(None, KeyError("k"), "tb")
    assert failure.code == "ERR_INTERNAL" and "KeyError" in failure.message
