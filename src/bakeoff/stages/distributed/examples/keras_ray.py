# keras_single.py spread over Ray actors with Ray Train's TensorflowTrainer (run on a Ray cluster).
import keras
import tensorflow as tf
from ray.train import ScalingConfig
from ray.train.tensorflow import TensorflowTrainer


def train_loop(config):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads the TF_CONFIG Ray wrote
    with strategy.scope():
        model = config["build_model"]()
        model.compile(optimizer=keras.optimizers.Adam(config["lr"]), loss="sparse_categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((config["x"], config["y"])).batch(config["batch_size"])
    model.fit(data, epochs=config["epochs"])


def main(build_model, x, y, batch_size, epochs, lr, workers):
    config = dict(build_model=build_model, x=x, y=y, batch_size=batch_size, epochs=epochs, lr=lr)
    scaling = ScalingConfig(num_workers=workers)
    TensorflowTrainer(train_loop, train_loop_config=config, scaling_config=scaling).fit()
