"""Small torch modules for the pytorch flavor tests.

They live in a real module (not a test file) so that state-dict models can be re-imported
by ``module:QualName`` when they are loaded.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Linear -> batch norm -> ReLU -> dropout -> linear; batch norm and dropout make
    train and eval mode differ, so tests can tell which one ran."""

    def __init__(self, n_in: int = 4, n_hidden: int = 8, n_out: int = 3, p_drop: float = 0.5):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.bn = nn.BatchNorm1d(n_hidden)
        self.drop = nn.Dropout(p_drop)
        self.fc2 = nn.Linear(n_hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))
