#!/usr/bin/python3
"""Reader and writer for llm.c's GPT-2 model file.

Layout: a header of 256 little-endian int32: [0] magic 20240326, [1] version (3 = fp32 params,
5 = bf16 params), [2] maxT, [3] V, [4] L, [5] NH, [6] C, [7] Vp, the rest 0; then the 16 GPT-2
tensors in the order of LLMC_ORDER, each flattened row-major, little-endian.

bf16 here is the upper 16 bits of the fp32 value rounded to nearest, ties to even (NaN stays a
quiet NaN). Values of any float dtype are first rounded to fp32.
"""
from __future__ import annotations

import os

import numpy as np

MAGIC = 20240326
VERSION_FP32 = 3
VERSION_BF16 = 5
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
HEADER_KEYS = ["maxT", "V", "L", "NH", "C", "Vp"]  # slots 2..7

LLMC_ORDER = [
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
]


def gpt2_shapes(h: dict) -> dict[str, tuple[int, ...]]:
    """Shapes of the 16 tensors for header values h (maxT, V, L, NH, C, Vp)."""
    C, L = h["C"], h["L"]
    return {
        "wte": (h["Vp"], C), "wpe": (h["maxT"], C),
        "ln1w": (L, C), "ln1b": (L, C),
        "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C),
        "attprojw": (L, C, C), "attprojb": (L, C),
        "ln2w": (L, C), "ln2b": (L, C),
        "fcw": (L, 4 * C, C), "fcb": (L, 4 * C),
        "fcprojw": (L, C, 4 * C), "fcprojb": (L, C),
        "lnfw": (C,), "lnfb": (C,),
    }


def fp32_to_bf16_bits(x) -> np.ndarray:
    """uint16 bf16 bit patterns of x (rounded to fp32 first), round to nearest even."""
    f = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(f)
    rounded[nan] = (bits[nan] >> 16) | 0x0040  # keep sign and payload top, force quiet
    return rounded.astype(np.uint16)


def bf16_bits_to_fp32(b) -> np.ndarray:
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to_bf16(x) -> np.ndarray:
    """x rounded to the nearest bf16 value, returned as fp32."""
    return bf16_bits_to_fp32(fp32_to_bf16_bits(x))


def _as_numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):  # torch tensor, without importing torch here
        t = t.detach().cpu().numpy()
    return np.asarray(t)


def write_model(path, header: dict, params: dict, dtype: str = "fp32") -> None:
    """Write an llm.c model file. header: maxT, V, L, NH, C, Vp. params: the 16 tensors (numpy
    arrays or torch tensors, any float dtype), checked against the shapes the header implies."""
    if dtype not in ("fp32", "bf16"):
        raise ValueError(f"dtype must be 'fp32' or 'bf16', not {dtype!r}")
    hdr = np.zeros(HEADER_INTS, dtype="<i4")
    hdr[0] = MAGIC
    hdr[1] = VERSION_FP32 if dtype == "fp32" else VERSION_BF16
    for i, k in enumerate(HEADER_KEYS):
        hdr[2 + i] = int(header[k])
    shapes = gpt2_shapes(header)
    chunks = [hdr.tobytes()]
    for name in LLMC_ORDER:
        a = _as_numpy(params[name])
        if tuple(a.shape) != shapes[name]:
            raise ValueError(f"{name}: shape {tuple(a.shape)} != {shapes[name]}")
        if dtype == "fp32":
            chunks.append(np.ascontiguousarray(a, dtype="<f4").tobytes())
        else:
            chunks.append(fp32_to_bf16_bits(a).astype("<u2").tobytes())
    with open(path, "wb") as f:
        f.write(b"".join(chunks))


def read_model(path) -> tuple[dict, dict[str, np.ndarray], str]:
    """Read and check an llm.c model file: returns (header, params as fp32 arrays, dtype)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        data = f.read()
    if size < HEADER_BYTES:
        raise ValueError(f"{path}: {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    hdr = np.frombuffer(data[:HEADER_BYTES], dtype="<i4")
    if hdr[0] != MAGIC:
        raise ValueError(f"{path}: bad magic {hdr[0]}, expected {MAGIC}")
    if hdr[1] == VERSION_FP32:
        dtype, width = "fp32", 4
    elif hdr[1] == VERSION_BF16:
        dtype, width = "bf16", 2
    else:
        raise ValueError(f"{path}: unsupported version {hdr[1]}, expected 3 (fp32) or 5 (bf16)")
    header = {k: int(hdr[2 + i]) for i, k in enumerate(HEADER_KEYS)}
    shapes = gpt2_shapes(header)
    count = sum(int(np.prod(s)) for s in shapes.values())
    expected = HEADER_BYTES + count * width
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, header implies {expected}")
    params, off = {}, HEADER_BYTES
    for name in LLMC_ORDER:
        n = int(np.prod(shapes[name]))
        if dtype == "fp32":
            a = np.frombuffer(data, dtype="<f4", count=n, offset=off).astype(np.float32)
        else:
            a = bf16_bits_to_fp32(np.frombuffer(data, dtype="<u2", count=n, offset=off))
        params[name] = a.reshape(shapes[name])
        off += n * width
    return header, params, dtype
