import type { LayerObservation } from '../observation.js';
import type { GroupReduction } from '../selection/group-reduction.js';

/** Which observation input a scorer reads. */
export type ScorerInput = 'windowScores' | 'accumulatedAttention' | 'keyNorms' | 'none';

/** What {@link Scorer.score} is asked for. */
export interface ScoreRequest {
  /** The layer's observation, already shape-checked. */
  observation: LayerObservation;
  /** Tokens at the end of the prompt that are always kept (the policy's window). */
  windowSize: number;
  /** Tokens before the window, `seqLen - windowSize`: the ones that compete for the budget. */
  prefixLength: number;
  /** How query-head scores of a kv-head group are combined. */
  groupReduction: GroupReduction;
}

/**
 * A scoring policy (kvpress's `ScorerPress.score`): rates every prefix token of every kv head; higher means
 * keep. Budgets and selection are not its business: allocators decide how many tokens each head keeps, and
 * the composed policy keeps each head's highest-scored ones.
 */
export interface Scorer {
  /** Name, e.g. `snapkv`. */
  readonly name: string;
  /** Settings, JSON-friendly (recorded in profiles). */
  readonly settings: Record<string, unknown>;
  /** The observation input it reads. */
  readonly input: ScorerInput;
  /** Scores `[kvHead][prefixPosition]`, shape `[kvHeadCount, prefixLength]`. */
  score(request: ScoreRequest): Float32Array;
}
