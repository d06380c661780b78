import { formatIssues, type HeadLoadProfile, ValidationError, type ValidationIssue } from '@fairkv/core';

/**
 * Parses a HeadKV head-importance file (FYYFU/HeadKV `Important_Head/head_score/*_heads.json`, read by
 * `ReasonSnapKVCluster`): one JSON object whose keys are `"<layer>-<head>"` and whose values are lists of
 * scores; a head's importance is the mean of its list (`np.mean(l[1])`). Heads are query heads in HeadKV's
 * files. Entries are placed by their key, not by file order.
 * @returns importance `[layer][head]`
 * @throws ValidationError naming a bad key, a bad value, or a missing (layer, head).
 */
export function parseHeadKvImportance(text: string, source = 'head importance'): number[][] {
  let json: unknown;
  try {
    json = JSON.parse(text.trim().split(/\r?\n/)[0] ?? '');
  } catch (error) {
    throw new ValidationError(`${source}: not valid JSON (${(error as Error).message})`, [
      { path: '$', message: 'not valid JSON' },
    ]);
  }
  const issues: ValidationIssue[] = [];
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    issues.push({ path: '$', message: 'expected an object of "layer-head": [scores]' });
    throw new ValidationError(`${source}: invalid head importance:\n${formatIssues(issues)}`, issues);
  }
  const entries: { layer: number; head: number; value: number }[] = [];
  for (const [key, scores] of Object.entries(json)) {
    const match = /^(\d+)-(\d+)$/.exec(key);
    const path = `$[${JSON.stringify(key)}]`;
    if (!match) {
      issues.push({ path, message: `expected a key "<layer>-<head>", got ${JSON.stringify(key)}` });
      continue;
    }
    const list = Array.isArray(scores) ? scores : [scores];
    if (list.length === 0 || !list.every((value) => typeof value === 'number' && Number.isFinite(value))) {
      issues.push({ path, message: 'expected a non-empty list of finite numbers' });
      continue;
    }
    const value = (list as number[]).reduce((sum, item) => sum + item, 0) / list.length;
    entries.push({ layer: Number(match[1]), head: Number(match[2]), value });
  }
  const layerCount = Math.max(0, ...entries.map((entry) => entry.layer + 1));
  const headCount = Math.max(0, ...entries.map((entry) => entry.head + 1));
  const rows: number[][] = Array.from({ length: layerCount }, () => new Array<number>(headCount).fill(Number.NaN));
  for (const entry of entries) rows[entry.layer]![entry.head] = entry.value;
  if (issues.length === 0 && entries.length === 0) issues.push({ path: '$', message: 'no heads' });
  rows.forEach((row, layer) => {
    row.forEach((value, head) => {
      if (Number.isNaN(value)) issues.push({ path: `$["${layer}-${head}"]`, message: 'missing' });
    });
  });
  if (issues.length > 0)
    throw new ValidationError(`${source}: invalid head importance:\n${formatIssues(issues.slice(0, 20))}`, issues);
  return rows;
}

/**
 * Uses a measured head-load profile as head importance (`mean[layer][kvHead]`), e.g. to give HeadKV budgets
 * shaped like a profile measured with another policy.
 */
export function importanceFromProfile(profile: HeadLoadProfile): number[][] {
  return profile.mean.map((row) => [...row]);
}
