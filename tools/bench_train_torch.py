#!/usr/bin/env python3
"""The PyTorch side of tools/bench_train.c: the same ~5M-parameter SmolVLM-shaped model
(SigLIP-style ViT, pixel shuffle + linear, Llama with GQA/RoPE/SwiGLU, tied embeddings),
the same batch (8 sequences of 64 tokens, one 64x64 tile each, 16 <image> tokens), the
same optimizer (AdamW, clipping, cosine schedule), written in plain torch as transformers
does it in eager mode. For development-time comparison only; not part of the build.

    python3 tools/bench_train_torch.py [--steps N] [--batch B] [--seq T] [--threads N]

Debian's torch (apt-get install python3-torch: 1.13, no MKL) multiplies matrices with the
system BLAS, OpenBLAS with its own pthreads, beside torch's OpenMP threads (--threads).
On 2 cores its fastest setting is --threads 1 (OpenBLAS still uses both cores for the
products); --threads 2 puts two thread pools on two cores and runs about 2.5x slower.
OMP_NUM_THREADS=1 (which OpenBLAS also reads) makes it single-threaded throughout.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V_HID, V_LAYERS, V_HEADS, V_INTER, IMG, PATCH = 128, 4, 4, 512, 64, 8
T_HID, T_HEADS, T_KV, T_INTER, VOCAB, SCALE = 256, 4, 2, 768, 2048, 2
IMAGE_TOKEN = 3


class VitLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(V_HID, eps=1e-6)
        self.q, self.k, self.v, self.o = (nn.Linear(V_HID, V_HID) for _ in range(4))
        self.ln2 = nn.LayerNorm(V_HID, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(V_HID, V_INTER), nn.Linear(V_INTER, V_HID)

    def forward(self, x):
        b, n, c = x.shape
        h = self.ln1(x)
        d = c // V_HEADS
        q, k, v = (f(h).view(b, n, V_HEADS, d).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = torch.softmax(q @ k.transpose(-1, -2) * d ** -0.5, dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, n, c))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class LlamaLayer(nn.Module):
    def __init__(self):
        super().__init__()
        d = T_HID // T_HEADS
        self.n1, self.n2 = RMSNorm(T_HID), RMSNorm(T_HID)
        self.q = nn.Linear(T_HID, T_HEADS * d, bias=False)
        self.k = nn.Linear(T_HID, T_KV * d, bias=False)
        self.v = nn.Linear(T_HID, T_KV * d, bias=False)
        self.o = nn.Linear(T_HEADS * d, T_HID, bias=False)
        self.gate = nn.Linear(T_HID, T_INTER, bias=False)
        self.up = nn.Linear(T_HID, T_INTER, bias=False)
        self.down = nn.Linear(T_INTER, T_HID, bias=False)

    def forward(self, x, cos, sin, mask):
        b, n, _ = x.shape
        d = T_HID // T_HEADS
        h = self.n1(x)
        q = self.q(h).view(b, n, T_HEADS, d).transpose(1, 2)
        k = self.k(h).view(b, n, T_KV, d).transpose(1, 2)
        v = self.v(h).view(b, n, T_KV, d).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(T_HEADS // T_KV, dim=1)
        v = v.repeat_interleave(T_HEADS // T_KV, dim=1)
        s = q @ k.transpose(-1, -2) * d ** -0.5 + mask
        a = torch.softmax(s, dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, n, T_HEADS * d))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, text_layers):
        super().__init__()
        g = IMG // PATCH
        self.patch = nn.Conv2d(3, V_HID, PATCH, PATCH)
        self.pos = nn.Embedding(g * g, V_HID)
        self.vit = nn.ModuleList(VitLayer() for _ in range(V_LAYERS))
        self.post = nn.LayerNorm(V_HID, eps=1e-6)
        self.proj = nn.Linear(V_HID * SCALE * SCALE, T_HID, bias=False)
        self.embed = nn.Embedding(VOCAB, T_HID)
        self.llm = nn.ModuleList(LlamaLayer() for _ in range(text_layers))
        self.norm = RMSNorm(T_HID)
        for m in self.modules():  # transformers' _init_weights
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
                m.weight.data.normal_(0, 0.02)
                if getattr(m, "bias", None) is not None:
                    m.bias.data.zero_()

    def pixel_shuffle(self, x):
        b, n, c = x.shape
        h = w = int(n ** 0.5)
        s = SCALE
        x = x.view(b, h, w // s, c * s).permute(0, 2, 1, 3)
        x = x.reshape(b, w // s, h // s, c * s * s).permute(0, 2, 1, 3)
        return x.reshape(b, n // (s * s), c * s * s)

    def forward(self, ids, labels, pixels):
        x = self.patch(pixels).flatten(2).transpose(1, 2) + self.pos.weight
        for layer in self.vit:
            x = layer(x)
        feats = self.proj(self.pixel_shuffle(self.post(x)))
        e = self.embed(ids)
        e = torch.where((ids == IMAGE_TOKEN).unsqueeze(-1),
                        torch.zeros_like(e).masked_scatter((ids == IMAGE_TOKEN).unsqueeze(-1),
                                                           feats.reshape(-1, T_HID)), e)
        n, d = ids.shape[1], T_HID // T_HEADS
        inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2).float() / d))
        f = torch.arange(n).float()[:, None] * inv[None]
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((n, n), float("-inf")).triu(1)
        for layer in self.llm:
            e = layer(e, cos, sin, mask)
        logits = self.norm(e) @ self.embed.weight.t()
        return F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1),
                               ignore_index=-100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a.layers)
    n_params = sum(p.numel() for p in model.parameters())
    img_seq = (IMG // PATCH) ** 2 // SCALE ** 2
    ids = torch.randint(5, VOCAB, (a.batch, a.seq))
    ids[:, 1:1 + img_seq] = IMAGE_TOKEN
    labels = ids.clone()
    labels[ids == IMAGE_TOKEN] = -100
    pixels = torch.rand(a.batch, 3, IMG, IMG) * 2 - 1
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    total = a.steps + 2

    def lr_lambda(step):
        if step < 1:
            return step / 1
        return max(0.0, 0.5 * (1 + math.cos(math.pi * (step - 1) / max(1, total - 1))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(ids, labels, pixels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        return loss.item()

    print(f"model: {n_params / 1e6:.2f}M parameters; batch {a.batch} x {a.seq} tokens "
          f"(1 tile each); torch {torch.__version__}, {a.threads} threads")
    loss0 = [step() for _ in range(2)][-1]
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        loss = step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = a.steps * a.batch * a.seq
    print(f"pytorch: {a.steps} steps in {dt:.2f} s: {1e3 * dt / a.steps:.1f} ms/step, "
          f"{tokens / dt:.0f} tokens/s, {1e3 * cpu / a.steps:.1f} CPU ms/step; "
          f"loss {loss0:.3f} -> {loss:.3f}")


if __name__ == "__main__":
    main()
