#!/usr/bin/python3
"""PyTorch twin of normgpt's GPT-2 model: the outside reference for C++ tests.

Written from the math of NORMS.md, DESIGN.md and docs/blocks.md, not copied from any project. It
computes in float64 by default and uses autograd for gradients; the optimizer (AdamW), gradient
clipping, the LR schedule and the post-step weight hooks of ngpt / angpt are written by hand here
because they *define* the training semantics that the fixtures pin down (make_fixtures.py checks
the hand AdamW against torch.optim.AdamW).

Parameters are held in the order of docs/blocks.md's tensor list (param_shapes): llm.c's 16 GPT-2
tensors first (PARAM_ORDER; with the block options' shapes, 0-element tensors kept), so for a plain
GPT-2 architecture a state dict maps one to one onto an llm.c model file (llmc_io.py).

Every strategy of NORMS.md is implemented: wave 1 (pre, post, peri/sandwich, reordered, mixln, lns,
deepnorm, b2t, geonorm) and wave 2 (dyt, residual, hybridnorm, hybridnorm_star, ngpt, angpt), with
the block options of docs/blocks.md (Config.pos learned|rope, rope_theta, mlp gelu|swiglu,
mlp_hidden, bias, qk_norm none|head|full, tie_embeddings). Extension points:
  * NORM_FUNCTIONS: name -> N(x, g, b, eps).
  * BLOCKS: strategy name -> block function (x, p, l, cfg, trace) -> x' (residual: the state is
    the pair (x, d) of its two streams).
  * FINAL_NORM_DEFAULT / EMBED_NORM_DEFAULT: the table's default switches (Config.embed_norm /
    Config.final_norm override them, as norm.embed_norm / norm.final_norm do in normgpt; ngpt and
    angpt have no norm layers and refuse both switches).
  * extra_param_shapes(cfg): tensors after the 16 GPT-2 tensors, in docs/blocks.md's order: the
    untied head lmheadw, Peri-LN's output norms (lno1w, lno1b, lno2w, lno2b), the q/k(/v) norms
    (lnqw, lnqb, lnkw, lnkb, then lnvw, lnvb for hybridnorm), the embed norm (lnew, lneb) when it is
    on, the strategy's vectors (GeoNorm's geoa1, geob1, geoa2, geob2; ngpt's sqk, attna, mlpa, suv,
    sz; angpt's sqk, attna, mlpa, sz), DyT's alphas (ln1a, ln2a, lnfa, then lnea when the embed norm
    is on, then lnqa, lnka with a qk norm).
  * constrained_matrices(cfg) / post_step_hook_(params, cfg): ngpt's renormalization and angpt's
    unit-ball projection after every optimizer step; angpt_factors(cfg): anGPT's constants.

Parameter naming: ln1 / ln2 are each block's FIRST attention / MLP norm in the order of NORMS.md's
table (input norm for pre/peri/lns/geonorm and mixln's pre-blocks, the norm after the add for
post/deepnorm/b2t/residual and mixln's post-blocks, the output norm for reordered; hybridnorm's ln1
is unused, its ln2 is the MLP input norm); lnf is the final norm (kept even when the final norm is
off: then it is unused and its gradient is zero).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

# llm.c model-file order of the 16 GPT-2 tensors.
PARAM_ORDER = [
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
]
# Tensors that get weight decay (matrices and embeddings, the untied head included); everything else
# (norm gains and biases, linear-map biases, all the strategies' vectors and scalars) does not.
DECAYED = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw", "lmheadw"}
NORM_GAINS = {"ln1w", "ln2w", "lnfw", "lno1w", "lno2w", "lnew", "lnqw", "lnkw", "lnvw"}
NORM_BIASES = {"ln1b", "ln2b", "lnfb", "lno1b", "lno2b", "lneb", "lnqb", "lnkb", "lnvb"}
GEO_A = {"geoa1", "geoa2"}  # GeoNorm's learnable angle scale a (init 1), per sublayer, shape (L,)
GEO_B = {"geob1", "geob2"}  # GeoNorm's learnable angle offset b (init 0), per sublayer, shape (L,)
# DyT's learned scalar alpha per norm site: ln1a, ln2a (L,), lnfa (1,), lnea (1,) (embed norm on),
# lnqa, lnka (L,) (qk norm on).
DYT_ALPHAS = {"ln1a", "ln2a", "lnfa", "lnea", "lnqa", "lnka"}
# ngpt / angpt vectors and their documented init ("inv_sqrt_C": 1/sqrt(C), nGPT's reparameterization
# in which a stored value acts as value * sqrt(C)); suv is ngpt only and starts at 1.
SPHERE_VECTORS = {"sqk": "inv_sqrt_C", "attna": "inv_sqrt_C", "mlpa": "inv_sqrt_C", "suv": "one",
                  "sz": "inv_sqrt_C"}
SPHERE_STRATEGIES = ("ngpt", "angpt")
HYBRID_STRATEGIES = ("hybridnorm", "hybridnorm_star")
POS_KINDS = ("learned", "rope")
MLP_KINDS = ("gelu", "swiglu")
QK_NORMS = ("none", "head", "full")

STRATEGY_ALIASES = {"sandwich": "peri"}
# GeoNorm's layer-wise update decay (NORMS.md, geonorm.decay): name -> factor(l, L).
GEO_DECAYS = {
    "harmonic": lambda l, L: 1.0 / (l + 1),
    "sqrt": lambda l, L: 1.0 / math.sqrt(l + 1),
    "linear": lambda l, L: (L - l) / L,
    "none": lambda l, L: 1.0,
}


@dataclass(frozen=True)
class Config:
    V: int          # vocabulary size (the softmax runs over the first V logits)
    Vp: int         # padded vocabulary size (rows of wte)
    maxT: int       # rows of wpe
    L: int          # number of blocks
    NH: int         # number of heads
    C: int          # model width
    strategy: str = "pre"          # an alias (sandwich) is resolved to its canonical name
    function: str = "layernorm"
    eps: float = 1e-5
    embed_norm: bool | None = None  # None: the strategy's default (NORMS.md table)
    final_norm: bool | None = None
    post_fraction: float = 0.25     # mixln.post_fraction: blocks l < floor(p*L) are post
    geo_decay: str = "harmonic"     # geonorm.decay
    geo_clamp: float = math.pi / 4  # geonorm.clamp (c)
    geo_learn_angle: bool = True    # geonorm.learn_angle
    geo_input_norm: bool = True     # geonorm.input_norm
    dyt_alpha0: float = 0.5         # dyt.alpha0: the initial value of every DyT alpha
    ngpt_alpha_init: float = 0.05   # norm.ngpt.alpha_init: effective initial residual step (ngpt, angpt)
    # Block options (docs/blocks.md, normgpt's model.* keys).
    pos: str = "learned"            # model.pos: learned | rope
    rope_theta: float = 10000.0     # model.rope_theta
    mlp: str = "gelu"               # model.mlp: gelu | swiglu
    mlp_hidden: int = 0             # model.mlp_hidden: H; 0 = 4C (gelu) / 8C/3 up to a multiple of 32
    bias: bool = True               # model.bias: biases of the linear maps
    qk_norm: str = "none"           # model.qk_norm: none | head | full
    tie_embeddings: bool = True     # model.tie_embeddings: false = a separate head lmheadw

    def __post_init__(self):
        if self.C % self.NH != 0:
            raise ValueError(f"C={self.C} is not divisible by NH={self.NH}")
        if self.Vp < self.V:
            raise ValueError(f"Vp={self.Vp} < V={self.V}")
        object.__setattr__(self, "strategy", STRATEGY_ALIASES.get(self.strategy, self.strategy))
        check_strategy(self.strategy)
        if self.function not in NORM_FUNCTIONS:
            raise ValueError(f"unknown norm function {self.function!r}; "
                             f"known: {sorted(NORM_FUNCTIONS)}")
        if not 0.0 <= self.post_fraction <= 1.0:
            raise ValueError(f"post_fraction={self.post_fraction} is not in [0, 1]")
        if self.geo_decay not in GEO_DECAYS:
            raise ValueError(f"unknown geonorm decay {self.geo_decay!r}; known: {sorted(GEO_DECAYS)}")
        if not self.geo_clamp > 0:
            raise ValueError(f"geo_clamp={self.geo_clamp} must be > 0")
        if not math.isfinite(self.dyt_alpha0):
            raise ValueError(f"dyt_alpha0={self.dyt_alpha0} must be finite")
        if not (math.isfinite(self.ngpt_alpha_init) and self.ngpt_alpha_init > 0):
            raise ValueError(f"ngpt_alpha_init={self.ngpt_alpha_init} must be > 0")
        if self.pos not in POS_KINDS:
            raise ValueError(f"unknown pos {self.pos!r}; known: {list(POS_KINDS)}")
        if self.pos == "rope" and self.hs % 2 != 0:
            raise ValueError(f"rope needs an even head size, hs = C/NH = {self.hs}")
        if not (math.isfinite(self.rope_theta) and self.rope_theta > 0):
            raise ValueError(f"rope_theta={self.rope_theta} must be > 0")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"unknown mlp {self.mlp!r}; known: {list(MLP_KINDS)}")
        if self.mlp_hidden < 0:
            raise ValueError(f"mlp_hidden={self.mlp_hidden} must be >= 0 (0 = auto)")
        if self.qk_norm not in QK_NORMS:
            raise ValueError(f"unknown qk_norm {self.qk_norm!r}; known: {list(QK_NORMS)}")
        if self.strategy in SPHERE_STRATEGIES:
            if self.qk_norm != "none":
                raise ValueError(f"strategy {self.strategy} normalizes q and k itself; "
                                 f"qk_norm must stay 'none', not {self.qk_norm!r}")
            if self.embed_norm is not None or self.final_norm is not None:
                raise ValueError(f"strategy {self.strategy} has no norm layers; leave embed_norm "
                                 f"and final_norm unset (None)")

    @property
    def hs(self) -> int:
        return self.C // self.NH

    @property
    def H(self) -> int:
        """The MLP hidden width: mlp_hidden, or 4C for gelu / ceil(8C/3) rounded up to a multiple
        of 32 for swiglu."""
        if self.mlp_hidden > 0:
            return self.mlp_hidden
        return 4 * self.C if self.mlp == "gelu" else ((8 * self.C + 2) // 3 + 31) // 32 * 32

    @property
    def fc_rows(self) -> int:
        """Rows of fcw: H (gelu) or 2H (swiglu: gate rows 0..H-1, up rows H..2H-1)."""
        return 2 * self.H if self.mlp == "swiglu" else self.H

    @property
    def plain_gpt2_arch(self) -> bool:
        """llm.c's GPT-2 block (its 16 tensors have GPT-2 shapes and nothing else is needed from
        the block options): learned positions, gelu with H = 4C, biases, no qk norm, tied head."""
        return (self.pos == "learned" and self.mlp == "gelu" and self.H == 4 * self.C and self.bias
                and self.qk_norm == "none" and self.tie_embeddings)

    @property
    def qkv_norm_sites(self) -> tuple:
        """The norm instances inside attention: ('lnq', 'lnk') with a qk norm, ('lnq', 'lnk', 'lnv')
        for hybridnorm / hybridnorm_star, () otherwise (ngpt / angpt normalize q, k by l2)."""
        if self.strategy in HYBRID_STRATEGIES:
            return ("lnq", "lnk", "lnv")
        if self.qk_norm != "none":
            return ("lnq", "lnk")
        return ()

    @property
    def qk_axis(self) -> str:
        """'head' or 'full': the statistics axis of the q/k(/v) norms (hybridnorm: none -> head)."""
        return "full" if self.qk_norm == "full" else "head"

    @property
    def use_embed_norm(self) -> bool:
        return EMBED_NORM_DEFAULT[self.strategy] if self.embed_norm is None else self.embed_norm

    @property
    def use_final_norm(self) -> bool:
        return FINAL_NORM_DEFAULT[self.strategy] if self.final_norm is None else self.final_norm

    @property
    def mixln_post_blocks(self) -> int:
        """floor(p*L): the number of leading post blocks of mixln (a 1e-9 guard so that e.g.
        p=0.29, L=100 gives 29 although 0.29*100 = 28.999999999999996 in binary)."""
        return math.floor(self.post_fraction * self.L + 1e-9)

    @property
    def deepnorm_alpha(self) -> float:
        return (2.0 * self.L) ** 0.25

    def geo_decay_at(self, l: int) -> float:
        return GEO_DECAYS[self.geo_decay](l, self.L)


def param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in docs/blocks.md's order: the 16 GPT-2 tensors in llm.c order
    with the block options' shapes (0-element ones kept: wpe (0, C) under rope, the linear-map
    biases (L, 0) without bias), then extra_param_shapes(cfg)."""
    Vp, C, L, H, F = cfg.Vp, cfg.C, cfg.L, cfg.H, cfg.fc_rows
    on = 1 if cfg.bias else 0
    shapes = {
        "wte": (Vp, C), "wpe": (cfg.maxT if cfg.pos == "learned" else 0, C),
        "ln1w": (L, C), "ln1b": (L, C),
        "qkvw": (L, 3 * C, C), "qkvb": (L, on * 3 * C),
        "attprojw": (L, C, C), "attprojb": (L, on * C),
        "ln2w": (L, C), "ln2b": (L, C),
        "fcw": (L, F, C), "fcb": (L, on * F),
        "fcprojw": (L, C, H), "fcprojb": (L, on * C),
        "lnfw": (C,), "lnfb": (C,),
    }
    shapes.update(extra_param_shapes(cfg))
    return shapes


def extra_param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Tensors after the 16 GPT-2 tensors, in this order: the untied head lmheadw (Vp, C), Peri-LN's
    output norms (attention lno1, MLP lno2), the q/k(/v) norms lnq, lnk (, lnv) (L, C), the embed
    norm lne (C,) when on, the strategy's vectors (GeoNorm: geoa1, geob1, geoa2, geob2 (L,); ngpt:
    sqk, attna, mlpa (L, C), suv (L, fc_rows), sz (Vp,); angpt: sqk, attna, mlpa, sz), DyT's alphas
    (ln1a, ln2a (L,), lnfa (1,), lnea (1,) when the embed norm is on, lnqa, lnka (L,) with a qk
    norm; lnfa is kept when the final norm is off, unused, as lnf is). Each norm is its gain
    '<name>w' then its bias '<name>b'."""
    L, C = cfg.L, cfg.C
    out = {}
    if not cfg.tie_embeddings:
        out["lmheadw"] = (cfg.Vp, C)
    if cfg.strategy == "peri":
        out.update({"lno1w": (L, C), "lno1b": (L, C), "lno2w": (L, C), "lno2b": (L, C)})
    for site in cfg.qkv_norm_sites:
        out.update({site + "w": (L, C), site + "b": (L, C)})
    if cfg.use_embed_norm:
        out.update({"lnew": (C,), "lneb": (C,)})
    if cfg.strategy == "geonorm":
        out.update({"geoa1": (L,), "geob1": (L,), "geoa2": (L,), "geob2": (L,)})
    if cfg.strategy in SPHERE_STRATEGIES:
        out.update({"sqk": (L, C), "attna": (L, C), "mlpa": (L, C)})
        if cfg.strategy == "ngpt":
            out["suv"] = (L, cfg.fc_rows)
        out["sz"] = (cfg.Vp,)
    if cfg.strategy == "dyt":
        out.update({"ln1a": (L,), "ln2a": (L,), "lnfa": (1,)})
        if cfg.use_embed_norm:
            out["lnea"] = (1,)
        if cfg.qk_norm != "none":
            out.update({"lnqa": (L,), "lnka": (L,)})
    return out


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


def dyt(x, g, b, alpha):
    """DyT (Dynamic Tanh, Zhu et al. 2025): g * tanh(alpha * x) + b, elementwise, alpha a scalar.
    No statistics over the row and no eps; b is used whatever norm.function says."""
    return g * torch.tanh(alpha * x) + b


NORM_FUNCTIONS = {"layernorm": layernorm, "rmsnorm": rmsnorm}


def norm(cfg: Config, x, g, b):
    return NORM_FUNCTIONS[cfg.function](x, g, b, cfg.eps)


def site_norm(cfg: Config, p, site: str, x):
    """The whole-model norm `site` (lne: embed norm, lnf: final norm) applied to x: N(x) with
    (site+'w', site+'b'), or under dyt DyT with the scalar alpha site+'a'."""
    if cfg.strategy == "dyt":
        return dyt(x, p[site + "w"], p[site + "b"], p[site + "a"][0])
    return norm(cfg, x, p[site + "w"], p[site + "b"])


# ----------------------------------------------------------------------------------------------
# Sublayers (docs/blocks.md's block options: RoPE, SwiGLU, biases, qk norm).

def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def silu(x):
    return x * torch.sigmoid(x)


def l2(v, eps):
    """v / sqrt(sum(v^2) + eps) over the last axis (nGPT's normalization; eps = norm.eps)."""
    return v / torch.sqrt((v * v).sum(dim=-1, keepdim=True) + eps)


def l2_heads(z, NH: int, eps):
    """l2 over each head's hs channels of z (..., C), head h = channels h*hs:(h+1)*hs."""
    shape = z.shape
    return l2(z.reshape(*shape[:-1], NH, shape[-1] // NH), eps).reshape(shape)


def rope_angles(T: int, hs: int, theta: float) -> torch.Tensor:
    """phi[t, i] = t * theta^(-2i/hs), t < T, i < hs/2, in float64 (theta^(-2i/hs) by C's pow)."""
    inv = torch.tensor([theta ** (-2.0 * i / hs) for i in range(hs // 2)], dtype=torch.float64)
    return torch.arange(T, dtype=torch.float64).unsqueeze(1) * inv.unsqueeze(0)


def rope(x, theta: float):
    """RoPE, "rotate half" pairs: x (..., T, hs); channel i < hs/2 pairs with i + hs/2 and position
    t rotates the pair (a, b) by phi = t * theta^(-2i/hs): (a cos - b sin, a sin + b cos)."""
    T, hs = x.shape[-2], x.shape[-1]
    phi = rope_angles(T, hs, theta).to(x.dtype)
    cos, sin = torch.cos(phi), torch.sin(phi)
    a, b = x[..., :hs // 2], x[..., hs // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def attention(x, qkvw, qkvb, projw, projb, NH, q_fn=None, k_fn=None, v_fn=None,
              rope_theta: float | None = None, softmax_scale: float | None = None):
    """Causal multi-head self-attention. x: (B, T, C); qkvw: (3C, C) with outputs [q | k | v];
    head h of q (and k, v) is columns h*hs:(h+1)*hs. A 0-element bias is no bias. q_fn / k_fn /
    v_fn (on (B, T, C)) run right after the projection (the q/k(/v) norms), then RoPE rotates q
    and k when rope_theta is given. Scores are q k^T / sqrt(hs), or q k^T * softmax_scale."""
    B, T, C = x.shape
    hs = C // NH
    qkv = x @ qkvw.T                                          # (B, T, 3C)
    if qkvb.numel():
        qkv = qkv + qkvb
    q, k, v = qkv.split(C, dim=-1)
    if q_fn is not None:
        q, k = q_fn(q), k_fn(k)
    if v_fn is not None:
        v = v_fn(v)
    q = q.reshape(B, T, NH, hs).transpose(1, 2)               # (B, NH, T, hs)
    k = k.reshape(B, T, NH, hs).transpose(1, 2)
    v = v.reshape(B, T, NH, hs).transpose(1, 2)
    if rope_theta is not None:
        q, k = rope(q, rope_theta), rope(k, rope_theta)
    scores = q @ k.transpose(-2, -1)                          # (B, NH, T, T)
    scores = scores / math.sqrt(hs) if softmax_scale is None else scores * softmax_scale
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    a = torch.softmax(scores, dim=-1) @ v                     # (B, NH, T, hs)
    a = a.transpose(1, 2).reshape(B, T, C)                    # heads concatenated in order
    out = a @ projw.T
    return out + projb if projb.numel() else out


def mlp(x, fcw, fcb, projw, projb, kind: str = "gelu", in_scale=None, act_scale=None,
        out_scale=None):
    """The MLP: u = x fcw^T + fcb (times in_scale: ngpt's suv*sqrt(C), angpt's sqrt(C/H));
    gelu: h = gelu(u); swiglu: h = silu(u[:H]) * u[H:] (gate rows first); h times act_scale
    (angpt's c_act); out = h projw^T + projb (times out_scale). A 0-element bias is no bias."""
    u = x @ fcw.T
    if fcb.numel():
        u = u + fcb
    if in_scale is not None:
        u = u * in_scale
    if kind == "swiglu":
        H = u.shape[-1] // 2
        h = silu(u[..., :H]) * u[..., H:]
    else:
        h = gelu_tanh(u)
    if act_scale is not None:
        h = h * act_scale
    out = h @ projw.T
    if projb.numel():
        out = out + projb
    return out if out_scale is None else out * out_scale


def qkv_site_norm(cfg: Config, p, site: str, l: int, z):
    """The attention-internal norm `site` (lnq, lnk, lnv) of block l on z (B, T, C): statistics
    per head (cfg.qk_axis 'head', the gain/bias of width C split per head) or over all C ('full');
    under dyt a DyT with the alpha site+'a' (elementwise, so the axis does not matter)."""
    g, b = p[site + "w"][l], p[site + "b"][l]
    if cfg.strategy == "dyt":
        return dyt(z, g, b, p[site + "a"][l])
    if cfg.qk_axis == "full":
        return norm(cfg, z, g, b)
    B, T, C = z.shape
    NH, hs = cfg.NH, cfg.hs
    return norm(cfg, z.reshape(B, T, NH, hs), g.reshape(NH, hs), b.reshape(NH, hs)).reshape(B, T, C)


def attn_mode(cfg: Config, l: int) -> str | None:
    """What block l's attention does to q, k, v: 'sphere' (ngpt/angpt: sqk*sqrt(C)*l2_head, softmax
    scale sqrt(hs)), 'qkv' (hybridnorm: lnq, lnk, lnv), 'qk' (model.qk_norm: lnq, lnk), or None."""
    if cfg.strategy in SPHERE_STRATEGIES:
        return "sphere"
    if cfg.strategy in HYBRID_STRATEGIES:
        return None if (cfg.strategy == "hybridnorm_star" and l == 0) else "qkv"
    return "qk" if cfg.qk_norm != "none" else None


def attn_sublayer(p, l, x, cfg):
    mode = attn_mode(cfg, l)
    kw = {}
    if mode in ("qk", "qkv"):
        kw["q_fn"] = lambda z: qkv_site_norm(cfg, p, "lnq", l, z)  # noqa: E731
        kw["k_fn"] = lambda z: qkv_site_norm(cfg, p, "lnk", l, z)  # noqa: E731
        if mode == "qkv":
            kw["v_fn"] = lambda z: qkv_site_norm(cfg, p, "lnv", l, z)  # noqa: E731
    elif mode == "sphere":
        s = p["sqk"][l] * math.sqrt(cfg.C)
        kw["q_fn"] = kw["k_fn"] = lambda z: s * l2_heads(z, cfg.NH, cfg.eps)  # noqa: E731
        kw["softmax_scale"] = math.sqrt(cfg.hs)
    if cfg.pos == "rope":
        kw["rope_theta"] = cfg.rope_theta
    return attention(x, p["qkvw"][l], p["qkvb"][l], p["attprojw"][l], p["attprojb"][l], cfg.NH, **kw)


def mlp_sublayer(p, l, x, cfg):
    kw = {}
    if cfg.strategy == "ngpt":
        kw["in_scale"] = p["suv"][l] * math.sqrt(cfg.C)
    elif cfg.strategy == "angpt":
        f = angpt_factors(cfg)
        kw = dict(in_scale=f["up"], act_scale=f["act"], out_scale=f["down"])
    return mlp(x, p["fcw"][l], p["fcb"][l], p["fcprojw"][l], p["fcprojb"][l], cfg.mlp, **kw)


# ----------------------------------------------------------------------------------------------
# anGPT's constants (docs/blocks.md): each stage's output is multiplied by a constant that keeps its
# norm near 1 for unit-norm inputs and unit-norm weight vectors along the model-width axis.

SIMPSON_POINTS = 20001      # grid points (20000 intervals) of the activation expectation
SIMPSON_HALF_WIDTH = 12.0   # the grid spans +-12 standard deviations


def _gelu_scalar(x: float) -> float:
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _silu_scalar(x: float) -> float:
    return x / (1.0 + math.exp(-x))


def gaussian_mean_square(f, sigma: float, points: int = SIMPSON_POINTS,
                         half_width: float = SIMPSON_HALF_WIDTH) -> float:
    """E[f(z)^2] for z ~ N(0, sigma^2) by Simpson's rule on [-half_width*sigma, half_width*sigma]
    with `points` (odd) points z_i = a + i*h, weights 1, 4, 2, ..., 4, 1; float64 throughout
    (the sum by math.fsum, so it is the exactly rounded sum of the terms)."""
    n = points - 1
    if n <= 0 or n % 2:
        raise ValueError(f"Simpson's rule needs an odd number of points, not {points}")
    a, h = -half_width * sigma, 2.0 * half_width * sigma / n
    terms = []
    for i in range(points):
        z = a + i * h
        w = 1.0 if i in (0, n) else (4.0 if i % 2 else 2.0)
        fz = f(z)
        terms.append(w * fz * fz * math.exp(-0.5 * (z / sigma) * (z / sigma)))
    return math.fsum(terms) * h / 3.0 / (sigma * math.sqrt(2.0 * math.pi))


@functools.lru_cache(maxsize=None)
def angpt_act_factor(mlp_kind: str, H: int) -> float:
    """c_act: gelu 1/sqrt(H * E[gelu(z)^2]); swiglu 1/sqrt(E[silu(g)^2]); z, g ~ N(0, 1/H). The
    GELU is the tanh form the model uses."""
    sigma = 1.0 / math.sqrt(H)
    if mlp_kind == "swiglu":
        return 1.0 / math.sqrt(gaussian_mean_square(_silu_scalar, sigma))
    if mlp_kind == "gelu":
        return 1.0 / math.sqrt(H * gaussian_mean_square(_gelu_scalar, sigma))
    raise ValueError(mlp_kind)


def angpt_factors(cfg: Config) -> dict[str, float]:
    """anGPT's constant factors for cfg's block (docs/blocks.md's table):
      embed          1/sqrt(2) with learned positions (E[tok] + P[t]), 1 with RoPE
      softmax_scale  sqrt(hs) (q, k are sqk*sqrt(C)*l2_head, as ngpt)
      attn_out       1 (v and the output projection, C -> C)
      up             sqrt(C/H) (fcw, each half for swiglu)
      act            c_act (angpt_act_factor)
      down           sqrt(H/C): anGPT projects each weight ROW (PyTorch layout, the input axis)
                     into the unit ball, so fcprojw (C, H) has rows of length H and a unit hidden
                     vector maps to norm ~sqrt(C/H) before the factor (docs/blocks.md). (Under a
                     column constraint, as ngpt's, the factor would be 1.)
    """
    C, H = cfg.C, cfg.H
    return {
        "embed": 1.0 / math.sqrt(2.0) if cfg.pos == "learned" else 1.0,
        "softmax_scale": math.sqrt(cfg.hs),
        "attn_out": 1.0,
        "up": math.sqrt(C / H),
        "act": angpt_act_factor(cfg.mlp, H),
        "down": math.sqrt(H / C),
    }



# ----------------------------------------------------------------------------------------------
# Strategies: one block function each (NORMS.md, wave 1 table). `trace` is None or a dict that
# collects diagnostics (GeoNorm's clamp statistics); it never changes the result.

def N(cfg, p, site, l, x):
    """The norm instance `site` (a base name: ln1, ln2, lno1, lno2) of block l applied to x."""
    return norm(cfg, x, p[site + "w"][l], p[site + "b"][l])


def block_pre(x, p, l, cfg, trace=None):
    """pre: y = x + A(N1(x)); x' = y + F(N2(y))."""
    y = x + attn_sublayer(p, l, N(cfg, p, "ln1", l, x), cfg)
    return y + mlp_sublayer(p, l, N(cfg, p, "ln2", l, y), cfg)


def block_post(x, p, l, cfg, trace=None):
    """post: y = N1(x + A(x)); x' = N2(y + F(y))."""
    y = N(cfg, p, "ln1", l, x + attn_sublayer(p, l, x, cfg))
    return N(cfg, p, "ln2", l, y + mlp_sublayer(p, l, y, cfg))


def block_peri(x, p, l, cfg, trace=None):
    """peri (sandwich): y = x + No1(A(N1(x))); x' = y + No2(F(N2(y)))."""
    y = x + N(cfg, p, "lno1", l, attn_sublayer(p, l, N(cfg, p, "ln1", l, x), cfg))
    return y + N(cfg, p, "lno2", l, mlp_sublayer(p, l, N(cfg, p, "ln2", l, y), cfg))


def block_reordered(x, p, l, cfg, trace=None):
    """reordered (OLMo 2): y = x + N1(A(x)); x' = y + N2(F(y))."""
    y = x + N(cfg, p, "ln1", l, attn_sublayer(p, l, x, cfg))
    return y + N(cfg, p, "ln2", l, mlp_sublayer(p, l, y, cfg))


def block_mixln(x, p, l, cfg, trace=None):
    """mixln: blocks l < floor(post_fraction*L) are post, the rest pre."""
    return (block_post if l < cfg.mixln_post_blocks else block_pre)(x, p, l, cfg, trace)


def block_lns(x, p, l, cfg, trace=None):
    """lns (LayerNorm Scaling): y = x + A(N1(x)/sqrt(l+1)); x' = y + F(N2(y)/sqrt(l+1))."""
    s = 1.0 / math.sqrt(l + 1)
    y = x + attn_sublayer(p, l, N(cfg, p, "ln1", l, x) * s, cfg)
    return y + mlp_sublayer(p, l, N(cfg, p, "ln2", l, y) * s, cfg)


def block_deepnorm(x, p, l, cfg, trace=None):
    """deepnorm: y = N1(a*x + A(x)); x' = N2(a*y + F(y)), a = (2L)^(1/4)."""
    a = cfg.deepnorm_alpha
    y = N(cfg, p, "ln1", l, a * x + attn_sublayer(p, l, x, cfg))
    return N(cfg, p, "ln2", l, a * y + mlp_sublayer(p, l, y, cfg))


def block_b2t(x, p, l, cfg, trace=None):
    """b2t: y = N1(x + A(x)); x' = N2(y + F(y) + x), x the block input."""
    y = N(cfg, p, "ln1", l, x + attn_sublayer(p, l, x, cfg))
    return N(cfg, p, "ln2", l, y + mlp_sublayer(p, l, y, cfg) + x)


GEO_R_MIN = 1e-6   # below this ||x|| the update falls back to x + g
GEO_EPS = 1e-8     # the two 1e-8 of NORMS.md's pseudo-code


def geodesic(x, g, a, b, decay: float, clamp: float, stats: dict | None = None):
    """NORMS.md's Geo(x, g, l) per token (last axis), with a, b the sublayer's scalars and decay the
    factor decay(l). A clamp that is active replaces its value by the constant c, so the gradient
    through it is zero. Tokens with ||x|| < 1e-6 get x + g (no division by r touches them).
    If `stats` is a dict, per-token clamp masks and distances to the clamp boundary go into it."""
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    small = r < GEO_R_MIN
    rs = torch.where(small, torch.ones_like(r), r)           # safe r for the masked-out tokens
    v = g - ((x * g).sum(dim=-1, keepdim=True) / (rs * rs)) * x
    vn = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    u = v / (vn + GEO_EPS)
    t0_raw = vn / (rs + GEO_EPS)
    c = torch.full_like(t0_raw, clamp)
    t0 = torch.where(t0_raw > c, c, t0_raw)
    t1 = a * t0 + b
    t_raw = decay * t1
    t = torch.where(t_raw > c, c, t_raw)
    geo = torch.cos(t) * x + torch.sin(t) * rs * u
    out = torch.where(small, x + g, geo)
    if stats is not None:
        with torch.no_grad():
            keep = ~small[..., 0]
            stats["t0_clamped"] = (t0_raw > c)[..., 0] & keep
            stats["t_clamped"] = (t_raw > c)[..., 0] & keep
            stats["t0_margin"] = torch.where(keep, (t0_raw - c).abs()[..., 0], math.inf)
            stats["t_margin"] = torch.where(keep, (t_raw - c).abs()[..., 0], math.inf)
            stats["fallback"] = small[..., 0]
            stats["t"] = torch.where(keep, t[..., 0], 0.0)
    return out


def block_geonorm(x, p, l, cfg, trace=None):
    """geonorm: y = Geo(x, A(N1(x)), l); x' = Geo(y, F(N2(y)), l), scalars (geoa1, geob1) for the
    attention sublayer and (geoa2, geob2) for the MLP, both with decay(l); with
    geo_input_norm=False the sublayers see the stream itself (ln1, ln2 then unused)."""
    decay = cfg.geo_decay_at(l)

    def scalars(i):
        a, b = p[f"geoa{i}"][l], p[f"geob{i}"][l]
        return (a, b) if cfg.geo_learn_angle else (a.detach(), b.detach())

    def stats(kind):
        if trace is None:
            return None
        s = {}
        trace.setdefault("geo", []).append((l, kind, s))
        return s

    u = N(cfg, p, "ln1", l, x) if cfg.geo_input_norm else x
    y = geodesic(x, attn_sublayer(p, l, u, cfg), *scalars(1), decay, cfg.geo_clamp, stats("attn"))
    u = N(cfg, p, "ln2", l, y) if cfg.geo_input_norm else y
    return geodesic(y, mlp_sublayer(p, l, u, cfg), *scalars(2), decay, cfg.geo_clamp, stats("mlp"))


def block_dyt(x, p, l, cfg, trace=None):
    """dyt: the pre placement with every norm replaced by DyT: y = x + A(D1(x)); x' = y + F(D2(y)),
    D1(x) = ln1w[l] * tanh(ln1a[l] * x) + ln1b[l] (D2 likewise with ln2)."""
    d = lambda site, z: dyt(z, p[site + "w"][l], p[site + "b"][l], p[site + "a"][l])  # noqa: E731
    y = x + attn_sublayer(p, l, d("ln1", x), cfg)
    return y + mlp_sublayer(p, l, d("ln2", y), cfg)


def block_residual(state, p, l, cfg, trace=None):
    """residual (ResiDual): the state is (x, d); per sublayer with core f and norm N (ln1 for
    attention, ln2 for the MLP): o = f(x), d <- d + o, x <- N(x + o)."""
    x, d = state
    o = attn_sublayer(p, l, x, cfg)
    d = d + o
    x = N(cfg, p, "ln1", l, x + o)
    o = mlp_sublayer(p, l, x, cfg)
    return N(cfg, p, "ln2", l, x + o), d + o


def block_hybridnorm(x, p, l, cfg, trace=None):
    """hybridnorm: y = x + A(x) with q, k, v normalized inside A (lnq, lnk, lnv; per head, or over
    C with qk_norm full); z = N2(y); x' = z + F(z). ln1 is unused. hybridnorm_star: block 0 is pre
    (ln1, ln2, no q/k/v norm)."""
    if cfg.strategy == "hybridnorm_star" and l == 0:
        return block_pre(x, p, l, cfg, trace)
    y = x + attn_sublayer(p, l, x, cfg)
    z = N(cfg, p, "ln2", l, y)
    return z + mlp_sublayer(p, l, z, cfg)


def sphere_alpha(cfg: Config, p, name: str, l: int):
    """ngpt/angpt's per-channel residual step a = stored * (alpha_init / (1/sqrt(C)))."""
    return p[name][l] * (cfg.ngpt_alpha_init * math.sqrt(cfg.C))


def block_ngpt(x, p, l, cfg, trace=None):
    """ngpt: h <- l2(h + |a| * (l2(f) - h)) per sublayer f (A, then F), a from attna / mlpa."""
    eps = cfg.eps
    a = sphere_alpha(cfg, p, "attna", l).abs()
    h = l2(x + a * (l2(attn_sublayer(p, l, x, cfg), eps) - x), eps)
    a = sphere_alpha(cfg, p, "mlpa", l).abs()
    return l2(h + a * (l2(mlp_sublayer(p, l, h, cfg), eps) - h), eps)


def angpt_combine(h, f, a):
    """anGPT's residual: nu(a) * (h + a * (f - h)), nu(a) = 1/sqrt(a^2 + (1-a)^2), per channel."""
    return (h + a * (f - h)) / torch.sqrt(a * a + (1.0 - a) * (1.0 - a))


def block_angpt(x, p, l, cfg, trace=None):
    """angpt: h <- nu(a) * (h + a * (f - h)) per sublayer f (A, then F; with anGPT's factors inside),
    a from attna / mlpa (no abs)."""
    h = angpt_combine(x, attn_sublayer(p, l, x, cfg), sphere_alpha(cfg, p, "attna", l))
    return angpt_combine(h, mlp_sublayer(p, l, h, cfg), sphere_alpha(cfg, p, "mlpa", l))


BLOCKS = {
    "pre": block_pre, "post": block_post, "peri": block_peri, "reordered": block_reordered,
    "mixln": block_mixln, "lns": block_lns, "deepnorm": block_deepnorm, "b2t": block_b2t,
    "geonorm": block_geonorm, "dyt": block_dyt, "residual": block_residual,
    "hybridnorm": block_hybridnorm, "hybridnorm_star": block_hybridnorm, "ngpt": block_ngpt,
    "angpt": block_angpt,
}
FINAL_NORM_DEFAULT = {
    "pre": True, "post": False, "peri": True, "reordered": True, "mixln": True, "lns": True,
    "deepnorm": False, "b2t": False, "geonorm": True, "dyt": True, "residual": True,
    "hybridnorm": True, "hybridnorm_star": True, "ngpt": False, "angpt": False,
}
EMBED_NORM_DEFAULT = {s: s == "geonorm" for s in BLOCKS}
# Specified in NORMS.md but not yet in the twin (raise NotImplementedError): none left.
PLANNED_STRATEGIES: list[str] = []


def check_strategy(strategy: str) -> None:
    strategy = STRATEGY_ALIASES.get(strategy, strategy)
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

def embed(p: dict, cfg: Config, idx: torch.Tensor) -> torch.Tensor:
    """h0: E[tok] (+ P[t] with learned positions); ngpt: l2 of it; angpt: times its embed factor;
    then the embed norm lne when it is on."""
    T = idx.shape[1]
    x = p["wte"][idx]
    if cfg.pos == "learned":
        x = x + p["wpe"][:T].unsqueeze(0)
    if cfg.strategy == "ngpt":
        x = l2(x, cfg.eps)
    elif cfg.strategy == "angpt" and cfg.pos == "learned":
        x = x * angpt_factors(cfg)["embed"]
    if cfg.use_embed_norm:
        x = site_norm(cfg, p, "lne", x)
    return x


def gpt_forward(p: dict, cfg: Config, idx: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """Logits (B, T, Vp) for token ids idx (B, T); all Vp columns of the head (wte when tied,
    lmheadw otherwise; ngpt/angpt scale them by sz * sqrt(C)).
    If `trace` is a dict, trace["streams"] gets the residual stream h0, x1, ..., xL (after the
    embed, after every block; for residual the x stream, and trace["dstreams"] the d stream) and
    trace["geo"] GeoNorm's clamp statistics."""
    check_strategy(cfg.strategy)
    B, T = idx.shape
    if T > cfg.maxT:
        raise ValueError(f"T={T} > maxT={cfg.maxT}")
    x = embed(p, cfg, idx)
    dual = cfg.strategy == "residual"
    state = (x, x) if dual else x

    def record(s):
        if trace is not None:
            trace.setdefault("streams", []).append(s[0] if dual else s)
            if dual:
                trace.setdefault("dstreams", []).append(s[1])
    record(state)
    block = BLOCKS[cfg.strategy]
    for l in range(cfg.L):
        state = block(state, p, l, cfg, trace)
        record(state)
    if dual:
        x, d = state
        x = x + (site_norm(cfg, p, "lnf", d) if cfg.use_final_norm else d)
    else:
        x = site_norm(cfg, p, "lnf", state) if cfg.use_final_norm else state
    logits = x @ (p["wte"] if cfg.tie_embeddings else p["lmheadw"]).T
    if cfg.strategy in SPHERE_STRATEGIES:
        logits = (p["sz"] * math.sqrt(cfg.C)) * logits
    return logits


def geo_clamp_summary(trace: dict, L: int) -> dict:
    """Per sublayer (attn, mlp) and layer: the fraction of tokens where the first clamp (t0), the
    second (t) or either is active, the smallest distance of a pre-clamp angle to c, fallbacks."""
    out = {}
    for kind in ("attn", "mlp"):
        rows = {l: s for (l, k, s) in trace.get("geo", []) if k == kind}
        if not rows:
            continue
        out[kind] = {
            "t0_clamped": [float(rows[l]["t0_clamped"].double().mean()) for l in range(L)],
            "t_clamped": [float(rows[l]["t_clamped"].double().mean()) for l in range(L)],
            "clamped": [float((rows[l]["t0_clamped"] | rows[l]["t_clamped"]).double().mean())
                        for l in range(L)],
            "fallback": [int(rows[l]["fallback"].sum()) for l in range(L)],
        }
    margins = [float(torch.minimum(s["t0_margin"], s["t_margin"]).min())
               for (_, _, s) in trace.get("geo", [])]
    if margins:
        out["min_margin"] = min(margins)
    return out


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

    def forward(self, idx, targets=None, trace=None):
        logits = gpt_forward(dict(self.params), self.cfg, idx, trace)
        loss = None if targets is None else cross_entropy(logits, targets, self.cfg.V)
        return logits, loss


def init_params(cfg: Config, seed: int, std: float = 0.2, gain_std: float = 0.1,
                bias_std: float = 0.1, geo_a_std: float = 0.1, geo_b_std: float = 0.05,
                dyt_alpha_std: float = 0.1, vector_std: float = 0.1, angpt_norm_spread: float = 0.2,
                dtype=torch.float64) -> dict[str, torch.Tensor]:
    """A deliberately *large* init so that gradients are informative at tiny widths:
    matrices and embeddings N(0, std^2) (including the padded wte rows V..Vp-1), norm gains
    1 + N(0, gain_std^2), biases N(0, bias_std^2), GeoNorm's a 1 + N(0, geo_a_std^2) and b
    N(0, geo_b_std^2), DyT's alphas alpha0 + N(0, dyt_alpha_std^2) (not the constant alpha0, so
    that a test sees every alpha), ngpt/angpt's vectors their documented init times
    1 + N(0, vector_std^2) (sqk, attna, mlpa, sz: 1/sqrt(C); suv: 1). Under rmsnorm the norm biases
    are zero (also under dyt, which uses them: they still get gradients). One generator draws every
    tensor in param_shapes order, so the 16 GPT-2 tensors do not depend on the strategy's extras
    (for a given block architecture).
    ngpt / angpt, after all draws: every constrained vector (constrained_matrices) is normalized
    to unit norm; angpt then scales each by 1 - angpt_norm_spread * U(0, 1) (U from the same
    generator, tensor by tensor in constrained_matrices order), so norms lie in
    (1 - spread, 1]: inside the unit ball (a projection at load changes nothing) and spread, so
    that some cross 1 after an optimizer step and get projected."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in param_shapes(cfg).items():
        r = torch.randn(shape, generator=gen, dtype=torch.float64)
        if name in DYT_ALPHAS:
            t = cfg.dyt_alpha0 + dyt_alpha_std * r
        elif name in GEO_A:
            t = 1.0 + geo_a_std * r
        elif name in GEO_B:
            t = geo_b_std * r
        elif name in SPHERE_VECTORS and cfg.strategy in SPHERE_STRATEGIES:
            base = 1.0 / math.sqrt(cfg.C) if SPHERE_VECTORS[name] == "inv_sqrt_C" else 1.0
            t = base * (1.0 + vector_std * r)
        elif name in NORM_GAINS:
            t = 1.0 + gain_std * r
        elif name in NORM_BIASES and cfg.function == "rmsnorm":
            t = torch.zeros(shape, dtype=torch.float64)
        elif name.endswith("b"):
            t = bias_std * r
        else:
            t = std * r
        out[name] = t
    for name, axis in constrained_matrices(cfg):
        t = out[name]
        t = t / torch.linalg.vector_norm(t, dim=axis, keepdim=True)
        if cfg.strategy == "angpt":
            n_shape = list(t.shape)
            n_shape[axis] = 1
            t = t * (1.0 - angpt_norm_spread * torch.rand(n_shape, generator=gen, dtype=torch.float64))
        out[name] = t
    return {k: v.to(dtype) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# ngpt / angpt: the weight constraint applied after every optimizer step.

def constrained_matrices(cfg: Config) -> list[tuple[str, int]]:
    """(name, axis) of the matrices ngpt / angpt constrain: axis -1 = each row (wte, lmheadw when
    untied, angpt's wpe with learned positions, qkvw's 3C rows per layer, fcw's rows), axis -2 =
    each column. ngpt constrains along the model-width axis, so the output projections attprojw and
    fcprojw by columns; angpt projects every weight row (the input axis), output projections
    included (docs/blocks.md). [] for the other strategies."""
    if cfg.strategy not in SPHERE_STRATEGIES:
        return []
    out = [("wte", -1)]
    if not cfg.tie_embeddings:
        out.append(("lmheadw", -1))
    if cfg.strategy == "angpt" and cfg.pos == "learned":
        out.append(("wpe", -1))
    out_axis = -2 if cfg.strategy == "ngpt" else -1
    out += [("qkvw", -1), ("fcw", -1), ("attprojw", out_axis), ("fcprojw", out_axis)]
    return out


@torch.no_grad()
def post_step_hook_(params: dict, cfg: Config) -> dict | None:
    """In place, on every vector w of constrained_matrices(cfg) (norms in float64, no eps):
    ngpt w <- w / ||w|| (a zero vector, e.g. a padded vocabulary row that normgpt's init zeroes,
    stays zero instead of becoming NaN); angpt w <- w / max(1, ||w||). Returns None for other strategies; for ngpt
    {}; for angpt {"projected": {name: number of vectors with ||w|| > 1, i.e. projected},
    "margin": the smallest | ||w|| - 1 | over all constrained vectors} (before the projection)."""
    if cfg.strategy not in SPHERE_STRATEGIES:
        return None
    projected, margin = {}, math.inf
    for name, axis in constrained_matrices(cfg):
        w = params[name]
        n = torch.linalg.vector_norm(w.double(), dim=axis, keepdim=True)
        if cfg.strategy == "ngpt":
            w.div_(torch.where(n > 0, n, torch.ones_like(n)).to(w.dtype))  # a zero vector stays 0
        else:
            projected[name] = int((n > 1.0).sum())
            margin = min(margin, float((n - 1.0).abs().min()))
            w.div_(torch.clamp(n, min=1.0).to(w.dtype))
    return {} if cfg.strategy == "ngpt" else {"projected": projected, "margin": margin}


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
    """Run `steps` steps; returns per-step losses, lrs, grad norms, clip flags, GeoNorm clamp
    summaries ("geo", one per step, empty for other strategies), angpt's projection counts and
    margins ("projected", "projection_margin", one per step, empty for other strategies) and the
    step-0 logits and (unclipped) gradients. optimizer: 'hand' (the definition) or 'torch'
    (check). After every optimizer step ngpt / angpt apply post_step_hook_."""
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
    out = {"losses": [], "lrs": [], "grad_norms": [], "clipped": [], "geo": [], "projected": [],
           "projection_margin": []}
    for s in range(steps):
        x, y = batch(tokens, s, B, T)
        model.zero_grad(set_to_none=False)
        trace = {}
        logits, loss = model(x, y, trace)
        if "geo" in trace:
            out["geo"].append(geo_clamp_summary(trace, model.cfg.L))
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
        hook = post_step_hook_(model.params, model.cfg)  # ngpt / angpt weight constraint
        if hook:
            out["projected"].append(hook["projected"])
            out["projection_margin"].append(hook["margin"])
        out["losses"].append(float(loss))
        out["lrs"].append(lr)
        out["grad_norms"].append(gn)
    return out
