"""What an import needs besides its files (torch-free, so the CLI can validate it before loading a backend)."""

from __future__ import annotations

from typing import Literal

from edgerec.config import config
from edgerec.errors import ConfigError

FORMATS = ("keras-h5", "recbole", "dle", "state-dict")
ROLES = ("gmf_user", "gmf_item", "mlp_user", "mlp_item", "mlp", "predict")


@config
class ImportConfig:
    format: Literal["keras-h5", "recbole", "dle", "state-dict"]
    # state-dict only: edgerec role -> the file's key (tables) or module prefix (mlp, predict); see importers docs
    map: dict[str, str] | None = None
    concat: Literal["gmf-first", "mlp-first"] = "gmf-first"  # state-dict: the order the output layer reads
    id_maps: str | None = None  # JSON {"users": [...], "items": [...]}: original ids by the model's row
    fidelity_pairs: int = 4096  # (user, item) pairs scored both ways before anything is written

    def __post_init__(self) -> None:
        if self.format != "state-dict" and (self.map or self.concat != "gmf-first"):
            raise ConfigError(f"ImportConfig: map and concat apply to format state-dict only, not {self.format}")
        unknown = sorted(set(self.map or {}) - set(ROLES))
        if unknown:
            raise ConfigError(f"ImportConfig: unknown roles {', '.join(unknown)} in map (known: {', '.join(ROLES)})")
        if self.fidelity_pairs < 1:
            raise ConfigError("ImportConfig: fidelity_pairs must be at least 1")


def parse_map(text: str) -> dict[str, str]:
    """`gmf_user=KEY,gmf_item=KEY,...` or the path of a YAML file holding the same mapping (plus `concat`)."""
    from pathlib import Path

    if "=" not in text:
        import yaml

        from edgerec.errors import EdgerecError

        try:
            loaded = yaml.safe_load(Path(text).read_text())
        except FileNotFoundError:
            raise EdgerecError(f"{text}: no such mapping file (or give role=KEY,... inline)") from None
        except (OSError, yaml.YAMLError) as e:
            raise EdgerecError(f"{text}: unreadable mapping file ({str(e).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise EdgerecError(f"{text}: expected a mapping of roles to keys")
        return {str(k): "+".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in loaded.items()}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise ConfigError(f"--map: expected role=KEY pairs separated by commas; got {part!r}")
        out[key.strip()] = value.strip()
    return out
