"""`edgerec verify ARTIFACT --arch arm64`: the artifact run under emulated ARM64 CPUs (edgerec's own wheel and
runtime inside the cached root, edgerec.devices.arm64) and compared with the host on the same rows: max |score
error|, top-10 agreement and, with data, HR@10 / NDCG@10 on the sampled protocol. The result goes into the
manifest under "verified_on".
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.data.split import Dataset
from edgerec.devices import CPUS, arm64
from edgerec.errors import EdgerecError
from edgerec.io import SavesJson, write_json
from edgerec.manifest import MANIFEST, read_manifest
from edgerec.metrics import hr_ndcg

TFLITE_TARGETS = ("tflite", "tflite-bundle")


def protocol(folder: Path, m: dict, n_users: int, data: Dataset | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(users [U], items [U, M]): the test item + its negatives of U sampled test users, or random items; m is the
    artifact's manifest."""
    rng = np.random.default_rng(seed)
    if data is not None:
        from edgerec.data.align import align
        from edgerec.data.interactions import load_id_maps

        ds = align(data, *load_id_maps(folder / "id_maps.json"), str(folder))[0]
        rows = rng.choice(len(ds.test_users), size=min(n_users, len(ds.test_users)), replace=False)
        items = np.concatenate([ds.test_items[rows, None], ds.test_negatives[rows]], axis=1)
        return ds.test_users[rows].astype(np.int64), items.astype(np.int64)
    users = rng.choice(int(m["n_users"]), size=min(n_users, int(m["n_users"])), replace=False)
    return users.astype(np.int64), rng.integers(0, int(m["n_items"]), size=(len(users), 100))


def compare(host: dict[str, np.ndarray], guest: dict[str, np.ndarray], items: np.ndarray, with_metrics: bool) -> dict:
    diff = np.abs(host["scores"].astype(np.float64) - guest["scores"].astype(np.float64))
    agree = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(host["top10"], guest["top10"], strict=True)]
    out: dict[str, Any] = {"max_abs_score_error": float(diff.max()), "top10_agreement": float(np.mean(agree))}
    if with_metrics:
        for name, s in (("host", host["scores"]), ("guest", guest["scores"])):
            neg_ok = items[:, 1:] != items[:, :1]
            ranks = ((s[:, 1:] >= s[:, :1]) & neg_ok).sum(axis=1)
            out[f"{name}_hr@10"], out[f"{name}_ndcg@10"] = hr_ndcg(ranks)
        out["delta_hr@10"] = out["guest_hr@10"] - out["host_hr@10"]
        out["delta_ndcg@10"] = out["guest_ndcg@10"] - out["host_ndcg@10"]
    return out


@dataclass(frozen=True)
class EmulationReport(SavesJson):
    """Per emulated CPU: the artifact's comparison with this machine, or the error that stopped it there."""

    artifact: str
    results: dict[str, dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all("error" not in r for r in self.results.values())

    def to_json(self) -> dict[str, dict[str, Any]]:
        return self.results


def verify_arm64(
    folder: str | Path,
    cpus: tuple[str, ...] = CPUS,
    data: Dataset | None = None,
    users: int = 300,
    wheel: Path | None = None,
    say: arm64.Say = print,
) -> dict[str, dict]:
    """Per emulated CPU: the comparison with the host; also recorded in the manifest under verified_on.arm64."""
    from edgerec.runtime.probe import compute

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("target") not in TFLITE_TARGETS:
        what = manifest.get("target")
        raise EdgerecError(f"{folder}: --arch arm64 verifies TFLite artifacts (phones and boards); this one is {what}")
    if wheel is not None and not (wheel.is_file() and wheel.suffix == ".whl"):
        raise EdgerecError(f"--wheel {wheel}: not a wheel file (edgerec-*.whl)")
    root = arm64.ensure_root(say)
    arm64.install_wheel(root, wheel or arm64.build_wheel(say), say)
    u, items = protocol(folder, manifest, users, data)
    host = compute(folder, u, items)
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="edgerec-verify-", dir=root / "tmp"))
    try:
        shutil.copytree(folder, work / "artifact")
        np.savez(work / "in.npz", users=u, items=items)
        inside = "/" + str(work.relative_to(root))
        for cpu in cpus:
            say(f"running {folder.name} under qemu-aarch64 -cpu {cpu} ({len(u)} users)")
            start = time.perf_counter()
            args = [f"{arm64.VENV}/bin/python", "-m", "edgerec.runtime.probe", f"{inside}/artifact", f"{inside}/in.npz",
                    f"{inside}/out.npz"]  # fmt: skip
            try:
                arm64.chroot(root, args, f"the artifact under {cpu}", {"QEMU_CPU": cpu}, timeout=3600)
            except EdgerecError as e:
                results[cpu] = {"error": str(e)}
                continue
            with np.load(work / "out.npz", allow_pickle=False) as f:
                guest = {"scores": f["scores"], "top10": f["top10"], "machine": str(f["machine"])}
                features = str(f["features"]) if "features" in f else ""
            results[cpu] = {**compare(host, guest, items, data is not None), "machine": guest["machine"],
                            "cpu_features": features,
                            "seconds": round(time.perf_counter() - start, 1), "users": len(u)}  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {**manifest.get("verified_on", {}), "arm64": results}
    write_json(folder / MANIFEST, {**manifest, "verified_on": record})
    return results
