/**
 * Quickselect (Hoare partition, median-of-three pivot): reorders `values[0, count)` in place and returns
 * the k-th largest of them (k = 1 is the maximum). Expected O(count), no allocation. The values must not
 * hold NaN (map NaN to -Infinity first: see `copyScores`).
 */
export function kthLargest(values: Float32Array, count: number, k: number): number {
  if (!(k >= 1 && k <= count)) throw new RangeError(`kthLargest: k ${k} outside [1, ${count}]`);
  const target = count - k; // position in ascending order
  let left = 0;
  let right = count - 1;
  while (right > left) {
    const middle = (left + right) >>> 1;
    const a = values[left]!;
    const b = values[middle]!;
    const c = values[right]!;
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const swap = values[i]!;
        values[i] = values[j]!;
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (target <= j) right = j;
    else if (target >= i) left = i;
    else return values[target]!;
  }
  return values[target]!;
}

/**
 * Copies `source[offset, offset + length)` into `target[0, length)`, mapping NaN to -Infinity so a
 * corrupt score can never be kept ahead of a real one.
 */
export function copyScores(source: Float32Array, offset: number, length: number, target: Float32Array): void {
  for (let i = 0; i < length; i++) {
    const value = source[offset + i]!;
    target[i] = Number.isNaN(value) ? Number.NEGATIVE_INFINITY : value;
  }
}
