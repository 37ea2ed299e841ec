"""Compression passes (prune, cluster, qat, distill and its scratch control) and chains of them.

A technique is a frozen `Params` dataclass plus `apply(model, params, ctx) -> keras.Model`,
registered by name in `PASSES`. Nothing here imports TensorFlow until a pass runs.
"""
from toolkit.passes.chain import ChainResult, apply_chain, load_variant_model, save_variant_model
from toolkit.passes.context import PassContext, PassNotApplicable
from toolkit.passes.registry import PASSES, Technique
from toolkit.passes.steps import Step, chain_id, control_chain, is_qat_chain, parse_chain, parse_step

__all__ = [
    "PASSES",
    "ChainResult",
    "PassContext",
    "PassNotApplicable",
    "Step",
    "Technique",
    "apply_chain",
    "chain_id",
    "control_chain",
    "is_qat_chain",
    "load_variant_model",
    "parse_chain",
    "parse_step",
    "save_variant_model",
]
