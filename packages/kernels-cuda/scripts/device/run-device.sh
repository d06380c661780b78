#!/usr/bin/env bash
# Runs on a lent GPU machine (no Node, no node_modules there): unpacks the carried node binary,
# points the addon at cuBLAS, then runs the conformance suite, the NCCL check and the decode
# attention benchmark from their esbuild bundles in .device/ (see bundle-device.sh).
# Usage there: bash packages/kernels-cuda/scripts/device/run-device.sh [conformance|nccl|nccl-mp|fault|runtime|e2e|cli|cli-graphs|profile|bench|read-probe|prefill|prefill-ttft|matmul|matmul-l2|allreduce|host|graphs]...
# (`runtime` needs .device/stories260K.gguf: copy ../shared/models/stories260K.gguf there first;
#  `e2e` runs every .device/e2e-plans-G.json from `npx tsx bench/cuda-decode-e2e/run.ts prepare G` whose G
#  GPUs are here, or the files FAIRKV_E2E_PLANS lists; FAIRKV_E2E_EXECUTIONS picks workers,inline)
set -uo pipefail
# unpacked once per machine: rewriting the binary while a node from an earlier step still exits fails
# ("text file busy") and would leave PATH without node
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node.part && chmod +x /tmp/node.part && mv /tmp/node.part /tmp/node; }
export PATH=/tmp:$PATH
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; export OUT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
CUBLAS=$(ls /usr/local/cuda/lib64/libcublas.so.1* 2>/dev/null | head -1)
[ -z "$CUBLAS" ] && CUBLAS=$(find / \( -path /proc -o -path /sys \) -prune -o -name 'libcublas.so.1[0-9]' -print 2>/dev/null | head -1)
echo "cuBLAS: ${CUBLAS:-none}"
if [ -n "$CUBLAS" ]; then export FAIRKV_CUBLAS_LIBRARY=$CUBLAS LD_LIBRARY_PATH=$(dirname "$CUBLAS"):${LD_LIBRARY_PATH:-}; fi
export FAIRKV_CUDA_ADDON=${FAIRKV_CUDA_ADDON:-$PWD/packages/kernels-cuda/build/Release/fairkv_cuda.node}
# the commit bundle-device.sh recorded (the benchmarks write it into their JSON)
[ -z "${FAIRKV_GIT_COMMIT:-}" ] && [ -f .device/commit.txt ] && export FAIRKV_GIT_COMMIT=$(cat .device/commit.txt)
status=0
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(conformance nccl bench)
for step in "${steps[@]}"; do
  case $step in
    conformance) node .device/conformance.mjs 2>&1 | tee "$OUT/conformance.log" || status=1 ;;
    nccl) node .device/nccl-check.mjs 2>&1 | tee "$OUT/nccl.log" || status=1 ;;
    fault) # a GPU failing part-way through a call: the others are released, the engine stops (2 GPUs)
      for scenario in prefill-first decode-eager decode-graph prefill-after-graphs connect none; do
        timeout 180 node .device/cli/fault-check.mjs .device/stories260K.gguf $scenario 2>&1 | tee -a "$OUT/fault.log"
        rc=${PIPESTATUS[0]}
        [ "$rc" -eq 0 ] || { status=1; echo "fault $scenario: exit $rc (124: timed out, a hang)" | tee -a "$OUT/fault.log"; }
      done ;;
    nccl-mp) node .device/nccl-multiprocess.mjs "$(nvidia-smi -L | wc -l)" 2>&1 | tee "$OUT/nccl-multiprocess.log" || status=1
      # a rank's process gone mid-run: the others must get an error, not wait forever
      timeout 120 node .device/nccl-multiprocess.mjs "$(nvidia-smi -L | wc -l)" lost 2>&1 | tee "$OUT/nccl-multiprocess-lost.log" || status=1
      # a rank whose process lives on aborts the group (its device failed): the others must hear of it
      timeout 120 node .device/nccl-multiprocess.mjs "$(nvidia-smi -L | wc -l)" abort 2>&1 | tee "$OUT/nccl-multiprocess-abort.log" || status=1
      # a rank that never joins ncclCommInitRank (gone, or its init failed): the others stop waiting
      for mode in init-lost init-abort; do
        timeout 120 node .device/nccl-multiprocess.mjs "$(nvidia-smi -L | wc -l)" $mode 2>&1 | tee "$OUT/nccl-multiprocess-$mode.log" || status=1
      done ;;
    profile) FAIRKV_BENCH_QUICK=1 FAIRKV_BENCH_REPEATS=1 FAIRKV_BENCH_DIR=$PWD/bench/cuda-decode-attention \
      ncu --target-processes all -k regex:'decodeMma|scheduleKernel|combineKernel' --launch-skip 6 --launch-count 6 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
      node .device/bench-decode.mjs > "$OUT/ncu.txt" 2>&1 || status=1
      grep -E "decodeMma|scheduleKernel|combineKernel|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Theoretical Occ|Grid Size" "$OUT/ncu.txt" | head -80 ;;
    runtime) node .device/runtime-check.mjs .device/stories260K.gguf 2>&1 | tee "$OUT/runtime.log" || status=1 ;;
    e2e) gpus=$(nvidia-smi -L | wc -l)
      for plans in ${FAIRKV_E2E_PLANS:-$(ls -r .device/e2e-plans-*.json)}; do
        g=${plans##*-}; g=${g%.json}
        # the GPU count is the name's last part (e2e-plans-G.json, or any name ending in -G.json)
        [[ "$g" =~ ^[0-9]+$ ]] || { echo "e2e: $plans: the name must end in -G.json (G: its GPU count)"; status=1; continue; }
        [ "$g" -le "$gpus" ] || { echo "e2e: $plans needs $g GPUs, this machine has $gpus: skipped"; continue; }
        node .device/e2e.mjs run "$plans" "${FAIRKV_E2E_EXECUTIONS:-workers,inline}" 2>&1 | tee -a "$OUT/e2e.log" || status=1
      done ;;
    cli) for backend in cpu cuda; do for devices in 1 2; do
        node .device/cli/cli.mjs generate --model .device/stories260K.gguf --prompt "Once upon a time" --max-tokens 60 \
          --backend $backend --devices $devices --solver fair-copy --json > "$OUT/cli-$backend-$devices.json" || status=1
        node -e "const r=JSON.parse(require('fs').readFileSync('$OUT/cli-$backend-$devices.json','utf8'));console.log('$backend x$devices', r.decodeTokensPerSecond.toFixed(0), 'tok/s:', JSON.stringify(r.text))" || status=1
      done; done
      node .device/cli/cli.mjs bench --model .device/stories260K.gguf --backend cuda --devices 2 --requests 8 \
        --concurrency 8 --max-tokens 32 --policy snapkv --budget 16 --out "$OUT/cli-bench-cuda-2.json" || status=1 ;;
    matmul-l2) FAIRKV_MATMUL_ROWS=${FAIRKV_MATMUL_ROWS:-1,58} FAIRKV_BENCH_DIR=$PWD/bench/cuda-matmul \
      ncu --clock-control none -k regex:matmulTensorCore --launch-count ${FAIRKV_NCU_LAUNCHES:-8} \
      --metrics dram__sectors_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_requests_srcunit_tex_op_read.sum,gpu__time_duration.sum \
      node .device/bench-matmul.mjs > "$OUT/ncu-matmul-l2.txt" 2>&1 || status=1
      grep -E "matmulTensorCore|dram__|lts__|gpu__time" "$OUT/ncu-matmul-l2.txt" | head -60 ;;
    matmul) FAIRKV_BENCH_DIR=$PWD/bench/cuda-matmul node .device/bench-matmul.mjs 2>&1 | tee "$OUT/matmul.log" || status=1 ;;
    allreduce) FAIRKV_BENCH_DIR=$PWD/bench/cuda-allreduce node .device/bench-allreduce.mjs 2>&1 | tee "$OUT/allreduce.log" || status=1 ;;
    read-probe) # DRAM read rates of the decode attention's access shapes (bench/cuda-decode-attention/read-probe.cu)
      "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I packages/kernels-cuda/native \
        -o /tmp/read-probe bench/cuda-decode-attention/read-probe.cu || status=1
      for args in "528 31 512" "2112 15 1024"; do
        set -- $args
        /tmp/read-probe "$@" > "$OUT/read-probe-$1-$3.json" || status=1
        grep -E '"ms"' "$OUT/read-probe-$1-$3.json" | sed -E 's/.*"name": "([^"]*)".*"ms": ([0-9.]+), "gbPerSecond": ([0-9.]+).*/'"$1"' MiB: \1 \2 ms \3 GB\/s/'
      done ;;
    bench) FAIRKV_BENCH_DIR=$PWD/bench/cuda-decode-attention node .device/bench-decode.mjs 2>&1 | tee "$OUT/bench.log" || status=1 ;;
    prefill) FAIRKV_BENCH_DIR=$PWD/bench/cuda-prefill-attention node .device/bench-prefill.mjs 2>&1 | tee "$OUT/prefill.log" || status=1 ;;
    prefill-ttft) [ -f /tmp/prefill-fixture/model.gguf ] || node .device/prefill-fixture.mjs /tmp/prefill-fixture || status=1
      for round in 1 2; do
        node .device/cli/cli.mjs generate --model /tmp/prefill-fixture/model.gguf --prompt "$(cat /tmp/prefill-fixture/prompt.txt)" \
          --max-tokens 8 --backend cuda --dtype bf16 --policy snapkv --budget 512 --json > "$OUT/prefill-ttft-$round.json" || status=1
        node -e "const r=JSON.parse(require('fs').readFileSync('$OUT/prefill-ttft-$round.json','utf8'));console.log('prefill-ttft round $round:', r.promptTokens, 'prompt tokens, prefill', r.prefillSeconds.toFixed(3), 's, decode', r.decodeTokensPerSecond.toFixed(0), 'tok/s, tokens', JSON.stringify(r.tokenIds))" || status=1
      done ;;
    host) FAIRKV_BENCH_DIR=$PWD/bench/cuda-host-overhead node .device/bench-host.mjs 2>&1 | tee "$OUT/host.log" || status=1 ;;
    graphs) FAIRKV_BENCH_DIR=$PWD/bench/cuda-graph-steps node .device/bench-graphs.mjs 2>&1 | tee "$OUT/graphs.log" || status=1 ;;
    cli-graphs) gpus=$(nvidia-smi -L | wc -l); for devices in 1 $([ "$gpus" -gt 1 ] && echo 2); do
      for round in 1 2; do for graphs in 1 0; do
        FAIRKV_CUDA_GRAPHS=$graphs node .device/cli/cli.mjs generate --model .device/stories260K.gguf --prompt "Once upon a time" \
          --max-tokens 200 --backend cuda --devices $devices --solver fair-copy --json > "$OUT/cli-graphs-$devices-$graphs-$round.json" || status=1
        node -e "const r=JSON.parse(require('fs').readFileSync('$OUT/cli-graphs-$devices-$graphs-$round.json','utf8'));console.log('$devices GPU(s), graphs=$graphs, round $round:', r.decodeTokensPerSecond.toFixed(0), 'tok/s:', JSON.stringify(r.text.slice(0, 80)))" || status=1
      done; done; done ;;
  esac
done
exit $status
