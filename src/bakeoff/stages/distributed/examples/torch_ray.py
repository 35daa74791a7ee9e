# torch_single.py spread over Ray actors with Ray Train's TorchTrainer (run on a Ray cluster).
import ray.train
import ray.train.torch
import torch
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer


def train_loop(config):
    model = ray.train.torch.prepare_model(config["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    data = torch.utils.data.TensorDataset(config["x"], config["y"])
    world = ray.train.get_context().get_world_size()
    loader = torch.utils.data.DataLoader(data, batch_size=config["batch_size"] // world)
    loader = ray.train.torch.prepare_data_loader(loader)
    for _ in range(config["epochs"]):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()


def main(model, x, y, batch_size, epochs, lr, workers):
    config = dict(model=model, x=x, y=y, batch_size=batch_size, epochs=epochs, lr=lr)
    scaling = ScalingConfig(num_workers=workers)
    TorchTrainer(train_loop, train_loop_config=config, scaling_config=scaling).fit()
