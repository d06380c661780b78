/**
 * What `--backend` resolves to for the commands that run models (generate, bench, profile): the CPU
 * backend, or a CUDA backend per device worker, with the cluster preset of the GPUs found.
 *
 * @packageDocumentation
 */
import { type ClusterSpec, createCluster, type DType } from '@fairkv/core';
import { type LoadedModel, matrixStoredTypes, nativeDtype, type WorkerBackendModule } from '@fairkv/runtime';
import { InputError, withContext } from './cli-error.js';
import type { DtypeChoice } from './cli-names.js';
import type { ProfileBackend } from './engine-plan.js';

/**
 * What `--backend` resolved to: the CPU backend, or a CUDA backend per device worker (an NCCL rank each).
 * `backend` serves one engine; `next()` gives the value for another engine (a fresh NCCL group id).
 */
export type ResolvedBackend =
  | { name: 'cpu'; backend: 'cpu'; next(): 'cpu' }
  | {
      name: 'cuda';
      backend: WorkerBackendModule;
      gpus: string[];
      /** The cluster preset of the GPUs (`h100-sxm-80g`, ...), undefined for a GPU no preset describes. */
      cluster: string | undefined;
      /** Each GPU's memory as the driver reports it (81,559 MiB on an H100 80GB). */
      memoryBytes: number[];
      next(): WorkerBackendModule;
    };

/** The cluster preset of a GPU model name, for plans and predictions on the GPUs a command runs on. */
export function clusterOfGpu(name: string): string | undefined {
  if (/H100/i.test(name)) return 'h100-sxm-80g';
  if (/H200/i.test(name)) return 'h200-141g';
  if (/A100/i.test(name)) return 'a100-80g';
  return undefined;
}

/**
 * The backend the runtime will use for `--backend`: `cpu`; `cuda` (one worker thread, CUDA backend and
 * NCCL rank per device; needs as many GPUs as devices); `auto` = cuda when CUDA works here and has
 * enough GPUs, else cpu.
 * @throws InputError for cuda without a usable GPU, and for webgpu (its kernels are not in the runtime yet).
 */
export async function resolveBackend(name: string, deviceCount: number): Promise<ResolvedBackend> {
  const cpu: ResolvedBackend = { name: 'cpu', backend: 'cpu', next: () => 'cpu' };
  if (name === 'cpu') return cpu;
  if (name === 'cuda' || name === 'auto') {
    const cuda = await import('@fairkv/kernels-cuda');
    const probe = cuda.probeCuda();
    const enough = probe.available && probe.devices.length >= deviceCount;
    if (!enough && name === 'auto') return cpu;
    if (!probe.available) {
      throw new InputError(`--backend cuda: ${probe.reason} (see \`fairkv inspect backends\`)`);
    }
    if (!enough) {
      throw new InputError(
        `--backend cuda: ${deviceCount} devices need ${deviceCount} GPUs, this machine has ${probe.devices.length}`,
      );
    }
    const found = probe.devices.slice(0, deviceCount);
    const gpus = found.map((device) => device.name);
    return {
      name: 'cuda',
      backend: cuda.cudaWorkerBackend(),
      gpus,
      cluster: clusterOfGpu(gpus[0]!),
      memoryBytes: found.map((device) => device.totalMemoryBytes),
      next: () => cuda.cudaWorkerBackend(),
    };
  }
  throw new InputError(
    `--backend ${name}: the runtime cannot run models on ${name} yet (its kernels are not wired into it); ` +
      'use --backend cpu, cuda or auto, and see `fairkv inspect backends`',
  );
}

/**
 * The cluster preset a command plans or predicts for: `--cluster`, else `cpu` on the CPU backend and
 * the GPUs' preset on cuda.
 * @throws InputError for GPUs no preset describes without `--cluster`, saying what the preset is for.
 */
export function clusterPresetFor(backend: ResolvedBackend, cluster: string | undefined, purpose: string): string {
  if (cluster) return cluster;
  if (backend.name === 'cpu') return 'cpu';
  if (backend.cluster) return backend.cluster;
  throw new InputError(`--backend cuda: no cluster preset matches ${backend.gpus[0]}; pass --cluster for ${purpose}`);
}

/**
 * The cluster a command plans or predicts for: {@link clusterPresetFor}'s preset over `deviceCount`
 * devices. On cuda without `--cluster`, each device is the GPU found: its name and its memory as the driver
 * reports it (81,559 MiB on an H100 80GB, where the preset says 80e9 bytes), so plans use all of it.
 * @throws InputError naming `--devices` for a count the preset refuses, and as clusterPresetFor does.
 */
export function clusterFor(
  backend: ResolvedBackend,
  cluster: string | undefined,
  deviceCount: number,
  purpose: string,
): ClusterSpec {
  const name = clusterPresetFor(backend, cluster, purpose);
  let spec: ClusterSpec;
  try {
    spec = createCluster(name, deviceCount);
  } catch (error) {
    throw withContext(error, `--devices ${deviceCount}`);
  }
  if (backend.name !== 'cuda' || cluster !== undefined) return spec;
  return {
    ...spec,
    devices: spec.devices.map((device, index) => ({
      ...device,
      name: backend.gpus[index] ?? device.name,
      memoryBytes: backend.memoryBytes[index] ?? device.memoryBytes,
    })),
  };
}

/** A profile's prefills on the resolved backend's device workers (an engine of their own: `next()`). */
export function profileBackendOf(backend: ResolvedBackend, dtype: DType): ProfileBackend {
  return { backend: backend.next(), execution: 'workers', dtype, name: `${backend.name}, ${dtype}` };
}

/** What `--dtype` resolved to, and for `auto` why. */
export interface ChosenDtype {
  dtype: DType;
  /** For `auto`: where the dtype comes from, e.g. `auto: the model's matrices are stored in bf16`. */
  reason?: string;
}

/**
 * The dtype a command runs the model in for `--dtype`: the flag's, or for `auto` f32 on the CPU (the
 * reference backend's precision) and on GPUs the model's own ({@link nativeDtype}: bf16 or f16 as its
 * matrices are stored, f16 for quantised GGUF, f32 for f32 models). vLLM's `--dtype auto` keeps bf16 and
 * f16 checkpoints alike; it narrows f32 ones to f16, which fairkv leaves in f32, the CPU reference's precision.
 */
export function chooseDtype(
  flag: DtypeChoice,
  backend: ResolvedBackend,
  model: Pick<LoadedModel, 'config' | 'weights'>,
): ChosenDtype {
  if (flag !== 'auto') return { dtype: flag };
  if (backend.name === 'cpu') return { dtype: 'f32', reason: 'auto: f32 on the CPU' };
  return {
    dtype: nativeDtype(model),
    reason: `auto: the model's matrices are stored in ${matrixStoredTypes(model).join(', ')}`,
  };
}

/** `bf16 (auto: the model's matrices are stored in bf16)`, or the dtype alone where the flag named it. */
export function describeDtype(chosen: ChosenDtype): string {
  return chosen.reason ? `${chosen.dtype} (${chosen.reason})` : chosen.dtype;
}
