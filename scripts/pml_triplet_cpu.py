#!/usr/bin/env python3
"""pytorch-metric-learning's triplet training on MNIST on the CPU (MLP 784-512-256-128, cosine
similarity, margin 0.2, semi-hard TripletMarginMiner, batch 256, Adam 1e-3), timed per epoch
(training only) for the side-by-side in BENCHMARKS.md.

    python3 scripts/pml_triplet_cpu.py [EPOCHS]     (reads data/mnist-full)

Needs torch, pytorch-metric-learning 2.9.0, scipy, tqdm (not project dependencies).
"""
import struct
import sys
import time

import numpy as np
import torch
from pytorch_metric_learning import losses, miners, distances
torch.manual_seed(0)
def idx(p):
    d=open(p,'rb').read(); n=d[3]; dims=struct.unpack('>'+'I'*n, d[4:4+4*n]); return np.frombuffer(d,np.uint8,offset=4+4*n).reshape(dims)
D='data/mnist-full/'
x=torch.tensor(idx(D+'train-images-idx3-ubyte').reshape(-1,784)/255.,dtype=torch.float32); y=torch.tensor(idx(D+'train-labels-idx1-ubyte').astype(np.int64))
net=torch.nn.Sequential(torch.nn.Linear(784,512),torch.nn.ReLU(),torch.nn.Linear(512,256),torch.nn.ReLU(),torch.nn.Linear(256,128))
opt=torch.optim.Adam(net.parameters(),lr=1e-3)
dist=distances.CosineSimilarity()
loss_fn=losses.TripletMarginLoss(margin=0.2,distance=dist); miner=miners.TripletMarginMiner(margin=0.2,distance=dist,type_of_triplets="semihard")
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
for ep in range(int(sys.argv[1]) if len(sys.argv)>1 else 1):
    t=time.time(); perm=torch.randperm(60000)
    for i in range(0,60000-255,256):
        b=perm[i:i+256]; e=net(x[b]); l=loss_fn(e,y[b],miner(e,y[b])); opt.zero_grad(); l.backward(); opt.step()
    print(f"epoch {ep+1}: {time.time()-t:.1f} s (training only)", flush=True)
