import type { ConformanceCase } from '../conformance-case.js';
import { referenceAdd, referenceSwiglu } from '../reference/dense.js';

const sizes = [
  [1, 9],
  [10, 4099],
] as const;

/** `swiglu` cases: odd element counts, inputs spanning the sigmoid's saturation, out of place and in place. */
export const swigluCases: ConformanceCase[] = [
  ...sizes.map((size) => ({ size, inPlace: false })),
  { size: [10, 4099] as const, inPlace: true },
].map(({ size, inPlace }) => ({
  kernel: 'swiglu',
  name: `elements=${size[0]}..${size[1]}${inPlace ? ' in place (output = gate)' : ''}`,
  storageDType: 'f32',
  async execute(context, random, tolerance) {
    const elementCount = random.integer(size[0], size[1]);
    const gateValues = random.floats(elementCount, -12, 12);
    const upValues = random.floats(elementCount, -2, 2);
    const gate = context.input('f32', gateValues, 'gate');
    const up = context.input('f32', upValues, 'up');
    const output = inPlace ? gate : context.output('f32', elementCount, 'output');
    context.backend.run('swiglu', { gate, up, output, elementCount });
    context.expectClose('output', await context.read(output), referenceSwiglu(gateValues, upValues), tolerance);
  },
}));

/** `add-in-place` cases: odd element counts. */
export const addInPlaceCases: ConformanceCase[] = sizes.map((size) => ({
  kernel: 'add-in-place',
  name: `elements=${size[0]}..${size[1]}`,
  storageDType: 'f32',
  async execute(context, random, tolerance) {
    const elementCount = random.integer(size[0], size[1]);
    const targetValues = random.floats(elementCount, -4, 4);
    const addendValues = random.floats(elementCount, -4, 4);
    const target = context.input('f32', targetValues, 'target');
    const addend = context.input('f32', addendValues, 'addend');
    context.backend.run('add-in-place', { target, addend, elementCount });
    context.expectClose('target', await context.read(target), referenceAdd(targetValues, addendValues), tolerance);
  },
}));
