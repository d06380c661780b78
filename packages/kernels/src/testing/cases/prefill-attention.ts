import { roundToDType } from '../../half-precision.js';
import { type ConformanceCase, drawSize, formatSize, product, type SizeSpec } from '../conformance-case.js';
import { referencePrefillAttention } from '../reference/attention.js';

type Rounding = 'bf16' | 'f16' | undefined;

/**
 * `prefill-attention` cases: GQA groups 1, 2 and 8, head dims 8, 64 and 128, prompts of 1 token, of
 * random lengths up to 41 and of 65-260 tokens (several 64-row tiles of a tiled kernel, the last one
 * partial), observation windows of 0, 1, some and all tokens (as rows, column sums or both), with the
 * accumulated scores (H2O's column sums) asked for in about half of the calls; K and V rounded to bf16 or
 * f16 (`kvRounding`) in a third of the calls each, and always in four cases of several tiles.
 */
export const prefillAttentionCases: ConformanceCase[] = [
  ...product({
    group: [1, 2, 8] as const,
    headDim: [8, 64, 128] as const,
    tokens: [1, [2, 41], [65, 260]] as readonly SizeSpec[],
  }).map(({ group, headDim, tokens }) => prefillCase(group, headDim, tokens, 'random')),
  ...product({ headDim: [64, 128] as const, rounding: ['bf16', 'f16'] as const }).map(({ headDim, rounding }) =>
    prefillCase(8, headDim, [65, 260], rounding),
  ),
];

function prefillCase(group: number, headDim: number, tokens: SizeSpec, rounding: Rounding | 'random'): ConformanceCase {
  return {
    kernel: 'prefill-attention',
    name: `tokens=${formatSize(tokens)} group=${group} kvHeads=1..2 headDim=${headDim}${rounding === 'random' ? '' : ` kvRounding=${rounding}`}`,
    storageDType: 'f32',
    headDim,
    async execute(context, random, tolerance) {
      const kvRounding: Rounding = rounding === 'random' ? random.pick([undefined, 'bf16', 'f16'] as const) : rounding;
      const tokenCount = drawSize(random, tokens);
      const kvHeadCount = random.integer(1, 2);
      const queryHeadCount = kvHeadCount * group;
      const windowSize = random.pick([0, 1, random.integer(0, tokenCount), tokenCount]);
      const scale = 1 / Math.sqrt(headDim);
      const queryValues = random.floats(tokenCount * queryHeadCount * headDim, -2, 2);
      const keyValues = random.floats(tokenCount * kvHeadCount * headDim, -2, 2);
      const valueValues = random.floats(tokenCount * kvHeadCount * headDim);
      const query = context.input('f32', queryValues, 'query');
      const key = context.input('f32', keyValues, 'key');
      const value = context.input('f32', valueValues, 'value');
      const output = context.output('f32', tokenCount * queryHeadCount * headDim, 'output');
      // a window comes as its rows, its column sums, or both
      const windowForm = windowSize > 0 ? random.pick(['rows', 'sums', 'both'] as const) : undefined;
      const windowScores =
        windowForm === 'rows' || windowForm === 'both'
          ? context.output('f32', queryHeadCount * windowSize * tokenCount, 'windowScores')
          : undefined;
      const windowScoreSums =
        windowForm === 'sums' || windowForm === 'both'
          ? context.output('f32', queryHeadCount * tokenCount, 'windowScoreSums')
          : undefined;
      const accumulatedScores = random.pick([true, false])
        ? context.output('f32', queryHeadCount * tokenCount, 'accumulatedScores')
        : undefined;
      context.backend.run('prefill-attention', {
        query,
        key,
        value,
        output,
        ...(windowScores === undefined ? {} : { windowScores }),
        ...(windowScoreSums === undefined ? {} : { windowScoreSums }),
        ...(accumulatedScores === undefined ? {} : { accumulatedScores }),
        tokenCount,
        queryHeadCount,
        kvHeadCount,
        headDim,
        windowSize,
        scale,
        ...(kvRounding ? { kvRounding } : {}),
      });
      const rounded = (values: Float32Array) => (kvRounding ? values.map((x) => roundToDType(kvRounding, x)) : values);
      const expected = referencePrefillAttention(
        queryValues,
        rounded(keyValues),
        rounded(valueValues),
        tokenCount,
        queryHeadCount,
        kvHeadCount,
        headDim,
        windowSize,
        scale,
      );
      context.expectClose('output', await context.read(output), expected.output, tolerance);
      const optional = [
        [`windowScores (window ${windowSize})`, windowScores, expected.windowScores],
        [`windowScoreSums (window ${windowSize})`, windowScoreSums, expected.windowScoreSums],
        ['accumulatedScores', accumulatedScores, expected.accumulatedScores],
      ] as const;
      for (const [label, buffer, values] of optional)
        if (buffer !== undefined) context.expectClose(label, await context.read(buffer), values, tolerance);
    },
  };
}
