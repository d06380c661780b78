/**
 * KV lengths of a HeadKV-style mix for the decode attention benchmark: each request's budget of one layer
 * spread over its kv heads in proportion to their DuoAttention gate values (../shared/profiles: "the gate
 * values can also weight a proportional (HeadKV-style) allocation"), times a per-request factor that
 * stands for the prompt-dependent part of Ada-KV's allocation. Every head keeps at least the streaming
 * window and at most the context. Lengths then differ from pair to pair, so PyTorch's per-length-class
 * path needs about one call per pair.
 */

/** Parses a gate file (a row per layer, a tab-separated column per kv head). */
export function parseGateRows(text: string): number[][] {
  return text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number));
}

/**
 * Splits `budget` tokens over heads of weights `weights`: every head gets `min`, the rest in proportion
 * to its weight, none more than `max` (what a capped head cannot take goes to the others). Heads of
 * weight 0 keep `min`. Rounded down to whole tokens.
 */
export function proportionalSplit(weights: readonly number[], budget: number, min: number, max: number): number[] {
  const lengths = weights.map(() => min);
  let open = weights.map((weight, head) => (weight > 0 ? head : -1)).filter((head) => head >= 0);
  let remaining = budget - min * weights.length;
  while (open.length > 0 && remaining > 0) {
    const total = open.reduce((sum, head) => sum + weights[head]!, 0);
    const capped = open.filter((head) => lengths[head]! + (remaining * weights[head]!) / total >= max);
    if (capped.length === 0) {
      for (const head of open) lengths[head]! += (remaining * weights[head]!) / total;
      break;
    }
    for (const head of capped) {
      remaining -= max - lengths[head]!;
      lengths[head] = max;
    }
    open = open.filter((head) => !capped.includes(head));
  }
  return lengths.map(Math.floor);
}

/**
 * Lengths of `batch` requests x the layer's kv heads: request r's weights are the gates times
 * exp(`spread` z) with z standard normal (seeded, the same every run), its budget `budgetPerHead` times the
 * head count.
 */
export function proportionalLengths(
  gates: readonly number[],
  batch: number,
  options: { budgetPerHead: number; min: number; max: number; spread: number; seed?: number },
): number[][] {
  let state = options.seed ?? 2024;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Array.from({ length: batch }, () =>
    proportionalSplit(
      gates.map((gate) => Math.max(0, gate) * Math.exp(options.spread * normal())),
      options.budgetPerHead * gates.length,
      options.min,
      options.max,
    ),
  );
}
