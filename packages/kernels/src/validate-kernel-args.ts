import { describeValue, type KernelName, UnsupportedError, ValidationError, type ValidationIssue } from '@fairkv/core';
import type { BackendCapabilities, BufferDType, DeviceBuffer } from './backend.js';
import type { KernelArgsMap } from './kernel-args.js';
import { kvBlockElementCount } from './kv-layout.js';

/** Which dtypes a buffer argument accepts: f32 activations, i32 indices, or a declared storage dtype. */
type BufferKind = 'f32' | 'i32' | 'stored';

interface BufferRule {
  field: string;
  kind: BufferKind;
  /** Elements the shape implies. */
  elements: (args: Record<string, unknown>) => number;
  /** When false the buffer may be absent (it is then not read or written). */
  required?: (args: Record<string, unknown>) => boolean;
}

interface KernelRule {
  /** Integer fields allowed to be 0 (counts of work items). */
  counts: readonly string[];
  /** Integer fields that must be positive (dimensions). */
  dims: readonly string[];
  buffers: readonly BufferRule[];
  /** Buffers the kernel writes; each must differ from every other buffer argument unless listed in `mayAlias`. */
  outputs: readonly string[];
  /** `[output, input]` pairs that may be the same buffer (documented in-place uses). */
  mayAlias?: readonly (readonly [string, string])[];
  /** Further cross-field checks. */
  check?: (args: Record<string, unknown>, capabilities: BackendCapabilities) => ValidationIssue[];
}

const n = (args: Record<string, unknown>, field: string): number => args[field] as number;
const product =
  (...fields: string[]) =>
  (args: Record<string, unknown>): number =>
    fields.reduce((total, field) => total * n(args, field), 1);

/** An optional split width (0 when absent or not a positive integer: its own check reports that). */
const splitSize = (args: Record<string, unknown>, field: string): number => {
  const value = args[field];
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : 0;
};

const headDimCheck = (args: Record<string, unknown>, capabilities: BackendCapabilities): ValidationIssue[] => {
  const headDim = n(args, 'headDim');
  if (capabilities.headDims !== 'any' && !capabilities.headDims.includes(headDim)) {
    return [{ path: '$.headDim', message: `expected one of ${capabilities.headDims.join(', ')}, got ${headDim}` }];
  }
  return [];
};

const poolRules: readonly BufferRule[] = [
  {
    field: 'pool',
    kind: 'stored',
    elements: (a) => n(a, 'blockCount') * kvBlockElementCount(n(a, 'blockSize'), n(a, 'headDim')),
  },
  { field: 'blockTable', kind: 'i32', elements: product('blockTableLength') },
];
const poolDims = ['blockCount', 'blockSize', 'headDim', 'blockTableLength'];

const finite = (args: Record<string, unknown>, field: string, positive = false): ValidationIssue[] => {
  const value = args[field];
  if (typeof value !== 'number' || !Number.isFinite(value) || (positive ? value <= 0 : value < 0)) {
    return [
      {
        path: `$.${field}`,
        message: `expected a finite ${positive ? 'positive' : 'non-negative'} number, got ${describeValue(value)}`,
      },
    ];
  }
  return [];
};

/** Shape and dtype rules of every kernel, as data. */
const RULES: { [K in KernelName]: KernelRule } = {
  'embedding-gather': {
    outputs: ['output'],
    counts: ['rowCount'],
    dims: ['vocabSize', 'hiddenSize'],
    buffers: [
      { field: 'table', kind: 'stored', elements: product('vocabSize', 'hiddenSize') },
      { field: 'tokens', kind: 'i32', elements: product('rowCount') },
      { field: 'output', kind: 'f32', elements: product('rowCount', 'hiddenSize') },
    ],
  },
  'rms-norm': {
    outputs: ['output'],
    counts: ['rowCount'],
    dims: ['size'],
    buffers: [
      { field: 'input', kind: 'f32', elements: product('rowCount', 'size') },
      { field: 'weight', kind: 'stored', elements: product('size') },
      { field: 'output', kind: 'f32', elements: product('rowCount', 'size') },
      { field: 'addend', kind: 'f32', elements: product('rowCount', 'size'), required: () => false },
    ],
    check: (a) => {
      const issues = finite(a, 'epsilon');
      // with an addend the input is written too: the addend must be neither it nor the output
      if (a.addend !== undefined && (a.addend === a.input || a.addend === a.output)) {
        issues.push({
          path: '$.addend',
          message: `must not be the same buffer as ${a.addend === a.input ? 'input' : 'output'}`,
        });
      }
      return issues;
    },
  },
  matmul: {
    outputs: ['output', 'output2', 'output3'],
    counts: ['rowCount'],
    dims: ['innerSize', 'outerSize'],
    buffers: [
      { field: 'input', kind: 'f32', elements: product('rowCount', 'innerSize') },
      {
        field: 'weight',
        kind: 'stored',
        elements: (a) =>
          (n(a, 'outerSize') + splitSize(a, 'outerSize2') + splitSize(a, 'outerSize3')) * n(a, 'innerSize'),
      },
      { field: 'output', kind: 'f32', elements: product('rowCount', 'outerSize') },
      {
        field: 'output2',
        kind: 'f32',
        elements: (a) => n(a, 'rowCount') * splitSize(a, 'outerSize2'),
        required: (a) => a.outerSize2 !== undefined,
      },
      {
        field: 'output3',
        kind: 'f32',
        elements: (a) => n(a, 'rowCount') * splitSize(a, 'outerSize3'),
        required: (a) => a.outerSize3 !== undefined,
      },
    ],
    check: (a) => {
      const issues: ValidationIssue[] = [];
      for (const [output, size] of [
        ['output2', 'outerSize2'],
        ['output3', 'outerSize3'],
      ] as const) {
        const value = a[size];
        if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)) {
          issues.push({ path: `$.${size}`, message: `expected a positive integer, got ${describeValue(value)}` });
        }
        if (a[output] !== undefined && value === undefined) {
          issues.push({ path: `$.${size}`, message: `expected the width of ${output}, got undefined` });
        }
      }
      if (a.output3 !== undefined && a.output2 === undefined) {
        issues.push({ path: '$.output3', message: 'expected output2 as well (outputs fill in order)' });
      }
      return issues;
    },
  },
  rope: {
    outputs: ['data'],
    counts: ['rowCount'],
    dims: ['headCount', 'headDim', 'tablePositionCount'],
    buffers: [
      { field: 'data', kind: 'f32', elements: product('rowCount', 'headCount', 'headDim') },
      { field: 'positions', kind: 'i32', elements: product('rowCount') },
      { field: 'table', kind: 'f32', elements: product('tablePositionCount', 'headDim') },
    ],
    check: (a) => {
      const issues: ValidationIssue[] = [];
      if (n(a, 'headDim') % 2 !== 0)
        issues.push({ path: '$.headDim', message: `expected an even number, got ${n(a, 'headDim')}` });
      if (a.layout !== 'adjacent' && a.layout !== 'half-split') {
        issues.push({
          path: '$.layout',
          message: `expected 'adjacent' or 'half-split', got ${describeValue(a.layout)}`,
        });
      }
      return issues;
    },
  },
  swiglu: {
    outputs: ['output'],
    mayAlias: [
      ['output', 'gate'],
      ['output', 'up'],
    ],
    counts: ['elementCount'],
    dims: [],
    buffers: ['gate', 'up', 'output'].map((field) => ({
      field,
      kind: 'f32' as const,
      elements: product('elementCount'),
    })),
  },
  'add-in-place': {
    outputs: ['target'],
    mayAlias: [['target', 'addend']],
    counts: ['elementCount'],
    dims: [],
    buffers: ['target', 'addend'].map((field) => ({ field, kind: 'f32' as const, elements: product('elementCount') })),
  },
  'prefill-attention': {
    outputs: ['output', 'windowScores', 'windowScoreSums', 'accumulatedScores'],
    counts: ['windowSize'],
    dims: ['tokenCount', 'queryHeadCount', 'kvHeadCount', 'headDim'],
    buffers: [
      { field: 'query', kind: 'f32', elements: product('tokenCount', 'queryHeadCount', 'headDim') },
      { field: 'key', kind: 'f32', elements: product('tokenCount', 'kvHeadCount', 'headDim') },
      { field: 'value', kind: 'f32', elements: product('tokenCount', 'kvHeadCount', 'headDim') },
      { field: 'output', kind: 'f32', elements: product('tokenCount', 'queryHeadCount', 'headDim') },
      {
        field: 'windowScores',
        kind: 'f32',
        elements: product('queryHeadCount', 'windowSize', 'tokenCount'),
        required: (a) => n(a, 'windowSize') > 0 && a.windowScoreSums === undefined,
      },
      {
        field: 'windowScoreSums',
        kind: 'f32',
        elements: product('queryHeadCount', 'tokenCount'),
        required: () => false,
      },
      {
        field: 'accumulatedScores',
        kind: 'f32',
        elements: product('queryHeadCount', 'tokenCount'),
        required: () => false,
      },
    ],
    check: (a, capabilities) => {
      const issues = [...headDimCheck(a, capabilities), ...finite(a, 'scale', true)];
      if (n(a, 'queryHeadCount') % n(a, 'kvHeadCount') !== 0) {
        issues.push({
          path: '$.kvHeadCount',
          message: `expected a divisor of queryHeadCount ${n(a, 'queryHeadCount')}, got ${n(a, 'kvHeadCount')}`,
        });
      }
      for (const field of ['kvRounding', 'productRounding'] as const) {
        const value = a[field];
        if (value !== undefined && value !== 'bf16' && value !== 'f16') {
          issues.push({ path: `$.${field}`, message: `expected 'bf16' or 'f16', got ${describeValue(value)}` });
        }
      }
      if (a.kvRounding !== undefined && a.productRounding !== undefined && a.kvRounding !== a.productRounding) {
        issues.push({
          path: '$.productRounding',
          message: `expected the kvRounding type ${describeValue(a.kvRounding)} (products round K and V too), got ${describeValue(a.productRounding)}`,
        });
      }
      if (a.windowScoreSums !== undefined && n(a, 'windowSize') === 0) {
        issues.push({ path: '$.windowScoreSums', message: 'needs a window: windowSize is 0' });
      }
      if (n(a, 'windowSize') > n(a, 'tokenCount')) {
        issues.push({
          path: '$.windowSize',
          message: `expected at most tokenCount ${n(a, 'tokenCount')}, got ${n(a, 'windowSize')}`,
        });
      }
      return issues;
    },
  },
  'kv-append': {
    outputs: ['pool'],
    counts: ['rowCount', 'entryCount'],
    dims: ['kvHeadCount', ...poolDims],
    buffers: [
      ...poolRules,
      { field: 'key', kind: 'f32', elements: product('rowCount', 'kvHeadCount', 'headDim') },
      { field: 'value', kind: 'f32', elements: product('rowCount', 'kvHeadCount', 'headDim') },
      { field: 'entries', kind: 'i32', elements: (a) => n(a, 'entryCount') * 4 },
    ],
    check: headDimCheck,
  },
  'kv-compact': {
    outputs: ['pool'],
    counts: ['sequenceCount', 'keptIndexCount'],
    dims: poolDims,
    buffers: [
      ...poolRules,
      { field: 'keptIndices', kind: 'i32', elements: product('keptIndexCount') },
      { field: 'sequences', kind: 'i32', elements: (a) => n(a, 'sequenceCount') * 4 },
    ],
    check: headDimCheck,
  },
  'ragged-decode-attention': {
    outputs: ['output'],
    counts: ['rowCount', 'pairCount'],
    dims: ['kvHeadCount', 'groupSize', ...poolDims],
    buffers: [
      ...poolRules,
      { field: 'query', kind: 'f32', elements: product('rowCount', 'kvHeadCount', 'groupSize', 'headDim') },
      { field: 'output', kind: 'f32', elements: product('rowCount', 'kvHeadCount', 'groupSize', 'headDim') },
      { field: 'pairs', kind: 'i32', elements: (a) => n(a, 'pairCount') * 4 },
    ],
    check: (a, capabilities) => [...headDimCheck(a, capabilities), ...finite(a, 'scale', true)],
  },
  argmax: {
    outputs: ['output'],
    counts: ['rowCount'],
    dims: ['vocabSize'],
    buffers: [
      { field: 'logits', kind: 'f32', elements: product('rowCount', 'vocabSize') },
      { field: 'output', kind: 'i32', elements: product('rowCount') },
    ],
  },
  'top-p-sample': {
    outputs: ['output'],
    counts: ['rowCount'],
    dims: ['vocabSize'],
    buffers: [
      { field: 'logits', kind: 'f32', elements: product('rowCount', 'vocabSize') },
      { field: 'temperatures', kind: 'f32', elements: product('rowCount') },
      { field: 'topPs', kind: 'f32', elements: product('rowCount') },
      { field: 'seeds', kind: 'i32', elements: product('rowCount') },
      { field: 'output', kind: 'i32', elements: product('rowCount') },
    ],
  },
};

/** Whether a value is a device buffer (any backend's): an object with a `dtype` and an `elementCount`. */
export function isDeviceBuffer(value: unknown): value is DeviceBuffer {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'elementCount' in value;
}

function dtypeIssue(rule: BufferRule, dtype: BufferDType, capabilities: BackendCapabilities): string | undefined {
  if (rule.kind === 'stored') {
    if (dtype === 'i32' || !capabilities.storageDTypes.includes(dtype)) {
      return `expected a storage dtype this backend declares (${capabilities.storageDTypes.join(', ')}), got ${dtype}`;
    }
    return undefined;
  }
  return dtype === rule.kind ? undefined : `expected dtype ${rule.kind}, got ${dtype}`;
}

/**
 * Checks a kernel's arguments against its shape rules (integer shapes, buffer dtypes and sizes,
 * cross-field constraints) and the backend's declared capabilities. Every backend calls it at the
 * start of `run`, so all backends reject the same calls with the same messages.
 *
 * @throws UnsupportedError when the kernel is not in `capabilities.kernels`.
 * @throws ValidationError listing every issue, each with a JSON path such as `$.pool`.
 */
export function validateKernelArgs<K extends KernelName>(
  kernel: K,
  args: KernelArgsMap[K],
  capabilities: BackendCapabilities,
): void {
  if (!capabilities.kernels.includes(kernel)) {
    throw new UnsupportedError(`kernel '${kernel}' is not supported by the ${capabilities.name} backend`);
  }
  const rule = RULES[kernel];
  const record = args as unknown as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  for (const field of rule.counts) {
    const value = record[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      issues.push({ path: `$.${field}`, message: `expected a non-negative integer, got ${describeValue(value)}` });
    }
  }
  for (const field of rule.dims) {
    const value = record[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      issues.push({ path: `$.${field}`, message: `expected a positive integer, got ${describeValue(value)}` });
    }
  }
  if (issues.length === 0) {
    for (const bufferRule of rule.buffers) {
      const value = record[bufferRule.field];
      const path = `$.${bufferRule.field}`;
      if (value === undefined && bufferRule.required !== undefined && !bufferRule.required(record)) continue;
      if (!isDeviceBuffer(value)) {
        issues.push({ path, message: `expected a DeviceBuffer, got ${describeValue(value)}` });
        continue;
      }
      const dtypeMessage = dtypeIssue(bufferRule, value.dtype, capabilities);
      if (dtypeMessage !== undefined) issues.push({ path, message: dtypeMessage });
      const needed = bufferRule.elements(record);
      if (value.elementCount < needed) {
        issues.push({
          path,
          message: `expected at least ${needed} elements for this shape, got ${value.elementCount} ('${value.label}')`,
        });
      }
      if (value.disposed) issues.push({ path, message: `buffer '${value.label}' is disposed` });
    }
    for (const output of rule.outputs) {
      const written = record[output];
      if (!isDeviceBuffer(written)) continue;
      for (const other of rule.buffers) {
        if (other.field === output || record[other.field] !== written) continue;
        const allowed = rule.mayAlias?.some(([a, b]) => a === output && b === other.field) ?? false;
        // two outputs sharing a buffer are reported once, at the later one
        if (
          !allowed &&
          rule.outputs.includes(other.field) &&
          rule.outputs.indexOf(other.field) > rule.outputs.indexOf(output)
        )
          continue;
        if (!allowed) {
          issues.push({
            path: `$.${output}`,
            message: `must not be the same buffer as ${other.field} ('${written.label}')`,
          });
        }
      }
    }
    issues.push(...(rule.check?.(record, capabilities) ?? []));
  }
  if (issues.length > 0) {
    const detail = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
    throw new ValidationError(`${kernel}: invalid arguments: ${detail}`, issues);
  }
}
