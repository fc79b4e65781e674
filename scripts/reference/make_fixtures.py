#!/usr/bin/python3
"""Write the PyTorch-twin fixtures that normgpt's C++ tests compare against.

For each fixture <name> it writes into <out>/<name>/:
  model.bin       initial weights, llm.c model file, fp32 (version 3); only where the block
                  architecture is llm.c's GPT-2 (every wave-1 fixture; of the block fixtures those
                  with learned positions, gelu with H = 4C, biases, no qk norm, tied head)
  model_bf16.bin  the same weights rounded to bf16 (version 5), only where the fixture asks for it
  fixture.json    config, token stream, step-0 logits / loss / gradients / grad norm, and the
                  losses, learning rates and grad norms of `steps` AdamW steps

Everything is computed in float64 from fp32 values (the init is rounded to fp32 first), so a C++
run that starts from the stored weights starts from exactly the twin's.

Self-checks before anything is written: model.bin reads back to the same values, the hand-written
AdamW (the definition, with ngpt / angpt's post-step weight hook) matches torch.optim.AdamW (with
the same hook) over the whole run, no step's grad norm lies within 1% of grad_clip (so an fp32 run
cannot take the other branch of the clip), (GeoNorm) no pre-clamp angle of any step lies within
GEO_CLAMP_MARGIN of the clamp and no token takes the r < 1e-6 fallback, (angpt) some vectors are
projected into the unit ball.

Two families:
  * wave 1 and dyt, one fixture per strategy x norm function (<strategy>_<function>): model.bin is
    a plain llm.c file (the 16 GPT-2 tensors, identical for all fixtures of one function); a
    strategy's extra tensors are in fixture.json's "extra_params". These files are frozen: the
    block options left them byte-identical.
  * block fixtures (BLOCK_FIXTURES: docs/blocks.md's options and the wave-2 strategies residual,
    hybridnorm, hybridnorm_star, ngpt, angpt): fixture.json also has "model" (normgpt's model.*
    keys), "model_resolved", and "params", the initial value of EVERY tensor in table order
    (0-element tensors as []); angpt fixtures add "angpt_factors", "projected_rows" and
    "projection_margin".
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_ref  # noqa: E402
import llmc_io  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "reference")

STRATEGIES = ["pre", "post", "peri", "reordered", "mixln", "lns", "deepnorm", "b2t", "geonorm", "dyt"]
FUNCTIONS = ["layernorm", "rmsnorm"]
# Norm-config values a fixture sets beyond the defaults (gpt_ref.Config field names). mixln: with
# L=3 and p=0.5, floor(1.5) = 1, so block 0 is post and blocks 1, 2 are pre. geonorm: clamp 1.0
# (not pi/4) keeps most angles of this large init below the clamp while some tokens still clamp;
# the rmsnorm fixture also exercises the sqrt decay.
NORM_OVERRIDES = {
    ("mixln", "layernorm"): dict(post_fraction=0.5),
    ("mixln", "rmsnorm"): dict(post_fraction=0.5),
    ("geonorm", "layernorm"): dict(geo_decay="harmonic", geo_clamp=1.05),
    ("geonorm", "rmsnorm"): dict(geo_decay="sqrt", geo_clamp=1.05),
}
# name -> (strategy, function, also write model_bf16.bin, config overrides (gpt_ref.Config fields))
FIXTURES = {
    f"{s}_{f}": (s, f, (s, f) == ("pre", "layernorm"), NORM_OVERRIDES.get((s, f), {}))
    for s in STRATEGIES for f in FUNCTIONS
}
WAVE1_FIXTURES = list(FIXTURES)
# Block fixtures (docs/blocks.md). The llama-like block: RoPE, SwiGLU, no biases, per-head qk norm,
# untied head.
LLAMA = dict(pos="rope", mlp="swiglu", bias=False, qk_norm="head", tie_embeddings=False)
SPHERE_ARCH = {"layernorm": {},  # learned positions, gelu, biases, tied head (GPT-2's block)
               "rmsnorm": dict(pos="rope", mlp="swiglu", bias=False, tie_embeddings=False)}
# ngpt / angpt: a larger residual step than the default 0.05, so that the blocks (not only the
# embedding and the head) shape the logits and their gradients.
SPHERE_NORM = dict(ngpt_alpha_init=0.25)
BLOCK_FIXTURES = {
    "arch_llama_rmsnorm": ("pre", "rmsnorm", LLAMA),
    "arch_qkfull_layernorm": ("pre", "layernorm", dict(qk_norm="full", mlp_hidden=40)),
    "arch_dyt_rope": ("dyt", "layernorm", dict(pos="rope", qk_norm="head", dyt_alpha0=1.5)),
    **{f"{s}_{f}": (s, f, {}) for s in ("residual", "hybridnorm", "hybridnorm_star")
       for f in FUNCTIONS},
    # The norm function does nothing under ngpt / angpt: the two fixtures of each cover the two
    # architectures of SPHERE_ARCH.
    **{f"{s}_{f}": (s, f, {**SPHERE_ARCH[f], **SPHERE_NORM}) for s in ("ngpt", "angpt")
       for f in FUNCTIONS},
}
for _name, (_s, _f, _o) in BLOCK_FIXTURES.items():
    FIXTURES[_name] = (_s, _f, False, _o)
MODEL_KEYS = ("pos", "rope_theta", "mlp", "mlp_hidden", "bias", "qk_norm", "tie_embeddings")
# grad_clip is 2.0 except where some step's grad norm came within CLIP_MARGIN of it; these values
# keep every step at least 4% away from the clip while some steps still clip.
DEFAULT_GRAD_CLIP = 2.0
GRAD_CLIP = {"post_layernorm": 2.2, "deepnorm_layernorm": 2.1, "b2t_rmsnorm": 1.9,
             # DyT's bounded tanh gives grad norms ~0.5-0.9 (no clipping at all with 2.0)
             "dyt_layernorm": 0.65, "dyt_rmsnorm": 0.65,
             # block fixtures: with 2.0 every step clips (llama, residual) or none does (the
             # hypersphere strategies' grad norms are ~0.35-0.8); the closest step is >= 2.3% away
             "arch_llama_rmsnorm": 4.5, "residual_layernorm": 4.0, "residual_rmsnorm": 4.0,
             "ngpt_layernorm": 0.7, "ngpt_rmsnorm": 0.65, "angpt_layernorm": 0.6,
             "angpt_rmsnorm": 0.35}
SHAPE = dict(B=2, T=8, V=61, Vp=64, L=3, NH=2, C=16, maxT=16)
STEPS = 10
CLIP_MARGIN = 0.01
# Smallest allowed distance of any GeoNorm pre-clamp angle (t0 or t, every step) to the clamp c,
# so that an fp32 run takes the same branch and finite differences stay on one side.
GEO_CLAMP_MARGIN = 2e-4


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default %(default)s)")
    ap.add_argument("--fixtures", nargs="+", default=list(FIXTURES), choices=list(FIXTURES),
                    metavar="NAME", help="which fixtures to write (default: all); one of: "
                    + ", ".join(FIXTURES))
    ap.add_argument("--seed", type=int, default=1234, help="init seed; tokens use seed+1")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "linear", "constant"])
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=None,
                    help="default: 2.0, or the fixture's entry in GRAD_CLIP; chosen so that some "
                         "steps clip and some do not")
    return ap.parse_args(argv)


def make_tokens(seed: int, n: int, V: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (n,), generator=gen, dtype=torch.int64)


def flat(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().double().reshape(-1).tolist()]


def check_roundtrip(path, cfg, params):
    header, back, dtype = llmc_io.read_model(path)
    assert dtype == "fp32" and header == header_of(cfg), (header, dtype)
    for name in llmc_io.LLMC_ORDER:
        assert np.array_equal(back[name].astype(np.float64), params[name].numpy()), name


def header_of(cfg: gpt_ref.Config) -> dict:
    return dict(maxT=cfg.maxT, V=cfg.V, L=cfg.L, NH=cfg.NH, C=cfg.C, Vp=cfg.Vp)


def check_against_torch_adamw(cfg, params, tokens, optim, hand):
    ref = gpt_ref.train(gpt_ref.GPT(cfg, params), tokens, SHAPE["B"], SHAPE["T"], STEPS, optim,
                        optimizer="torch", record_step0=False)
    for key in ("losses", "grad_norms"):
        np.testing.assert_allclose(hand[key], ref[key], rtol=1e-10, atol=0,
                                   err_msg=f"hand AdamW vs torch.optim.AdamW: {key}")
    assert hand["clipped"] == ref["clipped"]
    assert hand["projected"] == ref["projected"]  # angpt's unit-ball projection, step by step


def dump_json(path, doc: dict) -> None:
    """One top-level key (and one gradient / extra tensor) per line; floats as Python repr (exact)."""
    def enc(v):
        return json.dumps(v, separators=(",", ":"), allow_nan=False)
    lines = []
    for k, v in doc.items():
        if k in ("grads", "extra_params", "params") and v:
            inner = ",\n".join(f"    {enc(n)}: {enc(g)}" for n, g in v.items())
            lines.append(f'  {enc(k)}: {{\n{inner}\n  }}')
        else:
            lines.append(f"  {enc(k)}: {enc(v)}")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def norm_doc(cfg: gpt_ref.Config) -> dict:
    """The norm section in normgpt's config keys, with the values used (null: strategy default).
    The dyt block is given only for dyt (so the wave-1 fixtures stay as they were)."""
    return {
        "strategy": cfg.strategy, "function": cfg.function, "eps": cfg.eps,
        "embed_norm": cfg.embed_norm, "final_norm": cfg.final_norm,
        **({"dyt": {"alpha0": cfg.dyt_alpha0}} if cfg.strategy == "dyt" else {}),
        **({"ngpt": {"alpha_init": cfg.ngpt_alpha_init}}
           if cfg.strategy in gpt_ref.SPHERE_STRATEGIES else {}),
        "mixln": {"post_fraction": cfg.post_fraction},
        "geonorm": {"decay": cfg.geo_decay, "clamp": cfg.geo_clamp,
                    "learn_angle": cfg.geo_learn_angle, "input_norm": cfg.geo_input_norm},
    }


def norm_resolved_doc(cfg: gpt_ref.Config) -> dict:
    """What the norm section resolves to for this model (for reading and debugging)."""
    d = {"embed_norm": cfg.use_embed_norm, "final_norm": cfg.use_final_norm}
    if cfg.strategy == "mixln":
        d["mixln_post_blocks"] = list(range(cfg.mixln_post_blocks))
    if cfg.strategy == "deepnorm":
        d["deepnorm_alpha"] = cfg.deepnorm_alpha
    if cfg.strategy == "lns":
        d["lns_scales"] = [1.0 / math.sqrt(l + 1) for l in range(cfg.L)]
    if cfg.strategy == "geonorm":
        d["geonorm_decay_factors"] = [cfg.geo_decay_at(l) for l in range(cfg.L)]
    if cfg.qkv_norm_sites:
        d["qkv_norm_sites"] = list(cfg.qkv_norm_sites)
        d["qkv_norm_axis"] = cfg.qk_axis
        if cfg.strategy == "hybridnorm_star":
            d["hybridnorm_star_pre_blocks"] = [0]
    if cfg.strategy in gpt_ref.SPHERE_STRATEGIES:
        d["alpha_scale"] = cfg.ngpt_alpha_init * math.sqrt(cfg.C)
        d["constrained"] = [[n, "rows" if axis == -1 else "columns"]
                            for n, axis in gpt_ref.constrained_matrices(cfg)]
    return d


def model_doc(cfg: gpt_ref.Config) -> dict:
    """The block options in normgpt's model.* keys, with the values used."""
    return {k: getattr(cfg, k) for k in MODEL_KEYS}


def model_resolved_doc(cfg: gpt_ref.Config) -> dict:
    return {"mlp_hidden": cfg.H, "fc_rows": cfg.fc_rows, "hs": cfg.hs,
            "plain_gpt2": cfg.plain_gpt2_arch,
            "param_order": list(gpt_ref.param_shapes(cfg)),
            "param_shapes": [list(s) for s in gpt_ref.param_shapes(cfg).values()]}


def init_doc(cfg: gpt_ref.Config, block_fixture: bool = False) -> str:
    if block_fixture:
        return block_init_doc(cfg)
    s = ("matrices/embeddings N(0,0.2^2) incl. padded wte rows; norm gains 1+N(0,0.1^2); "
         "biases N(0,0.1^2)" + ("; norm biases 0 (rmsnorm)" if cfg.function == "rmsnorm" else ""))
    extras = list(gpt_ref.extra_param_shapes(cfg))
    if extras:
        s += ("; extra tensors " + ", ".join(extras) + " drawn after the 16 GPT-2 tensors from the "
              "same generator (gains/biases as above")
        if cfg.strategy == "geonorm":
            s += "; geoa 1+N(0,0.1^2), geob N(0,0.05^2))"
        elif cfg.strategy == "dyt":
            s += f"; DyT alphas alpha0+N(0,0.1^2), alpha0 = {cfg.dyt_alpha0!r})"
        else:
            s += ")"
    return s


def block_init_doc(cfg: gpt_ref.Config) -> str:
    s = ("all tensors in param_shapes order from one generator: matrices/embeddings N(0,0.2^2) incl. "
         "padded wte rows; norm gains 1+N(0,0.1^2); biases N(0,0.1^2)"
         + ("; norm biases 0 (rmsnorm)" if cfg.function == "rmsnorm" else ""))
    if cfg.strategy == "dyt":
        s += f"; DyT alphas alpha0+N(0,0.1^2), alpha0 = {cfg.dyt_alpha0!r}"
    if cfg.strategy in gpt_ref.SPHERE_STRATEGIES:
        s += ("; vectors sqk, attna, mlpa, sz (1/sqrt(C))*(1+N(0,0.1^2))"
              + (", suv 1+N(0,0.1^2)" if cfg.strategy == "ngpt" else "")
              + "; then the constrained matrices (norm_resolved.constrained) normalized to unit "
                "norm per row/column")
        if cfg.strategy == "angpt":
            s += " and scaled by 1-0.2*U(0,1) each (norms in (0.8, 1])"
    return s + "; everything rounded to fp32 (params holds the exact values)"


def check_geo_margins(name, hand):
    """Refuse a GeoNorm fixture where some pre-clamp angle lies within GEO_CLAMP_MARGIN of c."""
    for s, st in enumerate(hand["geo"]):
        if st["min_margin"] < GEO_CLAMP_MARGIN:
            raise SystemExit(f"{name}: step {s}: a GeoNorm angle lies {st['min_margin']:.3g} from the "
                             f"clamp (< {GEO_CLAMP_MARGIN}); choose another clamp")
        for kind in ("attn", "mlp"):
            if any(st[kind]["fallback"]):
                raise SystemExit(f"{name}: step {s}: a token took GeoNorm's r < 1e-6 fallback")


def make_fixture(name, args, command) -> dict:
    strategy, function, with_bf16, overrides = FIXTURES[name]
    block_fixture = name in BLOCK_FIXTURES
    B, T = SHAPE["B"], SHAPE["T"]
    cfg = gpt_ref.Config(V=SHAPE["V"], Vp=SHAPE["Vp"], maxT=SHAPE["maxT"], L=SHAPE["L"],
                         NH=SHAPE["NH"], C=SHAPE["C"], strategy=strategy, function=function,
                         **overrides)
    optim = gpt_ref.Optim(lr=args.lr, schedule=args.schedule, warmup_steps=args.warmup_steps,
                          min_lr_ratio=args.min_lr_ratio, weight_decay=args.weight_decay,
                          beta1=0.9, beta2=0.95, eps=1e-8,
                          grad_clip=(args.grad_clip if args.grad_clip is not None
                                     else GRAD_CLIP.get(name, DEFAULT_GRAD_CLIP)))
    # The stored weights are fp32; the twin starts from exactly those values, in float64.
    init = gpt_ref.init_params(cfg, args.seed)
    params = {k: v.to(torch.float32).to(torch.float64) for k, v in init.items()}
    tokens = make_tokens(args.seed + 1, B * T * STEPS + 1, cfg.V)

    hand = gpt_ref.train(gpt_ref.GPT(cfg, params), tokens, B, T, STEPS, optim, optimizer="hand")
    check_against_torch_adamw(cfg, params, tokens, optim, hand)
    if optim.grad_clip > 0:
        for s, gn in enumerate(hand["grad_norms"]):
            if abs(gn - optim.grad_clip) < CLIP_MARGIN * optim.grad_clip:
                raise SystemExit(f"{name}: step {s} grad norm {gn} is within {CLIP_MARGIN:.0%} of "
                                 f"grad_clip {optim.grad_clip}; choose another --grad-clip")
    check_geo_margins(name, hand)
    if strategy == "angpt" and not any(sum(p.values()) for p in hand["projected"]):
        raise SystemExit(f"{name}: no vector was projected into the unit ball in any step")

    d = os.path.join(args.out, name)
    os.makedirs(d, exist_ok=True)
    write_bin = cfg.plain_gpt2_arch
    if write_bin:
        llmc_io.write_model(os.path.join(d, "model.bin"), header_of(cfg), params, "fp32")
        check_roundtrip(os.path.join(d, "model.bin"), cfg, params)
    elif os.path.exists(os.path.join(d, "model.bin")):
        os.remove(os.path.join(d, "model.bin"))
    if with_bf16:
        llmc_io.write_model(os.path.join(d, "model_bf16.bin"), header_of(cfg), params, "bf16")

    doc = {
        "command": command,
        "strategy": strategy, "function": function, "norm_eps": cfg.eps,
        **({"model": model_doc(cfg), "model_resolved": model_resolved_doc(cfg)}
           if block_fixture else {}),
        "norm": norm_doc(cfg),
        "norm_resolved": norm_resolved_doc(cfg),
        **SHAPE,
        "seed": args.seed,
        "init": init_doc(cfg, block_fixture),
        **({"model_bin": write_bin,
            "params": {n: flat(params[n]) for n in gpt_ref.param_shapes(cfg)}}
           if block_fixture else {}),
        "extra_params": {n: flat(params[n]) for n in gpt_ref.extra_param_shapes(cfg)},
        "optim": {"lr": optim.lr, "schedule": optim.schedule, "warmup_steps": optim.warmup_steps,
                  "min_lr_ratio": optim.min_lr_ratio, "weight_decay": optim.weight_decay,
                  "beta1": optim.beta1, "beta2": optim.beta2, "eps": optim.eps,
                  "grad_clip": optim.grad_clip},
        "steps": STEPS,
        "tokens": [int(t) for t in tokens.tolist()],
        "logits": flat(hand["logits"]),
        "loss": hand["loss"],
        "grad_norm": hand["grad_norm"],
        "losses": hand["losses"],
        "lrs": hand["lrs"],
        "grad_norms": hand["grad_norms"],
        "clipped": hand["clipped"],
        **({"geonorm_clamp": hand["geo"]} if hand["geo"] else {}),
        **({"angpt_factors": gpt_ref.angpt_factors(cfg), "projected_rows": hand["projected"],
            "projection_margin": hand["projection_margin"]} if strategy == "angpt" else {}),
        "grads": {n: flat(g) for n, g in hand["grads"].items()},
    }
    assert all(math.isfinite(v) for v in doc["losses"] + doc["grad_norms"])
    dump_json(os.path.join(d, "fixture.json"), doc)
    return doc


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = shlex.join([sys.executable, sys.argv[0], *argv])
    for name in args.fixtures:
        doc = make_fixture(name, args, command)
        clipped = [s for s, c in enumerate(doc["clipped"]) if c]
        line = (f"{name}: loss0 {doc['loss']:.6f}  final {doc['losses'][-1]:.6f}  "
                f"grad_norm0 {doc['grad_norm']:.4f}  clipped steps {clipped}")
        if "geonorm_clamp" in doc:
            g0 = doc["geonorm_clamp"][0]
            line += (f"  geonorm step-0 clamped fraction attn {g0['attn']['clamped']} mlp "
                     f"{g0['mlp']['clamped']}; min margin over all steps "
                     f"{min(g['min_margin'] for g in doc['geonorm_clamp']):.3g}")
        if "projected_rows" in doc:
            line += (f"  projected per step {[sum(p.values()) for p in doc['projected_rows']]}, "
                     f"min margin {min(doc['projection_margin']):.3g}")
        print(line)


if __name__ == "__main__":
    main()
