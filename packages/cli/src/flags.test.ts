import { ConfigError, FormatError, getModelPreset, ValidationError } from '@fairkv/core';
import { InvalidArgumentError } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { temporaryFolder } from './__fixtures__/cli-process.js';
import type { ResolvedBackend } from './backend-choice.js';
import { exitCodeOf, InputError, oneLineMessage, UsageError } from './cli-error.js';
import { batchSize, integerAtLeast, listOf, numberInRange } from './option-parsers.js';
import { createPolicy, defaultWindow, describePolicy } from './policy-spec.js';
import { parseDuoProfileSpec } from './profile-source.js';
import { parsePrompts } from './prompts-file.js';
import { runCli } from './run-cli.js';

const stories = getModelPreset('stories260k');

describe('flag value parsers', () => {
  it('accept good values and reject bad ones with commander errors', () => {
    expect(integerAtLeast(1)('8')).toBe(8);
    for (const bad of ['0', '1.5', 'abc', '']) expect(() => integerAtLeast(1)(bad)).toThrow(InvalidArgumentError);
    expect(numberInRange(0, 1, true)('1')).toBe(1);
    expect(() => numberInRange(0, 1, true)('0')).toThrow(/\(0, 1\]/);
    expect(batchSize('max')).toBe('max');
    expect(batchSize('64')).toBe(64);
    expect(() => batchSize('-1')).toThrow(/positive integer or "max"/);
    expect(listOf(['a', 'b'])('a, b,a')).toEqual(['a', 'b']);
    expect(() => listOf(['a', 'b'])('a,c')).toThrow(/unknown "c"/);
  });
});

describe('--profile duo: specs', () => {
  it('reads the path, selection and options', () => {
    expect(parseDuoProfileSpec('duo:/x/y.tsv:sparsity=0.5,context=32768,sink=64,recent=128')).toEqual({
      path: '/x/y.tsv',
      selection: { sparsity: 0.5 },
      contextLength: 32768,
      sinkSize: 64,
      recentSize: 128,
    });
    expect(parseDuoProfileSpec('duo:C:/gates.tsv:threshold=0.4')).toEqual({
      path: 'C:/gates.tsv',
      selection: { threshold: 0.4 },
    });
    expect(parseDuoProfileSpec('duo:gates.tsv')).toEqual({ path: 'gates.tsv' });
  });

  it('names the bad part', () => {
    expect(() => parseDuoProfileSpec('duo:g.tsv,width=3')).toThrow(/unknown option "width=3"/);
    expect(() => parseDuoProfileSpec('duo:g.tsv:sparsity=x')).toThrow(/sparsity=x is not a number/);
    expect(() => parseDuoProfileSpec('duo:g.tsv,context=-1')).toThrow(UsageError);
    expect(() => parseDuoProfileSpec('duo:')).toThrow(/expected duo:/);
  });
});

describe('--prompts files', () => {
  it('reads plain lines and JSON Lines', () => {
    expect(parsePrompts('a b\n\n c \n', 'p.txt')).toEqual(['a b', 'c']);
    expect(parsePrompts('"x"\n{"prompt": "y"}\n{"text": "z"}\n', 'p.jsonl')).toEqual(['x', 'y', 'z']);
  });

  it('names the file and line of a bad entry', () => {
    expect(() => parsePrompts('', 'p.txt')).toThrow(/--prompts p.txt: no prompts/);
    expect(() => parsePrompts('{"prompt": "y"}\n{bad\n', 'p.jsonl')).toThrow(/p.jsonl: line 2: not valid JSON/);
    expect(() => parsePrompts('{"other": 1}\n', 'p.jsonl')).toThrow(InputError);
  });
});

describe('--policy mapping', () => {
  it('maps the budget onto each policy', () => {
    const snap = createPolicy({ policy: 'snapkv', budget: 64 }, stories);
    expect(snap.settings).toMatchObject({ averageBudget: 64, windowSize: 32 });
    expect(defaultWindow(12)).toBe(6);
    expect(createPolicy({ policy: 'ada-kv', budget: 12, window: 4 }, stories).settings).toMatchObject({
      averageBudget: 12,
      windowSize: 4,
    });
    expect(createPolicy({ policy: 'streaming-llm', budget: 20 }, stories).settings).toEqual({
      sinkSize: 4,
      recentSize: 16,
    });
    expect(createPolicy({ policy: 'h2o', budget: 9 }, stories).settings).toMatchObject({ heavySize: 4, recentSize: 5 });
    const gates = stories.layerCount;
    const duo = createPolicy(
      { policy: 'duo-attention', budget: 20, sink: 4 },
      stories,
      Array.from({ length: gates }, () => [0.9, 0.1, 0.1, 0.1]),
    );
    expect(duo.settings).toMatchObject({ sinkSize: 4, recentSize: 16, threshold: 0.5 });
    expect(describePolicy(duo)).toContain('duo-attention (sinkSize 4, recentSize 16');
    expect(createPolicy({}, stories).name).toBe('full');
  });

  it('names a missing or inapplicable flag (usage) and a bad value (input)', () => {
    expect(() => createPolicy({ policy: 'snapkv' }, stories)).toThrow('--policy snapkv needs --budget <tokens>');
    expect(() => createPolicy({ policy: 'headkv', budget: 8 }, stories)).toThrow('needs --importance <file>');
    expect(() => createPolicy({ policy: 'duo-attention' }, stories)).toThrow('needs --gates');
    expect(() => createPolicy({ policy: 'full', budget: 8 }, stories)).toThrow(
      '--budget does not apply to --policy full',
    );
    expect(() => createPolicy({ policy: 'h2o', window: 8 }, stories)).toThrow(UsageError);
    expect(() => createPolicy({ policy: 'streaming-llm', budget: 3 }, stories)).toThrow(
      /--budget 3: must exceed the 4 sink/,
    );
    const windowTooBig = (() => {
      try {
        createPolicy({ policy: 'snapkv', budget: 8, window: 16 }, stories);
      } catch (error) {
        return error;
      }
    })();
    expect(exitCodeOf(windowTooBig)).toBe(2);
    expect(String(windowTooBig)).toMatch(/--policy snapkv.*averageBudget/s);
  });
});

describe('exit codes and messages', () => {
  it('map error kinds to 1, 2 and 3', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(1);
    expect(exitCodeOf(new InputError('x'))).toBe(2);
    expect(exitCodeOf(new ValidationError('x'))).toBe(2);
    expect(exitCodeOf(new ConfigError('x'))).toBe(2);
    expect(exitCodeOf(new FormatError('x'))).toBe(2);
    expect(exitCodeOf(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(2);
    expect(exitCodeOf(new Error('boom'))).toBe(3);
    expect(oneLineMessage(new ValidationError('invalid plan:\n  $.a: bad\n  $.b: worse'))).toBe(
      'invalid plan: $.a: bad; $.b: worse',
    );
    expect(oneLineMessage(new Error('x\n1\n2\n3'), 2)).toBe('x; 1; 2 (and 1 more)');
  });
});

describe('runCli in-process', () => {
  afterEach(() => vi.restoreAllMocks());

  async function run(...args: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const code = await runCli(['node', 'fairkv', ...args]);
    vi.restoreAllMocks();
    return { code, stderr };
  }

  it('usage errors exit 1 naming the flag, in one line', async () => {
    const cases: [string[], RegExp][] = [
      [['plan', '--profile', 'p.json'], /required option '--model <model>' not specified/],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', 'p.json', '--devices', 'x'],
        /'--devices <n>' argument 'x' is invalid/,
      ],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', 'p.json', '--solver', 'magic'],
        /--solver <names>.*unknown "magic"/,
      ],
      [['plan', '--model', 'llama-3.1-8b', '--profile', 'p.json', '--batch', '0'], /--batch <n\|max>/],
      [['generate', '--prompt', 'x', '--bogus'], /unknown option '--bogus'/],
      [['generate', '--prompt', 'x', '--policy', 'nope'], /--policy <name>' argument 'nope' is invalid/],
      [['bench', '--dtype', 'f64'], /'--dtype <dtype>' argument 'f64' is invalid.*auto, f32, f16, bf16/],
      [['demo', '--devices', '1'], /'--devices <n>' argument '1' is invalid.*>= 2/],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', 'duo:g.tsv,width=2'],
        /--profile duo:g.tsv,width=2: unknown option/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr } = await run(...args);
      expect(code, args.join(' ')).toBe(1);
      expect(stderr, args.join(' ')).toMatch(pattern);
      expect(stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('input errors exit 2 naming the file or value', async () => {
    const cases: [string[], RegExp][] = [
      [['plan', '--model', 'llama-9000', '--profile', 'p.json'], /--model llama-9000: not a preset/],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', '/nonexistent/p.json'],
        /--profile \/nonexistent\/p.json: no such file/,
      ],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', 'duo:/nonexistent.tsv'],
        /--profile \/nonexistent.tsv: no such file/,
      ],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', 'package.json'],
        /--profile package.json: invalid head-load profile/,
      ],
      [
        ['plan', '--model', 'llama-3.1-8b', '--profile', 'duo:package.json'],
        /--profile package.json: invalid DuoAttention gate file: .*not a number/,
      ],
      [['inspect', 'plan', 'package.json'], /plan package.json: invalid/],
      [['generate', '--prompt', 'x', '--model', '/nonexistent/m.gguf'], /--model \/nonexistent\/m.gguf: no such file/],
      [['generate', '--prompt', 'x', '--model', 'package.json'], /--model package.json: .*magic/],
      [
        ['generate', '--prompt', 'x', '--backend', 'webgpu'],
        /--backend webgpu: the runtime cannot run models on webgpu yet/,
      ],
      [
        ['bench', '--backend', 'webgpu', '--requests', '1'],
        /--backend webgpu: the runtime cannot run models on webgpu yet/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr } = await run(...args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr, args.join(' ')).toMatch(pattern);
    }
  });
});

describe('--backend cuda without a usable GPU', () => {
  it('resolves auto to cpu and refuses cuda with the probe reason', async () => {
    const { probeCuda } = await import('@fairkv/kernels-cuda');
    const probe = probeCuda();
    const { resolveBackend } = await import('./backend-choice.js');
    if (probe.available) {
      // a GPU machine: cuda resolves, and asking for more GPUs than exist names both counts
      const count = probe.devices.length;
      await expect(resolveBackend('cuda', count + 1)).rejects.toThrow(
        new RegExp(`--backend cuda: ${count + 1} devices need ${count + 1} GPUs, this machine has ${count}`),
      );
      expect((await resolveBackend('auto', count + 1)).name).toBe('cpu');
      return;
    }
    expect(await resolveBackend('auto', 1)).toMatchObject({ name: 'cpu', backend: 'cpu' });
    const refusal = resolveBackend('cuda', 1);
    await expect(refusal).rejects.toThrow(InputError);
    await expect(refusal).rejects.toThrow(/^--backend cuda: .+ \(see `fairkv inspect backends`\)$/);
  });
});

describe('--dtype auto', () => {
  it("keeps a named dtype, takes f32 on the CPU and the model's own on GPUs, and says why", async () => {
    const { chooseDtype, describeDtype } = await import('./backend-choice.js');
    const { createFixtureModel, loadModel } = await import('@fairkv/runtime');
    const folder = temporaryFolder('dtype-auto');
    const shape = { layerCount: 1, hiddenSize: 64, queryHeadCount: 2, kvHeadCount: 1, headDim: 32, ffnSize: 64 };
    const files = await createFixtureModel(folder, {
      ...shape,
      gguf: { tensorType: 'q8_0' },
      huggingFace: { dtype: 'BF16' },
    });
    const cpu: ResolvedBackend = { name: 'cpu', backend: 'cpu', next: () => 'cpu' };
    const module = { module: 'unused' };
    const gpus: ResolvedBackend = {
      name: 'cuda',
      backend: module,
      memoryBytes: [85.5e9],
      gpus: ['NVIDIA H100'],
      cluster: 'h100-sxm-80g',
      next: () => module,
    };
    const [quantised, brain] = [await loadModel(files.ggufPath!), await loadModel(files.huggingFaceFolder!)];
    try {
      expect(chooseDtype('bf16', cpu, brain)).toEqual({ dtype: 'bf16' });
      expect(chooseDtype('f32', gpus, brain)).toEqual({ dtype: 'f32' });
      expect(chooseDtype('auto', cpu, brain)).toEqual({ dtype: 'f32', reason: 'auto: f32 on the CPU' });
      const onGpus = chooseDtype('auto', gpus, brain);
      expect(onGpus.dtype).toBe('bf16');
      expect(describeDtype(onGpus)).toBe("bf16 (auto: the model's matrices are stored in bf16)");
      expect(chooseDtype('auto', gpus, quantised)).toEqual({
        dtype: 'f16',
        reason: "auto: the model's matrices are stored in q8_0",
      });
      expect(describeDtype(chooseDtype('f16', gpus, quantised))).toBe('f16');
    } finally {
      quantised.close();
      brain.close();
    }
  });
});

describe('the cluster preset of the GPUs found', () => {
  it('maps the names the driver reports to presets, and others to none (the commands then ask for --cluster)', async () => {
    const { clusterOfGpu } = await import('./backend-choice.js');
    expect(clusterOfGpu('NVIDIA H100 80GB HBM3')).toBe('h100-sxm-80g');
    expect(clusterOfGpu('NVIDIA H200')).toBe('h200-141g');
    expect(clusterOfGpu('NVIDIA A100-SXM4-80GB')).toBe('a100-80g');
    expect(clusterOfGpu('NVIDIA L4')).toBeUndefined();
  });

  it('picks --cluster, else cpu on the CPU backend and the GPUs preset on cuda, else says to pass --cluster', async () => {
    const { clusterPresetFor } = await import('./backend-choice.js');
    const cpu: ResolvedBackend = { name: 'cpu', backend: 'cpu', next: () => 'cpu' };
    const module = { module: 'unused' };
    const gpus = (cluster: string | undefined): ResolvedBackend => ({
      name: 'cuda',
      backend: module,
      gpus: ['NVIDIA L4'],
      cluster,
      memoryBytes: [24e9],
      next: () => module,
    });
    expect(clusterPresetFor(cpu, undefined, 'x')).toBe('cpu');
    expect(clusterPresetFor(cpu, 'a100-80g', 'x')).toBe('a100-80g');
    expect(clusterPresetFor(gpus('h100-sxm-80g'), undefined, 'x')).toBe('h100-sxm-80g');
    expect(clusterPresetFor(gpus(undefined), 'h200-141g', 'x')).toBe('h200-141g');
    expect(() => clusterPresetFor(gpus(undefined), undefined, 'the predictions')).toThrow(
      new InputError('--backend cuda: no cluster preset matches NVIDIA L4; pass --cluster for the predictions'),
    );
  });

  it('plans for the GPUs found: their names and the memory the driver reports, unless --cluster names a preset', async () => {
    const { clusterFor } = await import('./backend-choice.js');
    const module = { module: 'unused' };
    const h100s: ResolvedBackend = {
      name: 'cuda',
      backend: module,
      gpus: ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3'],
      cluster: 'h100-sxm-80g',
      memoryBytes: [85_520_809_984, 85_520_809_984],
      next: () => module,
    };
    const found = clusterFor(h100s, undefined, 2, 'x');
    expect(found.name).toBe('h100-sxm-80g');
    expect(found.devices.map((device) => [device.name, device.memoryBytes])).toEqual([
      ['NVIDIA H100 80GB HBM3', 85_520_809_984],
      ['NVIDIA H100 80GB HBM3', 85_520_809_984],
    ]);
    // the preset's bandwidth and interconnect stay
    expect(found.devices[0]!.memoryBandwidthBytesPerSecond).toBe(3.35e12);
    expect(clusterFor(h100s, 'h200-141g', 2, 'x').devices[0]).toMatchObject({
      name: 'H200 SXM 141GB',
      memoryBytes: 141e9,
    });
    const cpu: ResolvedBackend = { name: 'cpu', backend: 'cpu', next: () => 'cpu' };
    expect(clusterFor(cpu, undefined, 3, 'x').devices).toHaveLength(3);
    expect(() => clusterFor(h100s, undefined, 9, 'x')).toThrow(/--devices 9/);
  });
});
