"""`ctrlspeak words`: edits [words] in the config file, keeps the rest, tells a running daemon."""
from __future__ import annotations

import os
import signal
import socket
import threading
import tomllib

import pytest

from ctrlspeak import cli, config
from ctrlspeak.control.runtime import socket_path


@pytest.fixture
def cfg_file(isolated_env, monkeypatch):
    monkeypatch.setenv("CTRLSPEAK_RUNTIME_DIR", str(isolated_env / "run"))
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('model = "tiny-en"\noutput = "type"\n[paste_chord]\nfoot = "ctrl+shift+v"\n')
    return path


def words_of(path) -> dict[str, str]:
    return tomllib.loads(path.read_text()).get("words", {})


def test_add_remove_list_keep_the_other_settings(cfg_file, capsys):
    assert cli.main(["words", "add", "cube  control", "kubectl"]) == 0
    assert cli.main(["words", "add", "kube ctl", "kubectl"]) == 0
    assert cli.main(["words", "add", "Cube Control", "KubeCtl"]) == 0, "the same spoken form: replaced"
    assert words_of(cfg_file) == {"kube ctl": "kubectl", "Cube Control": "KubeCtl"}
    cfg = config.load(env={})
    assert (cfg.model, cfg.output, cfg.paste_chord) == ("tiny-en", "type", (("foot", "ctrl+shift+v"),))
    assert cfg.words == (("kube ctl", "kubectl"), ("Cube Control", "KubeCtl"))
    capsys.readouterr()
    assert cli.main(["words", "list"]) == 0
    assert capsys.readouterr().out == "kube ctl = kubectl\nCube Control = KubeCtl\n"
    assert cli.main(["words", "remove", "cube control"]) == 0
    assert words_of(cfg_file) == {"kube ctl": "kubectl"}
    assert cli.main(["words", "remove", "kube ctl"]) == 0
    assert "words" not in tomllib.loads(cfg_file.read_text()), "an empty table leaves nothing behind"


def test_bad_input_is_one_line_with_a_stable_code(cfg_file, capsys):
    assert cli.main(["words", "add", "  ", "x"]) == 2
    assert cli.main(["words", "remove", "nothing"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("ctrlspeak: ERR_USAGE: the entry has an empty spoken form")
    assert err[1].startswith("ctrlspeak: ERR_USAGE: no entry for 'nothing'")
    cfg_file.write_text("model = \n")
    assert cli.main(["words", "add", "a", "b"]) != 0
    assert "ERR_CONFIG" in capsys.readouterr().err
    assert cfg_file.read_text() == "model = \n", "a broken file is never written over"


@pytest.mark.parametrize("content", [
    '[words]\n"cube control" = "kubectl"\nkates = "k8s"\n',
    '"cube control" = "kubectl"\nkates = "k8s"\n',
    '# mine\ncube control = kubectl\n\nkates=k8s\n',
    'cube control\tkubectl\nkates\tk8s\n',
])
def test_import_formats_and_export_round_trip(cfg_file, tmp_path, capsys, content):
    source = tmp_path / "mine.txt"
    source.write_text(content)
    assert cli.main(["words", "import", str(source)]) == 0
    assert words_of(cfg_file) == {"cube control": "kubectl", "kates": "k8s"}
    capsys.readouterr()
    assert cli.main(["words", "export"]) == 0
    exported = capsys.readouterr().out
    assert tomllib.loads(exported) == {"words": {"cube control": "kubectl", "kates": "k8s"}}
    assert cli.main(["words", "remove", "kates"]) == 0
    (tmp_path / "back.toml").write_text(exported)
    assert cli.main(["words", "import", str(tmp_path / "back.toml")]) == 0
    assert words_of(cfg_file) == {"cube control": "kubectl", "kates": "k8s"}


def test_import_bad_line_names_it(cfg_file, tmp_path, capsys):
    source = tmp_path / "bad.txt"
    source.write_text("a = b\njust words\n")
    assert cli.main(["words", "import", str(source)]) == 2
    assert f"ctrlspeak: ERR_USAGE: {source}, line 2: expected" in capsys.readouterr().err
    assert words_of(cfg_file) == {}, "nothing imported from a bad file"
    assert cli.main(["words", "import", str(tmp_path / "missing")]) == 2


def test_a_running_daemon_gets_sighup(cfg_file):
    """The pid comes from the control socket's peer: here this process, with a SIGHUP handler."""
    got: list[int] = []
    old = signal.signal(signal.SIGHUP, lambda sig, frame: got.append(sig))
    path = socket_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(os.fspath(path))
    server.listen(1)
    accepted = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
    accepted.start()
    try:
        assert cli.main(["words", "add", "tmrw", "tomorrow"]) == 0
        accepted.join(5)
        assert got == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, old)
        server.close()


def test_no_daemon_no_signal(cfg_file, capsys):
    assert cli.main(["words", "add", "tmrw", "tomorrow"]) == 0
    assert "reloads" not in capsys.readouterr().err


def test_models_use_keeps_every_table_as_written(cfg_file, capsys):
    """`models use` rewrites one key: [words], [paste_chord] and [profile."APP"] come back as
    the file had them (it once wrote the checked values, [words] as a list of pairs)."""
    cfg_file.write_text(cfg_file.read_text() + '[words]\n"kube ctl" = "kubectl"\n'
                        '[profile."org.gnome.TextEditor"]\ntrailing_period = true\n')
    assert cli.main(["models", "use", "tiny-en"]) == 0
    data = tomllib.loads(cfg_file.read_text())
    assert data["words"] == {"kube ctl": "kubectl"}
    assert data["paste_chord"] == {"foot": "ctrl+shift+v"}
    assert data["profile"] == {"org.gnome.TextEditor": {"trailing_period": True}}
    assert config.load(env={}).words == (("kube ctl", "kubectl"),)
