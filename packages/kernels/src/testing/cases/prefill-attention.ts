import { roundToDType } from '../../half-precision.js';
import { type ConformanceCase, drawSize, formatSize, product, type SizeSpec } from '../conformance-case.js';
import { referencePrefillAttention } from '../reference/attention.js';

type HalfType = 'bf16' | 'f16';
/** Which operands a call rounds: K and V (`kvRounding`), or every product's (`productRounding`). */
interface Rounding {
  kv?: HalfType;
  product?: HalfType;
}

/**
 * `prefill-attention` cases: GQA groups 1, 2 and 8, head dims 8, 64 and 128, prompts of 1 token, of
 * random lengths up to 41 and of 65-260 tokens (several 64-row tiles of a tiled kernel, the last one
 * partial), observation windows of 0, 1, some and all tokens (as rows, column sums or both), with the
 * accumulated scores (H2O's column sums) asked for in about half of the calls; K and V rounded to bf16 or
 * f16 (`kvRounding`) in a sixth of the calls each and every product's operands (`productRounding`) in
 * another sixth each, and each of the four always in cases of several tiles. Every result is held to
 * f32's tolerance against the reference on the rounded operands; with `productRounding` the output
 * also gets the contract's allowance for the rounded probabilities ({@link probabilityRoundingAllowance}).
 */
export const prefillAttentionCases: ConformanceCase[] = [
  ...product({
    group: [1, 2, 8] as const,
    headDim: [8, 64, 128] as const,
    tokens: [1, [2, 41], [65, 260]] as readonly SizeSpec[],
  }).map(({ group, headDim, tokens }) => prefillCase(group, headDim, tokens, 'random')),
  ...product({
    headDim: [64, 128] as const,
    type: ['bf16', 'f16'] as const,
    operands: ['kv', 'product'] as const,
  }).map(({ headDim, type, operands }) => prefillCase(8, headDim, [65, 260], { [operands]: type })),
];

const RANDOM_ROUNDINGS: readonly Rounding[] = [
  {},
  {},
  { kv: 'bf16' },
  { kv: 'f16' },
  { product: 'bf16' },
  { product: 'f16' },
];

/** The case name's suffix for a fixed rounding. */
function roundingName(rounding: Rounding): string {
  return `${rounding.kv ? ` kvRounding=${rounding.kv}` : ''}${rounding.product ? ` productRounding=${rounding.product}` : ''}`;
}

function prefillCase(group: number, headDim: number, tokens: SizeSpec, fixed: Rounding | 'random'): ConformanceCase {
  return {
    kernel: 'prefill-attention',
    name: `tokens=${formatSize(tokens)} group=${group} kvHeads=1..2 headDim=${headDim}${fixed === 'random' ? '' : roundingName(fixed)}`,
    storageDType: 'f32',
    headDim,
    async execute(context, random, tolerance) {
      const { kv: kvRounding, product: productRounding } = fixed === 'random' ? random.pick(RANDOM_ROUNDINGS) : fixed;
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
        ...(productRounding ? { productRounding } : {}),
      });
      const rounded = (values: Float32Array, type: HalfType | undefined) =>
        type ? values.map((x) => roundToDType(type, x)) : values;
      const kvType = kvRounding ?? productRounding;
      const reference = (values: Float32Array, window: number) =>
        referencePrefillAttention(
          rounded(queryValues, productRounding),
          rounded(keyValues, kvType),
          values,
          tokenCount,
          queryHeadCount,
          kvHeadCount,
          headDim,
          window,
          scale,
        );
      const roundedValues = rounded(valueValues, kvType);
      const expected = reference(roundedValues, windowSize);
      const allowance = productRounding
        ? probabilityRoundingAllowance(
            productRounding,
            reference(roundedValues.map(Math.abs), 0).output,
            roundedValues,
            tokenCount,
            queryHeadCount,
            kvHeadCount,
            headDim,
          )
        : undefined;
      context.expectClose('output', await context.read(output), expected.output, tolerance, allowance);
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

/**
 * What `productRounding` allows the output to differ from the one with unrounded probabilities, per
 * element: `u sum_k p_k |v_k|` (`absoluteOutput`, the reference's output on `|v|`) with `u` the type's
 * unit roundoff (2^-8 bf16, 2^-11 f16), plus, for f16, `2^-25 sum_k<=t |v_k|` for probabilities below
 * f16's normal range (rounded to a multiple of 2^-24).
 */
function probabilityRoundingAllowance(
  type: HalfType,
  absoluteOutput: Float64Array,
  values: Float32Array,
  tokenCount: number,
  queryHeadCount: number,
  kvHeadCount: number,
  headDim: number,
): Float64Array {
  const unit = type === 'bf16' ? 2 ** -8 : 2 ** -11;
  const allowance = absoluteOutput.map((x) => unit * x);
  if (type === 'f16') {
    const group = queryHeadCount / kvHeadCount;
    const prefix = new Float64Array(kvHeadCount * headDim); // sum of |v| over the keys so far
    for (let t = 0; t < tokenCount; t++) {
      for (let i = 0; i < kvHeadCount * headDim; i++) prefix[i]! += Math.abs(values[t * kvHeadCount * headDim + i]!);
      for (let q = 0; q < queryHeadCount; q++)
        for (let d = 0; d < headDim; d++)
          allowance[(t * queryHeadCount + q) * headDim + d]! += 2 ** -25 * prefix[Math.floor(q / group) * headDim + d]!;
    }
  }
  return allowance;
}
