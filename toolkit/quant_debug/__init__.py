"""Why int8 lost accuracy: per-layer quantization error and selective float fallback.

layers.py (one row, ranking) · tflite_debug.py / onnx_debug.py (the libraries' debuggers) ·
fallback.py (auto/list fallback, target refusal) · analysis.py (the whole job) · result.py.
"""
from toolkit.quant_debug.analysis import explain_model
from toolkit.quant_debug.fallback import FallbackPlan, parse_fallback
from toolkit.quant_debug.result import Explanation

__all__ = ["Explanation", "FallbackPlan", "explain_model", "parse_fallback"]
