# torch_single.py spread over processes with PyTorch Lightning (Trainer with the ddp strategy).
import lightning as L
import torch


class Module(L.LightningModule):
    def __init__(self, model, lr):
        super().__init__()
        self.model, self.lr = model, lr
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def training_step(self, batch, _):
        xb, yb = batch
        return self.loss_fn(self.model(xb), yb)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def main(model, x, y, batch_size, epochs, lr):
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size)
    trainer = L.Trainer(max_epochs=epochs, strategy="ddp", devices=2)
    trainer.fit(Module(model, lr), loader)
    return model
