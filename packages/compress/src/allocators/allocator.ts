/** What a {@link BudgetAllocator} is asked for: one layer of one prompt. */
export interface AllocationRequest {
  /** 0-based layer index. */
  layerIndex: number;
  /** Layers in the model. */
  layerCount: number;
  /** Query heads of the layer. */
  queryHeadCount: number;
  /** Kv heads of the layer. */
  kvHeadCount: number;
  /** Prompt length. */
  seqLen: number;
  /** Always-kept tokens at the end of the prompt. */
  windowSize: number;
  /** Tokens before the window, `seqLen - windowSize`. */
  prefixLength: number;
  /** The scorer's `[kvHead][prefixPosition]` scores, computed on first call (allocators that ignore them cost nothing). */
  scores(): Float32Array;
}

/**
 * Decides how many prefix tokens (tokens outside the always-kept window) each kv head of a layer keeps: the
 * per-head budgeting of Ada-KV, the head-importance budgets of HeadKV, DuoAttention's retrieval/streaming
 * split, or a uniform budget (SnapKV, PyramidKV). Budgets above `prefixLength` mean "keep everything".
 */
export interface BudgetAllocator {
  /** Name, e.g. `ada-kv`. */
  readonly name: string;
  /** Settings, JSON-friendly. */
  readonly settings: Record<string, unknown>;
  /** Prefix budget per kv head, length `kvHeadCount`, each >= 0. */
  allocate(request: AllocationRequest): Int32Array;
}

/** What a {@link LayerBudget} is asked for. */
export interface LayerBudgetRequest {
  /** 0-based layer index. */
  layerIndex: number;
  /** Layers in the model. */
  layerCount: number;
  /** Prompt length. */
  seqLen: number;
  /** Always-kept tokens at the end of the prompt (already capped at `seqLen`). */
  windowSize: number;
}

/**
 * The average prefix budget per kv head of a layer (`base capacity` in the references: the budget minus the
 * window). Uniform for SnapKV; a linear pyramid for PyramidKV. Allocators split `kvHeadCount x` this over heads.
 */
export interface LayerBudget {
  /** Name, e.g. `pyramid`. */
  readonly name: string;
  /** Settings, JSON-friendly. */
  readonly settings: Record<string, unknown>;
  /** Average prefix tokens per kv head for the layer (may exceed the prefix: then nothing is evicted). */
  prefixBudget(request: LayerBudgetRequest): number;
}
