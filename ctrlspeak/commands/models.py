"""``ctrlspeak models list|download|remove|use``."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ctrlspeak import compute, config, errors
from ctrlspeak.commands import flags
from ctrlspeak.ipc import ModelRef
from ctrlspeak.models import cache, download, registry
from ctrlspeak.progress_view import ProgressView
from ctrlspeak.transfer import human_bytes, human_duration


def list_verb(args: argparse.Namespace) -> int:
    return list_models(config.load(flags.config_flags(args)), args.json)


def download_verb(args: argparse.Namespace) -> int:
    return download_model(config.load(flags.config_flags(args)), args.name, args.force)


def remove_verb(args: argparse.Namespace) -> int:
    return remove_model(config.load(flags.config_flags(args)), args.name)


def use_verb(args: argparse.Namespace) -> int:
    return use_model(args.name)


def _rows(cfg: config.Config) -> list[dict[str, Any]]:
    rows = []
    for spec in registry.REGISTRY:
        if spec.hf_id is None:
            path = registry.bundled_path(spec)
            cached = "bundled" if path.is_file() else "missing"
            ref = registry.resolve(spec.alias) if path.is_file() else None
        else:
            ref = registry.resolve(spec.alias)
            path = registry.cached_path(ref, cfg.hf_cache_dir)
            cached = "yes" if path else "no"
        used = cache.usage(ref, cfg.hf_cache_dir, cfg.weights_cache_dir) if ref else cache.Usage()
        if cached == "no" and used.partial_bytes:
            cached = "partial"  # `models download` continues it
        rows.append({
            "alias": spec.alias,
            "id": spec.display_id,
            "family": spec.family,
            "languages": list(spec.languages),
            "cached": cached,
            "path": str(path) if path else None,
            "size_bytes": used.total,
            "download_bytes": used.download_bytes,
            "partial_bytes": used.partial_bytes,
            "weights_cache_bytes": used.weights_bytes,
            "default": spec.alias == cfg.model,
            "description": spec.description,
        })
    return rows


def list_models(cfg: config.Config, as_json: bool) -> int:
    rows = _rows(cfg)
    device, why = compute.likely_device(cfg.compute_device)
    if as_json:
        print(json.dumps({"models": rows, "default": cfg.model,
                          "compute_device": {"preference": cfg.compute_device, "device": device, "reason": why}},
                         indent=2))
        return 0
    def langs(r: dict[str, Any]) -> str:
        return ",".join(r["languages"]) if len(r["languages"]) <= 4 else f"{len(r['languages'])} (EU)"
    table = [("", "ALIAS", "ID", "FAMILY", "LANGUAGES", "CACHED", "ON DISK")]
    table += [("*" if r["default"] else "", r["alias"], r["id"], r["family"], langs(r), r["cached"],
               human_bytes(r["size_bytes"]) if r["size_bytes"] else "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"\ndefault model: {cfg.model}    compute device: {device} ({cfg.compute_device}: {why})")
    return 0


def download_model(cfg: config.Config, name: str, force: bool) -> int:
    ref = registry.resolve(name)
    if ref.source == "file":
        print(ref.path)
        return 0
    found = registry.cached_path(ref, cfg.hf_cache_dir)
    if found is not None and not force:
        print(f"ctrlspeak: {ref.name} is already downloaded ({human_bytes(found.stat().st_size)})", file=sys.stderr)
        print(found)
        return 0
    from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock

    apply_tqdm_lock()
    view = ProgressView()
    started = time.monotonic()
    try:
        path = download.download(ref, cache_dir=cfg.hf_cache_dir, force=force, offline=cfg.offline,
                                 on_progress=view.handle, weights_dir=cfg.weights_cache_dir,
                                 int8=cfg.quantize == "int8")
    except KeyboardInterrupt:
        view.close()
        last = view.meter.last if view.meter else None
        kept = f"{human_bytes(last.done)}" + (f" of {human_bytes(last.total)}" if last and last.total else "") \
            if last and last.done else "nothing"
        print(f"ctrlspeak: download interrupted; {kept} kept: run `ctrlspeak models download {ref.name}` "
              "again to continue from there", file=sys.stderr)
        return 130
    finally:
        view.close()
    print(f"ctrlspeak: {_summary(ref.name, view, time.monotonic() - started)}", file=sys.stderr)
    print(path)
    return 0


def _summary(name: str, view: ProgressView, elapsed: float) -> str:
    meter = view.meter
    if meter is None or meter.last is None:
        return f"{name} is downloaded"
    fetched = meter.fetched()
    text = f"downloaded {name}: {human_bytes(fetched)} in {human_duration(elapsed)}"
    if elapsed > 0 and fetched:
        text += f" ({human_bytes(fetched / elapsed)}/s)"
    if meter.first_done:
        text += f", continuing the {human_bytes(meter.first_done)} kept from before"
    return text


def _in_use_by_daemon(ref: ModelRef) -> str | None:
    """The running daemon's pid when its model is ``ref`` (same file), else None."""
    from ctrlspeak import control

    try:
        reply = control.request("status", timeout=3)
    except errors.CtrlspeakError:
        return None  # no daemon (or one that does not answer: it cannot be asked to switch either)
    try:
        theirs = registry.resolve(str(reply.get("model") or ""))
    except errors.CtrlspeakError:
        return None
    same = (theirs.hf_id == ref.hf_id) if ref.source == "hf" else (theirs.path == ref.path)
    return str(reply.get("pid", "?")) if same else None


def remove_model(cfg: config.Config, name: str) -> int:
    ref = registry.resolve(name)
    pid = _in_use_by_daemon(ref)
    if pid is not None:
        raise errors.UsageError(
            f"{ref.name} is the running daemon's model (pid {pid}); removing it would break its next start",
            hint="switch the daemon to another model first (`ctrlspeak models use NAME`), or stop it")
    freed = cache.remove(ref, cfg.hf_cache_dir, cfg.weights_cache_dir)
    parts = [f"{human_bytes(b)} {what}" for b, what in ((freed.download_bytes, "download"),
                                                         (freed.partial_bytes, "partial download"),
                                                         (freed.weights_bytes, "fast-start cache")) if b]
    kept = " (the model file itself stays)" if ref.source == "file" else ""
    if not parts:
        print(f"ctrlspeak: {ref.name} takes no space in the caches: nothing to remove{kept}", file=sys.stderr)
        return 0
    print(f"ctrlspeak: removed {ref.name}: {human_bytes(freed.total)} freed ({', '.join(parts)}){kept}",
          file=sys.stderr)
    return 0


def use_model(name: str) -> int:
    registry.resolve(name)  # refuse unknown names before touching the file
    path = config.config_path()
    # the document as written, not the checked values: those hold tables ([words],
    # [paste_chord], [profile."APP"]) in their parsed form, which is not what the file says
    document = config.read_document(path)
    document["model"] = name
    config.write_document(path, document)
    print(f"default model is now {name} ({path})", file=sys.stderr)
    from ctrlspeak import control

    try:
        control.request("model", name=name, timeout=10)
        print("the running daemon is switching to it", file=sys.stderr)
    except errors.DaemonNotRunning:
        pass
    return 0
