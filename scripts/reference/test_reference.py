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
    names = [n for n in params if n not in frozen and params[n].numel()]  # 0-element: no bias
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


def test_unknown_settings_are_clear():
    assert gpt_ref.PLANNED_STRATEGIES == []  # every strategy of NORMS.md is implemented
    with pytest.raises(ValueError, match="unknown strategy"):
        tiny(strategy="nonsense")
    with pytest.raises(ValueError, match="unknown norm function"):
        tiny(function="batchnorm")
    for kw, msg in ((dict(pos="alibi"), "unknown pos"), (dict(mlp="relu"), "unknown mlp"),
                    (dict(qk_norm="row"), "unknown qk_norm"), (dict(mlp_hidden=-1), "mlp_hidden"),
                    (dict(pos="rope", NH=4), "even head size"),
                    (dict(strategy="ngpt", qk_norm="head"), "qk_norm must stay"),
                    (dict(strategy="angpt", qk_norm="full"), "qk_norm must stay"),
                    (dict(strategy="ngpt", final_norm=False), "no norm layers"),
                    (dict(strategy="angpt", embed_norm=True), "no norm layers")):
        with pytest.raises(ValueError, match=msg):
            tiny(**kw)


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
            assert os.path.exists(committed) == (tmp_path / name / f).exists(), (name, f)
            if os.path.exists(committed):
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
    assert sorted(make_fixtures.WAVE1_FIXTURES) == sorted(f"{s}_{f}" for s in STRATEGIES for f in FUNCTIONS)
    blobs = {}
    for name in make_fixtures.WAVE1_FIXTURES:
        strategy, function, _, overrides = make_fixtures.FIXTURES[name]
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


# ======================================================================= block options and wave 2
#
# docs/blocks.md: RoPE, SwiGLU, biases off, qk norm (head / full), untied head; the strategies
# residual, hybridnorm, hybridnorm_star, ngpt, angpt; ngpt / angpt's post-step weight hooks and
# anGPT's factors.

SWIGLU_TINY = dict(mlp="swiglu", mlp_hidden=6)
LLAMA_TINY = dict(pos="rope", bias=False, qk_norm="head", tie_embeddings=False, **SWIGLU_TINY)
SPHERE_ALT = dict(pos="rope", bias=False, tie_embeddings=False, **SWIGLU_TINY)
# name -> (config, norm functions to run it with)
BLOCK_VARIANTS = {
    "residual": (dict(strategy="residual"), FUNCTIONS),
    "residual_embed_no_final": (dict(strategy="residual", embed_norm=True, final_norm=False),
                                ["layernorm"]),
    "hybridnorm": (dict(strategy="hybridnorm"), FUNCTIONS),
    "hybridnorm_full_rope": (dict(strategy="hybridnorm", qk_norm="full", pos="rope"), ["layernorm"]),
    "hybridnorm_star": (dict(strategy="hybridnorm_star"), FUNCTIONS),
    "llama": (dict(strategy="pre", **LLAMA_TINY), FUNCTIONS),
    "qk_full_h5": (dict(strategy="pre", qk_norm="full", mlp_hidden=5), ["layernorm"]),
    "dyt_rope_qk": (dict(strategy="dyt", pos="rope", qk_norm="head"), ["layernorm"]),
    "peri_qk_untied": (dict(strategy="peri", qk_norm="head", tie_embeddings=False), ["rmsnorm"]),
    "ngpt": (dict(strategy="ngpt"), ["layernorm"]),
    "ngpt_rope_swiglu": (dict(strategy="ngpt", **SPHERE_ALT), ["rmsnorm"]),
    "angpt": (dict(strategy="angpt"), ["layernorm"]),
    "angpt_rope_swiglu": (dict(strategy="angpt", **SPHERE_ALT), ["rmsnorm"]),
}
BLOCK_CASES = [(v, f) for v, (_, fs) in BLOCK_VARIANTS.items() for f in fs]


@pytest.mark.parametrize("variant,function", BLOCK_CASES)
def test_gradcheck_block_options_and_wave2(variant, function):
    _gradcheck(tiny(function, **BLOCK_VARIANTS[variant][0]))


# An independent second writing: heads one by one, F.linear / F.layer_norm / F.silu /
# F.gelu(tanh), RoPE through complex numbers.

def _ref_rope(x, theta):
    """x (T, hs): pairs (i, i + hs/2) as complex numbers a + ib, times exp(i t theta^(-2i/hs))."""
    T, hs = x.shape[-2], x.shape[-1]
    h2 = hs // 2
    ang = torch.tensor([[t * theta ** (-2.0 * i / hs) for i in range(h2)] for t in range(T)],
                       dtype=torch.float64)
    z = torch.complex(x[..., :h2], x[..., h2:]) * torch.polar(torch.ones_like(ang), ang)
    return torch.cat([z.real, z.imag], dim=-1)


def _ref_l2(v, eps):
    return v * torch.rsqrt(v.pow(2).sum(-1, keepdim=True) + eps)


def _ref_attn(cfg, p, l, x):
    C, NH = cfg.C, cfg.NH
    hs = C // NH
    s = cfg.strategy
    qkv = F.linear(x, p["qkvw"][l], p["qkvb"][l] if cfg.bias else None)
    parts = {"q": qkv[..., :C], "k": qkv[..., C:2 * C], "v": qkv[..., 2 * C:]}
    sites = {}
    if s in ("hybridnorm", "hybridnorm_star") and not (s == "hybridnorm_star" and l == 0):
        sites = {"q": "lnq", "k": "lnk", "v": "lnv"}
    elif s not in ("ngpt", "angpt") and cfg.qk_norm != "none":
        sites = {"q": "lnq", "k": "lnk"}
    full = cfg.qk_norm == "full"
    for key, site in sites.items():
        g, b = p[site + "w"][l], p[site + "b"][l]
        if s == "dyt":
            parts[key] = _dyt(parts[key], g, b, p[site + "a"][l])
        elif full:
            parts[key] = _N(cfg, parts[key], g, b)
        else:
            parts[key] = torch.cat([_N(cfg, parts[key][..., h * hs:(h + 1) * hs], g[h * hs:(h + 1) * hs],
                                       b[h * hs:(h + 1) * hs]) for h in range(NH)], dim=-1)
    heads = []
    T = x.shape[1]
    for h in range(NH):
        sl = slice(h * hs, (h + 1) * hs)
        q, k, v = parts["q"][..., sl], parts["k"][..., sl], parts["v"][..., sl]
        if s in ("ngpt", "angpt"):
            q = _ref_l2(q, cfg.eps) * (p["sqk"][l][sl] * math.sqrt(C))
            k = _ref_l2(k, cfg.eps) * (p["sqk"][l][sl] * math.sqrt(C))
        if cfg.pos == "rope":
            q, k = _ref_rope(q, cfg.rope_theta), _ref_rope(k, cfg.rope_theta)
        scale = math.sqrt(hs) if s in ("ngpt", "angpt") else 1.0 / math.sqrt(hs)
        sc = torch.einsum("btd,bsd->bts", q, k) * scale
        sc = sc + torch.triu(torch.full((T, T), -math.inf, dtype=torch.float64), diagonal=1)
        heads.append(torch.einsum("bts,bsd->btd", torch.softmax(sc, -1), v))
    return F.linear(torch.cat(heads, -1), p["attprojw"][l], p["attprojb"][l] if cfg.bias else None)


def _ref_mlp(cfg, p, l, x):
    s, C, H = cfg.strategy, cfg.C, cfg.H
    u = F.linear(x, p["fcw"][l], p["fcb"][l] if cfg.bias else None)
    if s == "ngpt":
        u = u * p["suv"][l] * math.sqrt(C)
    if s == "angpt":
        u = u * math.sqrt(C / H)
    h = F.silu(u[..., :H]) * u[..., H:] if cfg.mlp == "swiglu" else F.gelu(u, approximate="tanh")
    if s == "angpt":
        h = h * gpt_ref.angpt_act_factor(cfg.mlp, H)
    out = F.linear(h, p["fcprojw"][l], p["fcprojb"][l] if cfg.bias else None)
    return out * math.sqrt(H / C) if s == "angpt" else out  # angpt down: rows of length H


def _ref_state(cfg, p, l, state):
    """One block of a wave-2 strategy or of a block-option variant of pre / peri / dyt."""
    n = lambda site, z: _N(cfg, z, p[site + "w"][l], p[site + "b"][l])  # noqa: E731
    A = lambda z: _ref_attn(cfg, p, l, z)  # noqa: E731
    M = lambda z: _ref_mlp(cfg, p, l, z)  # noqa: E731
    s, C = cfg.strategy, cfg.C
    if s == "residual":
        x, d = state
        o = A(x)
        x, d = n("ln1", x + o), d + o
        o = M(x)
        return n("ln2", x + o), d + o
    x = state
    if s == "pre" or (s == "hybridnorm_star" and l == 0):
        y = x + A(n("ln1", x))
        return y + M(n("ln2", y))
    if s == "peri":
        y = x + n("lno1", A(n("ln1", x)))
        return y + n("lno2", M(n("ln2", y)))
    if s == "dyt":
        dy = lambda site, z: _dyt(z, p[site + "w"][l], p[site + "b"][l], p[site + "a"][l])  # noqa: E731
        y = x + A(dy("ln1", x))
        return y + M(dy("ln2", y))
    if s in ("hybridnorm", "hybridnorm_star"):
        z = n("ln2", x + A(x))
        return z + M(z)
    a1 = p["attna"][l] * cfg.ngpt_alpha_init / (1.0 / math.sqrt(C))
    a2 = p["mlpa"][l] * cfg.ngpt_alpha_init / (1.0 / math.sqrt(C))
    if s == "ngpt":
        h = _ref_l2(x + a1.abs() * (_ref_l2(A(x), cfg.eps) - x), cfg.eps)
        return _ref_l2(h + a2.abs() * (_ref_l2(M(h), cfg.eps) - h), cfg.eps)
    if s == "angpt":
        nu = lambda a: (a ** 2 + (1 - a) ** 2) ** -0.5  # noqa: E731
        h = nu(a1) * ((1 - a1) * x + a1 * A(x))
        return nu(a2) * ((1 - a2) * h + a2 * M(h))
    raise AssertionError(s)


@pytest.mark.parametrize("variant,function", BLOCK_CASES)
def test_wave2_blocks_match_an_independent_writing(variant, function):
    cfg = tiny(function, **{**BLOCK_VARIANTS[variant][0], "L": 3, "C": 8})
    p = gpt_ref.init_params(cfg, seed=31)
    idx, _ = tiny_batch(cfg, T=4)
    trace = {}
    logits = gpt_ref.gpt_forward(p, cfg, idx, trace)
    h0 = p["wte"][idx] + (p["wpe"][:4] if cfg.pos == "learned" else 0.0)
    if cfg.strategy == "ngpt":
        h0 = _ref_l2(h0, cfg.eps)
    if cfg.strategy == "angpt" and cfg.pos == "learned":
        h0 = h0 / math.sqrt(2.0)
    if cfg.embed_norm:
        h0 = _site(cfg, p, "lne", h0)
    dual = cfg.strategy == "residual"
    state = (h0, h0) if dual else h0
    for l in range(cfg.L + 1):
        got = (trace["streams"][l], trace["dstreams"][l]) if dual else (trace["streams"][l],)
        for g, w in zip(got, state if dual else (state,)):
            torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
        if l < cfg.L:
            state = _ref_state(cfg, p, l, state)
    final_on = cfg.final_norm if cfg.final_norm is not None else \
        cfg.strategy in ("residual", "hybridnorm", "hybridnorm_star", "pre", "peri", "dyt")
    if dual:
        x, d = state
        h = x + (_site(cfg, p, "lnf", d) if final_on else d)
    else:
        h = _site(cfg, p, "lnf", state) if final_on else state
    logit = F.linear(h, p["wte"] if cfg.tie_embeddings else p["lmheadw"])
    if cfg.strategy in ("ngpt", "angpt"):
        logit = logit * p["sz"] * math.sqrt(cfg.C)
    torch.testing.assert_close(logits, logit, rtol=0, atol=1e-12)


def test_param_order_follows_the_tensor_list():
    """docs/blocks.md: the 16 GPT-2 tensors (0-element ones kept), lmheadw, the strategy's norms,
    lnq, lnk (lnv), lne, the strategy's vectors, DyT's alphas."""
    L, C = 2, 8
    cfg = tiny(strategy="dyt", pos="rope", qk_norm="head", tie_embeddings=False, embed_norm=True,
               mlp="swiglu", bias=False, C=C)
    sh = gpt_ref.param_shapes(cfg)
    assert list(sh) == gpt_ref.PARAM_ORDER + ["lmheadw", "lnqw", "lnqb", "lnkw", "lnkb", "lnew",
                                              "lneb", "ln1a", "ln2a", "lnfa", "lnea", "lnqa", "lnka"]
    H = 32  # 8C/3 = 21.3 -> 32
    assert cfg.H == H and sh["wpe"] == (0, C) and sh["qkvb"] == (L, 0) and sh["attprojb"] == (L, 0)
    assert sh["fcw"] == (L, 2 * H, C) and sh["fcb"] == (L, 0) and sh["fcprojw"] == (L, C, H)
    assert sh["fcprojb"] == (L, 0) and sh["lmheadw"] == (8, C) and sh["lnqa"] == (L,)
    qkv = ["lnqw", "lnqb", "lnkw", "lnkb", "lnvw", "lnvb"]
    cases = {"hybridnorm": qkv, "hybridnorm_star": qkv, "residual": [],
             "ngpt": ["sqk", "attna", "mlpa", "suv", "sz"], "angpt": ["sqk", "attna", "mlpa", "sz"]}
    for s, want in cases.items():
        assert list(gpt_ref.extra_param_shapes(tiny(strategy=s))) == want, s
    extras = lambda **kw: list(gpt_ref.extra_param_shapes(tiny(**kw)))  # noqa: E731
    assert extras(strategy="peri", qk_norm="full", tie_embeddings=False, embed_norm=True) == \
        ["lmheadw", "lno1w", "lno1b", "lno2w", "lno2b", "lnqw", "lnqb", "lnkw", "lnkb", "lnew", "lneb"]
    assert extras(strategy="geonorm", qk_norm="head", tie_embeddings=False) == \
        ["lmheadw", "lnqw", "lnqb", "lnkw", "lnkb", "lnew", "lneb", "geoa1", "geob1", "geoa2", "geob2"]
    ng = gpt_ref.param_shapes(tiny(strategy="ngpt", C=C, mlp="swiglu", tie_embeddings=False))
    assert (ng["sqk"], ng["attna"], ng["mlpa"], ng["suv"], ng["sz"]) == \
        ((L, C), (L, C), (L, C), (L, 2 * H), (8,))
    assert gpt_ref.param_shapes(tiny(strategy="ngpt", C=C))["suv"] == (L, 4 * C)
    assert gpt_ref.param_shapes(tiny(qk_norm="full", mlp_hidden=40, C=C))["fcprojw"] == (L, C, 40)
    assert "lmheadw" in gpt_ref.DECAYED
    # the 16 GPT-2 tensors of residual / hybridnorm do not depend on the strategy either
    for s in ("residual", "hybridnorm", "hybridnorm_star"):
        p, base = gpt_ref.init_params(tiny(strategy=s), seed=5), gpt_ref.init_params(tiny(), seed=5)
        assert all(torch.equal(p[n], base[n]) for n in gpt_ref.PARAM_ORDER), s


def test_rope_rotates_pairs_keeps_norms_and_is_relative():
    gen = torch.Generator().manual_seed(41)
    T, hs = 7, 8
    for theta in (10000.0, 3.0):  # 3: large angles at every channel
        x = torch.randn(2, 3, T, hs, dtype=torch.float64, generator=gen)
        y = gpt_ref.rope(x, theta)
        torch.testing.assert_close(y, _ref_rope(x, theta), rtol=0, atol=1e-14)
        torch.testing.assert_close(y[..., 0, :], x[..., 0, :], rtol=0, atol=0)  # position 0: identity
        pair = lambda z: z[..., :hs // 2] ** 2 + z[..., hs // 2:] ** 2  # noqa: E731
        torch.testing.assert_close(pair(y), pair(x), rtol=1e-13, atol=0)  # each pair keeps its norm
        # the same q and k content at every position: q_t . k_s depends only on t - s
        a, b = (torch.randn(hs, dtype=torch.float64, generator=gen) for _ in range(2))
        dots = gpt_ref.rope(a.expand(T, hs), theta) @ gpt_ref.rope(b.expand(T, hs), theta).T
        offsets = []
        for off in range(-(T - 1), T):
            dg = torch.diagonal(dots, offset=off)
            torch.testing.assert_close(dg, dg[0].expand_as(dg), rtol=0, atol=1e-12)
            offsets.append(float(dg[0]))
        assert len({round(v, 9) for v in offsets}) == len(offsets)  # and it does depend on t - s
    # inside attention: RoPE makes the attention of a constant sequence shift-invariant, learned
    # positions (zero wpe) are blind to position; RoPE is applied after the qk norm
    cfg = tiny(pos="rope", C=8, NH=2, qk_norm="head")
    p = gpt_ref.init_params(cfg, seed=42)
    q = torch.randn(1, 5, 8, dtype=torch.float64, generator=gen)
    want = gpt_ref.rope(gpt_ref.qkv_site_norm(cfg, p, "lnq", 0, q).reshape(1, 5, 2, 4).transpose(1, 2),
                        cfg.rope_theta)
    torch.testing.assert_close(want, _ref_rope(gpt_ref.qkv_site_norm(cfg, p, "lnq", 0, q)
                                               .reshape(1, 5, 2, 4).transpose(1, 2), 10000.0),
                               rtol=0, atol=1e-14)


def test_swiglu_mlp_and_hidden_width():
    assert [tiny(C=c, NH=1, mlp="swiglu").H for c in (4, 16, 96, 768, 1024)] == [32, 64, 256, 2048, 2752]
    assert tiny(C=16, NH=1).H == 64 and tiny(C=16, NH=1, mlp_hidden=40).H == 40
    assert tiny(C=16, NH=1, mlp="swiglu", mlp_hidden=40).fc_rows == 80
    gen = torch.Generator().manual_seed(43)
    D = dict(generator=gen, dtype=torch.float64)
    C, H = 6, 5
    x = torch.randn(2, 3, C, **D)
    w, b = torch.randn(2 * H, C, **D), torch.randn(2 * H, **D)
    pw, pb = torch.randn(C, H, **D), torch.randn(C, **D)
    gate, up = x @ w[:H].T + b[:H], x @ w[H:].T + b[H:]
    want = (gate * torch.sigmoid(gate) * up) @ pw.T + pb
    torch.testing.assert_close(gpt_ref.mlp(x, w, b, pw, pb, "swiglu"), want, rtol=1e-14, atol=1e-14)
    none = torch.zeros(0, dtype=torch.float64)
    torch.testing.assert_close(gpt_ref.mlp(x, w, none, pw, none, "swiglu"),
                               (F.silu(x @ w[:H].T) * (x @ w[H:].T)) @ pw.T, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_qk_norm_axis(function):
    """head: statistics per head's hs channels (rms 1, and mean 0 under layernorm, per head, with
    gains 1 and biases 0); full: over all C; the two differ; under head each head has its own
    slice of the gain."""
    C, NH, hs = 8, 2, 4
    cfg_h = tiny(function, qk_norm="head", C=C, NH=NH, eps=0.0)
    cfg_f = tiny(function, qk_norm="full", C=C, NH=NH, eps=0.0)
    p = gpt_ref.init_params(cfg_h, seed=44)
    p["lnqw"] = torch.ones_like(p["lnqw"])
    p["lnqb"] = torch.zeros_like(p["lnqb"])
    gen = torch.Generator().manual_seed(45)
    z = torch.randn(2, 3, C, dtype=torch.float64, generator=gen) + 0.5
    z[..., :hs] *= 7.0  # heads of very different scales
    qh = gpt_ref.qkv_site_norm(cfg_h, p, "lnq", 0, z).reshape(2, 3, NH, hs)
    qf = gpt_ref.qkv_site_norm(cfg_f, p, "lnq", 0, z)
    rms = qh.pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=0, atol=1e-13)
    rf = qf.pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rf, torch.ones_like(rf), rtol=0, atol=1e-13)
    assert (qf.reshape(2, 3, NH, hs).pow(2).mean(-1).sqrt() - 1).abs().max() > 0.5  # not per head
    if function == "layernorm":
        assert qh.mean(-1).abs().max() < 1e-14 and qf.mean(-1).abs().max() < 1e-14
    assert not torch.allclose(qh.reshape(2, 3, C), qf)
    g = 1 + torch.arange(C, dtype=torch.float64)  # per-head gain slices
    p["lnqw"][0] = g
    torch.testing.assert_close(gpt_ref.qkv_site_norm(cfg_h, p, "lnq", 0, z), g * qh.reshape(2, 3, C),
                               rtol=1e-14, atol=0)
    # and in a whole model the axis matters
    idx, _ = tiny_batch(cfg_h)
    p2 = gpt_ref.init_params(cfg_h, seed=46)
    assert not torch.allclose(gpt_ref.gpt_forward(p2, cfg_h, idx), gpt_ref.gpt_forward(p2, cfg_f, idx))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_residual_dual_stream(function):
    """ResiDual: x0 = d0 = h0; o = f(x), d <- d + o, x <- N(x + o); dL = h0 + every sublayer output;
    head on xL + Nf(dL) (xL + dL without the final norm); the x stream is normalized."""
    kw = dict(strategy="residual", L=3, C=8)
    cfg = tiny(function, **kw)
    p = gpt_ref.init_params(cfg, seed=47)
    for n in ("ln1w", "ln2w"):
        p[n] = torch.ones_like(p[n])
    for n in ("ln1b", "ln2b"):
        p[n] = torch.zeros_like(p[n])
    idx, _ = tiny_batch(cfg, T=4)
    trace = {}
    logits = gpt_ref.gpt_forward(p, cfg, idx, trace)
    xs, ds = trace["streams"], trace["dstreams"]
    h0 = p["wte"][idx] + p["wpe"][:4]
    assert torch.equal(xs[0], h0) and torch.equal(ds[0], h0)
    total = h0
    for l in range(cfg.L):
        o1 = gpt_ref.attn_sublayer(p, l, xs[l], cfg)
        xm = gpt_ref.N(cfg, p, "ln1", l, xs[l] + o1)
        o2 = gpt_ref.mlp_sublayer(p, l, xm, cfg)
        torch.testing.assert_close(xs[l + 1], gpt_ref.N(cfg, p, "ln2", l, xm + o2), rtol=0, atol=0)
        total = total + o1 + o2
        rms = xs[l + 1].pow(2).mean(-1).sqrt()
        torch.testing.assert_close(rms, torch.ones_like(rms), rtol=0, atol=1e-3)
    torch.testing.assert_close(ds[-1], total, rtol=0, atol=1e-12)
    hf = xs[-1] + gpt_ref.norm(cfg, ds[-1], p["lnfw"], p["lnfb"])
    torch.testing.assert_close(logits, hf @ p["wte"].T, rtol=0, atol=1e-12)
    off = tiny(function, final_norm=False, **kw)
    torch.testing.assert_close(gpt_ref.gpt_forward(p, off, idx), (xs[-1] + ds[-1]) @ p["wte"].T,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_hybridnorm_star_block0_is_pre(function):
    kw = dict(L=3, C=8)
    star = tiny(function, strategy="hybridnorm_star", **kw)
    hyb = tiny(function, strategy="hybridnorm", **kw)
    p = gpt_ref.init_params(star, seed=48)
    x = torch.randn(2, 3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(49))
    torch.testing.assert_close(gpt_ref.block_hybridnorm(x, p, 0, star),
                               gpt_ref.block_pre(x, p, 0, tiny(function, **kw)), rtol=0, atol=0)
    assert not torch.allclose(gpt_ref.block_hybridnorm(x, p, 0, star), gpt_ref.block_hybridnorm(x, p, 0, hyb))
    for l in (1, 2):
        torch.testing.assert_close(gpt_ref.block_hybridnorm(x, p, l, star),
                                   gpt_ref.block_hybridnorm(x, p, l, hyb), rtol=0, atol=0)
    # which rows get gradient: ln1 only in block 0 of star (never in hybridnorm), lnq/lnk/lnv
    # never in block 0 of star
    idx, tgt = tiny_batch(star)
    for cfg in (star, hyb):
        model = gpt_ref.GPT(cfg, p)
        model(idx, tgt)[1].backward()
        g = {n: (t.grad if t.grad is not None else torch.zeros_like(t)) for n, t in model.params.items()}
        rows_ln1 = g["ln1w"].abs().sum(-1)
        rows_q = g["lnqw"].abs().sum(-1) + g["lnkw"].abs().sum(-1) + g["lnvw"].abs().sum(-1)
        if cfg is star:
            assert rows_ln1[0] > 0 and not rows_ln1[1:].any() and rows_q[0] == 0 and rows_q[1:].all()
        else:
            assert not rows_ln1.any() and rows_q.all()


@pytest.mark.parametrize("variant", ["ngpt", "ngpt_rope_swiglu"])
def test_ngpt_states_are_unit_norm(variant):
    """After the embedding and every block the stream has unit norm per token: exactly (1e-14)
    with eps = 0, and 1/sqrt(1 + eps/||v||^2) ~ 1 - eps/2 with the default eps."""
    for eps, tol in ((0.0, 1e-14), (1e-5, 1e-5)):
        cfg = tiny("layernorm", **{**BLOCK_VARIANTS[variant][0], "L": 3, "C": 8, "eps": eps})
        p = gpt_ref.init_params(cfg, seed=50)
        trace = {}
        gpt_ref.gpt_forward(p, cfg, tiny_batch(cfg, T=4)[0], trace)
        assert len(trace["streams"]) == 4
        for x in trace["streams"]:
            n = x.norm(dim=-1)
            torch.testing.assert_close(n, torch.ones_like(n), rtol=0, atol=tol)
    # ngpt uses |a|: negating attna / mlpa changes nothing (anGPT's a has no abs: it does)
    idx = tiny_batch(cfg, T=4)[0]
    for s in ("ngpt", "angpt"):
        c = tiny("layernorm", **{**BLOCK_VARIANTS[variant][0], "strategy": s, "L": 3, "C": 8})
        p = gpt_ref.init_params(c, seed=50)
        q = {**p, "attna": -p["attna"], "mlpa": -p["mlpa"]}
        same = torch.allclose(gpt_ref.gpt_forward(p, c, idx), gpt_ref.gpt_forward(q, c, idx),
                              rtol=0, atol=1e-14)
        assert same == (s == "ngpt"), s


def _constrained_norms(params, cfg):
    return {n: torch.linalg.vector_norm(params[n].detach(), dim=axis)
            for n, axis in gpt_ref.constrained_matrices(cfg)}


@pytest.mark.parametrize("strategy", ["ngpt", "angpt"])
@pytest.mark.parametrize("arch", ["gpt2", "alt"])
def test_post_step_hooks(strategy, arch):
    """After every optimizer step: ngpt's constrained rows / columns have unit norm, angpt's lie in
    the unit ball (some projected onto its surface, some strictly inside); the list of constrained
    matrices; tensors outside it are not touched by the hook."""
    kw = {} if arch == "gpt2" else SPHERE_ALT
    cfg = tiny(strategy=strategy, C=8, **kw)
    want = [("wte", -1)] + ([("lmheadw", -1)] if arch == "alt" else []) + \
        ([("wpe", -1)] if strategy == "angpt" and arch == "gpt2" else []) + \
        [("qkvw", -1), ("fcw", -1)] + \
        ([("attprojw", -2), ("fcprojw", -2)] if strategy == "ngpt" else [("attprojw", -1), ("fcprojw", -1)])
    assert gpt_ref.constrained_matrices(cfg) == want
    p = gpt_ref.init_params(cfg, seed=51)
    for n, norms in _constrained_norms(p, cfg).items():  # the init: unit / spread inside the ball
        if strategy == "ngpt":
            torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-14)
        else:
            assert norms.max() <= 1 + 1e-14 and norms.min() >= 0.8 - 1e-14, n
    model = gpt_ref.GPT(cfg, p)
    tokens = torch.randint(0, cfg.V, (2 * 3 * 3 + 1,), generator=torch.Generator().manual_seed(52))
    out = gpt_ref.train(model, tokens, 2, 3, 3, gpt_ref.Optim(lr=0.05, grad_clip=0.0))
    norms = _constrained_norms(model.params, cfg)
    for n, nn in norms.items():
        if strategy == "ngpt":
            torch.testing.assert_close(nn, torch.ones_like(nn), rtol=0, atol=1e-14)
        else:
            assert nn.max() <= 1 + 1e-14, n
    if strategy == "angpt":
        allv = torch.cat([v.reshape(-1) for v in norms.values()])
        assert (allv > 1 - 1e-14).any() and (allv < 0.999).any()
        assert len(out["projected"]) == 3 and all(sum(c.values()) > 0 for c in out["projected"])
        assert all(m > 0 for m in out["projection_margin"])
    else:
        assert out["projected"] == []
    # the hook itself: only the constrained tensors change, along the right axis
    raw = {n: 1.5 * t for n, t in gpt_ref.init_params(cfg, seed=53).items()}
    # ngpt constrains attprojw by columns, angpt by rows: one vector of that axis well inside the ball
    axis = 0 if strategy == "ngpt" else 1
    inside = (slice(None), 0) if strategy == "ngpt" else (0, slice(None))
    raw["attprojw"][0][inside] *= 0.1
    hooked = {n: t.clone() for n, t in raw.items()}
    gpt_ref.post_step_hook_(hooked, cfg)
    names = {n for n, _ in want}
    for n in raw:
        if n not in names:
            assert torch.equal(hooked[n], raw[n]), n
    cn = torch.linalg.vector_norm(raw["attprojw"][0], dim=axis, keepdim=True)
    torch.testing.assert_close(hooked["attprojw"][0], raw["attprojw"][0] / (
        cn if strategy == "ngpt" else torch.clamp(cn, min=1.0)), rtol=1e-15, atol=0)
    if strategy == "angpt":
        assert torch.equal(hooked["attprojw"][0][inside], raw["attprojw"][0][inside])
    if arch == "gpt2" and strategy == "ngpt":
        assert torch.equal(hooked["wpe"], raw["wpe"])  # wpe is free under ngpt
    zero = gpt_ref.init_params(cfg, seed=57)
    zero["wte"][cfg.V:] = 0.0  # padded rows zeroed, as normgpt's init does: they stay zero
    gpt_ref.post_step_hook_(zero, cfg)
    assert torch.equal(zero["wte"][cfg.V:], torch.zeros_like(zero["wte"][cfg.V:]))
    assert torch.isfinite(zero["wte"]).all()


@pytest.mark.parametrize("variant", ["ngpt", "angpt", "angpt_rope_swiglu", "llama"])
def test_hand_adamw_equals_torch_adamw_with_hooks(variant):
    cfg = tiny("layernorm", **BLOCK_VARIANTS[variant][0])
    params = gpt_ref.init_params(cfg, seed=54)
    tokens = torch.randint(0, cfg.V, (2 * 3 * 5 + 1,), generator=torch.Generator().manual_seed(55))
    o = gpt_ref.Optim(lr=3e-2, warmup_steps=1, grad_clip=0.3, weight_decay=0.3)
    runs = {}
    for kind in ("hand", "torch"):
        model = gpt_ref.GPT(cfg, params)
        out = gpt_ref.train(model, tokens, 2, 3, 5, o, optimizer=kind)
        runs[kind] = (out, {n: t.detach().clone() for n, t in model.params.items()})
    (h, hp), (t, tp) = runs["hand"], runs["torch"]
    np.testing.assert_allclose(h["losses"], t["losses"], rtol=1e-10)
    assert h["clipped"] == t["clipped"] and h["projected"] == t["projected"]
    for n in hp:
        torch.testing.assert_close(hp[n], tp[n], rtol=1e-9, atol=1e-12)


def test_angpt_factors():
    """c_act: GELU's tends to 2 from below as H grows, SwiGLU's to 2 sqrt(H); Simpson's rule is
    converged; the factors of a config."""
    ge = [gpt_ref.angpt_act_factor("gelu", H) for H in (16, 64, 256, 1024, 4096)]
    assert all(a < b < 2 for a, b in zip(ge, ge[1:])) and abs(ge[-1] - 2) < 1e-3
    sw = [gpt_ref.angpt_act_factor("swiglu", H) / (2 * math.sqrt(H)) for H in (16, 64, 256, 4096)]
    assert all(a < b < 1 for a, b in zip(sw, sw[1:])) and abs(sw[-1] - 1) < 1e-3
    for f, H in ((gpt_ref._gelu_scalar, 64), (gpt_ref._silu_scalar, 40)):
        s = 1 / math.sqrt(H)
        a, b = gpt_ref.gaussian_mean_square(f, s), gpt_ref.gaussian_mean_square(f, s, points=4001)
        assert math.isclose(a, b, rel_tol=1e-12)
        # an independent estimate: trapezoid on a finer grid of numpy's
        z = np.linspace(-14 * s, 14 * s, 200001)
        fz = np.array([f(v) for v in z[::50]])  # a coarser check is enough: 4001 points
        zz = z[::50]
        tr = np.trapz(fz ** 2 * np.exp(-0.5 * (zz / s) ** 2) / (s * math.sqrt(2 * math.pi)), zz)
        assert math.isclose(a, tr, rel_tol=1e-8)
    fac = gpt_ref.angpt_factors(tiny(strategy="angpt", C=16, NH=2))
    assert fac == {"embed": 1 / math.sqrt(2), "softmax_scale": math.sqrt(8), "attn_out": 1.0,
                   "up": 0.5, "act": gpt_ref.angpt_act_factor("gelu", 64), "down": 2.0}
    fac = gpt_ref.angpt_factors(tiny(strategy="angpt", C=16, NH=2, pos="rope", mlp="swiglu"))
    assert fac["embed"] == 1.0 and fac["up"] == 0.5 and fac["act"] == gpt_ref.angpt_act_factor("swiglu", 64)


@pytest.mark.parametrize("mlp_kind", ["gelu", "swiglu"])
def test_angpt_stage_norms_near_one(mlp_kind):
    """Random unit inputs through random matrices constrained as angpt constrains them (unit rows
    of every matrix: E, P, W_v, W_o, W_up, W_down) at C = 1024: every stage's output norm, times
    its factor, is within 10% of 1. (With ngpt's unit columns on W_down the right factor would be 1,
    and sqrt(H/C) would overshoot: the factor follows the constraint's axis.)"""
    C = 1024
    cfg = tiny(strategy="angpt", C=C, NH=8, maxT=4, mlp=mlp_kind)
    f, H = gpt_ref.angpt_factors(cfg), cfg.H
    gen = torch.Generator().manual_seed(56)
    D = dict(generator=gen, dtype=torch.float64)

    def unit(r, d, dim):
        w = torch.randn(r, d, **D)
        return w / w.norm(dim=dim, keepdim=True)

    def near_one(v, what):
        n = v.norm(dim=-1)
        assert (n - 1).abs().max() < 0.1, (what, n)

    x = unit(8, C, 1)
    E, P = unit(8, C, 1), unit(8, C, 1)
    near_one((E + P) * f["embed"], "embed")
    near_one(x @ unit(C, C, 1).T, "v")
    near_one(x @ unit(C, C, 1).T * f["attn_out"], "attention output projection")
    u = x @ unit(cfg.fc_rows, C, 1).T * f["up"]
    if mlp_kind == "swiglu":
        near_one(u[:, :H], "gate")
        near_one(u[:, H:], "up")
        h = F.silu(u[:, :H]) * u[:, H:] * f["act"]
    else:
        near_one(u, "up")
        h = F.gelu(u, approximate="tanh") * f["act"]
    near_one(h, "activation")
    down = unit(C, H, 1)
    near_one(h @ down.T * f["down"], "down projection")
    assert (h @ unit(C, H, 0).T * f["down"]).norm(dim=-1).min() > 1.3  # unit columns would need 1
    for a in (0.05, 0.25, 0.5):
        at = torch.full((C,), a, dtype=torch.float64)
        near_one(gpt_ref.angpt_combine(x, unit(8, C, 1), at), f"residual a={a}")


# ---------------------------------------------------------------------------------- block fixtures

def _fixture_cfg(fx):
    norm = fx["norm"]
    return gpt_ref.Config(
        **{k: fx[k] for k in ("V", "Vp", "maxT", "L", "NH", "C")},
        strategy=fx["strategy"], function=fx["function"], eps=norm["eps"],
        embed_norm=norm["embed_norm"], final_norm=norm["final_norm"],
        post_fraction=norm["mixln"]["post_fraction"], geo_decay=norm["geonorm"]["decay"],
        geo_clamp=norm["geonorm"]["clamp"], geo_learn_angle=norm["geonorm"]["learn_angle"],
        geo_input_norm=norm["geonorm"]["input_norm"],
        **({"dyt_alpha0": norm["dyt"]["alpha0"]} if "dyt" in norm else {}),
        **({"ngpt_alpha_init": norm["ngpt"]["alpha_init"]} if "ngpt" in norm else {}),
        **fx["model"])


@pytest.mark.skipif(not os.path.isdir(FIXTURE_DIR), reason="no committed fixtures")
@pytest.mark.parametrize("name", list(make_fixtures.BLOCK_FIXTURES))
def test_block_fixture_values_are_reproduced(name):
    """The twin, started from the fixture's own "params" with its own config sections, reproduces
    every stored number (logits, loss, gradients, the 10-step run, angpt's projection counts)."""
    fx = json.load(open(os.path.join(FIXTURE_DIR, name, "fixture.json")))
    cfg = _fixture_cfg(fx)
    shapes = gpt_ref.param_shapes(cfg)
    assert list(fx["params"]) == list(shapes) == fx["model_resolved"]["param_order"]
    assert [list(s) for s in shapes.values()] == fx["model_resolved"]["param_shapes"]
    params = {n: torch.tensor(fx["params"][n], dtype=torch.float64).reshape(s) for n, s in shapes.items()}
    optim = gpt_ref.Optim(**fx["optim"])
    tokens = torch.tensor(fx["tokens"], dtype=torch.int64)
    out = gpt_ref.train(gpt_ref.GPT(cfg, params), tokens, fx["B"], fx["T"], fx["steps"], optim)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)  # noqa: E731
    close(out["logits"].reshape(-1).numpy(), fx["logits"])
    close([out["loss"], out["grad_norm"]], [fx["loss"], fx["grad_norm"]])
    for key in ("losses", "lrs", "grad_norms"):
        close(out[key], fx[key])
    assert out["clipped"] == fx["clipped"]
    assert list(fx["grads"]) == list(shapes)
    for n, g in out["grads"].items():
        close(g.reshape(-1).numpy(), np.array(fx["grads"][n], dtype=np.float64))
    if cfg.strategy == "angpt":
        assert out["projected"] == fx["projected_rows"]
        assert fx["angpt_factors"] == gpt_ref.angpt_factors(cfg)
        close(out["projection_margin"], fx["projection_margin"])


@pytest.mark.skipif(not os.path.isdir(FIXTURE_DIR), reason="no committed fixtures")
def test_committed_block_fixtures_content():
    """params = the init (fp32-exact); model.bin exactly for the GPT-2 architecture (shared with
    pre_<function> where the 16 tensors are the plain init); gradients zero exactly for the unused
    tensors, at rounding level for the key-norm bias without RoPE (the softmax ignores a constant
    added to every key: q.(k+b) shifts a whole row of scores), clearly non-zero otherwise; some
    steps clip, some not; angpt projects vectors in every step."""
    for name, (strategy, function, overrides) in make_fixtures.BLOCK_FIXTURES.items():
        d = os.path.join(FIXTURE_DIR, name)
        fx = json.load(open(os.path.join(d, "fixture.json")))
        cfg = _fixture_cfg(fx)
        assert cfg == gpt_ref.Config(**{k: fx[k] for k in ("V", "Vp", "maxT", "L", "NH", "C")},
                                     strategy=strategy, function=function, **overrides), name
        assert set(fx["model"]) == set(make_fixtures.MODEL_KEYS)
        assert ("ngpt" in fx["norm"]) == (strategy in gpt_ref.SPHERE_STRATEGIES)
        init = gpt_ref.init_params(cfg, fx["seed"])
        for n, t in init.items():
            assert fx["params"][n] == t.to(torch.float32).double().reshape(-1).tolist(), (name, n)
        assert list(fx["extra_params"]) == list(gpt_ref.extra_param_shapes(cfg))
        has_bin = os.path.exists(os.path.join(d, "model.bin"))
        assert has_bin == cfg.plain_gpt2_arch == fx["model_bin"], name
        if has_bin:
            _, back, _ = llmc_io.read_model(os.path.join(d, "model.bin"))
            for n in gpt_ref.PARAM_ORDER:
                assert back[n].astype(np.float64).reshape(-1).tolist() == fx["params"][n], (name, n)
            if strategy not in gpt_ref.SPHERE_STRATEGIES:
                assert open(os.path.join(d, "model.bin"), "rb").read() == \
                    open(os.path.join(FIXTURE_DIR, f"pre_{function}", "model.bin"), "rb").read()
        zero = set()
        if function == "rmsnorm" and strategy != "dyt":
            zero |= gpt_ref.NORM_BIASES
        if not cfg.use_final_norm:
            zero |= {"lnfw", "lnfb", "lnfa"}
        if strategy == "hybridnorm":
            zero |= {"ln1w", "ln1b"}
        if strategy in gpt_ref.SPHERE_STRATEGIES:
            zero |= {"ln1w", "ln1b", "ln2w", "ln2b", "lnfw", "lnfb"}
        for n, g in fx["grads"].items():
            if not g:
                assert 0 in gpt_ref.param_shapes(cfg)[n], (name, n)
                continue
            m = max(map(abs, g))
            if n in zero:
                assert m == 0, (name, n)
            elif n == "lnkb" and cfg.pos == "learned":
                assert m < 1e-12, (name, n, m)
            else:
                assert m > 1e-4, (name, n, m)
        assert any(fx["clipped"]) and not all(fx["clipped"]), name
        assert all(math.isfinite(v) for v in fx["losses"])
        if strategy == "angpt":
            assert all(sum(c.values()) > 0 for c in fx["projected_rows"]), name
            assert set(fx["projected_rows"][0]) == {n for n, _ in gpt_ref.constrained_matrices(cfg)}
