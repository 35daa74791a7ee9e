"""The catalogue: every testable claim of the seed article, with where it stands in the article, which
records decide it and the rule (in `rules.py`) that does. Data only: a new claim is one entry here and one
rule function; the report, the command and results.json pick it up from this list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Claim:
    id: str  # short and stable: results.json and `bakeoff compare` match claims across runs by it
    claim: str  # the claim, paraphrased
    section: str  # the article's heading it stands under
    quote: str  # the article's own words, shortened
    stage: str  # the stage whose records decide it
    needs: str  # what a run must do to measure it, shown when it did not
    rule: str  # the function in rules.py that decides it
    evidence: str  # report.html section (its id) that holds the numbers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "compile-vs-xla",
        "torch.compile puts PyTorch's training speed right up there with (sometimes past) TensorFlow's XLA",
        "How PyTorch and TensorFlow Perform on Modern GPUs?",
        "this puts PyTorch's training speed right up there with (and sometimes even past) TensorFlow's XLA",
        "train",
        "the torch-compile and keras-xla training modes",
        "compile_vs_xla",
        "training",
    ),
    Claim(
        "reduce-overhead",
        "torch.compile(mode='reduce-overhead') has largely fixed PyTorch's overhead",
        "Training Performance on a Single GPU",
        "PyTorch's dynamic nature used to come with a bit more overhead, but torch.compile(mode=\"reduce-"
        'overhead") has largely fixed that',
        "train",
        "--compile-mode reduce-overhead, torch-compile and a compiled Keras mode (CUDA graphs: a GPU run)",
        "reduce_overhead",
        "training",
    ),
    Claim(
        "gpu-utilization",
        "well-tuned PyTorch reaches up to 100% GPU utilization; TensorFlow tops out around 90%",
        "Training Performance on a Single GPU",
        "up to 100% GPU utilization with PyTorch in some cases, while TensorFlow might top out around 90%",
        "train",
        "a GPU: --device cuda, with nvidia-ml-py sampling utilization",
        "gpu_utilization",
        "training",
    ),
    Claim(
        "tf-data",
        "tf.data builds optimized input pipelines, a game-changer when loading is the bottleneck",
        "Training Performance on a Single GPU",
        "TensorFlow's tf.data API is incredibly good at building optimized input pipelines, which can be a "
        "game-changer for I/O-heavy tasks",
        "pipeline",
        "the pipeline stage (DataLoader and tf.data variants)",
        "tf_data",
        "pipelines",
    ),
    Claim(
        "tf-serving",
        "TF Serving is the gold standard for high-throughput, low-latency inference",
        "The TensorFlow Production Powerhouse",
        "When your goal is high-throughput, low-latency inference, TensorFlow Serving is the gold standard",
        "serve",
        "the serve stage, with TF Serving and at least one other server",
        "tf_serving",
        "serve",
    ),
    Claim(
        "triton-batching",
        "Triton offers dynamic batching and concurrent model execution",
        "PyTorch's Flexible and Modern Approach",
        "Triton ... offering advanced features like dynamic batching and concurrent model execution",
        "serve",
        "the serve stage, Triton with and without dynamic batching",
        "triton_batching",
        "serve",
    ),
    Claim(
        "torchserve-batching",
        "TorchServe is a flexible, high-performance server for PyTorch models (its batching)",
        "PyTorch's Flexible and Modern Approach",
        "TorchServe ... offers a flexible, high-performance tool for deploying PyTorch models",
        "serve",
        "the serve stage, TorchServe with and without batching",
        "torchserve_batching",
        "serve",
    ),
    Claim(
        "tflite-edge",
        "TFLite is the standard for deploying optimized models on edge and mobile devices",
        "Inference Optimization and Deployment Speed",
        "TensorFlow Lite (TFLite) is the standard for deploying optimized models on edge and mobile devices",
        "infer",
        "the export and infer stages with keras-tflite-fp32 on litert and torch-onnx on onnxruntime",
        "tflite_edge",
        "inference",
    ),
    Claim(
        "onnxruntime-extra",
        "ONNX Runtime often squeezes out extra performance",
        "Inference Optimization and Deployment Speed",
        "run them with the highly optimized ONNX Runtime, which often squeezes out extra performance",
        "infer",
        "the infer stage with onnxruntime and each framework's own runtimes",
        "onnxruntime_extra",
        "inference",
    ),
    Claim(
        "tensorrt",
        "TensorRT delivers massive speedups by quantizing (to INT8) and fusing layers",
        "Inference Optimization and Deployment Speed",
        "TensorRT can deliver massive speedups by quantizing models (to INT8, for example) and fusing layers",
        "infer",
        "a GPU: the onnxruntime-tensorrt and onnxruntime-cuda runtimes",
        "tensorrt",
        "inference",
    ),
    Claim(
        "onnx-conversion",
        "you can convert between PyTorch and TensorFlow via ONNX; it works for most standard architectures",
        "Frequently Asked Questions",
        "You can convert models between PyTorch and TensorFlow using ONNX ... It works for most standard "
        "architectures",
        "export",
        "`bakeoff convert` (the torch-onnx-tf and keras-onnx-torch conversions)",
        "onnx_conversion",
        "artifacts",
    ),
    Claim(
        "debugging",
        "debugging in PyTorch is a dream; TensorFlow's tools feel less direct",
        "Debugging Workflows: A Critical Distinction",
        "Debugging in PyTorch is a dream ... TensorFlow offers its own tools like tf.debugging, but the "
        "process feels less direct",
        "debug",
        "the debug stage",
        "debugging",
        "debug",
    ),
    Claim(
        "keras3-backends",
        "Keras 3 runs on TensorFlow, PyTorch and JAX",
        "Frequently Asked Questions",
        "Keras 3, which runs on multiple backends including TensorFlow, PyTorch, and JAX",
        "backends",
        "the Keras backends stage",
        "keras_backends",
        "backends",
    ),
    Claim(
        "distribute",
        "tf.distribute.Strategy spreads training with minimal code changes; torch.distributed gives finer "
        "control",
        "Distributed and Multi-GPU Training Dynamics",
        "tf.distribute.Strategy API ... spread training across multiple devices with minimal code changes",
        "distributed",
        "the distributed stage, with tf.distribute and torch.distributed",
        "distribute",
        "distributed",
    ),
    Claim(
        "lightning-accelerate",
        "PyTorch Lightning and Hugging Face Accelerate make multi-GPU training almost laughably easy",
        "Distributed and Multi-GPU Training Dynamics",
        "Frameworks like PyTorch Lightning and Hugging Face Accelerate ... making multi-GPU training almost "
        "laughably easy to set up",
        "distributed",
        "the distributed stage, with Lightning or Accelerate beside plain torch.distributed",
        "lightning_accelerate",
        "distributed",
    ),
    Claim(
        "tiny-differences",
        "for most common workloads, the performance differences are tiny",
        "Frequently Asked Questions",
        "For most common workloads, performance differences are tiny",
        "train",
        "the train and infer stages",
        "tiny_differences",
        "verdict",
    ),
)

BY_ID = {claim.id: claim for claim in CLAIMS}
