"""PyTorch Lightning with ``VtrackLogger``: metrics at the trainer's step, every
checkpoint logged as a model. Run inside a git repository: ``python lightning_logger.py``."""

import os
import tempfile

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtrack.integrations.lightning import VtrackLogger


class Classifier(pl.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


torch.manual_seed(0)
X = torch.randn(512, 8)
y = (X[:, 0] > 0).long()
train = DataLoader(TensorDataset(X[:384], y[:384]), batch_size=32)
val = DataLoader(TensorDataset(X[384:], y[384:]), batch_size=64)

logger = VtrackLogger(log_model="all")  # the one line to add (and logger= below)
with tempfile.TemporaryDirectory() as tmp:
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp, monitor="val_loss", save_top_k=1)
    trainer = pl.Trainer(
        max_epochs=3,
        logger=logger,
        callbacks=[checkpoints],
        log_every_n_steps=4,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp,
    )
    trainer.fit(Classifier(), train, val)
    print(f"best checkpoint {os.path.basename(checkpoints.best_model_path)}")
print(f"RUN {logger.run_id}")
