"""GMF, MLP and NeuMF (He et al. 2017) as one module described by an explicit architecture.

The architecture records every width (embedding sizes per tower and side, hidden layer sizes), not the paper's
shorthand, so that a pruned model whose widths no longer follow "factors" and "layers" still loads.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from edgerec.errors import EdgerecError

Kind = Literal["gmf", "mlp", "neumf"]
KINDS: tuple[str, ...] = ("gmf", "mlp", "neumf")


@dataclass(frozen=True)
class NCFArch:
    kind: str
    n_users: int
    n_items: int
    gmf_dim: int  # GMF embedding size (0 without a GMF tower)
    mlp_user_dim: int  # MLP user embedding size (0 without an MLP tower)
    mlp_item_dim: int
    mlp_layers: tuple[int, ...]  # output sizes of the hidden layers, e.g. (32, 16, 8)

    @classmethod
    def paper(cls, kind: str, n_users: int, n_items: int, factors: int = 8, layers: tuple[int, ...] = ()) -> NCFArch:
        """The paper's shorthand: `factors` predictive factors; `layers` = MLP input size then hidden sizes.

        layers defaults to (8f, 4f, 2f, f): factors 8 -> 64,32,16,8, i.e. 32-dim MLP embeddings per side and hidden
        layers 32, 16, 8.
        """
        if kind not in KINDS:
            raise EdgerecError(f"model must be one of {', '.join(KINDS)}; got {kind!r}")
        if factors < 1:
            raise EdgerecError(f"factors must be a positive integer; got {factors}")
        layers = tuple(layers) or (8 * factors, 4 * factors, 2 * factors, factors)
        if len(layers) < 2 or min(layers) < 1 or layers[0] % 2:
            raise EdgerecError(
                f"layers must be an even MLP input size then at least one hidden size, e.g. 64,32,16,8; got {layers}"
            )
        mlp = kind != "gmf"
        return cls(
            kind=kind,
            n_users=n_users,
            n_items=n_items,
            gmf_dim=factors if kind != "mlp" else 0,
            mlp_user_dim=layers[0] // 2 if mlp else 0,
            mlp_item_dim=layers[0] // 2 if mlp else 0,
            mlp_layers=tuple(layers[1:]) if mlp else (),
        )

    def to_json(self) -> dict:
        d = asdict(self)
        d["mlp_layers"] = list(self.mlp_layers)
        return d

    @classmethod
    def from_json(cls, d: dict) -> NCFArch:
        try:
            arch = cls(**{**d, "mlp_layers": tuple(int(x) for x in d["mlp_layers"])})
        except (TypeError, KeyError) as e:
            raise EdgerecError(f"checkpoint architecture is malformed ({e})") from None
        if arch.kind not in KINDS:
            raise EdgerecError(f"checkpoint architecture has unknown kind {arch.kind!r}")
        return arch

    @property
    def predictive_dim(self) -> int:
        """Input size of the final prediction layer."""
        return self.gmf_dim + (self.mlp_layers[-1] if self.mlp_layers else 0)


class NCF(nn.Module):
    """forward(users [B], items [B]) -> logits [B]; score() applies the sigmoid."""

    def __init__(self, arch: NCFArch) -> None:
        super().__init__()
        self.arch = arch
        if arch.gmf_dim:
            self.gmf_user = nn.Embedding(arch.n_users, arch.gmf_dim)
            self.gmf_item = nn.Embedding(arch.n_items, arch.gmf_dim)
        if arch.mlp_layers:
            self.mlp_user = nn.Embedding(arch.n_users, arch.mlp_user_dim)
            self.mlp_item = nn.Embedding(arch.n_items, arch.mlp_item_dim)
            sizes = (arch.mlp_user_dim + arch.mlp_item_dim, *arch.mlp_layers)
            self.mlp = nn.Sequential(*[m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), nn.ReLU())])
        self.predict = nn.Linear(arch.predictive_dim, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: N(0, 0.01) embeddings, Glorot MLP layers, LeCun-uniform output layer."""
        for m in self.modules():
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.01)
            elif isinstance(m, nn.Linear) and m is not self.predict:
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        bound = (3.0 / self.predict.in_features) ** 0.5
        nn.init.uniform_(self.predict.weight, -bound, bound)
        nn.init.zeros_(self.predict.bias)

    def lookup(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """The embedding rows a batch reads, by table name: {"gmf_user": [B, gmf_dim], ...}."""
        return {name: table(users if name.endswith("_user") else items) for name, table in self.tables().items()}

    def combine(self, rows: dict[str, torch.Tensor], dropout: float = 0.0) -> torch.Tensor:
        """Embedding rows -> [B] logits (everything after the lookups). dropout: applied after every hidden layer of
        the MLP tower in training mode only (no module of its own: the eval graph and the weights' names stay)."""
        parts = []
        if self.arch.gmf_dim:
            parts.append(rows["gmf_user"] * rows["gmf_item"])  # [B, gmf_dim]
        if self.arch.mlp_layers:
            x = torch.cat([rows["mlp_user"], rows["mlp_item"]], dim=-1)  # [B, mlp_user + mlp_item]
            if dropout and self.training:
                for layer in self.mlp:
                    x = layer(x)
                    if isinstance(layer, nn.ReLU):
                        x = nn.functional.dropout(x, dropout, training=True)
            else:
                x = self.mlp(x)
            parts.append(x)  # [B, mlp_layers[-1]]
        h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # [B, predictive_dim]
        return self.predict(h).squeeze(-1)

    def represent(
        self, rows: dict[str, torch.Tensor], users: torch.Tensor, items: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The id rows a batch read -> the representations the towers combine: the rows themselves here (a feature
        model, edgerec.model.features, adds its feature encodings)."""
        return rows

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.combine(self.represent(self.lookup(users, items), users, items))  # [B] logits

    def tables(self) -> dict[str, nn.Embedding]:
        return {n: m for n, m in self.named_children() if isinstance(m, nn.Embedding)}

    @torch.no_grad()
    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(users, items))


def neumf_from_pretrained(gmf: NCF, mlp: NCF, alpha: float = 0.5) -> NCF:
    """Initialise NeuMF from trained GMF and MLP (the paper's pre-training): towers copied, output layer
    = [alpha * h_gmf, (1 - alpha) * h_mlp], bias likewise weighted."""
    g, m = gmf.arch, mlp.arch
    if g.kind != "gmf" or m.kind != "mlp" or (g.n_users, g.n_items) != (m.n_users, m.n_items):
        raise EdgerecError("pre-training needs a GMF and an MLP trained on the same users and items")
    arch = NCFArch("neumf", g.n_users, g.n_items, g.gmf_dim, m.mlp_user_dim, m.mlp_item_dim, m.mlp_layers)
    model = NCF(arch)
    with torch.no_grad():
        model.gmf_user.weight.copy_(gmf.gmf_user.weight)
        model.gmf_item.weight.copy_(gmf.gmf_item.weight)
        model.mlp_user.weight.copy_(mlp.mlp_user.weight)
        model.mlp_item.weight.copy_(mlp.mlp_item.weight)
        model.mlp.load_state_dict(mlp.mlp.state_dict())
        w = torch.cat([alpha * gmf.predict.weight, (1 - alpha) * mlp.predict.weight], dim=1)
        model.predict.weight.copy_(w)
        model.predict.bias.copy_(alpha * gmf.predict.bias + (1 - alpha) * mlp.predict.bias)
    return model
