"""Flags that several verbs share, the deprecated spellings they replace, and lazy verbs.

``--compute-device`` is where the model runs and ``--mic`` is the microphone, for every verb.
``--device`` once meant the first for ``transcribe`` and the second for ``run``; it still does,
with a one-line note on stderr that names the new flag.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ctrlspeak import config

Verb = Callable[[argparse.Namespace], int]

#: the flags that feed :func:`config.load` (each None unless given)
CONFIG_FLAGS = ("model", "compute_device", "input_device", "output", "history", "tray", "threads", "offline",
                "language", "target_language", "punctuation", "live", "live_typing",
                "stream_chunk_ms")


class DeprecatedFlag(argparse.Action):
    """An old spelling that still works: stores into the new flag's ``dest`` and says so on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, use: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", f"deprecated: use {use}")
        super().__init__(option_strings, dest, **kwargs)
        self.use = use

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"ctrlspeak: {option_string} is deprecated here; use {self.use}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_chunk_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunk-ms", dest="stream_chunk_ms", type=int, default=None, metavar="MS",
                   help="a streaming model's live chunk, one of its own sizes (tiny-en: 160, 560, 1120; "
                        "default: 160, or 560 for a big model on a CPU)")


def add_model_flags(p: argparse.ArgumentParser, *, old_device: bool = False) -> None:
    """``--model``, ``--compute-device``, ``--threads``, ``--offline``; ``old_device``: ``--device`` too."""
    p.add_argument("--model", "-m", help="alias, org/name Hugging Face id, or path to a .nemo file")
    p.add_argument("--compute-device", "--compute", dest="compute_device", choices=config.COMPUTE_DEVICES,
                   help="compute device for the model (default: auto = CUDA, then MPS, then CPU)")
    if old_device:
        p.add_argument("--device", dest="compute_device", choices=config.COMPUTE_DEVICES, action=DeprecatedFlag,
                       use="--compute-device")
    p.add_argument("--threads", type=int, help="torch threads in the worker (default: physical cores, at most 4)")
    p.add_argument("--offline", action="store_true", default=None, help="never touch the network")


def add_mic_flags(p: argparse.ArgumentParser) -> None:
    """``--mic``, and the ``--device``/``-d`` it replaces."""
    p.add_argument("--mic", dest="input_device", metavar="MIC",
                   help="microphone: index or part of its name (see `ctrlspeak devices`)")
    p.add_argument("--device", "-d", dest="input_device", metavar="MIC", action=DeprecatedFlag, use="--mic")


def config_flags(args: argparse.Namespace) -> dict[str, object]:
    """The flags a verb was given that override the config file (absent ones are None)."""
    return {name: getattr(args, name, None) for name in CONFIG_FLAGS}


def lazy(module: str, name: str) -> Verb:
    """The verb ``module.name``, imported only when it runs, so ``--help`` never loads it."""

    def verb(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    verb.__qualname__ = f"{module}.{name}"
    return verb
