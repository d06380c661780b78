/**
 * Typed kernel ids: the names of the kernels every fairkv compute backend implements (the Backend
 * contract lives in `@fairkv/kernels`). Like tfjs's `kernel_names.ts`, the ids live in the contract
 * package so that backends, the runtime and tools agree on one spelling. A backend's kernel file is
 * named after its id (`kernels/ragged-decode-attention.ts`).
 *
 * @packageDocumentation
 */

/** Every kernel id, in the order a Llama decoder step uses them. */
export const KERNEL_NAMES = [
  'embedding-gather',
  'rms-norm',
  'matmul',
  'rope',
  'swiglu',
  'add-in-place',
  'prefill-attention',
  'kv-append',
  'kv-compact',
  'ragged-decode-attention',
  'argmax',
  'top-p-sample',
] as const;

/** Id of one kernel of the Backend contract, e.g. `'ragged-decode-attention'`. */
export type KernelName = (typeof KERNEL_NAMES)[number];

/** Whether `value` is a {@link KernelName}. */
export function isKernelName(value: unknown): value is KernelName {
  return typeof value === 'string' && (KERNEL_NAMES as readonly string[]).includes(value);
}
