"""Weight clustering: each kernel keeps only `clusters` distinct values (shared centroids).

The file shrinks only after compression (gzip/OTA), since the weights stay full tensors. After
pruning, clustering preserves the zeros (tfmot's sparsity-preserving clustering) so the chain
prune → cluster keeps both savings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit._tf import keras, tfmot
from toolkit.errors import EdgesmithError
from toolkit.passes.context import PassContext, PassNotApplicable, clone_with_weights, fine_tune


@dataclass(frozen=True)
class Params:
    """`clusters`: distinct weight values per kernel (16 fits in 4 bits)."""

    clusters: int = 16

    POSITIONAL: ClassVar[tuple[str, ...]] = ("clusters",)
    EXAMPLE: ClassVar[str] = "cluster:16"

    def __post_init__(self) -> None:
        if not 3 <= self.clusters <= 256:
            raise EdgesmithError(f"cluster count {self.clusters} is out of range", "use 3 to 256 clusters, e.g. cluster:16")

    def suffix(self) -> str:
        return str(self.clusters)


def apply(model: Any, params: Params, ctx: PassContext) -> Any:
    """Fine-tune a clustered copy of `model`; return it with the clustering wrappers stripped."""
    clustering = tfmot().clustering.keras
    base = clone_with_weights(model)
    for layer in base.layers:
        _check_clusterable(layer)
    wrapped = clustering.cluster_weights(
        base,
        number_of_clusters=params.clusters,
        cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity="prune" in ctx.applied,
    )
    fine_tune(wrapped, ctx)
    return clustering.strip_clustering(wrapped)


def _check_clusterable(layer: Any) -> None:
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    clustering = tfmot().clustering.keras
    if isinstance(layer, keras().layers.InputLayer) or isinstance(layer, clustering.ClusterableLayer):
        return
    if isinstance(layer, keras().Model) or not ClusteringRegistry.supports(layer):
        raise PassNotApplicable(
            f"cluster cannot cluster layer '{layer.name}' ({type(layer).__name__}): tfmot has no clustering rule for it",
            "drop cluster from this chain or rebuild the layer from standard Keras layers",
        )
