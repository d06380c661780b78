"""PyTorch baselines for bench/cuda-decode-attention (run by run.ts in the same job, same GPU).

Decode attention (one query token per request), bf16 (or f32: config "dtype"), GQA, for the pair
lengths run.ts measured (config "lengths": request by request, kv head fastest):

- padded: one scaled_dot_product_attention call on K/V padded to the longest length (every head
  pays for the longest; no mask, so this is PyTorch's best case for the padded layout);
- grouped: the (request, kv head) pairs grouped by length class, one SDPA call per class with the
  query-head group as the query heads (enable_gqa), all the calls timed together (where nearly every
  pair has a length of its own, as in the proportional mix, that is about one call per pair).
- grouped from pages (`pagedGroupedMs`): the same calls, but K and V live in a paged pool of
  `blockSize`-token blocks in shuffled order, as ours do, so each call first gathers its class's blocks
  into contiguous tensors (advanced indexing), then runs SDPA. That is what SDPA costs a server whose
  cache is paged; the plain grouped path reads K/V that are already sorted into one tensor per class.

Prints one JSON line: milliseconds (median of CUDA-event-timed calls issued back to back, as run.ts
times ours; the grouped path also as calls each started on an idle GPU, `groupedSyncedMs`) and GB/s of
needed bytes.
"""
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: the shared timing helpers
from torch_timing import median, median_ms, warm_up  # noqa: E402


def median_synced_ms(fn, repeats):
    """Median of `repeats` calls each started on an idle GPU (synchronised before its start event):
    the interval includes the host's dispatch of the call (how this benchmark timed PyTorch before
    2026-11-27)."""
    warm_up(fn)
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return median(times)


def main():
    c = json.loads(sys.argv[1])
    b, hkv, g, d, repeats = c["batch"], c["kvHeadCount"], c["groupSize"], c["headDim"], c["repeats"]
    dev = torch.device("cuda")
    dt = torch.float32 if c.get("dtype") == "f32" else torch.bfloat16
    lengths = [c["lengths"][r * hkv : (r + 1) * hkv] for r in range(b)]
    long_len = max(max(row) for row in lengths)
    needed = sum(sum(row) for row in lengths) * d * 2 * (4 if dt == torch.float32 else 2)

    # Padded: [batch, kv heads, longest, d]
    q = torch.randn(b, hkv * g, 1, d, device=dev, dtype=dt)
    k = torch.randn(b, hkv, long_len, d, device=dev, dtype=dt)
    v = torch.randn(b, hkv, long_len, d, device=dev, dtype=dt)
    try:
        padded_ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), repeats)
    except torch.OutOfMemoryError:
        padded_ms = None  # the padded path's scores do not fit (f32 at batch 64); the grouped one is still timed
    del k, v
    torch.cuda.empty_cache()

    # Grouped by length class: pairs of one class batched, the query group as query heads.
    classes = {}
    for r in range(b):
        for h in range(hkv):
            classes.setdefault(lengths[r][h], []).append((r, h))
    calls = []
    for length, members in classes.items():
        p = len(members)
        calls.append(
            (
                torch.randn(p, g, 1, d, device=dev, dtype=dt),
                torch.randn(p, 1, length, d, device=dev, dtype=dt),
                torch.randn(p, 1, length, d, device=dev, dtype=dt),
            )
        )

    def grouped():
        for cq, ck, cv in calls:
            F.scaled_dot_product_attention(cq, ck, cv, enable_gqa=True)

    grouped_ms = median_ms(grouped, repeats)
    grouped_synced_ms = median_synced_ms(grouped, repeats)
    del calls
    torch.cuda.empty_cache()

    # Grouped from pages: every pair's blocks at shuffled places of one pool per K and V.
    bs = c.get("blockSize", 16)
    pair_blocks = {(r, h): -(-lengths[r][h] // bs) for r in range(b) for h in range(hkv)}
    block_count = sum(pair_blocks.values())
    pool_k = torch.randn(block_count, bs, d, device=dev, dtype=dt)
    pool_v = torch.randn(block_count, bs, d, device=dev, dtype=dt)
    order = torch.randperm(block_count, device=dev)
    first, tables = 0, {}
    for pair, count in pair_blocks.items():
        tables[pair] = order[first : first + count]
        first += count
    paged_calls = [
        (torch.randn(len(members), g, 1, d, device=dev, dtype=dt), torch.stack([tables[m] for m in members]), length)
        for length, members in classes.items()
    ]

    def paged_grouped():
        for cq, table, length in paged_calls:
            p, n = table.shape
            ck = pool_k[table].reshape(p, 1, n * bs, d)[:, :, :length]
            cv = pool_v[table].reshape(p, 1, n * bs, d)[:, :, :length]
            F.scaled_dot_product_attention(cq, ck, cv, enable_gqa=True)

    try:
        paged_grouped_ms, paged_error = median_ms(paged_grouped, repeats), None
    except torch.OutOfMemoryError as error:
        paged_grouped_ms, paged_error = None, f"out of memory: {error}"
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(),
                "torch": torch.__version__,
                "paddedMs": padded_ms,
                "groupedMs": grouped_ms,
                "groupedSyncedMs": grouped_synced_ms,
                "pagedGroupedMs": paged_grouped_ms,
                "pagedGroupedGbPerSecond": None if paged_grouped_ms is None else needed / (paged_grouped_ms * 1e6),
                **({} if paged_error is None else {"pagedGroupedError": paged_error}),
                "paddedGbPerSecond": None if padded_ms is None else needed / (padded_ms * 1e6),
                "groupedGbPerSecond": needed / (grouped_ms * 1e6),
                "paddedBytesRead": b * hkv * long_len * d * 2 * q.element_size(),
                "classes": {str(length): len(members) for length, members in classes.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
