"""``ctrlspeak words add|remove|list|import|export``: the dictionary, the config's ``[words]`` table.

Each entry is ``spoken = "written"``: what the model writes for a word or phrase (matched as
whole words, any case) and what should land at the cursor instead. Many spoken forms may
give one written form. The verb edits the config file in place: the file is read as TOML,
only ``[words]`` changes, every other setting stays (comments are not kept: tomli-w writes
none), and the new file replaces the old one atomically. A running daemon is then sent
SIGHUP, its config reload, so the next dictation uses the new table.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ctrlspeak import config, errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "words", help="the dictionary: spoken words or phrases written your way (the config's [words])",
        description="Edit the config file's [words] table (spoken = \"written\"). Matching is by whole "
                    "words, ignoring case; the written form keeps its own case. A running daemon reloads it.")
    p.set_defaults(func=lambda args: _help(p))  # `ctrlspeak words` alone: its help
    wsub = p.add_subparsers(dest="words_command", metavar="ACTION")
    a = wsub.add_parser("add", help="add or change an entry: ctrlspeak words add \"cube control\" kubectl")
    a.add_argument("spoken")
    a.add_argument("written")
    r = wsub.add_parser("remove", help="remove the entry for a spoken form")
    r.add_argument("spoken")
    wsub.add_parser("list", help="show the entries, one `spoken = written` a line")
    i = wsub.add_parser("import", help="add the entries of a file: TOML ([words] or spoken = \"written\"), "
                                       "`spoken = written` lines or tab-separated lines")
    i.add_argument("file")
    wsub.add_parser("export", help="print the table as TOML on stdout (what `words import` reads)")
    for action, func in ((a, add_verb), (r, remove_verb), (i, import_verb)):
        action.set_defaults(func=func)
    wsub.choices["list"].set_defaults(func=list_verb)
    wsub.choices["export"].set_defaults(func=export_verb)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return errors.info_for("ERR_USAGE").exit_status


# -- the verbs ------------------------------------------------------------------------------
def add_verb(args: argparse.Namespace) -> int:
    path, data, table = _load()
    spoken = _check(args.spoken, args.written)
    _drop(table, spoken)
    table[spoken] = args.written
    _save(path, data, table)
    print(f"{spoken!r} is written {args.written!r} ({path})", file=sys.stderr)
    _reload_daemon()
    return 0


def remove_verb(args: argparse.Namespace) -> int:
    path, data, table = _load()
    spoken = " ".join(args.spoken.split())
    if not _drop(table, spoken):
        raise errors.UsageError(f"no entry for {spoken!r} in [words] of {path}",
                                hint="`ctrlspeak words list` shows the entries")
    _save(path, data, table)
    print(f"removed {spoken!r} ({path})", file=sys.stderr)
    _reload_daemon()
    return 0


def list_verb(args: argparse.Namespace) -> int:
    _, _, table = _load()
    for spoken, written in table.items():
        print(f"{spoken} = {written}")
    if not table:
        print("the dictionary is empty (`ctrlspeak words add SPOKEN WRITTEN`)", file=sys.stderr)
    return 0


def export_verb(args: argparse.Namespace) -> int:
    import tomli_w

    _, _, table = _load()
    sys.stdout.write(tomli_w.dumps({"words": table}))
    return 0


def import_verb(args: argparse.Namespace) -> int:
    entries = parse_import(Path(args.file))
    path, data, table = _load()
    for spoken, written in entries:
        _drop(table, spoken)
        table[spoken] = written
    _save(path, data, table)
    print(f"imported {len(entries)} entries into [words] ({path})", file=sys.stderr)
    _reload_daemon()
    return 0


# -- pure parts -----------------------------------------------------------------------------
def parse_import(file: Path) -> list[tuple[str, str]]:
    """The (spoken, written) entries of ``file``: TOML (a ``[words]`` table, or top-level
    ``spoken = "written"`` keys), else ``spoken = written`` or ``spoken<TAB>written`` lines
    (blank lines and ``#`` comments skipped)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.UsageError(f"cannot read {file}: {exc.strerror or exc}", hint="check the file name") from None
    except UnicodeDecodeError:
        raise errors.UsageError(f"{file} is not UTF-8 text", hint="save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        data = None
    if data is not None:
        table = data["words"] if isinstance(data.get("words"), dict) else data
        entries = []
        for spoken, written in table.items():
            if not isinstance(written, str):
                raise errors.UsageError(f"{file}: {spoken!r} must be written text in quotes, not {written!r}",
                                        hint="write entries as spoken = \"written\"")
            entries.append((_check(spoken, written, where=f"{file}: "), written))
        return entries
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spoken, sep, written = line.partition("\t") if "\t" in line else line.partition("=")
        if not sep or not written.strip():
            raise errors.UsageError(f"{file}, line {number}: expected `spoken = written` or spoken<TAB>written",
                                    hint="fix that line, or write the file as TOML")
        written = written.strip()
        entries.append((_check(spoken, written, where=f"{file}, line {number}: "), written))
    return entries


def _check(spoken: str, written: str, where: str = "") -> str:
    """The spoken form as stored (spaces collapsed), or ERR_USAGE saying what is wrong."""
    from ctrlspeak.text.profile import word_problem

    problem = word_problem(spoken, written)
    if problem:
        raise errors.UsageError(f"{where}the entry {problem}", hint="ctrlspeak words add \"SPOKEN\" \"WRITTEN\"")
    return " ".join(spoken.split())


def _drop(table: dict[str, Any], spoken: str) -> bool:
    """Remove every key that is ``spoken`` ignoring case and spacing (they match the same words)."""
    key = spoken.casefold()
    gone = [k for k in table if " ".join(k.split()).casefold() == key]
    for k in gone:
        del table[k]
    return bool(gone)


# -- the file and the daemon ----------------------------------------------------------------
def _load() -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The config file's path, its whole TOML document, and its ``[words]`` table (in it)."""
    path = config.config_path()
    data = config.read_document(path)
    table = data.setdefault("words", {})
    return path, data, table


def _save(path: Path, data: dict[str, Any], table: dict[str, Any]) -> None:
    if not table:
        data.pop("words", None)
    config.write_document(path, data)


def _reload_daemon() -> bool:
    """SIGHUP to the running daemon (its config reload, which keeps the old config when the new
    one is bad); False when none runs. The pid comes from the control socket's peer, which
    must be this user's own process."""
    from ctrlspeak.control.runtime import peer_credentials, running_daemon_pid, socket_path

    path = socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(os.fspath(path))
            owner = peer_credentials(sock).uid
        except OSError:
            return False  # no socket, nothing listening: no daemon to tell
        if owner != os.getuid():
            return False
        pid = running_daemon_pid(sock)
    if not pid:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return False
    print("the running daemon reloads its config", file=sys.stderr)
    return True
