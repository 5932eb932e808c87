"""NeuMF with user and item features: in both towers a side's representation is its id embedding plus an embedding
bag over its encoded feature values (edgerec.data.features), of the same width.

Training zeroes the id embedding of a random share of the samples (id dropout; the items' rate may differ), so that
the feature path alone learns to serve a user or item whose id it never saw. Such a new id is scored with its id rows
at zero, or, for items where the cold fit chose it, placed by its feature neighbours (new_rows): its representation
is the similarity-weighted mean of those of the k known items whose feature-bag outputs are closest to its own.
Optionally (`FeaturesConfig.feature_loss`) every batch is also scored once per side with that side's id rows left
out (its features alone), and that loss is added with a weight: the deterministic form of what id dropout samples.
For what reads plain NeuMF weights (export, quantization, the numpy readers) a feature model is folded: each id row
becomes its id embedding plus its feature encoding (`fold`), which scores every known id exactly as the model does.
Compression and updates keep the feature model itself (edgerec.compression, edgerec.updates.grow).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from edgerec.data.features import (
    BAG_SUFFIX,
    PAD,
    Encoded,
    Encoder,
    Side,
    SideFeatures,
    fold_weights,
    load_side_features,
)
from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.model.config import FeaturesConfig
from edgerec.model.ncf import NCF, NCFArch

SIDES: tuple[Side, ...] = ("user", "item")


@dataclass(frozen=True)
class ModelFeatures:
    """What a feature model holds besides its weights: per side the encoder and every id's encoding (by dense
    index), how it trains: its id dropout (the items' own, where set) and the weight of its feature-only loss
    (FeaturesConfig), and how it places a new id (`neighbours`, chosen by the cold fit: see new_rows)."""

    encoders: Mapping[str, Encoder]
    encoded: Mapping[str, Encoded]
    id_dropout: float
    reports: Mapping[str, dict] = field(default_factory=dict)  # per side, how its table met the data
    feature_loss: float = 0.0
    item_id_dropout: float | None = None  # the items' own id dropout (None: id_dropout)
    neighbours: Mapping[str, int] = field(default_factory=dict)  # {"item": k of new_rows} (absent or 0: bags alone)

    def dropout(self, side: Side) -> float:
        """The share of a batch's samples whose `side` id rows training zeroes."""
        return self.item_id_dropout if side == "item" and self.item_id_dropout is not None else self.id_dropout

    def training(self) -> dict[str, float | None]:
        """How it trains (FeaturesConfig's names): what config.json records of it, and part of to_json."""
        return {
            "id_dropout": self.id_dropout,
            "feature_loss": self.feature_loss,
            "item_id_dropout": self.item_id_dropout,
        }

    def to_json(self) -> dict:
        return {
            **self.training(),
            "encoders": {s: e.to_json() for s, e in self.encoders.items()},
            "reports": dict(self.reports),
            "neighbours": dict(self.neighbours),
        }

    @classmethod
    def from_json(cls, d: dict, encoded: Mapping[str, Encoded], where: str) -> ModelFeatures:
        try:
            encoders = {s: Encoder.from_json(e, f"{where} ({s})") for s, e in d["encoders"].items()}
            dropout = float(d["id_dropout"])
            feature_loss = float(d.get("feature_loss", 0.0))  # absent in checkpoints written before it existed
            item_dropout = None if d.get("item_id_dropout") is None else float(d["item_id_dropout"])
            neighbours = {str(s): int(k) for s, k in d.get("neighbours", {}).items()}  # absent before it existed
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise EdgerecError(f"{where}: malformed features record ({type(e).__name__}: {e})") from None
        if set(encoders) != set(encoded) or not set(encoders) <= set(SIDES):
            raise EdgerecError(f"{where}: encoders for {sorted(encoders)} but encoded features for {sorted(encoded)}")
        if not set(neighbours) <= {"item"} & set(encoders) or min(neighbours.values(), default=0) < 0:
            raise EdgerecError(
                f"{where}: neighbours {neighbours}: only items with features are placed by neighbours, k >= 0"
            )
        return cls(encoders, dict(encoded), dropout, d.get("reports", {}), feature_loss, item_dropout, neighbours)


class FeatureNCF(NCF):
    """NCF whose user / item rows are id embedding + feature embedding bag (see the module docstring)."""

    def __init__(self, arch: NCFArch, features: ModelFeatures) -> None:
        super().__init__(arch)
        self.features = features
        for side, enc in features.encoded.items():
            n = arch.n_users if side == "user" else arch.n_items
            if len(enc) != n or features.encoders[side].size <= int(enc.indices.max(initial=0)):
                raise EdgerecError(f"the {side} features do not match the model's {n} {side}s and their encoder")
            # buffers outside the state dict: the checkpoint keeps them in features.safetensors
            self.register_buffer(f"{side}_feature_indices", torch.from_numpy(enc.indices), persistent=False)
            self.register_buffer(f"{side}_feature_weights", torch.from_numpy(enc.weights), persistent=False)
        for name, table in self.tables().items():
            side = name.rsplit("_", 1)[1]
            if side in features.encoded:
                bag = nn.EmbeddingBag(features.encoders[side].size, table.embedding_dim, mode="sum", padding_idx=PAD)
                nn.init.normal_(bag.weight, std=0.01)
                with torch.no_grad():
                    bag.weight[PAD].zero_()
                self.add_module(name + BAG_SUFFIX.removesuffix(".weight"), bag)

    def bags(self) -> dict[str, nn.EmbeddingBag]:
        """The feature bags by the id table they add to: {"gmf_item": ..., "mlp_item": ...}."""
        suffix = BAG_SUFFIX.removesuffix(".weight")
        return {n.removesuffix(suffix): m for n, m in self.named_children() if isinstance(m, nn.EmbeddingBag)}

    def represent(
        self, rows: dict[str, torch.Tensor], users: torch.Tensor, items: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return self.representations(rows, users, items)[0]

    def representations(
        self, rows: dict[str, torch.Tensor], users: torch.Tensor, items: torch.Tensor, feature_only: bool = False
    ) -> list[dict[str, torch.Tensor]]:
        """[represent's result]; with feature_only, then per side with features the same with that side's id rows
        left out (its features alone, the other side as represented), for the feature-only loss."""
        out = dict(rows)
        encodings: dict[str, dict[str, torch.Tensor]] = {}
        for side, ids in (("user", users), ("item", items)):
            if side not in self.features.encoded:
                continue
            keep = None
            rate = self.features.dropout(side)
            if self.training and rate:
                keep = (torch.rand(len(ids)) >= rate).to(torch.float32)[:, None]
            # each distinct id of the batch is pooled once (a batch of 16,384 holds ~3,000 of ML-1M's items)
            distinct, inverse = torch.unique(ids, return_inverse=True)
            _, indices, weights = side_encodings(self, side)
            encodings[side] = {
                name: encoding[inverse]
                for name, encoding in bag_outputs(self, side, indices[distinct], weights[distinct]).items()
            }
            for name, encoding in encodings[side].items():
                out[name] = (rows[name] if keep is None else rows[name] * keep) + encoding
        if not feature_only:
            return [out]
        return [out, *({**out, **own} for own in encodings.values())]

    def add_l2_grad(self, users: torch.Tensor, items: torch.Tensor, l2: float) -> None:
        """The feature side of training's L2 on the rows a batch reads (edgerec.model.row_grads.add_l2_grad): every
        bag row gets 2 * l2 * row / B per sample that reads it, times its weight there (a column's weights sum to 1,
        so each column of a sample counts as one row, as an id row does)."""
        for side, ids in (("user", users), ("item", items)):
            if side not in self.features.encoded:
                continue
            _, all_indices, all_weights = side_encodings(self, side)
            indices, weights = all_indices[ids].ravel(), all_weights[ids].ravel().abs()
            for name, bag in self.bags().items():
                if name.endswith(f"_{side}") and bag.weight.grad is not None:
                    seen = torch.bincount(indices, weights=weights, minlength=bag.num_embeddings).to(bag.weight.dtype)
                    bag.weight.grad.add_(bag.weight.detach() * seen[:, None], alpha=2 * l2 / len(ids))


def build(ds: Dataset, arch: NCFArch, cfg: FeaturesConfig) -> FeatureNCF:
    """A new feature model on ds's id maps: each named table read, joined by original id, its encoder fitted."""
    sides: dict[str, SideFeatures] = {}
    for side, path, table_cfg in (("user", cfg.user, cfg.user_table), ("item", cfg.item, cfg.item_table)):
        if path is not None:
            ids = ds.train.user_ids if side == "user" else ds.train.item_ids
            sides[side] = load_side_features(path, ids, side, table_cfg)  # type: ignore[arg-type]
    features = ModelFeatures(
        {s: f.encoder for s, f in sides.items()},
        {s: f.encoded for s, f in sides.items()},
        cfg.id_dropout,
        {s: f.report.to_json() for s, f in sides.items()},
        cfg.feature_loss,
        cfg.item_id_dropout,
    )
    return FeatureNCF(arch, features)


def with_encodings(features: ModelFeatures, side: Side, encoded: Encoded) -> ModelFeatures:
    """`features` with `encoded` (new ids of `side`, encoded by its encoder) after that side's own rows."""
    if side not in features.encoded:
        raise EdgerecError(f"the model has no {side} features: new {side}s cannot be scored by them")
    old = features.encoded[side]
    width = max(old.indices.shape[1], encoded.indices.shape[1])

    def padded(e: Encoded) -> Encoded:
        extra = width - e.indices.shape[1]
        return Encoded(np.pad(e.indices, ((0, 0), (0, extra))), np.pad(e.weights, ((0, 0), (0, extra))))

    a, b = padded(old), padded(encoded)
    joined = Encoded(np.concatenate([a.indices, b.indices]), np.concatenate([a.weights, b.weights]))
    return replace(features, encoded={**features.encoded, side: joined})


CHUNK = 1 << 24  # similarity entries computed at a time (64 MB of float32)


def side_encodings(model: FeatureNCF, side: Side) -> tuple[int, torch.Tensor, torch.Tensor]:
    """How many ids `side` has, and every one's encoded features (indices, weights)."""
    n = model.arch.n_items if side == "item" else model.arch.n_users
    return n, getattr(model, f"{side}_feature_indices"), getattr(model, f"{side}_feature_weights")


def bag_outputs(model: FeatureNCF, side: Side, indices: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each of `side`'s feature bags applied to encoded ids: {table name: [m, dim]}."""
    return {
        name: bag(indices, per_sample_weights=weights)
        for name, bag in model.bags().items()
        if name.endswith(f"_{side}")
    }


@torch.no_grad()
def placed(
    model: FeatureNCF, side: Side, encoded: Encoded, k: int, pool: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    """Representations {table name: [m, dim]} of m ids given by their encodings, each the similarity-weighted mean of
    its k nearest ids of `pool` (dense indices of the model's known ids; default all of them), by cosine between the
    feature-bag outputs of both towers, rescaled to the weighted mean of their lengths; an id whose bags give nothing
    (no feature values) keeps its bag outputs, as it has no neighbours. k must be at least 1."""
    n, idx, wts = side_encodings(model, side)
    pool_ids = torch.arange(n) if pool is None else torch.from_numpy(np.asarray(pool, dtype=np.int64))
    k = min(k, len(pool_ids))
    known = bag_outputs(model, side, idx[pool_ids], wts[pool_ids])
    names = sorted(known)
    rows = {name: getattr(model, name).weight[pool_ids] + known[name] for name in names}
    new = bag_outputs(model, side, torch.from_numpy(encoded.indices), torch.from_numpy(encoded.weights))
    a = _unit(torch.cat([new[name] for name in names], dim=1))
    b = _unit(torch.cat([known[name] for name in names], dim=1))
    out = {name: torch.empty(len(a), rows[name].shape[1]) for name in names}
    step = max(1, CHUNK // max(len(b), 1))
    for s in range(0, len(a), step):
        top = (a[s : s + step] @ b.T).topk(k, dim=1)
        w = top.values.clamp_min(0) + 1e-6  # an id with no positive similarity gets the plain mean of its k
        w = (w / w.sum(dim=1, keepdim=True))[:, :, None]
        for name in names:
            near = rows[name][top.indices]  # [step, k, dim]
            mean = (w * near).sum(dim=1)
            # rescaled to the neighbours' mean length: a mean of k directions is shorter than any of them, and a
            # shorter row scores nearer the average item against the catalog
            length = (w[:, :, 0] * near.norm(dim=2)).sum(dim=1, keepdim=True)
            out[name][s : s + step] = mean * length / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)
    empty = a.norm(dim=1) == 0
    for name in names:
        out[name][empty] = new[name][empty]
    return out


@torch.no_grad()
def new_rows(model: FeatureNCF, side: Side, encoded: Encoded) -> dict[str, torch.Tensor]:
    """The id rows {table name: [m, dim]} of m new ids of `side` (encoded by the model's encoder): zero (the bags
    alone represent them) where the model places that side by its bags, else the neighbours' representation minus
    the new ids' own bag outputs, so that id row + bags = the placed representation."""
    k = model.features.neighbours.get(side, 0)
    if not k or not len(encoded):
        return {
            name: torch.zeros(len(encoded), table.embedding_dim, dtype=table.weight.dtype)
            for name, table in model.tables().items()
            if name.endswith(f"_{side}")
        }
    target = placed(model, side, encoded, k)
    own = bag_outputs(model, side, torch.from_numpy(encoded.indices), torch.from_numpy(encoded.weights))
    return {name: target[name] - own[name] for name in target}


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def add_ids(model: FeatureNCF, side: Side, encoded: Encoded) -> FeatureNCF:
    """`model` with len(encoded) new ids on `side` after its own (e.g. items encoded by the model's encoder with
    Encoder.encode_ids), placed by new_rows: by their feature bags alone, or (items, where the model chose it) by
    their feature neighbours."""
    features = with_encodings(model.features, side, encoded)
    count = "n_users" if side == "user" else "n_items"
    arch = replace(model.arch, **{count: getattr(model.arch, count) + len(encoded)})
    grown = FeatureNCF(arch, features)
    state = model.state_dict()
    for name, rows in new_rows(model, side, encoded).items():
        state[f"{name}.weight"] = torch.cat([getattr(model, name).weight.detach(), rows])
    grown.load_state_dict(state)
    return grown.eval()


def pretrained_features(neumf: NCF, gmf: NCF, mlp: NCF) -> NCF:
    """The NeuMF that ncf.neumf_from_pretrained built from a feature GMF and MLP, with their feature bags (the GMF
    tower's from the GMF, the MLP tower's from the MLP); `neumf` itself when they have no features."""
    if not (isinstance(gmf, FeatureNCF) and isinstance(mlp, FeatureNCF)):
        return neumf
    model = FeatureNCF(neumf.arch, gmf.features)
    state = {**neumf.state_dict()}
    for tower in (gmf, mlp):
        state.update({k: v for k, v in tower.state_dict().items() if k.endswith(BAG_SUFFIX)})
    model.load_state_dict(state)
    return model


def folded_state_dict(model: NCF) -> dict[str, torch.Tensor]:
    """The state dict of the plain NeuMF that scores every known id as `model` does (itself for a plain one)."""
    state = {k: v.detach() for k, v in model.state_dict().items()}
    if not isinstance(model, FeatureNCF):
        return state
    weights = fold_weights({k: v.cpu().numpy() for k, v in state.items()}, model.features.encoded)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}


def fold(model: NCF) -> NCF:
    """The plain NeuMF of folded_state_dict (the model itself when it has no features)."""
    if not isinstance(model, FeatureNCF):
        return model
    plain = NCF(model.arch)
    plain.load_state_dict(folded_state_dict(model))
    return plain.eval()
