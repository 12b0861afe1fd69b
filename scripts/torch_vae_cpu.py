#!/usr/bin/env python3
"""The classic PyTorch MNIST VAE (pytorch/examples, 784-400-20, Adam 1e-3, batch 128) on the CPU,
timed per epoch on the same machine as latentkit's `train_vae`, and a check that latentkit's
model.safetensors loads into it unchanged.

    python3 scripts/torch_vae_cpu.py --data data/mnist-full --epochs 2 [--load runs/vae/model.safetensors]

Needs torch and numpy (not project dependencies: this is a side-by-side baseline).
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndims = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def load_split(d, prefix):
    def find(name):
        p = os.path.join(d, name)
        return p if os.path.exists(p) else p + ".gz"
    x = read_idx(find(f"{prefix}-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    return torch.from_numpy(x)


class VAE(nn.Module):  # as in pytorch/examples/vae/main.py
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def load_safetensors(path):
    """Minimal reader (header length, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", meta
        a, b = meta["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(body[a:b], dtype=np.float32).reshape(meta["shape"]).copy())
    return out


def test_loss(model, test):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(test), 500):
            x = test[i:i + 500]
            r, mu, lv = model(x)
            total += loss_function(r, x, mu, lv).item()
    return total / len(test)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/mnist-full")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--load", help="a latentkit model.safetensors to load and score")
    a = p.parse_args()
    torch.manual_seed(1)
    train, test = load_split(a.data, "train"), load_split(a.data, "t10k")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if a.load:
        model = VAE()
        model.load_state_dict(load_safetensors(a.load))  # strict: every name and shape must match
        print(f"loaded {a.load} into the PyTorch VAE (strict); test -ELBO {test_loss(model, test):.3f} nats")
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(train))
        total = 0.0
        for i in range(0, len(train) - 127, 128):
            x = train[perm[i:i + 128]]
            opt.zero_grad()
            r, mu, lv = model(x)
            loss = loss_function(r, x, mu, lv)
            loss.backward()
            total += loss.item()
            opt.step()
        t_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        tl = test_loss(model, test)
        t_test = time.perf_counter() - t1
        print(f"epoch {epoch}: train {total / (len(train) // 128 * 128):.3f}, test -ELBO {tl:.3f} nats; "
              f"train {t_train:.2f} s + test {t_test:.2f} s = {t_train + t_test:.2f} s")


if __name__ == "__main__":
    main()
