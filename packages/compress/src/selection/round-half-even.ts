/**
 * Rounds to the nearest integer, halves to even: the rule of `torch.round` and Python's `round`, which the
 * Ada-KV and HeadKV reference budgets use (so `2.5` gives 2 and `3.5` gives 4, unlike `Math.round`).
 */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
