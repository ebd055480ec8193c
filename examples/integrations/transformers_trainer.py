"""Hugging Face ``Trainer`` with ``report_to="vtrack"``: a tiny BERT, made from a config
(no download), fine-tuned on generated token sequences on the CPU.
Run inside a git repository: ``python transformers_trainer.py``."""

import tempfile

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import vtrack
import vtrack.integrations.transformers as vt

vt.register()  # the one line to add (and report_to="vtrack" below)

torch.manual_seed(0)
config = BertConfig(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=2,
)
model = BertForSequenceClassification(config)


class Sequences(torch.utils.data.Dataset):
    """Label 1 when token 7 occurs in the sequence."""

    def __init__(self, n: int) -> None:
        self.ids = torch.randint(1, 64, (n, 16))
        self.labels = (self.ids == 7).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


with tempfile.TemporaryDirectory() as out, vtrack.start_run() as run:
    args = TrainingArguments(
        output_dir=out,
        max_steps=24,
        per_device_train_batch_size=16,
        logging_steps=4,
        eval_strategy="steps",
        eval_steps=12,
        report_to="vtrack",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        learning_rate=5e-4,
    )
    Trainer(
        model=model, args=args, train_dataset=Sequences(256), eval_dataset=Sequences(64)
    ).train()
print(f"RUN {run.info.run_id}")
