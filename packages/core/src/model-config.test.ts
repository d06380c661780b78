import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { parseHfConfig, queryGroupSize, validateModelConfig } from './model-config.js';
import { getModelPreset, MODEL_PRESET_NAMES } from './model-presets.js';
import { modelSizes } from './model-sizes.js';

describe('model presets', () => {
  it('has the five required presets', () => {
    expect(MODEL_PRESET_NAMES).toEqual([
      'llama-3.1-8b',
      'llama-3.3-70b',
      'mistral-small-24b-2501',
      'mistral-7b-v0.2',
      'stories260k',
    ]);
  });

  it('keeps the public numbers', () => {
    const l70 = getModelPreset('llama-3.3-70b');
    expect([l70.layerCount, l70.hiddenSize, l70.queryHeadCount, l70.kvHeadCount, l70.headDim, l70.ffnSize]).toEqual([
      80, 8192, 64, 8, 128, 28672,
    ]);
    expect(l70.ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    const m24 = getModelPreset('mistral-small-24b-2501');
    expect([m24.layerCount, m24.hiddenSize, m24.headDim, m24.ropeTheta, m24.vocabSize]).toEqual([
      40, 5120, 128, 1e8, 131072,
    ]);
    const m7 = getModelPreset('mistral-7b-v0.2');
    expect([m7.headDim, m7.ropeTheta, m7.vocabSize, m7.maxContext]).toEqual([128, 1e6, 32000, 32768]);
    const s = getModelPreset('stories260k');
    expect([s.layerCount, s.hiddenSize, s.queryHeadCount, s.kvHeadCount, s.headDim, s.ffnSize, s.vocabSize]).toEqual([
      5, 64, 8, 4, 8, 172, 512,
    ]);
    expect(s.ropeLayout).toBe('adjacent');
    expect(s.tieWordEmbeddings).toBe(true);
  });

  it('derives parameter counts that match the published model sizes', () => {
    const params = (name: string) => modelSizes(getModelPreset(name), 'bf16').totalWeightBytes / 2;
    expect(params('llama-3.1-8b') / 1e9).toBeCloseTo(8.03, 2);
    expect(params('llama-3.3-70b') / 1e9).toBeCloseTo(70.55, 1);
    expect(params('mistral-small-24b-2501') / 1e9).toBeCloseTo(23.57, 1);
    expect(params('mistral-7b-v0.2') / 1e9).toBeCloseTo(7.24, 2);
  });

  it('derives per-dtype sizes', () => {
    const l70 = getModelPreset('llama-3.3-70b');
    const bf16 = modelSizes(l70, 'bf16');
    expect(queryGroupSize(l70)).toBe(8);
    expect(bf16.kvBytesPerTokenPerKvHead).toBe(2 * 128 * 2);
    // Wq rows (8 x 128 x 8192) + Wk + Wv (128 x 8192 each) + Wo columns (8192 x 8 x 128), 2 bytes each
    expect(bf16.kvHeadSliceWeightBytes).toBe((8 + 1 + 1 + 8) * 128 * 8192 * 2);
    expect(bf16.kvHeadSliceWeightBytes / 1e6).toBeCloseTo(37.7, 1);
    expect(modelSizes(l70, 'f32').kvHeadSliceWeightBytes).toBe(2 * bf16.kvHeadSliceWeightBytes);
    expect(bf16.mlpWeightBytesPerLayer).toBe(3 * 8192 * 28672 * 2);
    expect(bf16.kvBytesPerToken).toBe(80 * 8 * 2 * 128 * 2);
    const stories = modelSizes(getModelPreset('stories260k'), 'f32');
    expect(stories.lmHeadBytes).toBe(0);
    expect(stories.lmHeadReadBytes).toBe(512 * 64 * 4);
  });

  it('rejects unknown presets with the list', () => {
    expect(() => getModelPreset('gpt-5')).toThrow(/unknown model preset "gpt-5": expected one of llama-3.1-8b/);
  });
});

describe('parseHfConfig', () => {
  const base = {
    model_type: 'llama',
    num_hidden_layers: 2,
    hidden_size: 64,
    num_attention_heads: 4,
    intermediate_size: 128,
    vocab_size: 100,
    max_position_embeddings: 256,
  };

  it('applies transformers defaults', () => {
    const config = parseHfConfig(base);
    expect(config.kvHeadCount).toBe(4);
    expect(config.headDim).toBe(16);
    expect(config.ropeTheta).toBe(10000);
    expect(config.rmsNormEps).toBe(1e-6);
    expect(config.ropeLayout).toBe('half-split');
  });

  it('names the JSON path, the value and the expectation', () => {
    try {
      parseHfConfig({ ...base, num_hidden_layers: -3, vocab_size: 'many' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const issues = (error as ConfigError).issues;
      expect(issues.map((issue) => issue.path)).toEqual(['$.num_hidden_layers', '$.vocab_size']);
      expect(issues[0]!.message).toMatch(/got -3/);
      expect(issues[1]!.message).toMatch(/got "many"/);
      expect((error as ConfigError).code).toBe('FAIRKV_CONFIG');
    }
  });

  it('rejects GQA groups that do not divide and unsupported architectures', () => {
    expect(() => parseHfConfig({ ...base, num_key_value_heads: 3 })).toThrow(
      /\$\.kvHeadCount: must divide queryHeadCount 4 \(got 3\)/,
    );
    expect(() => parseHfConfig({ ...base, model_type: 'gpt2' })).toThrow(
      /\$\.model_type: expected one of llama, mistral \(got "gpt2"\)/,
    );
    expect(() => parseHfConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(
      /\$\.rope_scaling\.rope_type/,
    );
    expect(() => parseHfConfig({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(
      /\$\.rope_scaling\.low_freq_factor/,
    );
    expect(() => parseHfConfig(null)).toThrow(ConfigError);
  });

  it('validateModelConfig round-trips a preset through JSON and rejects unknown keys', () => {
    const preset = getModelPreset('llama-3.1-8b');
    expect(validateModelConfig(JSON.parse(JSON.stringify(preset)))).toEqual(preset);
    expect(() => validateModelConfig({ ...preset, layers: 3 })).toThrow(/layers/);
  });
});
