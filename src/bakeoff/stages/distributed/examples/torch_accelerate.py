# torch_single.py spread over processes with Hugging Face Accelerate (run under accelerate launch).
import torch
from accelerate import Accelerator


def main(model, x, y, batch_size, epochs, lr):
    accelerator = Accelerator()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            accelerator.backward(loss)
            optimizer.step()
    return accelerator.unwrap_model(model)
