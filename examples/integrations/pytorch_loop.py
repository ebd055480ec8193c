"""A plain PyTorch training loop tracked with ``TrainLoop``, system metrics included.
Run inside a git repository: ``python pytorch_loop.py``."""

import torch
from torch import nn

import vtrack
from vtrack.integrations.pytorch import TrainLoop

torch.manual_seed(0)
X = torch.randn(512, 8)
y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()

with vtrack.start_run(log_system_metrics=True) as run:
    with TrainLoop(
        model, optimizer, params={"epochs": 5, "batch_size": 64}, input_example=X[:4]
    ) as loop:
        for _epoch in range(5):
            for i in range(0, len(X), 64):
                optimizer.zero_grad()
                loss = loss_fn(model(X[i : i + 64]), y[i : i + 64])
                loss.backward()
                optimizer.step()
                loop.step(loss=loss)
            with torch.no_grad():
                acc = (model(X).argmax(1) == y).float().mean()
            loop.epoch(train_accuracy=acc)
print(f"accuracy={acc.item():.3f}")
print(f"RUN {run.info.run_id}")
