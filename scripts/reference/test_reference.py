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

@pytest.mark.parametrize("function", FUNCTIONS)
def test_gradcheck_logits_and_loss(function):
    cfg = tiny(function)
    params = gpt_ref.init_params(cfg, seed=3)
    names = list(params)
    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)
    idx, tgt = tiny_batch(cfg)

    def logits_fn(*ts):
        return gpt_ref.gpt_forward(dict(zip(names, ts)), cfg, idx)

    def loss_fn(*ts):
        return gpt_ref.cross_entropy(logits_fn(*ts), tgt, cfg.V)

    assert torch.autograd.gradcheck(logits_fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    assert torch.autograd.gradcheck(loss_fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


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
    with pytest.raises(NotImplementedError, match="post"):
        tiny(strategy="post")
    with pytest.raises(ValueError, match="unknown strategy"):
        tiny(strategy="nonsense")
    with pytest.raises(ValueError, match="unknown norm function"):
        tiny(function="batchnorm")


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
def test_hand_adamw_equals_torch_adamw(function, grad_clip):
    cfg = tiny(function)
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
