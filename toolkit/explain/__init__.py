"""Why int8 lost accuracy: per-layer quantization error and selective float fallback.

layers.py (one row, ranking) · tflite_debug.py / onnx_debug.py (the libraries' debuggers) ·
fallback.py (auto/list fallback, target refusal) · analysis.py (the whole job) · result.py.
"""
from toolkit.explain.analysis import explain_model
from toolkit.explain.fallback import FallbackPlan, parse_fallback
from toolkit.explain.result import Explanation

__all__ = ["Explanation", "FallbackPlan", "explain_model", "parse_fallback"]
