"""CUDA-event timing of PyTorch calls for the benchmarks' PyTorch baselines (bench/*/torch_*.py), timed
as their run.ts times fairkv's kernels (bench/cuda-event-timing.ts)."""
import torch


def warm_up(fn, calls=3):
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()


def median(times):
    return sorted(times)[len(times) // 2]


def median_ms(fn, repeats, warmups=3):
    """Median of `repeats` calls issued back to back with an event between consecutive calls: the host
    runs ahead, so each interval is the call's GPU time, not the host's time to dispatch it onto an
    idle GPU."""
    warm_up(fn, warmups)
    events = [torch.cuda.Event(enable_timing=True) for _ in range(repeats + 1)]
    events[0].record()
    for i in range(repeats):
        fn()
        events[i + 1].record()
    torch.cuda.synchronize()
    return median([events[i].elapsed_time(events[i + 1]) for i in range(repeats)])
