# One-process Keras training: the script the distributed versions beside it are diffed against.
import keras
import tensorflow as tf


def main(build_model, x, y, batch_size, epochs, lr):
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    model.fit(data, epochs=epochs)
    return model
