"""Keras 3 with ``VtrackCallback`` (on the PyTorch backend unless KERAS_BACKEND says
otherwise). Run inside a git repository: ``python keras_callback.py``."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vtrack.integrations.keras import VtrackCallback  # noqa: E402

rng = np.random.default_rng(0)
X = rng.normal(size=(512, 8)).astype("float32")
y = (X[:, 0] > 0).astype("float32")
model = keras.Sequential(
    [
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"]
)
callback = VtrackCallback(log_every_n_steps=4)  # the one line to add (and callbacks= below)
model.fit(X, y, epochs=3, batch_size=32, validation_split=0.25, verbose=0, callbacks=[callback])
print(f"RUN {callback.run_id}")
