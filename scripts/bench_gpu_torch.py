#!/usr/bin/python3
"""The PyTorch side of scripts/bench_gpu.sh: one strategy of GPT-2 (124M by default) trained for a
few steps in PyTorch, timed, and summed up as one JSON line.

    python3 scripts/bench_gpu_torch.py --strategy pre [--batch-size 16] [--accum 32] [--steps 30]
        [--warmup 5] [--out FILE.json]

The model is the PyTorch twin's (scripts/reference/gpt_ref.py): its block function of every
strategy, its embedding, final norm and tied head, run as they are. Only the building blocks that
have a fused PyTorch equivalent are swapped in this process (the twin's file is not touched), so
that this is PyTorch at its usual speed:
  * attention: F.scaled_dot_product_attention(is_causal=True) (flash / cuDNN kernel on an H100;
    the twin's is the explicit (B, NH, T, T) softmax);
  * LayerNorm: F.layer_norm (row statistics over the last axis; per-head q/k norms keep the twin's);
  * GELU: F.gelu(approximate="tanh"); loss: F.cross_entropy over the first V logits;
  * RoPE's angle table is made on the tensor's device (the twin builds it on the CPU).
Per-layer tensors are separate parameters (the twin stacks them as (L, ...)), so each gets its own
gradient buffer, as in any PyTorch GPT. Init is GPT-2's (N(0, 0.02), residual projections scaled
by 1/sqrt(2L), gains 1, biases 0, GeoNorm a = 1, b = 0, DyT alpha = alpha0); it does not change
the step time. Training: bf16 autocast, torch.compile, fused AdamW (betas 0.9/0.95, weight decay
0.1 on matrices and embeddings), global-norm clipping at 1.0, gradient accumulation over --accum
micro-batches of random tokens (pinned host memory, copied per micro-batch), as normgpt does.
ngpt / angpt also get their post-step weight constraint.

Timing: torch.cuda.Event around every optimizer step (all micro-batches, clip, AdamW), synchronized
at its end; the first --warmup steps (compilation, autotuning, allocator warm-up) are left out.
step_ms is the median of the rest, tokens_per_s = tokens per step / median step time (the same
rule scripts/bench_gpu_report.py applies to normgpt's metrics.jsonl). peak_mem_gb is
torch.cuda.max_memory_allocated() / 1e9 (tensors only; the allocator's reserve and the CUDA
context are not counted; peak_mem_reserved_gb has the reserve).

If the micro-batch does not fit (CUDA out of memory), B is halved and --accum doubled (same tokens
per step) until it fits or B is 1 (--no-auto-batch turns this off).

torch is imported only when the benchmark runs: `--help` works without it, and without torch (or
without CUDA, or with a torch too old for torch.compile / scaled_dot_product_attention when they
are asked for) the JSON line says why in "error" and tokens_per_s is null. --device cpu
--no-compile --dtype fp32 is a smoke test of the wiring on a CPU (the timing means nothing then).
Exit code: 0 with a measurement, 1 when "error" is set, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_DIR = os.path.join(HERE, "reference")

# Tensors of the twin that are not per layer (the others have a leading L axis).
GLOBAL_TENSORS = {"wte", "wpe", "lnfw", "lnfb", "lnew", "lneb", "lmheadw", "sz", "lnfa", "lnea"}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--strategy", required=True, help="norm.strategy (pre, post, peri, ...)")
    ap.add_argument("--function", default="layernorm", choices=["layernorm", "rmsnorm"])
    ap.add_argument("--n-layer", type=int, default=12)
    ap.add_argument("--n-head", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--padded-vocab", type=int, default=50304, help="0: V rounded up to 64")
    ap.add_argument("--batch-size", type=int, default=16, help="micro-batch B")
    ap.add_argument("--accum", type=int, default=32, help="micro-batches per optimizer step")
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps, warm-up included")
    ap.add_argument("--warmup", type=int, default=5, help="first steps left out of the timing")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"],
                    help="bf16: autocast to bfloat16 (fp32 master weights); fp32: no autocast")
    ap.add_argument("--no-compile", action="store_true", help="eager mode (no torch.compile)")
    ap.add_argument("--no-auto-batch", action="store_true", help="do not halve B on out-of-memory")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--out", help="also write the JSON object to this file")
    args = ap.parse_args(argv)
    for name in ("n_layer", "n_head", "d_model", "seq_len", "vocab_size", "batch_size", "accum",
                 "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.d_model % args.n_head:
        ap.error("--d-model must be divisible by --n-head")
    if not 0 <= args.warmup < args.steps:
        ap.error("--warmup must be >= 0 and below --steps")
    if args.padded_vocab == 0:
        args.padded_vocab = (args.vocab_size + 63) // 64 * 64
    if args.padded_vocab < args.vocab_size:
        ap.error("--padded-vocab must be 0 or >= --vocab-size")
    return args


# ------------------------------------------------------------------------------------------------
# The model: the twin's forward with fused building blocks swapped in.

def load_twin():
    """A private instance of scripts/reference/gpt_ref.py (module name _bench_gpt_ref), so that
    install_fast_ops never changes the `gpt_ref` that tests import in the same process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_bench_gpt_ref",
                                                  os.path.join(REFERENCE_DIR, "gpt_ref.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def install_fast_ops(ref, torch, F, use_sdpa: bool) -> dict:
    """Replace the twin's attention / MLP / layernorm / rope by fused PyTorch ops, in this process
    only (attributes of the private twin module and its NORM_FUNCTIONS entry). The linear maps
    become F.linear with the bias inside, so that under autocast their outputs (q, k, v, the MLP
    hidden) stay bf16, as in any PyTorch GPT; `x @ W.T + b` would promote them to fp32. Returns
    what was swapped."""
    swapped = {}

    def linear(x, w, b):
        return F.linear(x, w, b if b.numel() else None)  # a 0-element bias is no bias

    def attend(q, k, v, scale):
        if use_sdpa:
            if scale is None:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        # a torch without scaled_dot_product_attention (CPU smoke runs only)
        T = q.shape[-2]
        s = (q @ k.transpose(-2, -1)) * (scale if scale is not None else q.shape[-1] ** -0.5)
        causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        return torch.softmax(s.masked_fill(~causal, float("-inf")), dim=-1) @ v

    def attention(x, qkvw, qkvb, projw, projb, NH, q_fn=None, k_fn=None, v_fn=None,
                  rope_theta=None, softmax_scale=None):
        B, T, C = x.shape
        hs = C // NH
        q, k, v = linear(x, qkvw, qkvb).split(C, dim=-1)
        if q_fn is not None:
            q, k = q_fn(q), k_fn(k)
        if v_fn is not None:
            v = v_fn(v)
        q = q.reshape(B, T, NH, hs).transpose(1, 2)
        k = k.reshape(B, T, NH, hs).transpose(1, 2)
        v = v.reshape(B, T, NH, hs).transpose(1, 2)
        if rope_theta is not None:
            q, k = ref.rope(q, rope_theta), ref.rope(k, rope_theta)
        a = attend(q, k, v, softmax_scale).transpose(1, 2).reshape(B, T, C)
        return linear(a, projw, projb)
    ref.attention = attention
    swapped["attention"] = ("F.scaled_dot_product_attention(is_causal=True)" if use_sdpa else
                            "explicit causal softmax (no scaled_dot_product_attention here)")

    def mlp(x, fcw, fcb, projw, projb, kind="gelu", in_scale=None, act_scale=None,
            out_scale=None):
        u = linear(x, fcw, fcb)
        if in_scale is not None:
            u = u * in_scale
        if kind == "swiglu":
            H = u.shape[-1] // 2
            h = F.silu(u[..., :H]) * u[..., H:]
        else:
            h = F.gelu(u, approximate="tanh")
        if act_scale is not None:
            h = h * act_scale
        out = linear(h, projw, projb)
        return out if out_scale is None else out * out_scale
    ref.mlp = mlp
    swapped["linear"] = "F.linear (bias fused)"
    swapped["gelu"] = "F.gelu(approximate='tanh')"

    twin_layernorm = ref.layernorm

    def layernorm(x, g, b, eps):
        if g.dim() == 1 and g.shape[0] == x.shape[-1]:
            return F.layer_norm(x, (x.shape[-1],), g, b, eps)
        return twin_layernorm(x, g, b, eps)  # per-head gains (q/k norms): the twin's formula
    ref.NORM_FUNCTIONS["layernorm"] = layernorm
    swapped["layernorm"] = "F.layer_norm"

    def rope(x, theta):
        T, hs = x.shape[-2], x.shape[-1]
        phi = ref.rope_angles(T, hs, theta).to(device=x.device, dtype=x.dtype)
        cos, sin = torch.cos(phi), torch.sin(phi)
        a, b = x[..., :hs // 2], x[..., hs // 2:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    ref.rope = rope
    return swapped


def build_model(ref, torch, cfg, device):
    """An nn.Module over the twin's gpt_forward with per-layer parameters, GPT-2 init."""
    shapes = ref.param_shapes(cfg)
    L = cfg.L
    if cfg.strategy == "angpt":  # a constant: compute it once, outside the compiled graph
        factors = ref.angpt_factors(cfg)
        ref.angpt_factors = lambda _cfg: factors

    def init_value(name, shape, gen):
        if name in ref.DYT_ALPHAS:
            return torch.full(shape, cfg.dyt_alpha0)
        if name in ref.GEO_A:
            return torch.ones(shape)
        if name in ref.GEO_B:
            return torch.zeros(shape)
        if name in ref.SPHERE_VECTORS and cfg.strategy in ref.SPHERE_STRATEGIES:
            base = 1.0 / math.sqrt(cfg.C) if ref.SPHERE_VECTORS[name] == "inv_sqrt_C" else 1.0
            return torch.full(shape, base)
        if name in ref.NORM_GAINS:
            return torch.ones(shape)
        if name in ref.NORM_BIASES or name.endswith("b"):
            return torch.zeros(shape)
        std = 0.02 / math.sqrt(2 * L) if name in ("attprojw", "fcprojw") else 0.02
        return torch.randn(shape, generator=gen) * std

    class BenchGPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(1337)
            self.w = torch.nn.ParameterDict()
            self.per_layer = {}
            for name, shape in shapes.items():
                t = init_value(name, shape, gen)
                if name in GLOBAL_TENSORS:
                    self.w[name] = torch.nn.Parameter(t)
                else:
                    assert shape[0] == L, (name, shape)
                    self.per_layer[name] = [f"{name}_{l}" for l in range(L)]
                    for l in range(L):
                        self.w[f"{name}_{l}"] = torch.nn.Parameter(t[l].clone())
            for name, axis in ref.constrained_matrices(cfg):  # ngpt / angpt: unit vectors
                for t in self.tensors(name):
                    with torch.no_grad():
                        t.div_(torch.linalg.vector_norm(t, dim=axis, keepdim=True).clamp(min=1e-12))

        def tensors(self, name):
            return [self.w[k] for k in self.per_layer[name]] if name in self.per_layer else [self.w[name]]

        def forward(self, idx, targets):
            p = {name: ([self.w[k] for k in self.per_layer[name]] if name in self.per_layer
                        else self.w[name]) for name in shapes}
            logits = ref.gpt_forward(p, cfg, idx)[..., :cfg.V]
            if logits.dtype != torch.float64:  # the loss in fp32 at least (bf16 logits)
                logits = logits.float()
            return torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.V), targets.reshape(-1))

        @torch.no_grad()
        def load_stacked(self, params):
            """Copy the twin's (L, ...)-stacked tensors (name -> tensor) into this model."""
            for name, t in params.items():
                for l, w in enumerate(self.tensors(name)):
                    w.copy_(t[l] if name in self.per_layer else t)

    model = BenchGPT().to(device)
    return model


def post_step_constraint(ref, torch, cfg, model):
    """ngpt: every constrained vector to unit norm; angpt: into the unit ball (gpt_ref's rule)."""
    pairs = ref.constrained_matrices(cfg)
    if not pairs:
        return None

    @torch.no_grad()
    def hook():
        for name, axis in pairs:
            for w in model.tensors(name):
                n = torch.linalg.vector_norm(w.float(), dim=axis, keepdim=True)
                if cfg.strategy == "ngpt":
                    w.div_(torch.where(n > 0, n, torch.ones_like(n)).to(w.dtype))
                else:
                    w.div_(torch.clamp(n, min=1.0).to(w.dtype))
    return hook


# ------------------------------------------------------------------------------------------------
# The timed loop.

def run_once(args, B, accum, torch, ref, result):
    F = torch.nn.functional
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    cfg = ref.Config(V=args.vocab_size, Vp=args.padded_vocab, maxT=args.seq_len, L=args.n_layer,
                     NH=args.n_head, C=args.d_model, strategy=args.strategy, function=args.function)
    torch.manual_seed(args.seed)
    model = build_model(ref, torch, cfg, device)
    named = list(model.w.items())
    base = lambda k: k.rsplit("_", 1)[0] if k not in GLOBAL_TENSORS else k  # noqa: E731
    groups = [{"params": [p for k, p in named if base(k) in ref.DECAYED], "weight_decay": 0.1},
              {"params": [p for k, p in named if base(k) not in ref.DECAYED], "weight_decay": 0.0}]
    opt_kw = dict(lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    fused = False
    if cuda:
        try:
            opt = torch.optim.AdamW(groups, fused=True, **opt_kw)
            fused = True
        except (TypeError, RuntimeError):
            opt = torch.optim.AdamW(groups, **opt_kw)
    else:
        opt = torch.optim.AdamW(groups, **opt_kw)
    result["adamw"] = "fused" if fused else "default"
    params = [p for _, p in named]
    hook = post_step_constraint(ref, torch, cfg, model)
    step_fn = model if args.no_compile else torch.compile(model)

    T = args.seq_len
    span = B * T + 1
    n_tokens = span * 8
    gen = torch.Generator().manual_seed(args.seed)
    host = torch.randint(0, args.vocab_size, (n_tokens,), generator=gen, dtype=torch.int64)
    if cuda:
        host = host.pin_memory()
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if args.dtype == "bf16" else None)

    def micro_batch(i):
        off = (i % 8) * span
        buf = host[off:off + span].to(device, non_blocking=True)
        return buf[:-1].view(B, T), buf[1:].view(B, T)

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times_ms, losses = [], []
    micro = 0
    for step in range(args.steps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        loss_sum = None
        for _ in range(accum):
            x, y = micro_batch(micro)
            micro += 1
            if autocast is not None:
                with autocast:
                    loss = step_fn(x, y)
            else:
                loss = step_fn(x, y)
            (loss / accum).backward()
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        try:
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        except TypeError:  # a torch without foreach= here
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if hook is not None:
            hook()
        if cuda:
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
        else:
            ms = (time.perf_counter() - t0) * 1e3
        times_ms.append(ms)
        losses.append(float(loss_sum) / accum)
    measured = times_ms[args.warmup:]
    step_ms = statistics.median(measured)
    tokens_per_step = B * T * accum
    result.update({
        "tokens_per_s": tokens_per_step / (step_ms / 1e3),
        "step_ms": step_ms,
        "step_ms_mean": statistics.fmean(measured),
        "steps_measured": len(measured),
        "warmup_steps_ms": times_ms[:args.warmup],
        "batch_size": B, "grad_accum": accum, "tokens_per_step": tokens_per_step,
        "params": sum(p.numel() for p in params),
        "first_loss": losses[0], "last_loss": losses[-1],
    })
    if cuda:
        result["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        result["peak_mem_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 1e9
    else:
        result["peak_mem_gb"] = None


def run(args) -> dict:
    result = {"strategy": args.strategy, "tokens_per_s": None, "step_ms": None, "peak_mem_gb": None,
              "error": None, "device": args.device, "dtype": args.dtype,
              "compile": not args.no_compile, "batch_size": args.batch_size,
              "grad_accum": args.accum, "oom_retries": 0}
    try:
        import torch
    except ImportError as e:
        result["error"] = f"torch is not importable by {sys.executable}: {e}"
        return result
    result["torch_version"] = torch.__version__
    F = torch.nn.functional
    if args.device == "cuda":
        if not torch.cuda.is_available():
            result["error"] = (f"torch {torch.__version__} sees no CUDA device "
                               f"(built with CUDA: {torch.version.cuda})")
            return result
        result["device_name"] = torch.cuda.get_device_name(0)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if not args.no_compile and not hasattr(torch, "compile"):
        result["error"] = f"torch {torch.__version__} has no torch.compile (needs >= 2.0)"
        return result
    use_sdpa = hasattr(F, "scaled_dot_product_attention")
    if args.device == "cuda" and not use_sdpa:
        result["error"] = (f"torch {torch.__version__} has no F.scaled_dot_product_attention "
                           f"(flash attention; needs >= 2.0)")
        return result
    ref = load_twin()
    try:
        ref.check_strategy(args.strategy)
    except (ValueError, NotImplementedError) as e:
        result["error"] = f"the PyTorch twin cannot run this strategy: {e}"
        return result
    result["ops"] = install_fast_ops(ref, torch, F, use_sdpa)
    if args.device == "cuda" and use_sdpa:
        flags = {k: getattr(torch.backends.cuda, k)() for k in
                 ("flash_sdp_enabled", "cudnn_sdp_enabled", "mem_efficient_sdp_enabled")
                 if hasattr(torch.backends.cuda, k)}
        result["sdpa_backends_enabled"] = flags

    B, accum = args.batch_size, args.accum
    oom = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    while True:
        try:
            run_once(args, B, accum, torch, ref, result)
            return result
        except oom as e:
            if "out of memory" not in str(e).lower() or args.no_auto_batch or B == 1:
                result["error"] = f"out of memory at B {B}: {str(e).splitlines()[0]}"
                return result
            result["oom_retries"] += 1
            B, accum = B // 2, accum * 2
            if hasattr(torch, "_dynamo"):
                torch._dynamo.reset()
            torch.cuda.empty_cache()
        except Exception as e:  # a failure is a row with a reason, not a crash of the benchmark
            result["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            result["traceback"] = traceback.format_exc().splitlines()[-6:]
            return result


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
