"""ONNX: export the inference path (export_onnx.py) and run an export with onnxruntime (infer.py --onnx).

The graph maps ``image`` (B, 3, H, W) in [-1, 1] to ``depth`` (B, 1, H, W), in metres (or the raw
[-1, 1] prediction with ``raw``), and also returns the ``structure`` (STE) and ``attention`` (DSA)
maps, which the graph computes anyway. Its metadata records what it was exported as, so that
infer.py uses it as it was meant and refuses the ONNX file of another model.
"""
import io
import os
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from models import S2ROutput, depth_to_metres
from utils.errors import UserError

from .api import DepthPredictor, S2RDepth
from .predict import predict

INPUT = "image"
OUTPUTS = ("depth", "structure", "attention")
MODEL_NAME = "S2R-DepthNet"
# The keys of an export's metadata; "model" tells our exports from other ONNX files.
META_MODEL, META_RAW, META_MAX_DEPTH, META_DOMAIN, META_LOAD_SIZE, META_DYNAMIC = (
    "model", "raw_output", "max_depth", "domain", "load_size", "dynamic_size")


class OnnxModelError(UserError):
    """An ONNX file that is missing, unreadable or not an export of export_onnx.py."""


class ExportGraph(nn.Module):
    """What the ONNX graph computes: (depth in metres, or raw, structure, attention)."""

    def __init__(self, model: S2RDepth, raw: bool) -> None:
        super().__init__()
        self.model = model
        self.raw = raw

    def forward(self, images: torch.Tensor):
        out = self.model.net(images)
        depth = out.prediction if self.raw else depth_to_metres(out.prediction, self.model.max_depth)
        return depth, out.structure, out.attention


def export_onnx(model: S2RDepth, output: os.PathLike, opset: int, raw: bool = False,
                dynamic: bool = False) -> Path:
    """Write ``model``'s inference path to ``output`` and check it with onnx.checker. The batch
    size is free; the height and width are ``model.load_size`` unless ``dynamic``. The file
    appears only once it is complete."""
    import onnx

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    graph = ExportGraph(model.cpu(), raw).eval()
    example = torch.zeros(1, 3, *model.load_size)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter (no onnxscript needed) warns that it is the legacy one, and the
        # tracer that the input-size check is a Python condition: OnnxDepth checks the size before
        # a run, so neither matters here.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT], output_names=list(OUTPUTS),
                          dynamic_axes={name: axes for name in (INPUT, *OUTPUTS)})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {
        META_MODEL: MODEL_NAME, META_RAW: str(int(raw)), META_MAX_DEPTH: repr(model.max_depth),
        META_DOMAIN: model.domain, META_LOAD_SIZE: " ".join(map(str, model.load_size)),
        META_DYNAMIC: str(int(dynamic))})
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        onnx.save(proto, str(tmp))
        onnx.checker.check_model(str(tmp))
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output


def read_metadata(path: Path, session) -> Dict[str, str]:
    """The export's metadata, or an OnnxModelError saying why ``path`` is not an export of ours."""
    meta = session.get_modelmeta().custom_metadata_map
    inputs = [(i.name, i.shape) for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if meta.get(META_MODEL) != MODEL_NAME or [n for n, _ in inputs] != [INPUT] or outputs != list(OUTPUTS):
        raise OnnxModelError(f"{path} is not an S2R-DepthNet export of export_onnx.py (inputs "
                             f"{inputs}, outputs {outputs}, model {meta.get(META_MODEL)!r})")
    return meta


class OnnxDepth(DepthPredictor):
    """An export of export_onnx.py run by onnxruntime on the CPU, with the API of S2RDepth.

    ``load_size`` defaults to the export's (a fixed-size export takes no other) and ``max_depth``
    to the metres the export was made for."""

    def __init__(self, path: os.PathLike, load_size: Optional[Sequence[int]] = None,
                 max_depth: Optional[float] = None, threads: Optional[int] = None) -> None:
        import onnxruntime

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"ONNX model not found: {self.path}")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a file it cannot load
            reason = str(exc).partition("\n")[0][:200]
            raise OnnxModelError(f"{self.path} is not a loadable ONNX model ({reason})") from exc
        meta = read_metadata(self.path, self.session)
        self.raw = meta[META_RAW] == "1"
        self.export_max_depth = float(meta[META_MAX_DEPTH])
        self.domain = meta[META_DOMAIN]
        self.dynamic = meta[META_DYNAMIC] == "1"
        export_size = tuple(int(v) for v in meta[META_LOAD_SIZE].split())
        if load_size is not None and not self.dynamic and tuple(load_size) != export_size:
            raise OnnxModelError(f"{self.path} was exported for {export_size[0]}x{export_size[1]} inputs "
                                 f"(export it with --dynamic for other sizes), got --loadSize "
                                 f"{load_size[0]} {load_size[1]}")
        super().__init__(load_size or export_size, max_depth or self.export_max_depth)

    def outputs(self, images: torch.Tensor, post_process: bool = False) -> S2ROutput:
        return predict(self.run, images, post_process)

    def run(self, images: torch.Tensor) -> S2ROutput:
        """One onnxruntime call; the depth as the [-1, 1] prediction whatever the export's output."""
        if not self.dynamic and tuple(images.shape[-2:]) != self.load_size:
            raise OnnxModelError(f"{self.path} takes {self.load_size[0]}x{self.load_size[1]} inputs, "
                                 f"got {images.shape[-2]}x{images.shape[-1]}")
        feed = {INPUT: images.detach().cpu().float().contiguous().numpy()}
        depth, structure, attention = (torch.from_numpy(a) for a in self.session.run(list(OUTPUTS), feed))
        if not self.raw:
            # Back to the prediction, so that resizing and metres follow test.py's order.
            depth = depth / self.export_max_depth * 2.0 - 1.0
        return S2ROutput(structure, attention, [depth])
