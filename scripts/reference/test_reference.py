#!/usr/bin/python3
"""Tests of the PyTorch twin itself. Run: /usr/bin/python3 -m pytest -p no:cacheprovider scripts/reference"""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_ref  # noqa: E402
import llmc_io  # noqa: E402
import make_fixtures  # noqa: E402

FUNCTIONS = ["layernorm", "rmsnorm"]
STRATEGIES = ["pre", "post", "peri", "reordered", "mixln", "lns", "deepnorm", "b2t", "geonorm", "dyt"]
# Norm-config variants that get their own gradcheck (beyond every strategy at its defaults).
VARIANTS = {
    "mixln_p0.5": dict(strategy="mixln", post_fraction=0.5),            # block 0 post, block 1 pre
    "geonorm_clamping": dict(strategy="geonorm", geo_clamp=0.2),         # some tokens clamp
    "geonorm_no_input_norm": dict(strategy="geonorm", geo_input_norm=False, geo_decay="linear"),
    "geonorm_frozen_angle": dict(strategy="geonorm", geo_learn_angle=False, geo_decay="sqrt"),
    "pre_embed_norm_no_final": dict(strategy="pre", embed_norm=True, final_norm=False),
    "post_final_norm": dict(strategy="post", final_norm=True),
    "sandwich_embed_norm": dict(strategy="sandwich", embed_norm=True),
    "dyt_embed_norm_no_final": dict(strategy="dyt", embed_norm=True, final_norm=False),  # lnea, lnfa unused
    "dyt_alpha0_2": dict(strategy="dyt", dyt_alpha0=2.0),                # tanh well into saturation
}


def tiny(function="layernorm", **kw):
    base = dict(V=5, Vp=8, maxT=4, L=2, NH=2, C=4, strategy="pre", function=function)
    base.update(kw)
    return gpt_ref.Config(**base)


def tiny_batch(cfg, B=2, T=3, seed=7):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, cfg.V, (B, T), generator=gen)
    tgt = torch.randint(0, cfg.V, (B, T), generator=gen)
    return idx, tgt


# ---------------------------------------------------------------------------------- gradients

def _gradcheck(cfg):
    """Autograd against finite differences for every trained tensor (frozen GeoNorm scalars, which
    the twin detaches, are held constant)."""
    params = gpt_ref.init_params(cfg, seed=3)
    frozen = set() if cfg.geo_learn_angle else gpt_ref.GEO_A | gpt_ref.GEO_B
    names = [n for n in params if n not in frozen]
    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)
    idx, tgt = tiny_batch(cfg)

    def logits_fn(*ts):
        return gpt_ref.gpt_forward({**params, **dict(zip(names, ts))}, cfg, idx)

    def loss_fn(*ts):
        return gpt_ref.cross_entropy(logits_fn(*ts), tgt, cfg.V)

    assert torch.autograd.gradcheck(logits_fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    assert torch.autograd.gradcheck(loss_fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)
    return params, idx


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gradcheck_logits_and_loss(strategy, function):
    _gradcheck(tiny(function, strategy=strategy))


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradcheck_variants(variant, function):
    cfg = tiny(function, **VARIANTS[variant])
    params, idx = _gradcheck(cfg)
    if variant == "geonorm_clamping":  # the zero-gradient path is exercised, away from its edge
        trace = {}
        gpt_ref.gpt_forward(params, cfg, idx, trace)
        s = gpt_ref.geo_clamp_summary(trace, cfg.L)
        fr = s["attn"]["clamped"] + s["mlp"]["clamped"]
        assert 0 < sum(fr) < len(fr) and s["min_margin"] > 1e-3, s


@pytest.mark.parametrize("function", FUNCTIONS)
def test_padded_rows_and_unused_biases_get_zero_grad(function):
    cfg = tiny(function)
    model = gpt_ref.GPT(cfg, gpt_ref.init_params(cfg, seed=4))
    idx, tgt = tiny_batch(cfg)
    _, loss = model(idx, tgt)
    loss.backward()
    wte = model.params["wte"]
    assert wte[cfg.V:].abs().sum() > 0  # padded rows are non-zero ...
    assert torch.all(wte.grad[cfg.V:] == 0)  # ... but take no part in the loss
    with torch.no_grad():
        wte[cfg.V:] += 5.0
    assert float(model(idx, tgt)[1]) == float(loss)
    for b in ("ln1b", "ln2b", "lnfb"):
        g = model.params[b].grad
        if function == "rmsnorm":
            assert g is None and torch.all(model.params[b] == 0)
        else:
            assert g is not None and g.abs().sum() > 0


def test_ops_match_torch_builtins():
    gen = torch.Generator().manual_seed(5)
    D = dict(generator=gen, dtype=torch.float64)
    x = torch.randn(2, 5, 6, **D)
    g, b = 1 + 0.1 * torch.randn(6, **D), 0.1 * torch.randn(6, **D)
    torch.testing.assert_close(gpt_ref.layernorm(x, g, b, 1e-5), F.layer_norm(x, (6,), g, b, 1e-5))
    ref_rms = g * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(gpt_ref.rmsnorm(x, g, b, 1e-5), ref_rms)
    torch.testing.assert_close(gpt_ref.gelu_tanh(x), F.gelu(x, approximate="tanh"))

    # Attention against PyTorch's multi-head attention (same [q|k|v] rows, contiguous heads).
    B, T, C, NH = 2, 5, 6, 3
    w, wb = 0.3 * torch.randn(3 * C, C, **D), 0.1 * torch.randn(3 * C, **D)
    pw, pb = 0.3 * torch.randn(C, C, **D), 0.1 * torch.randn(C, **D)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    xt = x.transpose(0, 1)  # (T, B, C)
    ref, _ = F.multi_head_attention_forward(
        xt, xt, xt, C, NH, w, wb, None, None, False, 0.0, pw, pb,
        training=False, need_weights=False, attn_mask=mask)
    torch.testing.assert_close(gpt_ref.attention(x, w, wb, pw, pb, NH), ref.transpose(0, 1))


def test_unimplemented_strategy_is_clear():
    with pytest.raises(NotImplementedError, match="ngpt"):
        tiny(strategy="ngpt")
    with pytest.raises(ValueError, match="unknown strategy"):
        tiny(strategy="nonsense")
    with pytest.raises(ValueError, match="unknown norm function"):
        tiny(function="batchnorm")


# ---------------------------------------------------------------------------------- strategies
#
# An independent second writing of every block of NORMS.md's wave-1 table: built-in
# F.layer_norm, a separate RMSNorm, GeoNorm token by token in plain Python floats. The twin's
# per-block streams (trace["streams"]) must agree with it block by block.

def _N(cfg, x, g, b):
    if cfg.function == "layernorm":
        return F.layer_norm(x, (x.shape[-1],), g, b, cfg.eps)
    return g * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + cfg.eps)


def _geo_token(x, g, a, b, decay, c):
    """NORMS.md's pseudo-code for one token, in Python floats."""
    x, g = x.tolist(), g.tolist()
    dot = lambda p, q: sum(pi * qi for pi, qi in zip(p, q))  # noqa: E731
    r = math.sqrt(dot(x, x))
    if r < 1e-6:
        return [xi + gi for xi, gi in zip(x, g)]
    v = [gi - dot(x, g) / r ** 2 * xi for xi, gi in zip(x, g)]
    nv = math.sqrt(dot(v, v))
    u = [vi / (nv + 1e-8) for vi in v]
    t0 = min(nv / (r + 1e-8), c)
    t = min(decay * (a * t0 + b), c)
    return [math.cos(t) * xi + math.sin(t) * r * ui for xi, ui in zip(x, u)]


def _geo(x, g, a, b, decay, c):
    flat_x, flat_g = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    rows = [_geo_token(xr, gr, float(a), float(b), decay, c) for xr, gr in zip(flat_x, flat_g)]
    return torch.tensor(rows, dtype=x.dtype).reshape(x.shape)


def _dyt(x, g, b, a):
    """DyT written independently: g * (e^{2ax} - 1) / (e^{2ax} + 1) + b."""
    e = torch.exp(2.0 * float(a) * x)
    return g * (e - 1.0) / (e + 1.0) + b


def _site(cfg, p, site, x):
    """The embed (lne) or final (lnf) norm, written independently."""
    if cfg.strategy == "dyt":
        return _dyt(x, p[site + "w"], p[site + "b"], p[site + "a"][0])
    return _N(cfg, x, p[site + "w"], p[site + "b"])


def _ref_block(cfg, p, l, x):
    L = cfg.L
    n = lambda site, z: _N(cfg, z, p[site + "w"][l], p[site + "b"][l])  # noqa: E731
    A = lambda z: gpt_ref.attn_sublayer(p, l, z, cfg)  # noqa: E731
    M = lambda z: gpt_ref.mlp_sublayer(p, l, z, cfg)  # noqa: E731
    s = cfg.strategy
    if s == "mixln":
        s = "post" if l < math.floor(cfg.post_fraction * L) else "pre"
    if s == "pre":
        y = x + A(n("ln1", x))
        return y + M(n("ln2", y))
    if s == "post":
        y = n("ln1", x + A(x))
        return n("ln2", y + M(y))
    if s == "peri":
        y = x + n("lno1", A(n("ln1", x)))
        return y + n("lno2", M(n("ln2", y)))
    if s == "reordered":
        y = x + n("ln1", A(x))
        return y + n("ln2", M(y))
    if s == "lns":
        y = x + A(n("ln1", x) / math.sqrt(l + 1))
        return y + M(n("ln2", y) / math.sqrt(l + 1))
    if s == "deepnorm":
        a = (2 * L) ** 0.25
        y = n("ln1", a * x + A(x))
        return n("ln2", a * y + M(y))
    if s == "b2t":
        y = n("ln1", x + A(x))
        return n("ln2", y + M(y) + x)
    if s == "dyt":
        dy = lambda site, z: _dyt(z, p[site + "w"][l], p[site + "b"][l], p[site + "a"][l])  # noqa: E731
        y = x + A(dy("ln1", x))
        return y + M(dy("ln2", y))
    if s == "geonorm":
        d = {"harmonic": 1 / (l + 1), "sqrt": (l + 1) ** -0.5, "linear": (L - l) / L,
             "none": 1.0}[cfg.geo_decay]
        inn = (lambda site, z: n(site, z)) if cfg.geo_input_norm else (lambda site, z: z)
        y = _geo(x, A(inn("ln1", x)), p["geoa1"][l], p["geob1"][l], d, cfg.geo_clamp)
        return _geo(y, M(inn("ln2", y)), p["geoa2"][l], p["geob2"][l], d, cfg.geo_clamp)
    raise AssertionError(s)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("variant", STRATEGIES + list(VARIANTS))
def test_every_block_matches_an_independent_writing(variant, function):
    kw = VARIANTS.get(variant, dict(strategy=variant))
    cfg = tiny(function, **{**kw, "L": 3, "C": 8})
    p = gpt_ref.init_params(cfg, seed=11)
    idx, _ = tiny_batch(cfg)
    trace = {}
    logits = gpt_ref.gpt_forward(p, cfg, idx, trace)
    xs = trace["streams"]
    h0 = p["wte"][idx] + p["wpe"][:idx.shape[1]]
    want_embed = cfg.use_embed_norm if cfg.embed_norm is not None else cfg.strategy == "geonorm"
    torch.testing.assert_close(xs[0], _site(cfg, p, "lne", h0) if want_embed else h0,
                               rtol=0, atol=1e-13)
    for l in range(cfg.L):
        torch.testing.assert_close(xs[l + 1], _ref_block(cfg, p, l, xs[l]), rtol=0, atol=1e-12)
    final_on = cfg.final_norm if cfg.final_norm is not None else \
        cfg.strategy not in ("post", "deepnorm", "b2t")
    xf = _site(cfg, p, "lnf", xs[-1]) if final_on else xs[-1]
    torch.testing.assert_close(logits, xf @ p["wte"].T, rtol=0, atol=1e-12)


def test_defaults_extras_and_aliases():
    want_final = dict(pre=True, post=False, peri=True, reordered=True, mixln=True, lns=True,
                      deepnorm=False, b2t=False, geonorm=True, dyt=True)
    for s in STRATEGIES:
        cfg = tiny(strategy=s)
        assert cfg.use_final_norm == want_final[s] and cfg.use_embed_norm == (s == "geonorm")
        extras = gpt_ref.extra_param_shapes(cfg)
        want = {}
        if s == "peri":
            want = {n: (2, 4) for n in ("lno1w", "lno1b", "lno2w", "lno2b")}
        if s == "geonorm":
            want = {"lnew": (4,), "lneb": (4,), **{n: (2,) for n in ("geoa1", "geob1", "geoa2", "geob2")}}
        if s == "dyt":
            want = {"ln1a": (2,), "ln2a": (2,), "lnfa": (1,)}
        assert extras == want and list(extras) == list(want), s
        assert list(gpt_ref.param_shapes(cfg))[:16] == gpt_ref.PARAM_ORDER
    assert tiny(strategy="sandwich").strategy == "peri"
    assert list(gpt_ref.extra_param_shapes(tiny(strategy="pre", embed_norm=True))) == ["lnew", "lneb"]
    assert "lnew" not in gpt_ref.extra_param_shapes(tiny(strategy="geonorm", embed_norm=False))
    assert list(gpt_ref.extra_param_shapes(tiny(strategy="dyt", embed_norm=True))) == \
        ["lnew", "lneb", "ln1a", "ln2a", "lnfa", "lnea"]
    assert list(gpt_ref.extra_param_shapes(tiny(strategy="dyt", final_norm=False))) == ["ln1a", "ln2a", "lnfa"]
    for a0 in (0.5, 2.0):  # alphas are alpha0 + N(0, 0.1^2)
        p = gpt_ref.init_params(tiny(strategy="dyt", embed_norm=True, dyt_alpha0=a0), seed=5)
        for n in ("ln1a", "ln2a", "lnfa", "lnea"):
            assert (p[n] - a0).abs().max() < 0.5 and not torch.all(p[n] == a0), (a0, n)
    assert tiny(strategy="mixln", L=4).mixln_post_blocks == 1          # default p = 0.25
    assert tiny(strategy="mixln", L=3, post_fraction=0.5).mixln_post_blocks == 1
    assert tiny(strategy="mixln", L=100, post_fraction=0.29).mixln_post_blocks == 29
    assert tiny(strategy="deepnorm", L=2).deepnorm_alpha == 4 ** 0.25
    with pytest.raises(ValueError, match="decay"):
        tiny(strategy="geonorm", geo_decay="cosine")


def test_gpt2_tensors_do_not_depend_on_the_strategy():
    """The 16 GPT-2 tensors of init_params are the same for every strategy (extras are drawn
    after them), so the fixtures of one function share their model.bin."""
    for function in FUNCTIONS:
        base = gpt_ref.init_params(tiny(function), seed=5)
        for s in STRATEGIES:
            p = gpt_ref.init_params(tiny(function, strategy=s), seed=5)
            for n in gpt_ref.PARAM_ORDER:
                assert torch.equal(p[n], base[n]), (s, n)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_lns_is_pre_with_scaled_input_norms(function):
    cfg = tiny(function, strategy="lns", L=3, C=8)
    p = gpt_ref.init_params(cfg, seed=12)
    q = {k: v.clone() for k, v in p.items()}
    for l in range(cfg.L):
        for n in ("ln1w", "ln1b", "ln2w", "ln2b"):
            q[n][l] *= 1 / math.sqrt(l + 1)
    idx, _ = tiny_batch(cfg)
    torch.testing.assert_close(gpt_ref.gpt_forward(p, cfg, idx),
                               gpt_ref.gpt_forward(q, tiny(function, strategy="pre", L=3, C=8), idx),
                               rtol=0, atol=1e-12)


def test_dyt_ignores_the_norm_function_and_uses_its_alphas():
    """dyt replaces every norm: norm.function and eps change nothing; the block is pre with
    D(x) = g * tanh(a * x) + b; each alpha (ln1a, ln2a per layer, lnfa) changes the output; with
    a = 1e-6 / g = 1e6 a DyT is the identity plus b to O(1e-12)."""
    kw = dict(strategy="dyt", L=3, C=8)
    p = gpt_ref.init_params(tiny("layernorm", **kw), seed=21)
    idx, _ = tiny_batch(tiny())
    base = gpt_ref.gpt_forward(p, tiny("layernorm", **kw), idx)
    torch.testing.assert_close(gpt_ref.gpt_forward(p, tiny("rmsnorm", eps=0.3, **kw), idx), base,
                               rtol=0, atol=0)
    for n, i in (("ln1a", 0), ("ln1a", 2), ("ln2a", 1), ("lnfa", 0)):
        q = {k: v.clone() for k, v in p.items()}
        q[n][i] += 0.1
        assert not torch.allclose(gpt_ref.gpt_forward(q, tiny(**kw), idx), base), (n, i)
    x = torch.randn(3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    b = 0.1 * torch.ones(8, dtype=torch.float64)
    torch.testing.assert_close(gpt_ref.dyt(x, torch.full((8,), 1e6, dtype=torch.float64), b,
                                           torch.tensor(1e-6, dtype=torch.float64)), x + b,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_mixln_is_post_then_pre(function):
    idx, _ = tiny_batch(tiny())
    kw = dict(L=3, C=8)
    p = gpt_ref.init_params(tiny(function, **kw), seed=13)
    fwd = lambda **c: gpt_ref.gpt_forward(p, tiny(function, **kw, **c), idx)  # noqa: E731
    same = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=0)  # noqa: E731
    same(fwd(strategy="mixln", post_fraction=0.0), fwd(strategy="pre"))
    same(fwd(strategy="mixln", post_fraction=1.0), fwd(strategy="post", final_norm=True))
    cfg = tiny(function, strategy="mixln", post_fraction=0.5, **kw)  # floor(1.5) = 1 post block
    x = p["wte"][idx] + p["wpe"][:idx.shape[1]]
    x = gpt_ref.block_post(x, p, 0, cfg)
    for l in (1, 2):
        x = gpt_ref.block_pre(x, p, l, cfg)
    same(gpt_ref.gpt_forward(p, cfg, idx), gpt_ref.norm(cfg, x, p["lnfw"], p["lnfb"]) @ p["wte"].T)
    assert not torch.allclose(fwd(strategy="mixln", post_fraction=0.5), fwd(strategy="pre"))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_deepnorm_is_post_with_outputs_scaled_by_one_over_alpha(function):
    """With eps = 0 a norm ignores a positive factor on its input: N(a*x + A(x)) = N(x + A(x)/a),
    so deepnorm equals post with both residual output projections divided by a = (2L)^(1/4)."""
    kw = dict(L=3, C=8, eps=0.0)
    cfg = tiny(function, strategy="deepnorm", **kw)
    p = gpt_ref.init_params(cfg, seed=14)
    a = (2 * 3) ** 0.25
    q = {k: (v / a if k in ("attprojw", "attprojb", "fcprojw", "fcprojb") else v) for k, v in p.items()}
    idx, _ = tiny_batch(cfg)
    torch.testing.assert_close(gpt_ref.gpt_forward(p, cfg, idx),
                               gpt_ref.gpt_forward(q, tiny(function, strategy="post", **kw), idx),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_b2t_skip_reaches_the_last_norm(function):
    """b2t is post plus the block input x added before the MLP's norm: x' = N2(y + F(y) + x),
    block by block (and the skip changes the result: b2t != post)."""
    cfg = tiny(function, strategy="b2t", L=3, C=8)
    p = gpt_ref.init_params(cfg, seed=15)
    idx, _ = tiny_batch(cfg)
    x = p["wte"][idx] + p["wpe"][:idx.shape[1]]
    post_cfg = tiny(function, strategy="post", L=3, C=8)
    for l in range(cfg.L):
        y = gpt_ref.N(cfg, p, "ln1", l, x + gpt_ref.attn_sublayer(p, l, x, cfg))
        z = y + gpt_ref.mlp_sublayer(p, l, y, cfg)
        got = gpt_ref.block_b2t(x, p, l, cfg)
        torch.testing.assert_close(got, gpt_ref.N(cfg, p, "ln2", l, z + x), rtol=0, atol=0)
        assert not torch.allclose(got, gpt_ref.block_post(x, p, l, post_cfg))
        x = got


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("strategy", ["post", "deepnorm", "b2t", "mixln"])
def test_post_like_streams_are_normalized(strategy, function):
    """Gains 1, biases 0: after every post-style block the stream has rms ~1 per row (and mean
    0 under layernorm)."""
    cfg = tiny(function, strategy=strategy, L=3, C=16, post_fraction=1.0)
    p = gpt_ref.init_params(cfg, seed=16)
    for n in p:
        if n[:2] == "ln":
            p[n] = torch.ones_like(p[n]) if n.endswith("w") else torch.zeros_like(p[n])
    idx, _ = tiny_batch(cfg, T=4)
    trace = {}
    gpt_ref.gpt_forward(p, cfg, idx, trace)
    for x in trace["streams"][1:]:
        rms = x.pow(2).mean(-1).sqrt()
        torch.testing.assert_close(rms, torch.ones_like(rms), rtol=0, atol=1e-3)
        if function == "layernorm":
            assert x.mean(-1).abs().max() < 1e-14


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("decay", sorted(gpt_ref.GEO_DECAYS))
def test_geonorm_keeps_the_stream_on_its_sphere(function, decay, monkeypatch):
    """Geo rotates x within span(x, g) and keeps ||x||: exactly (to 1e-12 relative) without the
    pseudo-code's 1e-8 in u = v / (||v|| + 1e-8); with it ||Geo||^2 = r^2 (cos^2 t + sin^2 t *
    (||v|| / (||v|| + 1e-8))^2), a relative change of order 1e-8 * sin^2 t / ||v|| per update."""
    cfg = tiny(function, strategy="geonorm", L=4, C=16, geo_decay=decay)
    p = gpt_ref.init_params(cfg, seed=17)
    idx, _ = tiny_batch(cfg, T=4)

    def streams():
        trace = {}
        gpt_ref.gpt_forward(p, cfg, idx, trace)
        return trace
    tr = streams()
    r0 = tr["streams"][0].norm(dim=-1)
    for l, x in enumerate(tr["streams"][1:]):
        rel = ((x.norm(dim=-1) - r0) / r0).abs().max()
        assert rel < 2 * (l + 1) * 1e-8, rel  # 2 updates per block, each O(1e-8) at most here
    monkeypatch.setattr(gpt_ref, "GEO_EPS", 0.0)
    tr = streams()
    r0 = tr["streams"][0].norm(dim=-1)
    for x in tr["streams"][1:]:
        torch.testing.assert_close(x.norm(dim=-1), r0, rtol=1e-13, atol=0)


def test_geodesic_angle_clamps_and_fallback():
    gen = torch.Generator().manual_seed(18)
    x = torch.randn(5, 6, dtype=torch.float64, generator=gen)
    g = torch.randn(5, 6, dtype=torch.float64, generator=gen)
    x[2] = 0.0  # r < 1e-6: fallback x + g
    a, b = torch.tensor(1.1, dtype=torch.float64), torch.tensor(0.05, dtype=torch.float64)
    st = {}
    out = gpt_ref.geodesic(x, g, a, b, 0.5, 10.0, st)
    torch.testing.assert_close(out[2], g[2], rtol=0, atol=0)
    assert st["fallback"].tolist() == [False, False, True, False, False]
    for i in (0, 1, 3, 4):  # angle(x, Geo) = t, Geo in span(x, g), ||Geo|| as predicted
        r, t = float(x[i].norm()), float(st["t"][i])
        vn = float((g[i] - (x[i] @ g[i]) / r ** 2 * x[i]).norm())
        want = r * math.sqrt(math.cos(t) ** 2 + math.sin(t) ** 2 * (vn / (vn + 1e-8)) ** 2)
        assert math.isclose(float(out[i].norm()), want, rel_tol=1e-14)
        cosang = float(out[i] @ x[i] / (out[i].norm() * x[i].norm()))
        assert math.isclose(math.acos(max(-1.0, min(1.0, cosang))), float(st["t"][i]), abs_tol=1e-7)
        basis = torch.stack([x[i], g[i]]).T
        coef = torch.linalg.lstsq(basis, out[i]).solution
        torch.testing.assert_close(basis @ coef, out[i], rtol=0, atol=1e-12)
    # the fallback token's gradient is finite, and an active clamp cuts the gradient to a and b
    for clamp, b0 in ((10.0, 0.05), (1e-3, 0.5)):
        xa, ga = x.clone().requires_grad_(True), g.clone().requires_grad_(True)
        aa = a.clone().requires_grad_(True)
        ba = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
        st = {}
        gpt_ref.geodesic(xa, ga, aa, ba, 0.5, clamp, st).sum().backward()
        assert torch.isfinite(xa.grad).all() and torch.isfinite(ga.grad).all()
        if clamp < 1:
            assert bool(st["t_clamped"][[0, 1, 3, 4]].all()) and aa.grad == 0 and ba.grad == 0
            assert ga.grad.abs().sum() > 0  # the direction u still depends on g
        else:
            assert not st["t_clamped"].any() and aa.grad != 0 and ba.grad != 0


@pytest.mark.parametrize("function", FUNCTIONS)
def test_unused_tensors_get_zero_grad(function):
    cases = {
        "post": ["lnfw", "lnfb"], "deepnorm": ["lnfw", "lnfb"], "b2t": ["lnfw", "lnfb"],
        "geonorm_no_input_norm": ["ln1w", "ln1b", "ln2w", "ln2b"],
        "geonorm_frozen_angle": ["geoa1", "geob1", "geoa2", "geob2"],
        "pre_embed_norm_no_final": ["lnfw", "lnfb"],
        "dyt": [], "dyt_embed_norm_no_final": ["lnfw", "lnfb", "lnfa"],
    }
    for case, zero in cases.items():
        cfg = tiny(function, **VARIANTS.get(case, dict(strategy=case)))
        model = gpt_ref.GPT(cfg, gpt_ref.init_params(cfg, seed=19))
        idx, tgt = tiny_batch(cfg)
        model(idx, tgt)[1].backward()
        for n, prm in model.params.items():
            unused = n in zero or (function == "rmsnorm" and n in gpt_ref.NORM_BIASES
                                   and cfg.strategy != "dyt")  # DyT uses b under any function
            if unused:
                assert prm.grad is None or not prm.grad.any(), (case, n)
            elif n != "wte":
                assert prm.grad is not None and prm.grad.abs().sum() > 0, (case, n)
    # frozen angle scalars stay put through training; learned ones move
    for learn in (False, True):
        cfg = tiny(function, strategy="geonorm", geo_learn_angle=learn)
        p = gpt_ref.init_params(cfg, seed=20)
        model = gpt_ref.GPT(cfg, p)
        tokens = torch.randint(0, cfg.V, (2 * 3 * 3 + 1,), generator=torch.Generator().manual_seed(9))
        gpt_ref.train(model, tokens, 2, 3, 3, gpt_ref.Optim(grad_clip=0.0))
        assert torch.equal(model.params["geoa1"].detach(), p["geoa1"]) != learn


# ---------------------------------------------------------------------------------- llmc_io

def test_llmc_io_roundtrip_byte_identical(tmp_path):
    cfg = tiny()
    header = dict(maxT=cfg.maxT, V=cfg.V, L=cfg.L, NH=cfg.NH, C=cfg.C, Vp=cfg.Vp)
    params = gpt_ref.init_params(cfg, seed=6)
    for dtype in ("fp32", "bf16"):
        a, b = tmp_path / f"a_{dtype}.bin", tmp_path / f"b_{dtype}.bin"
        llmc_io.write_model(a, header, params, dtype)
        h2, p2, d2 = llmc_io.read_model(a)
        assert h2 == header and d2 == dtype
        llmc_io.write_model(b, h2, p2, d2)
        assert a.read_bytes() == b.read_bytes()
        hdr = np.frombuffer(a.read_bytes()[:1024], dtype="<i4")
        assert list(hdr[:8]) == [20240326, 3 if dtype == "fp32" else 5, 4, 5, 2, 2, 4, 8]
        assert not hdr[8:].any()
        want = params["qkvw"].numpy().astype(np.float32)
        if dtype == "bf16":
            want = llmc_io.round_to_bf16(want)
        assert np.array_equal(p2["qkvw"], want)


def test_bf16_round_to_nearest_even():
    bits = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF80C000, 0x7F7FFFFF],
                    dtype=np.uint32)
    got = llmc_io.fp32_to_bf16_bits(bits.view(np.float32))
    assert list(got) == [0x3F80, 0x3F82, 0x3F81, 0x3F80, 0xBF81, 0x7F80]
    assert np.isnan(llmc_io.bf16_bits_to_fp32(llmc_io.fp32_to_bf16_bits([np.nan])))[0]


def test_llmc_io_rejects_bad_files(tmp_path):
    cfg = tiny()
    header = dict(maxT=cfg.maxT, V=cfg.V, L=cfg.L, NH=cfg.NH, C=cfg.C, Vp=cfg.Vp)
    good = tmp_path / "good.bin"
    llmc_io.write_model(good, header, gpt_ref.init_params(cfg, seed=1))
    data = good.read_bytes()
    cases = {"bad magic": b"\0\0\0\0" + data[4:], "unsupported version": data[:4] + b"\x04\0\0\0" + data[8:],
             "header implies": data[:-4], "shorter than": data[:100]}
    for msg, blob in cases.items():
        p = tmp_path / "bad.bin"
        p.write_bytes(blob)
        with pytest.raises(ValueError, match=msg):
            llmc_io.read_model(p)


# ---------------------------------------------------------------------------------- training

def test_lr_schedule():
    o = gpt_ref.Optim(lr=1.0, warmup_steps=2, min_lr_ratio=0.1)
    assert [gpt_ref.lr_at(o, s, 10) for s in range(3)] == [0.5, 1.0, 1.0]
    assert math.isclose(gpt_ref.lr_at(o, 6, 10), 0.55)  # cosine midpoint
    lin = gpt_ref.Optim(lr=1.0, schedule="linear", warmup_steps=2, min_lr_ratio=0.1)
    assert math.isclose(gpt_ref.lr_at(lin, 6, 10), 0.55) and math.isclose(gpt_ref.lr_at(lin, 10, 10), 0.1)
    const = gpt_ref.Optim(lr=1.0, schedule="constant", warmup_steps=0)
    assert gpt_ref.lr_at(const, 9, 10) == 1.0


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("grad_clip", [0.0, 0.5])
@pytest.mark.parametrize("strategy", ["pre", "peri", "geonorm", "dyt"])
def test_hand_adamw_equals_torch_adamw(strategy, function, grad_clip):
    if strategy == "dyt":  # smaller gradients (bounded tanh): a smaller clip so that steps clip
        grad_clip *= 0.2
    cfg = tiny(function, strategy=strategy)
    params = gpt_ref.init_params(cfg, seed=8)
    tokens = torch.randint(0, cfg.V, (2 * 3 * 6 + 1,), generator=torch.Generator().manual_seed(9))
    o = gpt_ref.Optim(lr=3e-2, warmup_steps=2, grad_clip=grad_clip, weight_decay=0.3)
    runs = {}
    for kind in ("hand", "torch"):
        model = gpt_ref.GPT(cfg, params)
        out = gpt_ref.train(model, tokens, 2, 3, 6, o, optimizer=kind)
        runs[kind] = (out, {n: p.detach().clone() for n, p in model.params.items()})
    (h, hp), (t, tp) = runs["hand"], runs["torch"]
    np.testing.assert_allclose(h["losses"], t["losses"], rtol=1e-10)
    assert h["clipped"] == t["clipped"] and (any(h["clipped"]) == (grad_clip > 0))
    for n in hp:
        torch.testing.assert_close(hp[n], tp[n], rtol=1e-9, atol=1e-12)
    assert not torch.equal(hp["wte"], params["wte"])


# ---------------------------------------------------------------------------------- fixtures

FIXTURE_DIR = make_fixtures.DEFAULT_OUT


@pytest.mark.skipif(not os.path.isdir(FIXTURE_DIR), reason="no committed fixtures")
def test_committed_fixtures_regenerate_identically(tmp_path):
    make_fixtures.main(["--out", str(tmp_path)])
    for name in make_fixtures.FIXTURES:
        for f in ("model.bin", "model_bf16.bin"):
            committed = os.path.join(FIXTURE_DIR, name, f)
            if os.path.exists(committed) or (tmp_path / name / f).exists():
                assert (tmp_path / name / f).read_bytes() == open(committed, "rb").read(), (name, f)
        new = json.loads((tmp_path / name / "fixture.json").read_text())
        old = json.load(open(os.path.join(FIXTURE_DIR, name, "fixture.json")))
        new.pop("command"), old.pop("command")
        assert new == old, name


@pytest.mark.skipif(not os.path.isdir(FIXTURE_DIR), reason="no committed fixtures")
def test_committed_fixtures_content():
    """Every strategy x function is there; model.bin is a plain llm.c file shared by all fixtures of
    one function; extra_params are the init's extras; gradients are finite, O(1) overall and zero
    exactly for the unused tensors; GeoNorm clamps some tokens, most not."""
    assert sorted(make_fixtures.FIXTURES) == sorted(f"{s}_{f}" for s in STRATEGIES for f in FUNCTIONS)
    blobs = {}
    for name, (strategy, function, _, overrides) in make_fixtures.FIXTURES.items():
        d = os.path.join(FIXTURE_DIR, name)
        fx = json.load(open(os.path.join(d, "fixture.json")))
        blob = open(os.path.join(d, "model.bin"), "rb").read()
        assert blobs.setdefault(function, blob) == blob, name
        cfg = gpt_ref.Config(**{k: fx[k] for k in ("V", "Vp", "maxT", "L", "NH", "C")},
                             strategy=strategy, function=function, **overrides)
        norm = fx["norm"]
        assert (norm["strategy"], norm["function"], norm["eps"]) == (strategy, function, 1e-5)
        assert norm["geonorm"]["clamp"] == cfg.geo_clamp and norm["geonorm"]["decay"] == cfg.geo_decay
        assert norm["mixln"]["post_fraction"] == cfg.post_fraction
        assert norm.get("dyt") == ({"alpha0": cfg.dyt_alpha0} if strategy == "dyt" else None), name
        init = gpt_ref.init_params(cfg, fx["seed"])
        extras = gpt_ref.extra_param_shapes(cfg)
        assert list(fx["extra_params"]) == list(extras)
        for n in extras:
            assert fx["extra_params"][n] == init[n].to(torch.float32).double().reshape(-1).tolist()
        assert list(fx["grads"]) == list(gpt_ref.param_shapes(cfg))
        assert len(fx["logits"]) == fx["B"] * fx["T"] * fx["Vp"]
        # DyT's bounded tanh gives smaller gradients (grad norm ~0.6 at step 0)
        assert (0.5 if strategy == "dyt" else 1.0) < fx["grad_norm"] < 10.0
        assert all(math.isfinite(v) for v in fx["losses"])
        for n, g in fx["grads"].items():
            unused = (function == "rmsnorm" and n in gpt_ref.NORM_BIASES and strategy != "dyt") or \
                (n in ("lnfw", "lnfb", "lnfa") and not cfg.use_final_norm)
            assert (max(map(abs, g)) == 0) == unused, (name, n)
        assert any(fx["clipped"]) and not all(fx["clipped"])
        if strategy == "geonorm":
            g0 = fx["geonorm_clamp"][0]
            fr = g0["attn"]["clamped"] + g0["mlp"]["clamped"]
            assert 0 < max(fr) < 0.5 and g0["min_margin"] > 1e-4, name
