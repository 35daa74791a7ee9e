"""The export stage: every artifact both frameworks make, each verified against the model it came from.

- `stage.py`: the run's entry; `exporter.py`: trains the twin once, runs every exporter in its
  framework's worker, then verification;
- `shared.py`: the export job and helpers the framework exporters (`bakeoff.frameworks.*.export`) use;
- `artifacts.py`: the catalogue of artifacts (format, origin, precision, who makes and runs it);
- `verify.py`: outputs against the source model; `quantize.py`: ONNX Runtime int8;
- `deployment.py` and `deploy/`: serving layouts (Triton, TorchServe, TF Serving);
- `converters/`: the cross-framework converters that need an environment of their own (onnx2tf).
"""
