# torch_single.py spread over processes with DistributedDataParallel (run under torchrun).
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main(model, x, y, batch_size, epochs, lr):
    dist.init_process_group("gloo")
    model = DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = torch.utils.data.TensorDataset(x, y)
    sampler = torch.utils.data.distributed.DistributedSampler(data, shuffle=False)
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch_size // dist.get_world_size(), sampler=sampler
    )
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    dist.destroy_process_group()
    return model.module
