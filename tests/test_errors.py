from __future__ import annotations

import pytest

from ctrlspeak import errors


def test_codes_and_exit_statuses_are_unique():
    infos = [errors.info_for(code) for code in errors.all_codes()]
    assert len({i.code for i in infos}) == len(infos)
    assert len({i.exit_status for i in infos}) == len(infos)
    assert all(i.hint and "\n" not in i.hint for i in infos)


@pytest.mark.parametrize("code", errors.all_codes())
def test_every_code_rebuilds_its_own_type(code):
    err = errors.from_code(code, "boom", detail="Traceback ...")
    assert err.code == code
    assert err.exit_status == errors.info_for(code).exit_status
    assert err.detail == "Traceback ..."
    assert err.one_line().startswith(f"{code}: boom (")


def test_most_specific_class_wins():
    assert type(errors.from_code("ERR_AUDIO_FILE", "x")) is errors.AudioFileError
    assert type(errors.from_code("ERR_MODEL_LOAD", "x")) is errors.ModelLoadError
    assert type(errors.from_code("ERR_WORKER_CRASHED", "x")) is errors.WorkerCrashed
    assert isinstance(errors.from_code("ERR_MODEL_NOT_CACHED", "x"), errors.ModelError)


def test_custom_hint_survives():
    err = errors.from_code("ERR_MODEL_NOT_CACHED", "x", hint="run this")
    assert err.hint == "run this"
    assert errors.from_code("ERR_MODEL_NOT_CACHED", "x").hint == errors.info_for("ERR_MODEL_NOT_CACHED").hint
