import { formatIssues, type HeadLoadProfile, seededRandom, ValidationError, type ValidationIssue } from '@fairkv/core';

/** Options of {@link syntheticHeavyTailedProfile}. */
export interface SyntheticProfileOptions {
  layerCount: number;
  kvHeadCount: number;
  contextLength: number;
  /** Mean kept tokens per head as a fraction of the context (Ada-KV's overall budget), in (0, 1]. Default 0.2. */
  budgetFraction?: number;
  /** Standard deviation of the log-normal head weights; larger is more skewed. Default 1. */
  sigma?: number;
  /** Seed of the deterministic generator. Default 1. */
  seed?: number;
}

/**
 * A synthetic Ada-KV-like profile (Feng et al., arXiv 2407.11550): each layer spends
 * `budgetFraction x contextLength x kvHeadCount` tokens, split over its heads in proportion to
 * log-normal weights (heavy-tailed, as Ada-KV's attention-mass allocation is), each head capped at the
 * context. Deterministic for a seed; for tests and benchmarks when no measured profile is at hand.
 * @throws ValidationError naming a bad option.
 */
export function syntheticHeavyTailedProfile(options: SyntheticProfileOptions): HeadLoadProfile {
  const { layerCount, kvHeadCount, contextLength, budgetFraction = 0.2, sigma = 1, seed = 1 } = options;
  const issues: ValidationIssue[] = [];
  for (const [name, value] of Object.entries({ layerCount, kvHeadCount, contextLength })) {
    if (!(Number.isInteger(value) && value >= 1))
      issues.push({ path: `$.${name}`, message: `expected a positive integer, got ${value}` });
  }
  if (!(budgetFraction > 0 && budgetFraction <= 1))
    issues.push({ path: '$.budgetFraction', message: `expected (0, 1], got ${budgetFraction}` });
  if (!(sigma >= 0 && Number.isFinite(sigma)))
    issues.push({ path: '$.sigma', message: `expected a finite number >= 0, got ${sigma}` });
  if (issues.length > 0)
    throw new ValidationError(`invalid synthetic profile options:\n${formatIssues(issues)}`, issues);
  const random = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const mean = Array.from({ length: layerCount }, () => {
    const weights = Array.from({ length: kvHeadCount }, () => Math.exp(sigma * gaussian()));
    const total = weights.reduce((sum, value) => sum + value, 0);
    const budget = budgetFraction * contextLength * kvHeadCount;
    return weights.map((weight) => Math.max(1, Math.min(contextLength, Math.round((budget * weight) / total))));
  });
  return {
    version: 1,
    layerCount,
    kvHeadCount,
    contextLength,
    mean,
    sampleCount: 1,
    policy: { name: 'synthetic-ada-kv', settings: { budgetFraction, sigma, seed } },
    source: `synthetic:heavy-tailed(budgetFraction=${budgetFraction}, sigma=${sigma}, seed=${seed})`,
  };
}
