import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, UnsupportedError } from '@fairkv/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryByteSource } from './byte-source.js';
import { createFixtureModel } from './fixture-model.js';
import { GgufFile } from './gguf-file.js';
import { parseGgufHeader } from './gguf-reader.js';
import { loadGgufModelFromFile } from './load-gguf-model.js';
import { parseSafetensorsHeader, SafetensorsFile } from './safetensors-reader.js';
import { SeededRandom } from './seeded-random.js';

const TINY = {
  layerCount: 1,
  hiddenSize: 64,
  queryHeadCount: 1,
  kvHeadCount: 1,
  headDim: 64,
  ffnSize: 64,
  tieWordEmbeddings: false,
} as const;
const INTERESTING = [0, 1, 2, 3, 7, 8, 31, 32, 255, 0x7fffffff, 0x80000000, 0xffffffff];

/** One seeded mutation of `bytes` within `[0, headerEnd)`: byte flips, interesting 32/64-bit values, or a truncation. */
function mutate(
  bytes: Uint8Array,
  headerEnd: number,
  random: SeededRandom,
): { bytes: Uint8Array; description: string } {
  const position = Math.floor(random.uniform() * headerEnd);
  const kind = Math.floor(random.uniform() * 4);
  if (kind === 0)
    return { bytes: bytes.subarray(0, Math.floor(random.uniform() * bytes.length)), description: 'truncate' };
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  if (kind === 1) {
    const flips = 1 + Math.floor(random.uniform() * 4);
    for (let flip = 0; flip < flips; flip++)
      copy[Math.floor(random.uniform() * headerEnd)]! ^= 1 << Math.floor(random.uniform() * 8);
    return { bytes: copy, description: `flip near ${position}` };
  }
  const value = INTERESTING[Math.floor(random.uniform() * INTERESTING.length)]!;
  if (kind === 2 && position + 4 <= copy.length) view.setUint32(position, value, true);
  if (kind === 3 && position + 8 <= copy.length)
    view.setBigUint64(position, BigInt(value) * (random.uniform() < 0.5 ? 1n : 2n ** 32n), true);
  return { bytes: copy, description: `value ${value} at ${position}` };
}

/** Runs `action`; returns the error it threw (or undefined) and how long it took. */
async function outcome(action: () => Promise<unknown>): Promise<{ error: unknown; milliseconds: number }> {
  const start = performance.now();
  try {
    await action();
    return { error: undefined, milliseconds: performance.now() - start };
  } catch (error) {
    return { error, milliseconds: performance.now() - start };
  }
}

describe('fuzzing model files with mutated and truncated headers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fairkv-fuzz-'));
  const ggufByVersion = new Map<number, Uint8Array>();
  let safetensors: Uint8Array;
  beforeAll(async () => {
    for (const version of [1, 2, 3] as const) {
      const files = await createFixtureModel(join(dir, `v${version}`), {
        ...TINY,
        gguf: { version },
        huggingFace: version === 3 ? {} : false,
      });
      ggufByVersion.set(version, new Uint8Array(readFileSync(files.ggufPath!)));
      if (files.huggingFaceFolder)
        safetensors = new Uint8Array(readFileSync(join(files.huggingFaceFolder, 'model.safetensors')));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const version of [1, 2, 3] as const) {
    it(`GGUF v${version}: 200 mutants give only FormatError from the header, typed errors from loading, and never hang`, async () => {
      const original = ggufByVersion.get(version)!;
      const headerEnd = parseGgufHeader(memoryByteSource(original)).dataStart;
      const random = new SeededRandom(1000 + version);
      const tally = { parsedAndLoaded: 0, formatErrors: 0, unsupported: 0 };
      for (let round = 0; round < 200; round++) {
        const { bytes, description } = mutate(original, headerEnd, random);
        const context = `round ${round}: ${description}`;
        const parse = await outcome(async () => parseGgufHeader(memoryByteSource(bytes, 'fuzz.gguf')));
        expect(parse.milliseconds, context).toBeLessThan(1000);
        if (parse.error !== undefined) {
          expect(parse.error, context).toBeInstanceOf(FormatError);
          const error = parse.error as FormatError;
          expect(error.file, context).toBe('fuzz.gguf');
          expect(error.field, context).toBeTruthy();
          expect(error.offset, context).toBeGreaterThanOrEqual(0);
          expect(error.offset, context).toBeLessThanOrEqual(bytes.length);
          tally.formatErrors++;
          continue;
        }
        const load = await outcome(async () => {
          const model = await loadGgufModelFromFile(GgufFile.fromSource(memoryByteSource(bytes, 'fuzz.gguf')));
          model.tokenizer.decode(model.tokenizer.encode('Once upon a time ✓'));
          for (const name of model.weights.names) await model.weights.read(name);
        });
        expect(load.milliseconds, context).toBeLessThan(2000);
        if (load.error === undefined) tally.parsedAndLoaded++;
        else if (load.error instanceof FormatError) tally.formatErrors++;
        else {
          // a well-formed file of something fairkv does not run (another architecture, tokenizer or tensor type)
          expect(load.error, `${context}: ${(load.error as Error).stack}`).toBeInstanceOf(UnsupportedError);
          tally.unsupported++;
        }
      }
      // the fuzzer reaches both outcomes
      expect(tally.formatErrors).toBeGreaterThan(30);
      expect(tally.parsedAndLoaded).toBeGreaterThan(5);
    });
  }

  it('safetensors: 200 mutants give only FormatError from the header and never hang', async () => {
    const headerEnd = parseSafetensorsHeader(memoryByteSource(safetensors)).dataStart;
    const random = new SeededRandom(77);
    let formatErrors = 0;
    for (let round = 0; round < 200; round++) {
      const { bytes, description } = mutate(safetensors, headerEnd, random);
      const context = `round ${round}: ${description}`;
      const result = await outcome(async () => {
        const file = SafetensorsFile.fromSource(memoryByteSource(bytes, 'fuzz.safetensors'));
        for (const name of file.tensorNames()) {
          await file
            .tensor(name)!
            .read()
            .catch((error: unknown) => {
              if (!(error instanceof UnsupportedError)) throw error;
            });
        }
      });
      expect(result.milliseconds, context).toBeLessThan(1000);
      if (result.error !== undefined) {
        expect(result.error, `${context}: ${(result.error as Error).stack}`).toBeInstanceOf(FormatError);
        formatErrors++;
      }
    }
    expect(formatErrors).toBeGreaterThan(50);
  });
});
