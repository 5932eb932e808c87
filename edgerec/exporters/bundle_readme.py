"""The README written into every phone bundle: what the files are and how an app calls the model."""

from __future__ import annotations

TEMPLATE = """# edgerec phone bundle

`model.tflite` scores the whole catalog ({n_items} items) for one user and returns the top {k} in the graph:
signature `recommend(user_gmf: float32[1, {g}], user_mlp: float32[1, {d}]) -> (output_0: int32[{k}] item indices,
output_1: float32[{k}] their scores, best first, output_2: float32[{n_items}] every item's score)`. Scores are logits
(apply a sigmoid for a probability). Precision: {precision}. Verified in {runtime}: HR@10 {hr:.4f}, NDCG@10
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
val topItems = IntArray({k}); val topScores = FloatArray({k}); val all = FloatArray({n_items})
runner.run(inputs, mapOf("output_0" to topItems, "output_1" to topScores, "output_2" to all))
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
let top = try runner.output(named: "output_0").data.withUnsafeBytes {{ Array($0.bindMemory(to: Int32.self)) }}
let recommended = top.map {{ itemIds[Int($0)] }}
```
"""

SCORE = """
## Scoring a candidate list (signature `score`)

`score(user_gmf, user_mlp, items: int32[{c}]) -> (output_0: float32[{c}] each item's score, output_1: int32[{k}] the
list's top {k} item indices, output_2: float32[{k}] their scores)`: re-rank candidates (e.g. from a server or an
availability filter) or score a few items; the MLP runs for these items only. Pass item row indices (map your ids
through `id_maps.json` first; an index outside 0..{last} fails the call) and pad a shorter list with -1: padding
scores -3e38 and appears in the top {k} only when the list has fewer than {k} items. Split a longer list into
calls of {c}.

```kotlin
val items = IntArray({c}) {{ -1 }}; candidates.forEachIndexed {{ i, id -> items[i] = rowOf[id]!! }}
val scores = FloatArray({c}); val best = IntArray({k}); val bestScores = FloatArray({k})
interpreter.getSignatureRunner("score").run(
    mapOf("user_gmf" to arrayOf(userGmf), "user_mlp" to arrayOf(userMlp), "items" to items),
    mapOf("output_0" to scores, "output_1" to best, "output_2" to bestScores))
```
"""


def render(manifest: dict) -> str:
    dims = manifest["user_vector_dims"]
    m = manifest.get("metrics", {})
    text = TEMPLATE.format(
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
    return text
