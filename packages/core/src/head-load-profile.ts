import { z } from 'zod';
import { formatIssues, ValidationError, type ValidationIssue } from './errors.js';
import { issuesFromZod, jsonPath } from './json-path.js';

/** The compression policy (and its settings) that produced a profile. */
export interface ProfilePolicy {
  /** Policy name, e.g. `duo-attention`, `ada-kv`. */
  name: string;
  /** Settings as given to the policy (budget, window, threshold...). */
  settings: Record<string, unknown>;
}

/**
 * How many KV tokens each (layer, kv head) keeps per request under a compression policy: the load
 * that placement balances. Version 1 of the document; matrices are indexed `[layer][kvHead]`.
 */
export interface HeadLoadProfile {
  version: 1;
  /** Layers the profile covers. */
  layerCount: number;
  /** Kv heads per layer. */
  kvHeadCount: number;
  /** Context length (prompt + generated tokens) a request is assumed to reach; no head keeps more. */
  contextLength: number;
  /** Mean tokens kept per request, `[layer][kvHead]`. */
  mean: number[][];
  /** 90th percentile over requests, when measured. */
  p90?: number[][];
  /** Maximum over requests, when measured. */
  max?: number[][];
  /** Requests aggregated (1 for analytic profiles). */
  sampleCount: number;
  /** The policy and settings that produced it. */
  policy: ProfilePolicy;
  /** Where it came from: a file path, `measured on N prompts of <model>`, `synthetic:...`. */
  source: string;
  /** Model the profile was measured on, when known. */
  model?: string;
}

const matrix = z.array(z.array(z.number().finite().nonnegative()));

/** Zod schema of the {@link HeadLoadProfile} document shape. */
export const headLoadProfileSchema = z.strictObject({
  version: z.literal(1),
  layerCount: z.number().int().positive(),
  kvHeadCount: z.number().int().positive(),
  contextLength: z.number().int().positive(),
  mean: matrix,
  p90: matrix.optional(),
  max: matrix.optional(),
  sampleCount: z.number().int().positive(),
  policy: z.strictObject({ name: z.string().min(1), settings: z.record(z.string(), z.unknown()) }),
  source: z.string(),
  model: z.string().optional(),
});

function checkMatrix(
  name: 'mean' | 'p90' | 'max',
  rows: number[][],
  profile: Pick<HeadLoadProfile, 'layerCount' | 'kvHeadCount' | 'contextLength'>,
  issues: ValidationIssue[],
): void {
  if (rows.length !== profile.layerCount) {
    issues.push({
      path: jsonPath([name]),
      message: `expected ${profile.layerCount} layers (layerCount), got ${rows.length}`,
    });
  }
  rows.forEach((row, layer) => {
    if (row.length !== profile.kvHeadCount) {
      issues.push({
        path: jsonPath([name, layer]),
        message: `expected ${profile.kvHeadCount} kv heads (kvHeadCount), got ${row.length}`,
      });
    }
    row.forEach((value, head) => {
      if (value > profile.contextLength) {
        issues.push({
          path: jsonPath([name, layer, head]),
          message: `keeps ${value} tokens, more than contextLength ${profile.contextLength}`,
        });
      }
    });
  });
}

/**
 * Validates a head-load profile document (e.g. parsed JSON) and returns it typed.
 * @throws ValidationError listing every violation with its JSON path.
 */
export function validateHeadLoadProfile(input: unknown): HeadLoadProfile {
  const parsed = headLoadProfileSchema.safeParse(input);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error, input);
    throw new ValidationError(`invalid head-load profile:\n${formatIssues(issues)}`, issues);
  }
  const profile = parsed.data as HeadLoadProfile;
  const issues: ValidationIssue[] = [];
  checkMatrix('mean', profile.mean, profile, issues);
  if (profile.p90) checkMatrix('p90', profile.p90, profile, issues);
  if (profile.max) {
    checkMatrix('max', profile.max, profile, issues);
    profile.max.forEach((row, layer) => {
      row.forEach((value, head) => {
        const mean = profile.mean[layer]?.[head];
        if (mean !== undefined && value < mean) {
          issues.push({ path: jsonPath(['max', layer, head]), message: `max ${value} is below mean ${mean}` });
        }
      });
    });
  }
  if (issues.length > 0) throw new ValidationError(`invalid head-load profile:\n${formatIssues(issues)}`, issues);
  return profile;
}

/**
 * Parses profile JSON text.
 * @param source - file name used in error messages
 * @throws ValidationError for malformed JSON or an invalid document.
 */
export function parseHeadLoadProfile(text: string, source = 'profile'): HeadLoadProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`${source}: not valid JSON (${(error as Error).message})`, [
      { path: '$', message: 'not valid JSON' },
    ]);
  }
  try {
    return validateHeadLoadProfile(json);
  } catch (error) {
    if (error instanceof ValidationError) throw new ValidationError(`${source}: ${error.message}`, error.issues);
    throw error;
  }
}

/**
 * Repeats (or truncates) a profile's layer rows cyclically to `layerCount` layers, for planning a
 * deeper model with a shallower model's measured profile. The `source` records the tiling.
 */
export function tileProfileLayers(profile: HeadLoadProfile, layerCount: number): HeadLoadProfile {
  if (!Number.isInteger(layerCount) || layerCount <= 0) {
    throw new ValidationError(`layerCount: expected a positive integer, got ${layerCount}`, [
      { path: '$.layerCount', message: `expected a positive integer, got ${layerCount}` },
    ]);
  }
  if (layerCount === profile.layerCount) return profile;
  const tile = (rows: number[][]) => Array.from({ length: layerCount }, (_, layer) => [...rows[layer % rows.length]!]);
  return {
    ...profile,
    layerCount,
    mean: tile(profile.mean),
    ...(profile.p90 ? { p90: tile(profile.p90) } : {}),
    ...(profile.max ? { max: tile(profile.max) } : {}),
    source: `${profile.source} (layers tiled from ${profile.layerCount} to ${layerCount})`,
  };
}

/** Sum of mean kept tokens over every head of a profile's layer. */
export function layerMeanTokens(profile: HeadLoadProfile, layer: number): number {
  return (profile.mean[layer] ?? []).reduce((sum, value) => sum + value, 0);
}
