"""recommend(): the top-K of a known user or of a history (a new user folded in), each with its reasons, from a
checkpoint or a phone bundle exported with explain. numpy only, never torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerec.data.split import Dataset
from edgerec.errors import EdgerecError
from edgerec.io import SavesJson
from edgerec.runtime.config import ExplainConfig
from edgerec.runtime.explain import Explainer, NumpyModel
from edgerec.runtime.foldin import fold_in


@dataclass(frozen=True)
class Recommendation:
    item: str  # original item id
    logit: float
    reasons: tuple[tuple[str, float], ...] = ()  # (history item's original id, weight), strongest first


@dataclass(frozen=True)
class Recommendations(SavesJson):
    who: str  # "user 42", or "a new user with 5 items (folded in)"
    items: tuple[Recommendation, ...]
    explain: str | None  # the explainer's method, if reasons were asked for

    def to_json(self) -> dict[str, Any]:
        recs = [{"item": r.item, "logit": r.logit, "reasons": [list(x) for x in r.reasons]} for r in self.items]
        return {"who": self.who, "explain": self.explain, "recommendations": recs}


def recommend(
    model: str | Path,
    user: str | None = None,
    history: list[str] | None = None,
    k: int = 10,
    explain: ExplainConfig | None = None,
    data: Dataset | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Recommendations:
    """Either `user` (an original user id the model knows; its history read from `data`) or a user the model never
    saw: `history` (original item ids, folded in), `attributes` ({column: value}: the vectors of the model's user
    feature path), or both (the history folded in starting from the attributes' vectors)."""
    new_user = history is not None or attributes is not None
    if (user is None) != new_user:
        raise EdgerecError("give either a user the model knows or a new user's history and / or attributes, not both")
    m = NumpyModel.load(model)
    if new_user:
        start, parts = None, []
        seen = np.zeros(0, dtype=np.int64)
        if attributes is not None:
            p, q, counts = m.user_from_features(attributes)
            start = (p, q)
            odd = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()) if kind != "missing")
            parts.append(f"{len(attributes)} attributes" + (f" ({odd})" if odd else ""))
        if history is not None:
            seen = m.index([x for x in history if x], "item")
            if seen.size == 0:
                raise EdgerecError("history: give at least one item id")
            p, q = (v.astype(np.float64) for v in fold_in(m.side, seen, start=start))
            how = "folded in from the attributes' vectors" if start is not None else "folded in"
            parts.insert(0, f"{len(np.unique(seen))} items ({how})")
        who = "a new user with " + " and ".join(parts)
        if explain is not None and history is None:
            raise EdgerecError("reasons are history items: explaining needs the new user's history (--history)")
    else:
        u = int(m.index([str(user)], "user")[0])
        p, q = m.user_gmf[u], m.user_mlp[u]
        seen = np.zeros(0, dtype=np.int64)
        if data is not None:
            from edgerec.data.align import index_of

            row = int(index_of(data.train.user_ids, [user])[0])
            if row < 0:
                raise EdgerecError(f"the data has no user {user!r}")
            mine = data.train.items[data.train.users == row]
            seen = m.index([str(x) for x in data.train.item_ids[mine]], "item")
        elif explain is not None:
            raise EdgerecError("explaining a known user's recommendations needs --data (the user's history)")
        who = f"user {user}"
    seen = np.unique(seen)
    top, scores = m.top_k(p, q, k, seen)
    reasons = Explainer(m.side).explain(seen, top, explain) if explain is not None else None
    items = tuple(
        Recommendation(
            str(m.item_ids[i]),
            float(s),
            tuple((str(m.item_ids[r.item]), float(r.weight)) for r in (reasons[n] if reasons else [])),
        )
        for n, (i, s) in enumerate(zip(top, scores, strict=True))
    )
    return Recommendations(who, items, explain.method if explain is not None else None)
