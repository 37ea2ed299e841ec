"""Why int8 lost accuracy: per-layer quantization error and selective float fallback.

layers.py (one row, ranking) · tflite_debug.py / onnx_debug.py (the libraries' debuggers) ·
fallback.py (auto/list fallback, target refusal) · analysis.py (the whole job) · result.py
(table, findings, JSON) · inputs.py (model file / run folder and data) · hostile.py (a test
model). Named `quant_debug` so that `toolkit.explain` stays the API's function.
"""
from toolkit.quant_debug.analysis import explain_model
from toolkit.quant_debug.fallback import FallbackPlan, parse_fallback
from toolkit.quant_debug.result import Explanation

__all__ = ["Explanation", "FallbackPlan", "explain_model", "parse_fallback"]
