"""PyTorch baseline for bench/cuda-prefill-attention (run by run.ts in the same job, same GPU).

Causal GQA prefill attention of one prompt with scaled_dot_product_attention (is_causal, enable_gqa):
in f32, what the fairkv contract computes (with GQA PyTorch runs f32 on its math path; also timed: its
memory-efficient kernel on K/V expanded to every query head), and in bf16, where it picks flash
attention: the speed of a 16-bit kernel, for scale.

Prints one JSON line: milliseconds, the median of CUDA-event-timed calls issued back to back, as run.ts
times ours.
"""
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: the shared timing helpers
from torch_timing import median_ms  # noqa: E402


def sampled_error(output, q, k, v, rows=6):
    """Largest |a - e| / (|e| + rms(e)) over sampled rows of head 0 against float64 (run.ts's measure)."""
    t = q.shape[2]
    worst = 0.0
    for i in range(rows):
        row = round(i * (t - 1) / (rows - 1))
        head = (i * 7) % q.shape[1]
        scores = (q[0, head, row].double() @ k[0, head, : row + 1].double().T) / q.shape[3] ** 0.5
        expected = torch.softmax(scores, dim=0) @ v[0, head, : row + 1].double()
        actual = output[0, head, row].double()
        rms = expected.pow(2).mean().sqrt()
        worst = max(worst, ((actual - expected).abs() / (expected.abs() + rms)).max().item())
    return worst


def main():
    c = json.loads(sys.argv[1])
    t, hq, hkv, d, repeats = c["tokens"], c["queryHeadCount"], c["kvHeadCount"], c["headDim"], c["repeats"]
    dev = torch.device("cuda")
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        q = torch.empty(1, hq, t, d, device=dev, dtype=dtype).uniform_(-2, 2)
        k = torch.empty(1, hkv, t, d, device=dev, dtype=dtype).uniform_(-2, 2)
        v = torch.empty(1, hkv, t, d, device=dev, dtype=dtype).uniform_(-1, 1)
        run = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        results[f"{name}Ms"] = median_ms(run, repeats, warmups=1)
        if name == "f32":
            # with GQA, PyTorch runs f32 on its math path; its memory-efficient kernel takes f32 when
            # K and V are expanded to every query head first (the expansion not timed)
            ke = k.repeat_interleave(hq // hkv, dim=1)
            ve = v.repeat_interleave(hq // hkv, dim=1)
            try:
                with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                    efficient = lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True)
                    results["f32EfficientMs"] = median_ms(efficient, repeats, warmups=1)
                    results["f32EfficientError"] = sampled_error(efficient(), q, ke, ve)
            except RuntimeError as error:
                results["f32EfficientMs"] = None
                results["f32EfficientUnavailable"] = str(error).split("\n")[0]
            del ke, ve
        del q, k, v
    print(json.dumps(results))


if __name__ == "__main__":
    main()
