/**
 * A small float64 reference forward pass of a Llama model (llama2.c `run.c` `forward`, written for
 * clarity, not speed), used by tests to pin down what the loader's weights mean: the
 * `[out, in]` row-major orientation, the GQA head mapping and the RoPE pair layout.
 *
 * @packageDocumentation
 */
import type { ModelConfig, RopeLayout } from '@fairkv/core';
import type { LoadedModel } from '../model/loaded-model.js';
import { layerWeightName } from '../model/weight-names.js';

interface LayerWeights {
  attentionNorm: Float64Array;
  wq: Float64Array;
  wk: Float64Array;
  wv: Float64Array;
  wo: Float64Array;
  feedForwardNorm: Float64Array;
  gate: Float64Array;
  up: Float64Array;
  down: Float64Array;
}

/** y = W x for W `[rows, columns]` row-major. */
function matVec(weight: Float64Array, input: Float64Array, rows: number, columns: number): Float64Array {
  const output = new Float64Array(rows);
  for (let row = 0; row < rows; row++) {
    let sum = 0;
    const base = row * columns;
    for (let column = 0; column < columns; column++) sum += weight[base + column]! * input[column]!;
    output[row] = sum;
  }
  return output;
}

function rmsNorm(input: Float64Array, weight: Float64Array, epsilon: number): Float64Array {
  let squares = 0;
  for (const value of input) squares += value * value;
  const scale = 1 / Math.sqrt(squares / input.length + epsilon);
  return input.map((value, index) => value * scale * weight[index]!);
}

/** Rotates one head vector in place at `position`. */
export function applyRope(
  vector: Float64Array,
  offset: number,
  headDim: number,
  position: number,
  theta: number,
  layout: RopeLayout,
): void {
  for (let pair = 0; pair < headDim / 2; pair++) {
    const frequency = 1 / theta ** ((2 * pair) / headDim);
    const angle = position * frequency;
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const first = offset + (layout === 'adjacent' ? 2 * pair : pair);
    const second = offset + (layout === 'adjacent' ? 2 * pair + 1 : pair + headDim / 2);
    const a = vector[first]!;
    const b = vector[second]!;
    vector[first] = a * cos - b * sin;
    vector[second] = a * sin + b * cos;
  }
}

/** Float64 Llama with a KV cache, one token at a time. */
export class ReferenceLlama {
  private readonly keys: Float64Array[][];
  private readonly values: Float64Array[][];

  private constructor(
    readonly config: ModelConfig,
    private readonly embedding: Float64Array,
    private readonly layers: LayerWeights[],
    private readonly outputNorm: Float64Array,
    private readonly output: Float64Array,
    private readonly ropeLayout: RopeLayout,
  ) {
    this.keys = layers.map(() => []);
    this.values = layers.map(() => []);
  }

  /** Reads every weight of `model` into float64. `ropeLayout` overrides the config's (to show the wrong one fails). */
  static async load(model: LoadedModel, ropeLayout: RopeLayout = model.config.ropeLayout): Promise<ReferenceLlama> {
    if (model.config.ropeScaling !== null) throw new Error('the reference forward pass has no RoPE scaling');
    const read = async (name: string) => Float64Array.from(await model.weights.read(name));
    const layers: LayerWeights[] = [];
    for (let layer = 0; layer < model.config.layerCount; layer++) {
      const name = (kind: Parameters<typeof layerWeightName>[1]) => read(layerWeightName(layer, kind));
      layers.push({
        attentionNorm: await name('attentionNorm'),
        wq: await name('attention.wq'),
        wk: await name('attention.wk'),
        wv: await name('attention.wv'),
        wo: await name('attention.wo'),
        feedForwardNorm: await name('feedForwardNorm'),
        gate: await name('feedForward.gate'),
        up: await name('feedForward.up'),
        down: await name('feedForward.down'),
      });
    }
    return new ReferenceLlama(
      model.config,
      await read('tokenEmbedding'),
      layers,
      await read('outputNorm'),
      await read('output'),
      ropeLayout,
    );
  }

  /** Logits after feeding `token` at the next position. */
  forward(token: number): Float64Array {
    const config = this.config;
    const { hiddenSize, headDim, queryHeadCount, kvHeadCount, ffnSize } = config;
    const position = this.keys[0]!.length;
    const group = queryHeadCount / kvHeadCount;
    let x = this.embedding.slice(token * hiddenSize, (token + 1) * hiddenSize);
    this.layers.forEach((layer, layerIndex) => {
      const normed = rmsNorm(x, layer.attentionNorm, config.rmsNormEps);
      const query = matVec(layer.wq, normed, queryHeadCount * headDim, hiddenSize);
      const key = matVec(layer.wk, normed, kvHeadCount * headDim, hiddenSize);
      const value = matVec(layer.wv, normed, kvHeadCount * headDim, hiddenSize);
      for (let head = 0; head < queryHeadCount; head++)
        applyRope(query, head * headDim, headDim, position, config.ropeTheta, this.ropeLayout);
      for (let head = 0; head < kvHeadCount; head++)
        applyRope(key, head * headDim, headDim, position, config.ropeTheta, this.ropeLayout);
      this.keys[layerIndex]!.push(key);
      this.values[layerIndex]!.push(value);
      const attention = new Float64Array(queryHeadCount * headDim);
      for (let head = 0; head < queryHeadCount; head++) {
        const kvHead = Math.floor(head / group);
        const scores = this.keys[layerIndex]!.map((cached) => {
          let dot = 0;
          for (let index = 0; index < headDim; index++)
            dot += query[head * headDim + index]! * cached[kvHead * headDim + index]!;
          return dot / Math.sqrt(headDim);
        });
        const maximum = Math.max(...scores);
        const weights = scores.map((score) => Math.exp(score - maximum));
        const total = weights.reduce((sum, weight) => sum + weight, 0);
        this.values[layerIndex]!.forEach((cached, time) => {
          for (let index = 0; index < headDim; index++) {
            attention[head * headDim + index]! += (weights[time]! / total) * cached[kvHead * headDim + index]!;
          }
        });
      }
      const projected = matVec(layer.wo, attention, hiddenSize, queryHeadCount * headDim);
      x = x.map((value, index) => value + projected[index]!);
      const normed2 = rmsNorm(x, layer.feedForwardNorm, config.rmsNormEps);
      const gate = matVec(layer.gate, normed2, ffnSize, hiddenSize);
      const up = matVec(layer.up, normed2, ffnSize, hiddenSize);
      const hidden = gate.map((value, index) => (value / (1 + Math.exp(-value))) * up[index]!);
      const down = matVec(layer.down, hidden, hiddenSize, ffnSize);
      x = x.map((value, index) => value + down[index]!);
    });
    return matVec(this.output, rmsNorm(x, this.outputNorm, config.rmsNormEps), config.vocabSize, hiddenSize);
  }

  /** Feeds the prompt, then greedily appends up to `maxNewTokens` tokens (stopping at `stopToken`). */
  greedy(
    promptTokens: readonly number[],
    maxNewTokens: number,
    stopToken?: number,
    until?: (tokens: number[]) => boolean,
  ): number[] {
    const tokens = [...promptTokens];
    let logits: Float64Array = new Float64Array(0);
    for (const token of promptTokens) logits = this.forward(token);
    for (let step = 0; step < maxNewTokens; step++) {
      let best = 0;
      for (let index = 1; index < logits.length; index++) if (logits[index]! > logits[best]!) best = index;
      if (best === stopToken) break;
      tokens.push(best);
      if (until?.(tokens)) break;
      logits = this.forward(best);
    }
    return tokens;
  }
}
