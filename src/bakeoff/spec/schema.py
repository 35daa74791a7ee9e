"""The framework-neutral model spec: pydantic models for inputs, layers, task, and the whole model.

Shapes are per sample and channels-last (an image is [height, width, channels], a sequence is
[steps, features]); the PyTorch twin transposes images to NCHW at its boundary.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
# The name becomes the run directory's suffix and the Keras model's name (which may not hold a '/').
MODEL_NAME = r"^[A-Za-z0-9_][^/\\\x00-\x1f]*$"

Activation = Literal["relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid", "softmax"]
Padding = Literal["valid", "same"]
# Strict types: YAML's `units: true` or `strides: 2.5` is a mistake to report, not a value to coerce.
Positive = Annotated[StrictInt, Field(gt=0)]
Pair = Positive | tuple[Positive, Positive]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(Strict):
    name: str = Field(pattern=IDENTIFIER)
    shape: tuple[StrictInt, ...] = Field(min_length=1, max_length=3)
    dtype: Literal["float32", "int32", "int64"] = "float32"

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in shape):
            raise ValueError(f"every dimension must be positive, got {list(shape)}")
        return shape


class LayerBase(Strict):
    name: str | None = Field(default=None, pattern=IDENTIFIER)
    # Graph form: names of earlier layers or inputs this layer reads; default is the previous node.
    inputs: tuple[str, ...] | None = None


class Dense(LayerBase):
    type: Literal["dense"]
    units: StrictInt = Field(gt=0)
    activation: Activation | None = None
    use_bias: StrictBool = True


class Conv2d(LayerBase):
    type: Literal["conv2d"]
    filters: StrictInt = Field(gt=0)
    kernel_size: Pair
    strides: Pair = 1
    padding: Padding = "valid"
    groups: StrictInt = Field(default=1, gt=0)
    activation: Activation | None = None
    use_bias: StrictBool = True


class Pool2d(LayerBase):
    pool_size: Pair = 2
    strides: Pair | None = None  # None: same as pool_size, the default of both frameworks
    padding: Padding = "valid"


class MaxPool2d(Pool2d):
    type: Literal["max_pool2d"]


class AvgPool2d(Pool2d):
    type: Literal["avg_pool2d"]


class GlobalAvgPool(LayerBase):
    type: Literal["global_avg_pool"]


class Flatten(LayerBase):
    type: Literal["flatten"]


class Dropout(LayerBase):
    type: Literal["dropout"]
    rate: StrictFloat = Field(ge=0.0, lt=1.0)


class BatchNorm(LayerBase):
    type: Literal["batch_norm"]
    # Keras convention: the share of the old running value kept. PyTorch's momentum is 1 - this.
    momentum: StrictFloat = Field(default=0.9, gt=0.0, lt=1.0)
    epsilon: StrictFloat = Field(default=1e-5, gt=0.0)


class LayerNorm(LayerBase):
    type: Literal["layer_norm"]
    epsilon: StrictFloat = Field(default=1e-5, gt=0.0)


class Embedding(LayerBase):
    type: Literal["embedding"]
    vocab_size: StrictInt = Field(gt=0)
    dim: StrictInt = Field(gt=0)


class PositionEmbedding(LayerBase):
    """A learned vector per position, added to a [steps, features] sequence."""

    type: Literal["position_embedding"]
    max_length: StrictInt = Field(gt=0)


class Recurrent(LayerBase):
    units: StrictInt = Field(gt=0)
    return_sequences: StrictBool = False


class LSTM(Recurrent):
    type: Literal["lstm"]


class GRU(Recurrent):
    type: Literal["gru"]


class Attention(LayerBase):
    """Multi-head self-attention over a [steps, features] sequence, with output projection."""

    type: Literal["attention"]
    heads: StrictInt = Field(gt=0)


class ActivationLayer(LayerBase):
    type: Literal["activation"]
    fn: Activation


class Add(LayerBase):
    type: Literal["add"]


class Concat(LayerBase):
    """Concatenates along the last axis (features, or channels of an image)."""

    type: Literal["concat"]


Layer = Annotated[
    Dense
    | Conv2d
    | MaxPool2d
    | AvgPool2d
    | GlobalAvgPool
    | Flatten
    | Dropout
    | BatchNorm
    | LayerNorm
    | Embedding
    | PositionEmbedding
    | LSTM
    | GRU
    | Attention
    | ActivationLayer
    | Add
    | Concat,
    Field(discriminator="type"),
]

LAYER_TYPES: tuple[str, ...] = (
    "dense",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool",
    "flatten",
    "dropout",
    "batch_norm",
    "layer_norm",
    "embedding",
    "position_embedding",
    "lstm",
    "gru",
    "attention",
    "activation",
    "add",
    "concat",
)
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid", "softmax")


class Task(Strict):
    type: Literal["classification", "regression"]
    num_classes: StrictInt | None = Field(default=None, gt=1)
    loss: Literal["cross_entropy", "mse"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        if self.type == "classification" and self.num_classes is None:
            raise ValueError("classification needs num_classes")
        if self.type == "classification" and self.loss == "mse":
            raise ValueError("classification trains with loss cross_entropy")
        if self.type == "regression" and self.loss == "cross_entropy":
            raise ValueError("regression trains with loss mse")
        return self

    @property
    def loss_name(self) -> str:
        return self.loss or ("cross_entropy" if self.type == "classification" else "mse")


class ModelSpec(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=MODEL_NAME)
    description: str = ""
    inputs: tuple[InputSpec, ...] = Field(min_length=1)
    layers: tuple[Layer, ...] = Field(min_length=1)
    outputs: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=1)
    task: Task
