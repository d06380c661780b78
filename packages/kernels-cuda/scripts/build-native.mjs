#!/usr/bin/env node
// Builds the CUDA addon (build/Release/fairkv_cuda.node) from native/ with nvcc, when nvcc exists.
// An explicit step of the package's `build` script, never of `npm install` ("gypfile": false):
// without nvcc it prints why and exits 0, and the package still ships its TypeScript, which then
// reports "CUDA backend unavailable: <reason>" at run time.
//
// The CUDA runtime is linked statically and cuBLAS / NCCL are opened with dlopen at run time, so
// the addon loads on machines without a GPU, a driver, cuBLAS or NCCL and reports that cleanly.
// Targets: sm_80 (A100) and sm_90a (H100/H200) machine code, plus compute_90 PTX for newer GPUs.
//
// Usage: node scripts/build-native.mjs [--force] [--jobs N] [--probe-only]
// --probe-only compiles only the host code (no kernels) into build/probe-only/: the same loading,
// probing and error paths in seconds, which is what CI (no GPU) checks.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeRoot = join(packageRoot, 'native');
const buildRoot = join(packageRoot, 'build');
const objectRoot = join(buildRoot, process.argv.includes('--probe-only') ? 'obj-probe-only' : 'obj');
const probeOnly = process.argv.includes('--probe-only');
/** Where the full addon goes; a `--probe-only` build (host code, no kernels: a fast CI check) goes elsewhere. */
export const ADDON_OUTPUT = join(buildRoot, 'Release', 'fairkv_cuda.node');
export const PROBE_ONLY_OUTPUT = join(buildRoot, 'probe-only', 'fairkv_cuda.node');
const output = probeOnly ? PROBE_ONLY_OUTPUT : ADDON_OUTPUT;
const force = process.argv.includes('--force');
const jobsFlag = process.argv.indexOf('--jobs');
const jobs = jobsFlag > 0 ? Number(process.argv[jobsFlag + 1]) : Math.max(1, cpus().length);

/** The nvcc to use: $CUDA_HOME/bin/nvcc, $CUDA_PATH/bin/nvcc, /usr/local/cuda/bin/nvcc, then PATH. */
export function findNvcc() {
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']
    .filter(Boolean)
    .map((root) => join(root, 'bin', 'nvcc'));
  for (const candidate of candidates) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function nodeIncludeDir() {
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  for (const candidate of candidates) if (existsSync(join(candidate, 'node_api.h'))) return candidate;
  throw new Error(`node_api.h not found in ${candidates.join(', ')}: install the Node.js headers`);
}

function sources(dir, pattern = /\.(cu|cc)$/) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sources(path, pattern));
    else if (pattern.test(entry.name)) found.push(path);
  }
  return found;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}: ${args.join(' ')}`)),
    );
  });
}

async function main() {
  const nvcc = findNvcc();
  if (!nvcc) {
    console.log(
      '[kernels-cuda] nvcc not found (set CUDA_HOME): skipping the CUDA addon; the backend will report itself unavailable.',
    );
    return;
  }
  if (!force && existsSync(output) && statSync(output).mtimeMs >= newestMtime(nativeRoot)) {
    console.log(`[kernels-cuda] ${relative(process.cwd(), output)} is up to date`);
    return;
  }
  const require = createRequire(import.meta.url);
  const addonApiInclude = dirname(require.resolve('node-addon-api/package.json'));
  const includes = ['-I', nativeRoot, '-I', nodeIncludeDir(), '-I', addonApiInclude];
  const common = [
    '-O3',
    '-std=c++17',
    '-Xcompiler',
    '-fPIC,-fexceptions,-fvisibility=hidden',
    '-DNAPI_VERSION=8',
    '-DNAPI_CPP_EXCEPTIONS',
    ...(probeOnly ? ['-DFAIRKV_PROBE_ONLY'] : []),
  ];
  // FAIRKV_CUDA_ARCHS="90a" (comma-separated compute capabilities) narrows the targets for quick builds.
  // 90a is Hopper's arch-specific target (machine code for compute capability 9.0 only, with the
  // warpgroup MMAs the decode matmul uses); the PTX for newer GPUs is the portable compute_90.
  const capabilities = (process.env.FAIRKV_CUDA_ARCHS ?? '80,90a')
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean);
  const newest = capabilities[capabilities.length - 1].replace(/a$/, '');
  const architectures = [
    ...capabilities.map((capability) => `-gencode=arch=compute_${capability},code=sm_${capability}`),
    `-gencode=arch=compute_${newest},code=compute_${newest}`,
  ];
  mkdirSync(objectRoot, { recursive: true });
  mkdirSync(dirname(output), { recursive: true });
  const files = sources(nativeRoot).filter((file) => !probeOnly || file.endsWith('.cc'));
  const objects = files.map((file) => join(objectRoot, `${relative(nativeRoot, file).replace(/[/\\]/g, '_')}.o`));
  const started = Date.now();
  // Incremental: an object is rebuilt when its source or a header it includes (transitively) is newer.
  const includeTime = new Map();
  const newestInclude = (file, seen = new Set()) => {
    if (seen.has(file)) return 0;
    seen.add(file);
    let newest = statSync(file).mtimeMs;
    for (const match of readFileSync(file, 'utf8').matchAll(/#include "([^"]+)"/g)) {
      const header = join(dirname(file), match[1]);
      if (existsSync(header)) newest = Math.max(newest, newestInclude(header, seen));
    }
    return newest;
  };
  const stale = (file, object) => {
    if (!includeTime.has(file)) includeTime.set(file, newestInclude(file));
    return force || !existsSync(object) || statSync(object).mtimeMs < includeTime.get(file);
  };
  const queue = files.map((file, index) => async () => {
    if (!stale(file, objects[index])) return;
    const isCuda = file.endsWith('.cu');
    const args = [
      '-c',
      file,
      '-o',
      objects[index],
      ...common,
      ...includes,
      ...(isCuda ? [...architectures, '--expt-relaxed-constexpr'] : []),
    ];
    console.log(`[kernels-cuda] nvcc ${relative(packageRoot, file)}`);
    return run(nvcc, args);
  });
  const workers = Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    while (queue.length > 0) await queue.shift()();
  });
  await Promise.all(workers);
  await run(nvcc, [
    '-shared',
    '-o',
    output,
    ...objects,
    '-cudart',
    'static',
    '-Xlinker',
    '--as-needed',
    '-ldl',
    '-lrt',
    '-lpthread',
  ]);
  const nvccVersion = execFileSync(nvcc, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop();
  writeFileSync(
    join(dirname(output), 'build-info.json'),
    `${JSON.stringify({ nvcc: nvccVersion, probeOnly, architectures: [...capabilities.map((capability) => `sm_${capability}`), `compute_${newest}`], seconds: (Date.now() - started) / 1000, bytes: statSync(output).size }, null, 2)}\n`,
  );
  console.log(
    `[kernels-cuda] built ${relative(process.cwd(), output)} (${(statSync(output).size / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(`[kernels-cuda] addon build failed: ${error.message}`);
    process.exit(1);
  });
}
