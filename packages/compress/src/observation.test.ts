import { ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { validateLayerObservation, validateLayerPosition } from './observation.js';

describe('validateLayerObservation', () => {
  it('returns the window rows W of well-formed window scores', () => {
    const observation = { seqLen: 4, queryHeadCount: 2, kvHeadCount: 1, windowScores: new Float32Array(2 * 3 * 4) };
    expect(validateLayerObservation(observation)).toBe(3);
    expect(validateLayerObservation({ seqLen: 4, queryHeadCount: 2, kvHeadCount: 2 })).toBe(0);
  });

  it('calls an empty prompt by its name', () => {
    expect(() => validateLayerObservation({ seqLen: 0, queryHeadCount: 1, kvHeadCount: 1 })).toThrow(
      /\$\.seqLen: expected a positive integer, got 0 \(empty prompt: nothing to compress\)/,
    );
  });

  it('lists every bad field with the value and what was expected', () => {
    try {
      validateLayerObservation({
        seqLen: 4,
        queryHeadCount: 4,
        kvHeadCount: 2,
        windowScores: new Float32Array(4 * 4 * 5),
        keyNorms: new Float32Array(7),
        accumulatedAttention: new Float32Array(16),
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const issues = (error as ValidationError).issues.map((issue) => `${issue.path}: ${issue.message}`);
      expect(issues).toEqual([
        '$.windowScores: expected queryHeadCount 4 x W x seqLen 4 values with 1 <= W <= 4, got 80',
        '$.keyNorms: expected 2 kv heads x 4 keys = 8 values, got 7',
      ]);
    }
  });

  it('rejects kv heads that do not divide the query heads, and window rows beyond the prompt', () => {
    expect(() => validateLayerObservation({ seqLen: 4, queryHeadCount: 6, kvHeadCount: 4 })).toThrow(
      /divisor of queryHeadCount 6/,
    );
    const tooMany = { seqLen: 2, queryHeadCount: 1, kvHeadCount: 1, windowScores: new Float32Array(6) };
    expect(() => validateLayerObservation(tooMany)).toThrow(/1 <= W <= 2, got 6/);
  });
});

describe('validateLayerPosition', () => {
  it('accepts indices in range and names the bad one', () => {
    expect(() => validateLayerPosition({ layerIndex: 3, layerCount: 4 })).not.toThrow();
    expect(() => validateLayerPosition({ layerIndex: 4, layerCount: 4 })).toThrow(
      /layerIndex: expected an integer in \[0, 3\], got 4/,
    );
    expect(() => validateLayerPosition({ layerIndex: 0, layerCount: 0 })).toThrow(/layerCount/);
  });
});
