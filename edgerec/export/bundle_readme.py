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


def render(manifest: dict) -> str:
    dims = manifest["user_vector_dims"]
    m = manifest.get("metrics", {})
    return TEMPLATE.format(
        n_items=manifest["n_items"],
        k=manifest["k"],
        g=dims["gmf"],
        d=dims["mlp"],
        precision=manifest["precision"],
        runtime=manifest.get("verification", {}).get("verified_with", manifest["runtime"]),
        hr=m.get("hr@10", float("nan")),
        ndcg=m.get("ndcg@10", float("nan")),
    )
