import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DUO_ATTENTION_MODELS, duoAttentionFile, hasSharedProfiles } from './__fixtures__/shared.js';
import { duoAttentionProfile, parseDuoAttentionGates, selectRetrievalHeads } from './duo-attention.js';
import { ValidationError } from './errors.js';
import { parseHeadLoadProfile, tileProfileLayers, validateHeadLoadProfile } from './head-load-profile.js';

describe('DuoAttention profiles from ../shared', () => {
  it.skipIf(!hasSharedProfiles)('loads each of the three gate files as 32 x 8 budgets', () => {
    for (const model of DUO_ATTENTION_MODELS) {
      const gates = parseDuoAttentionGates(readFileSync(duoAttentionFile(model), 'utf8'));
      for (const selection of [{ threshold: 0.5 }, { sparsity: 0.5 }]) {
        const profile = validateHeadLoadProfile(
          duoAttentionProfile(gates, { contextLength: 32768, selection, source: model }),
        );
        expect(profile.mean).toHaveLength(32);
        for (const row of profile.mean) {
          expect(row).toHaveLength(8);
          for (const tokens of row) expect([32768, 384]).toContain(tokens);
        }
      }
      const half = duoAttentionProfile(gates, { contextLength: 32768, selection: { sparsity: 0.5 } });
      expect(half.mean.flat().filter((tokens) => tokens === 32768)).toHaveLength(128);
    }
  });
  if (!hasSharedProfiles) it.skip('../shared/profiles/duo-attention is missing: real-profile tests skipped', () => {});
});

describe('duoAttentionProfile', () => {
  const gates = [
    [0.9, -0.0001, 0.5],
    [0.2, 1.0, 0.0],
  ];

  it('keeps the full context on retrieval heads and sink + recent elsewhere', () => {
    const profile = duoAttentionProfile(gates, { contextLength: 1000, sinkSize: 4, recentSize: 16 });
    expect(profile.mean).toEqual([
      [1000, 20, 1000],
      [20, 1000, 20],
    ]);
    expect(profile.policy).toEqual({
      name: 'duo-attention',
      settings: { threshold: 0.5, sinkSize: 4, recentSize: 16 },
    });
  });

  it('caps streaming heads at the context and applies the sparsity quantile deterministically', () => {
    expect(duoAttentionProfile(gates, { contextLength: 10 }).mean[0]).toEqual([10, 10, 10]);
    // 6 heads, sparsity 0.5: ceil(0.5 * 5) = 3 streaming heads, the three lowest gates
    expect(selectRetrievalHeads(gates, { sparsity: 0.5 })).toEqual([
      [true, false, true],
      [false, true, false],
    ]);
    expect(
      selectRetrievalHeads(gates, { sparsity: 1 })
        .flat()
        .every((x) => !x),
    ).toBe(true);
    expect(
      selectRetrievalHeads(gates, { sparsity: 0 })
        .flat()
        .every((x) => x),
    ).toBe(true);
  });

  it('rejects bad options and files, naming them', () => {
    expect(() => duoAttentionProfile(gates, { contextLength: 0 })).toThrow(
      /\$\.contextLength: expected an integer >= 1, got 0/,
    );
    expect(() => duoAttentionProfile(gates, { contextLength: 8, selection: { sparsity: 1.5 } })).toThrow(
      /\$\.selection\.sparsity/,
    );
    expect(() => parseDuoAttentionGates('0.1\t0.2\n0.3\n', 'x.tsv')).toThrow(
      /x\.tsv.*line 2: expected 2 columns like line 1, got 1/s,
    );
    expect(() => parseDuoAttentionGates('0.1\tabc\n')).toThrow(/line 1 column 2: not a number: "abc"/);
    expect(() => parseDuoAttentionGates('\n\n')).toThrow(/no rows/);
  });
});

describe('head-load profile documents', () => {
  const profile = duoAttentionProfile(
    [
      [1, 0],
      [0, 1],
    ],
    { contextLength: 500 },
  );

  it('round-trips through JSON', () => {
    expect(parseHeadLoadProfile(JSON.stringify(profile))).toEqual(profile);
  });

  it('reports every problem with its JSON path', () => {
    const bad = {
      ...profile,
      mean: [
        [500, 600],
        [1, -2, 3],
      ],
      sampleCount: 0,
    };
    try {
      validateHeadLoadProfile(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const paths = (error as ValidationError).issues.map((issue) => issue.path);
      expect(paths).toContain('$.mean[1][1]');
      expect(paths).toContain('$.sampleCount');
    }
    expect(() =>
      validateHeadLoadProfile({
        ...profile,
        mean: [
          [500, 600],
          [1, 2],
        ],
      }),
    ).toThrow(/\$\.mean\[0\]\[1\]: keeps 600 tokens, more than contextLength 500/);
    expect(() => validateHeadLoadProfile({ ...profile, mean: [[1, 2]] })).toThrow(/\$\.mean: expected 2 layers/);
    expect(() =>
      validateHeadLoadProfile({
        ...profile,
        max: [
          [1, 0],
          [0, 1],
        ],
      }),
    ).toThrow(/\$\.max\[0\]\[0\]: max 1 is below mean 500/);
    expect(() => parseHeadLoadProfile('{oops', 'p.json')).toThrow(/p\.json: not valid JSON/);
  });

  it('tiles layers cyclically for deeper models', () => {
    const tiled = tileProfileLayers(profile, 5);
    expect(tiled.mean.map((row) => row[0])).toEqual([500, 384, 500, 384, 500]);
    expect(validateHeadLoadProfile(tiled).layerCount).toBe(5);
    expect(tiled.source).toMatch(/tiled from 2 to 5/);
    expect(() => tileProfileLayers(profile, 0)).toThrow(/layerCount/);
  });
});
