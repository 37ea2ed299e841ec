"""Loading .onnx files with a one-line error for a missing, truncated or foreign file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.errors import EdgesmithError, first_line

REEXPORT_FIX = "re-export it (delete the file and run the conversion again)"


def load_checked(path: Path) -> Any:
    """Load an .onnx file, turning a missing, truncated or foreign file into a one-line error."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"{path} does not exist", "check the path, or run the conversion first")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # protobuf DecodeError, onnx ValidationError, ...
        raise EdgesmithError(
            f"{path.name} is not a valid ONNX model (truncated or corrupt: {first_line(error)})",
            REEXPORT_FIX,
        ) from error
    return model
