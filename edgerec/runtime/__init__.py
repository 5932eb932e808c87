"""Scorers over exported artifacts, one per runtime. This package imports numpy and the chosen runtime only,
never torch, so it runs on a device that has neither PyTorch nor the exporters installed.

    scorer = load_scorer("artifacts/neumf-tflite-int8", threads=1)
    scores = scorer.score(users, items)        # [B] int ids -> [B] float32 logits (higher = better)
    items, scores = scorer.top_k(user=42, k=10)
"""

from __future__ import annotations

from pathlib import Path

from edgerec.errors import EdgerecError
from edgerec.manifest import read_manifest, verify_files
from edgerec.runtime.base import Scorer
from edgerec.targets import runtime_module, scorer_class


def load_scorer(folder: str | Path, threads: int = 1, runtime: str | None = None, verify: bool = True) -> Scorer:
    """Open an artifact folder with the runtime its manifest names (or `runtime`, when the target allows it)."""
    folder = Path(folder)
    manifest = read_manifest(folder, verify=verify)
    name = str(manifest.get("target"))
    chosen = runtime or str(manifest.get("runtime", next(iter(runtime_module(name).SCORERS))))
    cls = scorer_class(name, chosen)
    if threads < 1:
        raise EdgerecError(f"threads must be a positive integer; got {threads}")
    return cls(folder, manifest, threads=threads, runtime=chosen)


def load_bundle(folder: str | Path, threads: int = 1):  # -> edgerec.runtime.tflite_bundle.BundleScorer
    """Open a phone bundle (target tflite-bundle) after checking its schema and its files' hashes.

    The bundle files (model, manifest, id maps) must be present; the server-side user_vectors.npy may be absent (a
    phone holds only its own user's vectors) but is checked when present.
    """
    manifest = read_manifest(folder, verify=False)
    if manifest.get("target") != "tflite-bundle":
        raise EdgerecError(f"{folder}: not a phone bundle (target is {manifest.get('target')!r}, not 'tflite-bundle')")
    bundle_files = manifest.get("bundle_files")
    if not isinstance(bundle_files, list):
        raise EdgerecError(f"{folder}/manifest.json: no bundle_files list")
    verify_files(Path(folder), manifest, [manifest["model_file"], *(n for n in bundle_files if n != "manifest.json")])
    return load_scorer(folder, threads=threads, verify=False)  # verified above


__all__ = ["Scorer", "load_bundle", "load_scorer"]
