#!/usr/bin/env bash
# Bundles the device-side programs into .device/ (git-ignored) with esbuild, vitest replaced by the
# shim, so they run on a GPU machine that has no node_modules. Run from the repository root.
set -euo pipefail
mkdir -p .device
[ -f .device/node.xz ] || xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > .device/node.xz
banner="--banner:js=import{createRequire as __cr}from'module';const require=__cr(import.meta.url);"
common=(--bundle --platform=node --format=esm --target=node20 --tsconfig=tsconfig.json --log-level=warning "$banner")
npx esbuild packages/kernels-cuda/scripts/device/conformance-runner.ts "${common[@]}" --outfile=.device/conformance.mjs \
  --alias:vitest=./packages/kernels-cuda/scripts/device/vitest-shim.ts
npx esbuild packages/kernels-cuda/scripts/device/nccl-check.ts "${common[@]}" --outfile=.device/nccl-check.mjs
npx esbuild packages/kernels-cuda/scripts/device/nccl-multiprocess-check.ts "${common[@]}" --outfile=.device/nccl-multiprocess.mjs
npx esbuild bench/cuda-decode-attention/run.ts "${common[@]}" --outfile=.device/bench-decode.mjs
npx esbuild bench/cuda-matmul/run.ts "${common[@]}" --outfile=.device/bench-matmul.mjs
npx esbuild bench/cuda-prefill-attention/run.ts "${common[@]}" --outfile=.device/bench-prefill.mjs
npx esbuild bench/cuda-prefill-attention/fixture.ts "${common[@]}" --outfile=.device/prefill-fixture.mjs
npx esbuild bench/cuda-allreduce/run.ts "${common[@]}" --outfile=.device/bench-allreduce.mjs
npx esbuild bench/cuda-host-overhead/run.ts "${common[@]}" --outfile=.device/bench-host.mjs
npx esbuild bench/cuda-graph-steps/run.ts "${common[@]}" --outfile=.device/bench-graphs.mjs
npx esbuild bench/cuda-decode-e2e/run.ts "${common[@]}" --external:glpk.js --outfile=.device/e2e.mjs
# the e2e benchmark's worker threads load these two bundles (beside e2e.mjs)
npx esbuild packages/runtime/src/engine/device-worker.ts "${common[@]}" --outfile=.device/device-worker.mjs
npx esbuild packages/kernels-cuda/src/worker-device.ts "${common[@]}" --outfile=.device/cuda-worker-device.mjs
npx esbuild packages/kernels-cuda/scripts/device/runtime-check.ts "${common[@]}" --outfile=.device/runtime-check.mjs
# the CLI, with the two worker bundles where the built packages keep them (beside the entry, as .js)
mkdir -p .device/cli && echo '{"type":"module"}' > .device/cli/package.json
npx esbuild packages/cli/src/cli.ts "${common[@]}" --external:glpk.js --outfile=.device/cli/cli.mjs
cp .device/device-worker.mjs .device/cli/device-worker.js
cp .device/cuda-worker-device.mjs .device/cli/worker-device.js
# the fault check runs from .device/cli too: its workers load device-worker.js from there
npx esbuild packages/kernels-cuda/scripts/device/fault-check.ts "${common[@]}" --external:glpk.js --outfile=.device/cli/fault-check.mjs
npx esbuild packages/kernels-cuda/scripts/device/fault-worker-device.ts "${common[@]}" --outfile=.device/cli/fault-worker-device.mjs
# the commit the bundles are built from (-dirty: tracked files differ from it); run-device.sh hands it
# to the benchmarks as FAIRKV_GIT_COMMIT, since the GPU machine's copy of the tree may carry stale git data
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || commit="$commit-dirty"
echo "$commit" > .device/commit.txt
ls -la .device .device/cli
