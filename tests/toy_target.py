"""A seventh target, outside the package: its exporter module (the record, an options config, export). The weights
go into an .npz file that numpy alone scores (tests/toy_target_runtime.py)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from edgerec.config import config
from edgerec.targets import ExportContext, Exported, Target


@config
class NpzOptions:
    dtype: Literal["float32", "float16"] = "float32"  # how the weights are stored


TARGET = Target(
    name="toy-npz",
    suffix=".npz",
    precisions=("fp32",),
    delegates=("cpu",),
    needs_gpu=False,
    dynamic_batch=True,
    calibration="none",
    onnx_file=None,
    options=NpzOptions,
)


def export(model, ctx: ExportContext) -> Exported:  # model: edgerec.model.ncf.NCF
    opts: NpzOptions = ctx.options
    weights = {k.replace(".", "__"): v.detach().numpy().astype(opts.dtype) for k, v in model.state_dict().items()}
    with open(ctx.model_path, "wb") as f:
        np.savez(f, **weights)
    return Exported({"inputs": ["users", "items"], "output": "scores", "dtype": opts.dtype})
