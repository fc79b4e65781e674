#!/usr/bin/python3
"""PyTorch twin of normgpt's GPT-2 model: the outside reference for C++ tests.

Written from the math of NORMS.md and DESIGN.md, not copied from any project. It computes in
float64 by default and uses autograd for gradients; the optimizer (AdamW), gradient clipping and
the LR schedule are written by hand here because they *define* the training semantics that the
fixtures pin down (make_fixtures.py checks the hand AdamW against torch.optim.AdamW).

Parameters are held in llm.c's model-file order (see PARAM_ORDER), so a state dict maps one to one
onto an llm.c model file (llmc_io.py).

Extension points for the other strategies of NORMS.md:
  * NORM_FUNCTIONS: name -> N(x, g, b, eps).
  * BLOCKS: strategy name -> block function (x, p, l, cfg) -> x'; each strategy of NORMS.md that is
    not implemented yet is listed in PLANNED_STRATEGIES and raises NotImplementedError.
  * FINAL_NORM_DEFAULT / EMBED_NORM_DEFAULT: the table's default switches.
  * extra_param_shapes(cfg): tensors a strategy adds after the 16 GPT-2 tensors (none for `pre`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# llm.c model-file order of the 16 GPT-2 tensors.
PARAM_ORDER = [
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
]
# Tensors that get weight decay (matrices and embeddings); everything else does not.
DECAYED = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}
NORM_GAINS = {"ln1w", "ln2w", "lnfw"}
NORM_BIASES = {"ln1b", "ln2b", "lnfb"}


@dataclass(frozen=True)
class Config:
    V: int          # vocabulary size (the softmax runs over the first V logits)
    Vp: int         # padded vocabulary size (rows of wte)
    maxT: int       # rows of wpe
    L: int          # number of blocks
    NH: int         # number of heads
    C: int          # model width
    strategy: str = "pre"
    function: str = "layernorm"
    eps: float = 1e-5

    def __post_init__(self):
        if self.C % self.NH != 0:
            raise ValueError(f"C={self.C} is not divisible by NH={self.NH}")
        if self.Vp < self.V:
            raise ValueError(f"Vp={self.Vp} < V={self.V}")
        check_strategy(self.strategy)
        if self.function not in NORM_FUNCTIONS:
            raise ValueError(f"unknown norm function {self.function!r}; "
                             f"known: {sorted(NORM_FUNCTIONS)}")


def param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the 16 GPT-2 tensors in llm.c order, then the strategy's extra tensors."""
    V, C, L = cfg.Vp, cfg.C, cfg.L
    shapes = {
        "wte": (V, C), "wpe": (cfg.maxT, C),
        "ln1w": (L, C), "ln1b": (L, C),
        "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C),
        "attprojw": (L, C, C), "attprojb": (L, C),
        "ln2w": (L, C), "ln2b": (L, C),
        "fcw": (L, 4 * C, C), "fcb": (L, 4 * C),
        "fcprojw": (L, C, 4 * C), "fcprojb": (L, C),
        "lnfw": (C,), "lnfb": (C,),
    }
    shapes.update(extra_param_shapes(cfg))
    return shapes


def extra_param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Tensors a strategy appends after the 16 GPT-2 tensors (e.g. Peri-LN's output norms)."""
    return {}


# ----------------------------------------------------------------------------------------------
# Norm functions: N(x) over the last axis.

def layernorm(x, g, b, eps):
    """g * (x - mean) / sqrt(var + eps) + b, biased variance."""
    mean = x.mean(dim=-1, keepdim=True)
    xc = x - mean
    var = (xc * xc).mean(dim=-1, keepdim=True)
    return g * xc / torch.sqrt(var + eps) + b


def rmsnorm(x, g, b, eps):
    """g * x / sqrt(mean(x^2) + eps); the bias tensor exists in the file but is not used."""
    del b
    ms = (x * x).mean(dim=-1, keepdim=True)
    return g * x / torch.sqrt(ms + eps)


NORM_FUNCTIONS = {"layernorm": layernorm, "rmsnorm": rmsnorm}


def norm(cfg: Config, x, g, b):
    return NORM_FUNCTIONS[cfg.function](x, g, b, cfg.eps)


# ----------------------------------------------------------------------------------------------
# Sublayers.

def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def attention(x, qkvw, qkvb, projw, projb, NH):
    """Causal multi-head self-attention. x: (B, T, C); qkvw: (3C, C) with outputs [q | k | v];
    head h of q (and k, v) is columns h*hs:(h+1)*hs."""
    B, T, C = x.shape
    hs = C // NH
    qkv = x @ qkvw.T + qkvb                                   # (B, T, 3C)
    q, k, v = qkv.split(C, dim=-1)
    q = q.reshape(B, T, NH, hs).transpose(1, 2)               # (B, NH, T, hs)
    k = k.reshape(B, T, NH, hs).transpose(1, 2)
    v = v.reshape(B, T, NH, hs).transpose(1, 2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)        # (B, NH, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    a = torch.softmax(scores, dim=-1) @ v                     # (B, NH, T, hs)
    a = a.transpose(1, 2).reshape(B, T, C)                    # heads concatenated in order
    return a @ projw.T + projb


def mlp(x, fcw, fcb, projw, projb):
    return gelu_tanh(x @ fcw.T + fcb) @ projw.T + projb


def attn_sublayer(p, l, x, cfg):
    return attention(x, p["qkvw"][l], p["qkvb"][l], p["attprojw"][l], p["attprojb"][l], cfg.NH)


def mlp_sublayer(p, l, x, cfg):
    return mlp(x, p["fcw"][l], p["fcb"][l], p["fcprojw"][l], p["fcprojb"][l])


# ----------------------------------------------------------------------------------------------
# Strategies: one block function each (NORMS.md, wave 1 table).

def block_pre(x, p, l, cfg):
    """pre: y = x + A(N1(x)); x' = y + F(N2(y))."""
    y = x + attn_sublayer(p, l, norm(cfg, x, p["ln1w"][l], p["ln1b"][l]), cfg)
    return y + mlp_sublayer(p, l, norm(cfg, y, p["ln2w"][l], p["ln2b"][l]), cfg)


BLOCKS = {"pre": block_pre}
FINAL_NORM_DEFAULT = {"pre": True}
EMBED_NORM_DEFAULT = {"pre": False}
# Specified in NORMS.md, not yet in the twin: add a block function above and register it.
PLANNED_STRATEGIES = [
    "post", "peri", "sandwich", "reordered", "mixln", "lns", "deepnorm", "b2t", "geonorm",
    "ngpt", "angpt", "residual", "hybridnorm", "hybridnorm_star", "dyt",
]


def check_strategy(strategy: str) -> None:
    if strategy in BLOCKS:
        return
    if strategy in PLANNED_STRATEGIES:
        raise NotImplementedError(
            f"strategy {strategy!r} is specified in NORMS.md but not implemented in the reference "
            f"twin yet (implemented: {sorted(BLOCKS)}); add a block function to "
            f"scripts/reference/gpt_ref.py and register it in BLOCKS")
    raise ValueError(f"unknown strategy {strategy!r}; implemented: {sorted(BLOCKS)}, "
                     f"planned: {PLANNED_STRATEGIES}")


# ----------------------------------------------------------------------------------------------
# Whole model.

def gpt_forward(p: dict, cfg: Config, idx: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, Vp) for token ids idx (B, T); all Vp columns (tied head)."""
    check_strategy(cfg.strategy)
    B, T = idx.shape
    if T > cfg.maxT:
        raise ValueError(f"T={T} > maxT={cfg.maxT}")
    x = p["wte"][idx] + p["wpe"][:T].unsqueeze(0)
    if EMBED_NORM_DEFAULT[cfg.strategy]:
        raise NotImplementedError("embed norm")  # no implemented strategy uses it yet
    block = BLOCKS[cfg.strategy]
    for l in range(cfg.L):
        x = block(x, p, l, cfg)
    if FINAL_NORM_DEFAULT[cfg.strategy]:
        x = norm(cfg, x, p["lnfw"], p["lnfb"])
    return x @ p["wte"].T


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, V: int) -> torch.Tensor:
    """Mean over all B*T positions of -log softmax(logits[..., :V])[target]."""
    lv = logits[..., :V]
    logp = lv - torch.logsumexp(lv, dim=-1, keepdim=True)
    return -logp.gather(-1, targets.unsqueeze(-1)).mean()


class GPT(torch.nn.Module):
    """The twin as a module: parameters in llm.c order in a ParameterDict."""

    def __init__(self, cfg: Config, params: dict[str, torch.Tensor]):
        super().__init__()
        self.cfg = cfg
        shapes = param_shapes(cfg)
        if list(params) != list(shapes):
            raise ValueError(f"parameters {list(params)} != expected {list(shapes)}")
        self.params = torch.nn.ParameterDict()
        for name, shape in shapes.items():
            t = params[name]
            if tuple(t.shape) != shape:
                raise ValueError(f"{name}: shape {tuple(t.shape)} != {shape}")
            self.params[name] = torch.nn.Parameter(t.clone())

    def forward(self, idx, targets=None):
        logits = gpt_forward(dict(self.params), self.cfg, idx)
        loss = None if targets is None else cross_entropy(logits, targets, self.cfg.V)
        return logits, loss


def init_params(cfg: Config, seed: int, std: float = 0.2, gain_std: float = 0.1,
                bias_std: float = 0.1, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """A deliberately *large* init so that gradients are informative at tiny widths:
    matrices and embeddings N(0, std^2) (including the padded wte rows V..Vp-1), norm gains
    1 + N(0, gain_std^2), biases N(0, bias_std^2). Under rmsnorm the norm biases are zero."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in param_shapes(cfg).items():
        r = torch.randn(shape, generator=gen, dtype=torch.float64)
        if name in NORM_GAINS:
            t = 1.0 + gain_std * r
        elif name in NORM_BIASES and cfg.function == "rmsnorm":
            t = torch.zeros(shape, dtype=torch.float64)
        elif name.endswith("b"):
            t = bias_std * r
        else:
            t = std * r
        out[name] = t.to(dtype)
    return out


# ----------------------------------------------------------------------------------------------
# Training semantics: LR schedule, clipping, AdamW (by hand: this is the definition).

@dataclass(frozen=True)
class Optim:
    lr: float = 1e-2
    schedule: str = "cosine"
    warmup_steps: int = 2
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0


def lr_at(o: Optim, step: int, total_steps: int) -> float:
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    lo = o.lr * o.min_lr_ratio
    prog = (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps)
    if o.schedule == "cosine":
        return lo + 0.5 * (1.0 + math.cos(math.pi * prog)) * (o.lr - lo)
    if o.schedule == "linear":
        return o.lr - (o.lr - lo) * prog
    if o.schedule == "constant":
        return o.lr
    raise ValueError(f"unknown schedule {o.schedule!r}")


def global_norm(grads) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))


def clip_(grads, grad_norm: float, grad_clip: float) -> bool:
    """Scale grads in place by grad_clip/grad_norm if grad_clip > 0 and grad_norm > grad_clip."""
    if grad_clip > 0 and grad_norm > grad_clip:
        s = grad_clip / grad_norm
        for g in grads:
            g.mul_(s)
        return True
    return False


class HandAdamW:
    """AdamW as PyTorch defines it (decoupled decay applied before the Adam step)."""

    def __init__(self, named_params, o: Optim):
        self.o = o
        self.named = list(named_params)
        self.m = {n: torch.zeros_like(p) for n, p in self.named}
        self.v = {n: torch.zeros_like(p) for n, p in self.named}

    @torch.no_grad()
    def step(self, step: int, lr: float):
        o, t = self.o, step + 1
        for n, p in self.named:
            g = p.grad
            m, v = self.m[n], self.v[n]
            m.mul_(o.beta1).add_((1 - o.beta1) * g)
            v.mul_(o.beta2).add_((1 - o.beta2) * g * g)
            if n in DECAYED:
                p.sub_(lr * o.weight_decay * p)
            mhat = m / (1 - o.beta1 ** t)
            vhat = v / (1 - o.beta2 ** t)
            p.sub_(lr * mhat / (torch.sqrt(vhat) + o.eps))


def batch(tokens: torch.Tensor, step: int, B: int, T: int):
    """Step s reads t[s*B*T : s*B*T + B*T + 1]: row b of inputs starts at s*B*T + b*T."""
    start = step * B * T
    buf = tokens[start:start + B * T + 1]
    return buf[:-1].reshape(B, T), buf[1:].reshape(B, T)


def train(model: GPT, tokens: torch.Tensor, B: int, T: int, steps: int, o: Optim,
          optimizer: str = "hand", record_step0: bool = True) -> dict:
    """Run `steps` steps; returns per-step losses, lrs, grad norms, clip flags and the step-0
    logits and (unclipped) gradients. optimizer: 'hand' (the definition) or 'torch' (check)."""
    named = list(model.params.items())
    if optimizer == "hand":
        opt = HandAdamW(named, o)
    elif optimizer == "torch":
        groups = [
            {"params": [p for n, p in named if n in DECAYED], "weight_decay": o.weight_decay},
            {"params": [p for n, p in named if n not in DECAYED], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
    else:
        raise ValueError(optimizer)
    out = {"losses": [], "lrs": [], "grad_norms": [], "clipped": []}
    for s in range(steps):
        x, y = batch(tokens, s, B, T)
        model.zero_grad(set_to_none=False)
        logits, loss = model(x, y)
        loss.backward()
        for _, p in named:  # unused tensors (rmsnorm biases) get an explicit zero gradient
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for _, p in named]
        gn = global_norm(grads)
        if s == 0 and record_step0:
            out["logits"] = logits.detach().clone()
            out["loss"] = float(loss)
            out["grads"] = {n: p.grad.detach().clone() for n, p in named}
            out["grad_norm"] = gn
        out["clipped"].append(clip_(grads, gn, o.grad_clip))
        lr = lr_at(o, s, steps)
        if optimizer == "hand":
            opt.step(s, lr)
        else:
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
        out["losses"].append(float(loss))
        out["lrs"].append(lr)
        out["grad_norms"].append(gn)
    return out
