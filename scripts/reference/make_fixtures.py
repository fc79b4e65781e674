#!/usr/bin/python3
"""Write the PyTorch-twin fixtures that normgpt's C++ tests compare against.

For each fixture <name> it writes into <out>/<name>/:
  model.bin       initial weights, llm.c model file, fp32 (version 3)
  model_bf16.bin  the same weights rounded to bf16 (version 5), only where the fixture asks for it
  fixture.json    config, token stream, step-0 logits / loss / gradients / grad norm, and the
                  losses, learning rates and grad norms of `steps` AdamW steps

Everything is computed in float64 from the fp32 values stored in model.bin (the init is rounded to
fp32 first), so a C++ run that loads model.bin starts from exactly the same weights.

Self-checks before anything is written: model.bin reads back to the same values, the hand-written
AdamW (the definition) matches torch.optim.AdamW over the whole run, no step's grad norm lies
within 1% of grad_clip (so an fp32 run cannot take the other branch of the clip), and (GeoNorm) no
pre-clamp angle of any step lies within GEO_CLAMP_MARGIN of the clamp and no token takes the
r < 1e-6 fallback.

One fixture per wave-1 strategy (and wave-2 dyt) x norm function (<strategy>_<function>). model.bin is always a
plain llm.c file (the 16 GPT-2 tensors, identical for all fixtures of one function); a strategy's
extra tensors are in fixture.json's "extra_params".
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
# name -> (strategy, function, also write model_bf16.bin, norm-config overrides)
FIXTURES = {
    f"{s}_{f}": (s, f, (s, f) == ("pre", "layernorm"), NORM_OVERRIDES.get((s, f), {}))
    for s in STRATEGIES for f in FUNCTIONS
}
# grad_clip is 2.0 except where some step's grad norm came within CLIP_MARGIN of it; these values
# keep every step at least 4% away from the clip while some steps still clip.
DEFAULT_GRAD_CLIP = 2.0
GRAD_CLIP = {"post_layernorm": 2.2, "deepnorm_layernorm": 2.1, "b2t_rmsnorm": 1.9,
             # DyT's bounded tanh gives grad norms ~0.5-0.9 (no clipping at all with 2.0)
             "dyt_layernorm": 0.65, "dyt_rmsnorm": 0.65}
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
                    help="which fixtures to write (default: all)")
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


def dump_json(path, doc: dict) -> None:
    """One top-level key (and one gradient / extra tensor) per line; floats as Python repr (exact)."""
    def enc(v):
        return json.dumps(v, separators=(",", ":"), allow_nan=False)
    lines = []
    for k, v in doc.items():
        if k in ("grads", "extra_params") and v:
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
    return d


def init_doc(cfg: gpt_ref.Config) -> str:
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

    d = os.path.join(args.out, name)
    os.makedirs(d, exist_ok=True)
    llmc_io.write_model(os.path.join(d, "model.bin"), header_of(cfg), params, "fp32")
    check_roundtrip(os.path.join(d, "model.bin"), cfg, params)
    if with_bf16:
        llmc_io.write_model(os.path.join(d, "model_bf16.bin"), header_of(cfg), params, "bf16")

    doc = {
        "command": command,
        "strategy": strategy, "function": function, "norm_eps": cfg.eps,
        "norm": norm_doc(cfg),
        "norm_resolved": norm_resolved_doc(cfg),
        **SHAPE,
        "seed": args.seed,
        "init": init_doc(cfg),
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
        print(line)


if __name__ == "__main__":
    main()
