"""The command line: one function per verb, and the flags' new and deprecated spellings."""
from __future__ import annotations

import argparse

import pytest

from ctrlspeak import cli
from ctrlspeak.commands import flags


def parse(capsys, *argv: str) -> tuple[argparse.Namespace, str]:
    args = cli.build_parser().parse_args(list(argv))
    return args, capsys.readouterr().err


def verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of every verb, sub-verbs (``models list``) included."""
    if path:
        yield path, parser
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # argparse has no public walk
    for action in subs:
        for name, child in action.choices.items():
            yield from verbs(child, (*path, name))


def test_every_verb_has_its_one_function():
    found = dict(verbs(cli.build_parser()))
    assert {("run",), ("transcribe",), ("models",), ("models", "list"), ("service", "status"), ("status",),
            ("devices",)} <= set(found)
    for path, parser in found.items():
        assert callable(parser.get_default("func")), path


def test_transcribe_takes_compute_device_quietly(capsys):
    args, err = parse(capsys, "transcribe", "a.wav", "--compute-device", "cpu")
    assert args.compute_device == "cpu" and err == ""
    assert flags.config_flags(args)["compute_device"] == "cpu"


def test_transcribe_old_device_still_works_and_names_the_new_flag(capsys):
    args, err = parse(capsys, "transcribe", "a.wav", "--device", "cuda")
    assert args.compute_device == "cuda"
    assert err == "ctrlspeak: --device is deprecated here; use --compute-device\n"


def test_transcribe_old_device_keeps_its_choices(capsys):
    with pytest.raises(SystemExit) as info:
        parse(capsys, "transcribe", "a.wav", "--device", "gpu")
    assert info.value.code == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["--compute-device", "--compute"])
def test_run_takes_compute_device(capsys, spelling):
    args, err = parse(capsys, "run", spelling, "cpu")
    assert args.compute_device == "cpu" and args.input_device is None and err == ""


def test_run_takes_mic_quietly(capsys):
    args, err = parse(capsys, "run", "--mic", "USB headset")
    assert args.input_device == "USB headset" and args.compute_device is None and err == ""
    assert flags.config_flags(args)["input_device"] == "USB headset"


@pytest.mark.parametrize("spelling", ["--device", "-d"])
def test_run_old_device_still_means_the_microphone_and_names_the_new_flag(capsys, spelling):
    args, err = parse(capsys, "run", spelling, "3")
    assert args.input_device == "3" and args.compute_device is None
    assert err == f"ctrlspeak: {spelling} is deprecated here; use --mic\n"


def test_main_dispatches_to_the_verbs_function(monkeypatch):
    called: list[argparse.Namespace] = []
    monkeypatch.setattr("ctrlspeak.commands.models.list_verb", lambda args: called.append(args) or 7)
    assert cli.main(["models", "list", "--json"]) == 7
    assert called and called[0].json is True


def test_models_alone_prints_its_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["models"])
    assert info.value.code == 0
    assert "usage: ctrlspeak models" in capsys.readouterr().out


def test_no_verb_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "usage: ctrlspeak" in capsys.readouterr().err
