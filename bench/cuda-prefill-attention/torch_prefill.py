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

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def median_ms(fn, repeats):
    fn()
    torch.cuda.synchronize()
    events = [torch.cuda.Event(enable_timing=True) for _ in range(repeats + 1)]
    events[0].record()
    for i in range(repeats):
        fn()
        events[i + 1].record()
    torch.cuda.synchronize()
    times = sorted(events[i].elapsed_time(events[i + 1]) for i in range(repeats))
    return times[len(times) // 2]


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
        results[f"{name}Ms"] = median_ms(run, repeats)
        if name == "f32":
            # with GQA, PyTorch runs f32 on its math path; its memory-efficient kernel takes f32 when
            # K and V are expanded to every query head first (the expansion not timed)
            ke = k.repeat_interleave(hq // hkv, dim=1)
            ve = v.repeat_interleave(hq // hkv, dim=1)
            try:
                with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                    efficient = lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True)
                    results["f32EfficientMs"] = median_ms(efficient, repeats)
            except RuntimeError as error:
                results["f32EfficientMs"] = None
                results["f32EfficientError"] = str(error).split("\n")[0]
            del ke, ve
        del q, k, v
    print(json.dumps(results))


if __name__ == "__main__":
    main()
