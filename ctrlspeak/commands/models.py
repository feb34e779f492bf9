"""``ctrlspeak models list|download|use``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ctrlspeak import compute, config, errors
from ctrlspeak.fileutil import atomic_write
from ctrlspeak.models import download, registry


def run(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    cfg = config.load(flags)
    action = args.models_command
    if action == "list":
        return list_models(cfg, args.json)
    if action == "download":
        return download_model(cfg, args.name, args.force)
    if action == "use":
        return use_model(args.name)
    raise errors.UsageError(f"unknown models action {action!r}")


def _rows(cfg: config.Config) -> list[dict[str, Any]]:
    rows = []
    for spec in registry.REGISTRY:
        ref = registry.resolve(spec.alias) if spec.hf_id else None
        if spec.hf_id is None:
            path = registry.bundled_path(spec)
            cached = "bundled" if path.is_file() else "missing"
        else:
            path = registry.cached_path(ref, cfg.hf_cache_dir)
            cached = "yes" if path else "no"
        rows.append({
            "alias": spec.alias,
            "id": spec.display_id,
            "family": spec.family,
            "languages": list(spec.languages),
            "cached": cached,
            "path": str(path) if path else None,
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
    table = [("", "ALIAS", "ID", "FAMILY", "LANGUAGES", "CACHED")]
    table += [("*" if r["default"] else "", r["alias"], r["id"], r["family"], langs(r), r["cached"]) for r in rows]
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
    from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock
    from tqdm.std import tqdm

    apply_tqdm_lock()
    bar = tqdm(desc=f"downloading {ref.hf_id}", unit="B", unit_scale=True, unit_divisor=1024,
               file=sys.stderr, disable=None)

    def on_bytes(done: int, total: int | None) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = download.download(ref, cache_dir=cfg.hf_cache_dir, force=force,
                                 offline=cfg.offline, on_bytes=on_bytes)
    finally:
        bar.close()
    print(path)
    return 0


def use_model(name: str) -> int:
    import tomli_w

    registry.resolve(name)  # refuse unknown names before touching the file
    path = config.config_path()
    values = config.read_file(path)
    values["model"] = name
    try:
        atomic_write(path, tomli_w.dumps(values).encode("utf-8"))
    except OSError as exc:
        raise errors.ConfigError(f"cannot write the config file {path}: {exc.strerror or exc}") from exc
    print(f"default model is now {name} ({path})", file=sys.stderr)
    from ctrlspeak import control

    try:
        control.request("model", name=name, timeout=10)
        print("the running daemon is switching to it", file=sys.stderr)
    except errors.DaemonNotRunning:
        pass
    return 0
