"""Keras pieces for spec layers Keras has no built-in for; registered so saved models reload."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="bakeoff")
def gelu_tanh(x: Any) -> Any:
    # The string "gelu" is exact in Keras layers; the tanh approximation must be asked for by name.
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="bakeoff")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to a (batch, steps, features) sequence."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.table = self.add_weight(
            name="table", shape=(self.max_length, input_shape[-1]), initializer="zeros"
        )

    def call(self, x: Any) -> Any:
        steps = keras.ops.shape(x)[1]
        return x + self.table[:steps]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_length": self.max_length}
