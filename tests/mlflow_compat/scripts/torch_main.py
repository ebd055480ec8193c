"""A PyTorch classifier defined in the script itself, logged, and a TorchScript copy."""

import json

import mlflow
import mlflow.pytorch
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=1)


torch.manual_seed(0)
x = torch.randn(32, 4)
y = (x.sum(1) > 0).long()
net = Net(4, 2)
opt = torch.optim.SGD(net.parameters(), lr=0.5)
with mlflow.start_run() as run:
    for epoch in range(5):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(net(x)), y)
        loss.backward()
        opt.step()
        mlflow.log_metric("loss", round(float(loss), 6), step=epoch)
    info = mlflow.pytorch.log_model(net, name="net", input_example=x[:2].numpy())
    scripted = mlflow.pytorch.log_model(
        torch.jit.script(net), name="scripted", serialization_format="pickle"
    )
with torch.no_grad():
    expected = net(x).numpy().round(5).tolist()
loaded = mlflow.pytorch.load_model(info.model_uri)
loaded_scripted = mlflow.pytorch.load_model(scripted.model_uri)
with torch.no_grad():
    same = loaded(x).numpy().round(5).tolist() == expected
    same_scripted = loaded_scripted(x).numpy().round(5).tolist() == expected
history = [m.value for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")]
print(
    "RESULT "
    + json.dumps(
        {
            "history": history,
            "same": same,
            "same_scripted": same_scripted,
            "scripted_is_script_module": isinstance(loaded_scripted, torch.jit.ScriptModule),
        },
        sort_keys=True,
    )
)
with open("model_uri.txt", "w") as f:
    f.write(info.model_uri)
