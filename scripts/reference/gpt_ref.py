#!/usr/bin/python3
"""PyTorch twin of normgpt's GPT-2 model: the outside reference for C++ tests.

Written from the math of NORMS.md and DESIGN.md, not copied from any project. It computes in
float64 by default and uses autograd for gradients; the optimizer (AdamW), gradient clipping and
the LR schedule are written by hand here because they *define* the training semantics that the
fixtures pin down (make_fixtures.py checks the hand AdamW against torch.optim.AdamW).

Parameters are held in llm.c's model-file order (see PARAM_ORDER), so a state dict maps one to one
onto an llm.c model file (llmc_io.py).

Every wave-1 strategy of NORMS.md is implemented (pre, post, peri/sandwich, reordered, mixln,
lns, deepnorm, b2t, geonorm), and of wave 2 dyt (Dynamic Tanh). Extension points:
  * NORM_FUNCTIONS: name -> N(x, g, b, eps).
  * BLOCKS: strategy name -> block function (x, p, l, cfg, trace) -> x'; each strategy of NORMS.md
    that is not implemented yet is listed in PLANNED_STRATEGIES and raises NotImplementedError.
  * FINAL_NORM_DEFAULT / EMBED_NORM_DEFAULT: the table's default switches (Config.embed_norm /
    Config.final_norm override them, as norm.embed_norm / norm.final_norm do in normgpt).
  * extra_param_shapes(cfg): tensors a strategy adds after the 16 GPT-2 tensors, in this order:
    Peri-LN output norms (lno1w, lno1b, lno2w, lno2b), the embed norm (lnew, lneb) when it is on,
    GeoNorm's scalars (geoa1, geob1, geoa2, geob2), DyT's alphas (ln1a, ln2a, lnfa, then lnea when
    the embed norm is on).

Parameter naming: ln1 / ln2 are each block's FIRST attention / MLP norm in the order of NORMS.md's
table (input norm for pre/peri/lns/geonorm and mixln's pre-blocks, the norm after the add for
post/deepnorm/b2t and mixln's post-blocks, the output norm for reordered); lnf is the final norm
(kept even when the final norm is off: then it is unused and its gradient is zero).
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
NORM_GAINS = {"ln1w", "ln2w", "lnfw", "lno1w", "lno2w", "lnew"}
NORM_BIASES = {"ln1b", "ln2b", "lnfb", "lno1b", "lno2b", "lneb"}
GEO_A = {"geoa1", "geoa2"}  # GeoNorm's learnable angle scale a (init 1), per sublayer, shape (L,)
GEO_B = {"geob1", "geob2"}  # GeoNorm's learnable angle offset b (init 0), per sublayer, shape (L,)
# DyT's learned scalar alpha per norm site: ln1a, ln2a (L,), lnfa (1,), lnea (1,) (embed norm on).
DYT_ALPHAS = {"ln1a", "ln2a", "lnfa", "lnea"}

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
    """Tensors a strategy appends after the 16 GPT-2 tensors, in this order: Peri-LN's output norms
    (attention lno1, MLP lno2), the embed norm lne (when on), GeoNorm's scalars a, b per sublayer,
    DyT's alphas (ln1a, ln2a (L,), lnfa (1,), then lnea (1,) when the embed norm is on; lnfa is kept
    when the final norm is off, unused, as lnf is)."""
    L, C = cfg.L, cfg.C
    out = {}
    if cfg.strategy == "peri":
        out.update({"lno1w": (L, C), "lno1b": (L, C), "lno2w": (L, C), "lno2b": (L, C)})
    if cfg.use_embed_norm:
        out.update({"lnew": (C,), "lneb": (C,)})
    if cfg.strategy == "geonorm":
        out.update({"geoa1": (L,), "geob1": (L,), "geoa2": (L,), "geob2": (L,)})
    if cfg.strategy == "dyt":
        out.update({"ln1a": (L,), "ln2a": (L,), "lnfa": (1,)})
        if cfg.use_embed_norm:
            out["lnea"] = (1,)
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


BLOCKS = {
    "pre": block_pre, "post": block_post, "peri": block_peri, "reordered": block_reordered,
    "mixln": block_mixln, "lns": block_lns, "deepnorm": block_deepnorm, "b2t": block_b2t,
    "geonorm": block_geonorm, "dyt": block_dyt,
}
FINAL_NORM_DEFAULT = {
    "pre": True, "post": False, "peri": True, "reordered": True, "mixln": True, "lns": True,
    "deepnorm": False, "b2t": False, "geonorm": True, "dyt": True,
}
EMBED_NORM_DEFAULT = {s: s == "geonorm" for s in BLOCKS}
# Specified in NORMS.md (wave 2), not yet in the twin: add a block function above and register it.
PLANNED_STRATEGIES = ["ngpt", "angpt", "residual", "hybridnorm", "hybridnorm_star"]


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

def gpt_forward(p: dict, cfg: Config, idx: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """Logits (B, T, Vp) for token ids idx (B, T); all Vp columns (tied head).
    If `trace` is a dict, trace["streams"] gets the residual stream h0, x1, ..., xL (after the
    embed norm, after every block) and trace["geo"] GeoNorm's clamp statistics."""
    check_strategy(cfg.strategy)
    B, T = idx.shape
    if T > cfg.maxT:
        raise ValueError(f"T={T} > maxT={cfg.maxT}")
    x = p["wte"][idx] + p["wpe"][:T].unsqueeze(0)
    if cfg.use_embed_norm:
        x = site_norm(cfg, p, "lne", x)
    if trace is not None:
        trace.setdefault("streams", []).append(x)
    block = BLOCKS[cfg.strategy]
    for l in range(cfg.L):
        x = block(x, p, l, cfg, trace)
        if trace is not None:
            trace["streams"].append(x)
    if cfg.use_final_norm:
        x = site_norm(cfg, p, "lnf", x)
    return x @ p["wte"].T


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
                dyt_alpha_std: float = 0.1, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """A deliberately *large* init so that gradients are informative at tiny widths:
    matrices and embeddings N(0, std^2) (including the padded wte rows V..Vp-1), norm gains
    1 + N(0, gain_std^2), biases N(0, bias_std^2), GeoNorm's a 1 + N(0, geo_a_std^2) and b
    N(0, geo_b_std^2), DyT's alphas alpha0 + N(0, dyt_alpha_std^2) (not the constant alpha0, so
    that a test sees every alpha). Under rmsnorm the norm biases are zero (also under dyt, which
    uses them: they still get gradients). One generator draws every tensor
    in param_shapes order, so the 16 GPT-2 tensors do not depend on the strategy's extras."""
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
        elif name in NORM_GAINS:
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
    """Run `steps` steps; returns per-step losses, lrs, grad norms, clip flags, GeoNorm clamp
    summaries ("geo", one per step, empty for other strategies) and the step-0 logits and
    (unclipped) gradients. optimizer: 'hand' (the definition) or 'torch' (check)."""
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
    out = {"losses": [], "lrs": [], "grad_norms": [], "clipped": [], "geo": []}
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
        out["losses"].append(float(loss))
        out["lrs"].append(lr)
        out["grad_norms"].append(gn)
    return out
