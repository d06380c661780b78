/**
 * Arguments of every kernel of the Backend contract, keyed by kernel id ({@link KernelArgsMap}).
 * Shapes are explicit; tensors are dense row-major; `[a][b][c]` names the dimensions from the
 * outermost. "f32" means an f32 buffer; "stored" means any dtype in the backend's
 * `storageDTypes` (converted to f32 on read). Outputs are written only where the shape says; no
 * output may alias an input unless stated (kernels that update in place say so).
 *
 * @packageDocumentation
 */
import type { KernelName, RopeLayout } from '@fairkv/core';
import type { DeviceBuffer } from './device-buffer.js';

/** `output[r][h] = table[tokens[r]][h]` (LLaMA token embedding). */
export interface EmbeddingGatherArgs {
  /** stored `[vocabSize][hiddenSize]`. */
  table: DeviceBuffer;
  /** i32 `[rowCount]`, each in `[0, vocabSize)`. */
  tokens: DeviceBuffer<'i32'>;
  /** f32 `[rowCount][hiddenSize]`. */
  output: DeviceBuffer<'f32'>;
  rowCount: number;
  vocabSize: number;
  hiddenSize: number;
}

/**
 * RMSNorm (Zhang & Sennrich 2019, as in LLaMA):
 * `output[r][i] = input[r][i] / sqrt(mean_j(input[r][j]^2) + epsilon) * weight[i]`.
 */
export interface RmsNormArgs {
  /** f32 `[rowCount][size]`; with `addend`, also written: it receives `input + addend` (the residual stream). */
  input: DeviceBuffer<'f32'>;
  /** stored `[size]`. */
  weight: DeviceBuffer;
  /** f32 `[rowCount][size]`. */
  output: DeviceBuffer<'f32'>;
  rowCount: number;
  size: number;
  epsilon: number;
  /**
   * Optional f32 `[rowCount][size]`, added into `input` (rounded to f32, as `add-in-place` does) before
   * the norm, which then normalises the sum: the residual add and the next RMSNorm in one kernel (vLLM's
   * `fused_add_rms_norm`).
   */
  addend?: DeviceBuffer<'f32'>;
}

/**
 * `output = input x weight^T`: `output[r][o] = sum_i input[r][i] * weight[o][i]`. The weight is in
 * PyTorch `nn.Linear` layout `[outFeatures][inFeatures]` (as safetensors and GGUF store it).
 * Also computes logits (with the LM head or tied embedding as the weight).
 */
export interface MatmulArgs {
  /** f32 `[rowCount][innerSize]`. */
  input: DeviceBuffer<'f32'>;
  /**
   * stored `[outerSize + outerSize2 + outerSize3][innerSize]`: with `output2` (and `output3`) one matmul
   * is a fused projection (q | k | v, gate | up) whose output is split by weight rows.
   */
  weight: DeviceBuffer;
  /** f32 `[rowCount][outerSize]`: weight rows `[0, outerSize)`. */
  output: DeviceBuffer<'f32'>;
  rowCount: number;
  innerSize: number;
  outerSize: number;
  /** Optional f32 `[rowCount][outerSize2]`: the next `outerSize2` weight rows. */
  output2?: DeviceBuffer<'f32'>;
  outerSize2?: number;
  /** Optional (with `output2`) f32 `[rowCount][outerSize3]`: the `outerSize3` weight rows after those. */
  output3?: DeviceBuffer<'f32'>;
  outerSize3?: number;
}

/**
 * Rotary position embedding (Su et al., RoFormer 2021), **in place** on `data`. For row `r`, head
 * `h`, pair `i < headDim / 2`, with `p = positions[r]`, `c = table[p][0][i]`, `s = table[p][1][i]`
 * and the pair `(x, y)` = `(data[.., 2i], data[.., 2i + 1])` for layout `'adjacent'` (llama2.c,
 * GGUF) or `(data[.., i], data[.., i + headDim / 2])` for `'half-split'` (Hugging Face):
 * `x' = x c - y s`, `y' = x s + y c`. The cos/sin table carries the base and any frequency scaling;
 * build it with `buildRopeTable`.
 */
export interface RopeArgs {
  /** f32 `[rowCount][headCount][headDim]`, rotated in place. */
  data: DeviceBuffer<'f32'>;
  /** i32 `[rowCount]`, each in `[0, tablePositionCount)`. */
  positions: DeviceBuffer<'i32'>;
  /** f32 `[tablePositionCount][2][headDim / 2]`: cos then sin of `position * inverseFrequency[i]`. */
  table: DeviceBuffer<'f32'>;
  rowCount: number;
  headCount: number;
  /** Even. */
  headDim: number;
  tablePositionCount: number;
  layout: RopeLayout;
}

/**
 * SwiGLU (Shazeer 2020): `output[i] = silu(gate[i]) * up[i]`, `silu(x) = x / (1 + exp(-x))`.
 * `output` may be the same buffer as `gate` or `up` (in place; every backend must accept that).
 */
export interface SwigluArgs {
  /** f32 `[elementCount]` (any row shape flattened). */
  gate: DeviceBuffer<'f32'>;
  /** f32 `[elementCount]`. */
  up: DeviceBuffer<'f32'>;
  /** f32 `[elementCount]`; may be `gate` or `up` itself. */
  output: DeviceBuffer<'f32'>;
  elementCount: number;
}

/** Residual add, in place: `target[i] += addend[i]`. */
export interface AddInPlaceArgs {
  /** f32 `[elementCount]`, updated in place. */
  target: DeviceBuffer<'f32'>;
  /** f32 `[elementCount]`. */
  addend: DeviceBuffer<'f32'>;
  elementCount: number;
}

/**
 * Causal self-attention over one prompt (one request), GQA: query head `q` reads kv head
 * `floor(q / (queryHeadCount / kvHeadCount))`. For query token `t`:
 * `p[t][k] = softmax_k<=t(scale * query[t][q] . key[k][kv])`, `output[t][q] = sum_k p[t][k] value[k][kv]`.
 *
 * It also returns the **observation-window scores** the compression policies consume (SnapKV,
 * Ada-KV, HeadKV): for the last `windowSize` queries, `windowScores[q][w][k] = p[t][k]` with
 * `t = tokenCount - windowSize + w`, and `0` for keys after `t` (masked). Rows sum to 1.
 */
export interface PrefillAttentionArgs {
  /** f32 `[tokenCount][queryHeadCount][headDim]` (RoPE already applied). */
  query: DeviceBuffer<'f32'>;
  /** f32 `[tokenCount][kvHeadCount][headDim]` (RoPE already applied). */
  key: DeviceBuffer<'f32'>;
  /** f32 `[tokenCount][kvHeadCount][headDim]`. */
  value: DeviceBuffer<'f32'>;
  /** f32 `[tokenCount][queryHeadCount][headDim]`. */
  output: DeviceBuffer<'f32'>;
  /**
   * f32 `[queryHeadCount][windowSize][tokenCount]`; required when `windowSize > 0` unless
   * `windowScoreSums` is given.
   */
  windowScores?: DeviceBuffer<'f32'>;
  /**
   * Optional f32 `[queryHeadCount][tokenCount]`, with `windowSize > 0`: the window's column sums,
   * `windowScoreSums[q][k] = sum over w of windowScores[q][w][k]`, which is what SnapKV-style policies reduce
   * the window to (`windowAttentionSums`), without the `[windowSize][tokenCount]` rows.
   */
  windowScoreSums?: DeviceBuffer<'f32'>;
  /**
   * Optional f32 `[queryHeadCount][tokenCount]`: `accumulatedScores[q][k] = sum over t >= k of p[t][k]`,
   * the attention key `k` received from every query of the prompt (H2O's heavy-hitter score: the
   * column sums of the causal softmax), without a `[tokenCount][tokenCount]` window.
   */
  accumulatedScores?: DeviceBuffer<'f32'>;
  tokenCount: number;
  queryHeadCount: number;
  /** Divides `queryHeadCount`. */
  kvHeadCount: number;
  headDim: number;
  /** `0 <= windowSize <= tokenCount`. */
  windowSize: number;
  /** Softmax scale, usually `1 / sqrt(headDim)`. */
  scale: number;
  /**
   * Optional: K and V rounded to this 16-bit type (round to nearest even) before every product that
   * reads them, scores, window scores and outputs alike; absent, they are used as given. A 16-bit engine
   * stores the prompt's K/V in its pool in that type and decode reads them so: the prompt's own attention
   * then sees the same values. Q and the probabilities keep f32 precision.
   */
  kvRounding?: 'bf16' | 'f16';
  /**
   * Optional: every product's operands rounded to this 16-bit type (round to nearest even), as
   * FlashAttention's 16-bit kernels multiply: Q, K and V, and the probabilities before they multiply V.
   * Implies `kvRounding` of the same type (giving `kvRounding` of the other type is an error). Scores,
   * softmax, window scores and accumulated scores are computed in f32 or better from the rounded Q and K
   * (unrounded probabilities). The output is `sum_k round(w_k) v_k / sum_k w_k`, where `w` are the row's
   * unnormalised probabilities at a scale the backend picks (a tiled kernel's running maximum), so it may
   * differ from the output with unrounded probabilities by up to 2^-8 (bf16) or 2^-11 (f16) of
   * `sum_k p_k |v_k|`. A 16-bit engine asks for it, so that its prefill runs on 16-bit tensor cores.
   */
  productRounding?: 'bf16' | 'f16';
}

/** The paged KV pool and the flat block table (layout in `kv-layout.ts` and docs/kv-cache.md). */
export interface KvPoolArgs {
  /** stored `[blockCount][2][blockSize][headDim]`: K rows then V rows of each block. */
  pool: DeviceBuffer;
  /** i32 `[blockTableLength]`: block ids, each sequence's list starting at its table offset. */
  blockTable: DeviceBuffer<'i32'>;
  blockCount: number;
  /** Tokens per block. */
  blockSize: number;
  headDim: number;
  blockTableLength: number;
}

/**
 * Writes new K and V rows into the paged pool: for entry `e = [sourceRow, kvHead, position,
 * tableOffset]`, `key[sourceRow][kvHead]` and `value[sourceRow][kvHead]` go to token `position` of the
 * sequence whose block list starts at `tableOffset` (block `blockTable[tableOffset + floor(position /
 * blockSize)]`, slot `position % blockSize`), rounded to the pool dtype (round-to-nearest-even).
 * Decode appends one entry per served (request, kv head); prefill can write only the kept tokens
 * (`sourceRow` = kept token, `position` = its rank), which is compaction without a full copy. The
 * host allocates blocks first. Entries must not write the same slot twice.
 */
export interface KvAppendArgs extends KvPoolArgs {
  /** f32 `[rowCount][kvHeadCount][headDim]` (RoPE already applied to K). */
  key: DeviceBuffer<'f32'>;
  /** f32 `[rowCount][kvHeadCount][headDim]`. */
  value: DeviceBuffer<'f32'>;
  /** i32 `[entryCount][4]`: `[sourceRow, kvHead, position, tableOffset]`. */
  entries: DeviceBuffer<'i32'>;
  rowCount: number;
  kvHeadCount: number;
  entryCount: number;
}

/**
 * Compaction by kept indices: for sequence `s = [keptOffset, keptCount, sourceTableOffset,
 * destinationTableOffset]`, token `j < keptCount` of the destination sequence becomes token
 * `keptIndices[keptOffset + j]` of the source sequence (K and V, bit-exact). The destination blocks
 * must be disjoint from every source block of the call (out of place, so GPU threads never race);
 * the host then returns the source blocks to the free list, which is how memory is really freed.
 * Kept indices need not be sorted. Nothing else in the pool changes (source blocks, and destination
 * slots past `keptCount`, keep their contents).
 */
export interface KvCompactArgs extends KvPoolArgs {
  /** i32 `[keptIndexCount]`: token indices into the source sequences (a buffer is passed even when the count is 0). */
  keptIndices: DeviceBuffer<'i32'>;
  /** i32 `[sequenceCount][4]`: `[keptOffset, keptCount, sourceTableOffset, destinationTableOffset]`. */
  sequences: DeviceBuffer<'i32'>;
  sequenceCount: number;
  keptIndexCount: number;
}

/**
 * Ragged decode attention over the paged pool, GQA, one query token per request. For pair `p =
 * [queryRow, kvHead, kvLength, tableOffset]` and each query head `q = kvHead * groupSize + g`
 * (`g < groupSize`): `output[queryRow][q] = sum_{t < kvLength} softmax_t(scale * query[queryRow][q]
 * . K_t) V_t`, where `K_t`, `V_t` are token `t` of the sequence at `tableOffset`. `kvLength = 0` writes
 * zeros. Only the listed pairs are computed: output rows of (row, kv head) pairs not listed are left
 * untouched (a device serves only its own pairs; the runtime zeroes the rest before the O-projection).
 * Each (queryRow, kvHead) may appear at most once. Slots past `kvLength` (the tail of the last block)
 * may hold anything, NaN included, and must not affect the output: mask by selection, never by
 * multiplying with zero (the conformance suite fills them with NaN).
 */
export interface RaggedDecodeAttentionArgs extends KvPoolArgs {
  /** f32 `[rowCount][kvHeadCount * groupSize][headDim]` (RoPE already applied). */
  query: DeviceBuffer<'f32'>;
  /** f32 `[rowCount][kvHeadCount * groupSize][headDim]`. */
  output: DeviceBuffer<'f32'>;
  /** i32 `[pairCount][4]`: `[queryRow, kvHead, kvLength, tableOffset]`. */
  pairs: DeviceBuffer<'i32'>;
  rowCount: number;
  /** Kv heads in `query`'s layout (the device's local kv heads of this layer). */
  kvHeadCount: number;
  /** Query heads per kv head. */
  groupSize: number;
  pairCount: number;
  /** Softmax scale, usually `1 / sqrt(headDim)`. */
  scale: number;
}

/** `output[r] = argmax_v logits[r][v]`, the lowest index among ties. Logits must be finite. */
export interface ArgmaxArgs {
  /** f32 `[rowCount][vocabSize]`. */
  logits: DeviceBuffer<'f32'>;
  /** i32 `[rowCount]`. */
  output: DeviceBuffer<'i32'>;
  rowCount: number;
  vocabSize: number;
}

/**
 * Nucleus (top-p) sampling (Holtzman et al. 2020), deterministic given a seed, per row `r`:
 * 1. `temperatures[r] <= 0` means greedy: the argmax (as {@link ArgmaxArgs}).
 * 2. `prob[v] = softmax(logits[r] / temperatures[r])`.
 * 3. Order tokens by `prob` descending, ties by lower index; the nucleus is the shortest prefix
 *    whose mass `m` reaches `topPs[r]` (at least one token; the whole vocabulary if rounding never
 *    reaches it).
 * 4. `u = (pcgHash(seeds[r]) >>> 8) / 2^24` (see `pcgHash`), target `u * m`.
 * 5. The sample is the first token in that order whose cumulative mass exceeds the target (the last
 *    nucleus token if rounding leaves none).
 * Backends may differ only where the target lies within float rounding of a cumulative boundary.
 */
export interface TopPSampleArgs {
  /** f32 `[rowCount][vocabSize]`. */
  logits: DeviceBuffer<'f32'>;
  /** f32 `[rowCount]`. */
  temperatures: DeviceBuffer<'f32'>;
  /** f32 `[rowCount]`, each in `(0, 1]`. */
  topPs: DeviceBuffer<'f32'>;
  /** i32 `[rowCount]`: 32-bit seeds (derive one per step with `samplingSeed`). */
  seeds: DeviceBuffer<'i32'>;
  /** i32 `[rowCount]`: sampled token ids. */
  output: DeviceBuffer<'i32'>;
  rowCount: number;
  vocabSize: number;
}

/** Arguments of every kernel, by id: `backend.run(id, args)` is typed by this map. */
export interface KernelArgsMap {
  'embedding-gather': EmbeddingGatherArgs;
  'rms-norm': RmsNormArgs;
  matmul: MatmulArgs;
  rope: RopeArgs;
  swiglu: SwigluArgs;
  'add-in-place': AddInPlaceArgs;
  'prefill-attention': PrefillAttentionArgs;
  'kv-append': KvAppendArgs;
  'kv-compact': KvCompactArgs;
  'ragged-decode-attention': RaggedDecodeAttentionArgs;
  argmax: ArgmaxArgs;
  'top-p-sample': TopPSampleArgs;
}

/** Compile-time check that {@link KernelArgsMap} covers exactly the kernel ids of `@fairkv/core`. */
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** @internal */
export const kernelArgsMapCoversKernelNames: Exact<keyof KernelArgsMap, KernelName> = true;
