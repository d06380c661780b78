import { buildRopeTable } from '../../rope-table.js';
import { type ConformanceCase, drawSize, formatSize, product } from '../conformance-case.js';
import { referenceRope } from '../reference/dense.js';

/** `rope` cases: both pair layouts, head dims 8, 64 and 128, batches 1 and 7, Llama 3.1 scaling. */
export const ropeCases: ConformanceCase[] = product({
  rows: [1, 7] as const,
  headDim: [8, 64, 128] as const,
  layout: ['adjacent', 'half-split'] as const,
}).map(({ rows, headDim, layout }) => ({
  kernel: 'rope',
  name: `rows=${formatSize(rows)} heads=1..5 headDim=${headDim} ${layout}`,
  storageDType: 'f32',
  headDim,
  async execute(context, random, tolerance) {
    const rowCount = drawSize(random, rows);
    const headCount = random.integer(1, 5);
    const tablePositionCount = random.integer(1, 5000);
    const scaling = random.pick([
      null,
      { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } as const,
    ]);
    const tableValues = buildRopeTable({
      headDim,
      base: random.pick([10000, 500000]),
      scaling,
      positionCount: tablePositionCount,
    });
    const dataValues = random.floats(rowCount * headCount * headDim);
    const positionValues = Int32Array.from({ length: rowCount }, () => random.integer(0, tablePositionCount - 1));
    const data = context.input('f32', dataValues, 'data');
    const positions = context.input('i32', positionValues, 'positions');
    const table = context.input('f32', tableValues, 'table');
    context.backend.run('rope', { data, positions, table, rowCount, headCount, headDim, tablePositionCount, layout });
    const expected = referenceRope(dataValues, positionValues, tableValues, headCount, headDim, layout);
    context.expectClose('data', await context.read(data), expected, tolerance);
  },
}));
