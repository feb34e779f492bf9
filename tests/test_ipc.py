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


def _ready(request_id: str, model: str) -> ipc.WorkerReady:
    return ipc.WorkerReady(model, "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1, id=request_id)


def test_load_model_replies_are_matched_by_id_when_they_arrive_out_of_order():
    from ctrlspeak.supervision.client import WorkerClient

    client = WorkerClient(ipc.WorkerSettings(model=ipc.ModelRef("a", "file", path="/a.nemo")))
    client.deliver(_ready(ipc.BOOT_ID, "a"))
    first = client.load_model(ipc.ModelRef("b", "file", path="/b.nemo"), request_id="load-b")
    second = client.load_model(ipc.ModelRef("c", "file", path="/c.nemo"), request_id="load-c")
    third = client.load_model(ipc.ModelRef("d", "file", path="/d.nemo"), request_id="load-d")
    client.deliver(_ready("load-c", "c"))  # the second answer arrives first
    client.deliver(ipc.Failure("load-d", "ERR_MODEL_LOAD", "corrupt"))
    client.deliver(_ready("load-b", "b"))
    assert client.ready.result(0).model == "a"
    assert first.result(0).model == "b" and second.result(0).model == "c"
    with pytest.raises(errors.ModelLoadError):
        third.result(0)
    client.deliver(_ready("load-b", "stale"))  # a reply nobody waits for changes nothing
    assert first.result(0).model == "b"


def test_a_boot_failure_answers_the_ready_future_and_not_a_load():
    from ctrlspeak.supervision.client import WorkerClient

    client = WorkerClient(ipc.WorkerSettings(model=ipc.ModelRef("a", "file", path="/a.nemo")))
    load = client.load_model(ipc.ModelRef("b", "file", path="/b.nemo"), request_id="load-b")
    client.deliver(ipc.Failure(ipc.BOOT_ID, "ERR_MODEL_NOT_FOUND", "no such model"))
    with pytest.raises(errors.ModelNotFound):
        client.ready.result(0)
    assert not load.done()


def test_load_model_carries_an_id_and_stays_frozen():
    msg = ipc.LoadModel("load-1", ipc.ModelRef("m", "file"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.id = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(msg)) == msg
