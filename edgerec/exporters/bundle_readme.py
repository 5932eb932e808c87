"""The README written into every phone bundle: what the files are and how an app calls the model."""

from __future__ import annotations

TEMPLATE = """# edgerec phone bundle

`model.tflite` {ranks} for one user and returns the top {k} in the graph:
signature `recommend(user_gmf: float32[1, {g}], user_mlp: float32[1, {d}]) -> (top_items: int32[{k}] item indices,
top_scores: float32[{k}] their scores, best first, {rest})`. Scores are logits (apply a sigmoid for a
probability).{shortlist_note} Precision: {precision}. Verified in {runtime}: HR@10 {hr:.4f}, NDCG@10
{ndcg:.4f} (see manifest.json, which also lists every file's sha256).

Ship `model.tflite` and the item ids (`id_maps.json` key `items`: row index -> your item id). Do **not** ship
`user_vectors.npy`: it holds every user's vectors and stays on the server, which sends each user their own two
vectors ({g} + {d} floats).

## Android (Kotlin, LiteRT)

```kotlin
// build.gradle: implementation("com.google.ai.edge.litert:litert:<version>")
val interpreter = Interpreter(loadModelFile(context, "model.tflite"), Interpreter.Options().setNumThreads(1))
val runner = interpreter.getSignatureRunner("recommend")
val inputs = mapOf("user_gmf" to arrayOf(userGmf), "user_mlp" to arrayOf(userMlp))   // FloatArray({g}), FloatArray({d})
val topItems = IntArray({k}); val topScores = FloatArray({k}); {kotlin_rest}
runner.run(inputs, mapOf("top_items" to topItems, "top_scores" to topScores, {kotlin_outputs}))
val recommended = topItems.map {{ itemIds[it] }}
```

## iOS (Swift, TensorFlowLiteSwift)

```swift
var options = Interpreter.Options(); options.threadCount = 1
let interpreter = try Interpreter(modelPath: modelPath, options: options)
let runner = try interpreter.signatureRunner(with: "recommend")
try runner.allocateTensors()
try runner.invoke(with: ["user_gmf": Data(bytes: userGmf, count: {g} * 4),
                         "user_mlp": Data(bytes: userMlp, count: {d} * 4)])
let top = try runner.output(named: "top_items").data.withUnsafeBytes {{ Array($0.bindMemory(to: Int32.self)) }}
let recommended = top.map {{ itemIds[Int($0)] }}
```
"""

SCORE = """
## Scoring a candidate list (signature `score`)

`score(user_gmf, user_mlp, items: int32[{c}]) -> (scores: float32[{c}] each item's score, top_items: int32[{k}] the
list's top {k} item indices, top_scores: float32[{k}] their scores)`: re-rank candidates (e.g. from a server or an
availability filter) or score a few items; the MLP runs for these items only. Pass item row indices (map your ids
through `id_maps.json` first; an index outside 0..{last} fails the call) and pad a shorter list with -1: padding
scores -3e38 and appears in the top {k} only when the list has fewer than {k} items. Split a longer list into
calls of {c}.

```kotlin
val items = IntArray({c}) {{ -1 }}; candidates.forEachIndexed {{ i, id -> items[i] = rowOf[id]!! }}
val scores = FloatArray({c}); val best = IntArray({k}); val bestScores = FloatArray({k})
interpreter.getSignatureRunner("score").run(
    mapOf("user_gmf" to arrayOf(userGmf), "user_mlp" to arrayOf(userMlp), "items" to items),
    mapOf("scores" to scores, "top_items" to best, "top_scores" to bestScores))
```
"""

APP = """
## A new user, on the device (signatures `fold_in` and `explain`)

`fold_in(history: int32[{h}], history_mask: float32[{h}]) -> (user_gmf: float32[1, {g}], user_mlp: float32[1, {d}])`
computes the vectors of a user the server never saw from the item row indices they picked (pad the list with 0 and
mask 0; at most {h} items): the history never leaves the phone, and the outputs feed `recommend` as they are.
`explain(user_gmf, user_mlp, history, history_mask, items: int32[{k}]) -> (reasons: int32[{k}, {r}], reason_weights:
float32[{k}, {r}])` gives, for each of the {k} recommended items, the {r} history items most like it ("because you
liked ...") and their similarity.

```kotlin
val history = IntArray({h}); val mask = FloatArray({h})
picked.forEachIndexed {{ i, id -> history[i] = rowOf[id]!!; mask[i] = 1f }}
val gmf = Array(1) {{ FloatArray({g}) }}; val mlp = Array(1) {{ FloatArray({d}) }}
interpreter.getSignatureRunner("fold_in").run(
    mapOf("history" to history, "history_mask" to mask), mapOf("user_gmf" to gmf, "user_mlp" to mlp))
val topItems = IntArray({k}); val topScores = FloatArray({k}); {kotlin_rest}
interpreter.getSignatureRunner("recommend").run(mapOf("user_gmf" to gmf, "user_mlp" to mlp),
    mapOf("top_items" to topItems, "top_scores" to topScores, {kotlin_outputs}))
val reasons = Array({k}) {{ IntArray({r}) }}; val weights = Array({k}) {{ FloatArray({r}) }}
interpreter.getSignatureRunner("explain").run(
    mapOf("user_gmf" to gmf, "user_mlp" to mlp, "history" to history, "history_mask" to mask, "items" to topItems),
    mapOf("reasons" to reasons, "reason_weights" to weights))
```

```swift
let foldIn = try interpreter.signatureRunner(with: "fold_in"); try foldIn.allocateTensors()
try foldIn.invoke(with: ["history": Data(bytes: history, count: {h} * 4),
                         "history_mask": Data(bytes: mask, count: {h} * 4)])
let gmf = try foldIn.output(named: "user_gmf").data, mlp = try foldIn.output(named: "user_mlp").data
```

The Kotlin and Swift snippets are written against the signatures' names; they were not compiled on the machines this
bundle was made on (no Android or iOS toolchain there). The same chain runs in Python (edgerec's runtime), in a C
program through the LiteRT C API and in a web page through LiteRT.js.
"""

USER_FEATURES = """
## A user known by their attributes alone (signature `user_features`)

The model was trained with user features ({columns}). `user_features(feature_indices: int32[{w}], feature_weights:
float32[{w}]) -> (user_gmf: float32[1, {g}], user_mlp: float32[1, {d}])` gives a user with no history the vectors
the model's feature path gives them; they feed `recommend` as they are. Encode the attributes with
`{encoder}` (edgerec's feature encoder as JSON: per column its reserved index for missing or unknown values, then
its values; a categorical value is its index with weight 1, a multi-valued field the mean of its values, a number
its quantile bucket or z-score), pad with index 0 and weight 0. edgerec's Python runtime does this for you:
`load_bundle(path).user_from_features({{"gender": "F", "age": 25}})`.

```kotlin
val indices = IntArray({w}); val weights = FloatArray({w})   // the attributes encoded by {encoder}, padded
val gmf = Array(1) {{ FloatArray({g}) }}; val mlp = Array(1) {{ FloatArray({d}) }}
interpreter.getSignatureRunner("user_features").run(
    mapOf("feature_indices" to indices, "feature_weights" to weights), mapOf("user_gmf" to gmf, "user_mlp" to mlp))
```
"""

FOLD_IN_FROM = """
`fold_in_from(history, history_mask, user_gmf: float32[1, {g}], user_mlp: float32[1, {d}]) -> (user_gmf, user_mlp)`
is `fold_in` started from the given vectors instead of its seeded start, and pulled toward them (strength
`fold_in.pull` in manifest.json, divided by the number of distinct history items): pass `user_features`' outputs to
fold a new user's first few items in from what their attributes say.
"""


def recommend_outputs(manifest: dict) -> dict[str, str]:
    """The template's words for recommend's outputs after the top-K: every item's score, or a shortlist's."""
    n, short = manifest["n_items"], manifest.get("shortlist")
    if not short:
        return {
            "ranks": f"scores the whole catalog ({n} items)",
            "rest": f"scores: float32[{n}] every item's score",
            "shortlist_note": "",
            "kotlin_rest": f"val all = FloatArray({n})",
            "kotlin_outputs": '"scores" to all',
        }
    s, gate = short["size"], short["gate"]
    return {
        "ranks": f"ranks a shortlist of {s} of the catalog's {n} items (the {s} of best GMF half + item prior, found "
        "in the graph) with the whole model",
        "rest": f"shortlist: int32[{s}] the shortlisted item indices, shortlist_scores: float32[{s}] their scores",
        "shortlist_note": f" Its top {manifest['k']} held {gate['recall_at_k']:.3f} of the full model's exhaustive top "
        f"{manifest['k']} on {gate['users']} users; to leave items out (already seen), rank the shortlist by "
        "shortlist_scores without them, and score any other item with `score`.",
        "kotlin_rest": f"val shortlist = IntArray({s}); val shortlistScores = FloatArray({s})",
        "kotlin_outputs": '"shortlist" to shortlist, "shortlist_scores" to shortlistScores',
    }


def render(manifest: dict) -> str:
    dims = manifest["user_vector_dims"]
    m = manifest.get("metrics", {})
    words = recommend_outputs(manifest)
    text = TEMPLATE.format(
        **words,
        n_items=manifest["n_items"],
        k=manifest["k"],
        g=dims["gmf"],
        d=dims["mlp"],
        precision=manifest["precision"],
        runtime=manifest.get("verification", {}).get("verified_with", manifest["runtime"]),
        hr=m.get("hr@10", float("nan")),
        ndcg=m.get("ndcg@10", float("nan")),
    )
    if manifest.get("candidates"):
        text += SCORE.format(c=manifest["candidates"], k=manifest["k"], last=manifest["n_items"] - 1)
    if "fold_in" in manifest.get("signatures", {}):
        text += APP.format(
            h=manifest["max_history"],
            r=manifest["reasons"],
            k=manifest["k"],
            g=dims["gmf"],
            d=dims["mlp"],
            kotlin_rest=words["kotlin_rest"],
            kotlin_outputs=words["kotlin_outputs"],
        )
    features = manifest.get("user_features")
    if features:
        text += USER_FEATURES.format(
            columns=", ".join(features["columns"]), w=features["width"], g=dims["gmf"], d=dims["mlp"],
            encoder=features["encoder"],
        )  # fmt: skip
        if "fold_in_from" in manifest.get("signatures", {}):
            text += FOLD_IN_FROM.format(g=dims["gmf"], d=dims["mlp"])
    return text
