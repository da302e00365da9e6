#!/usr/bin/env bash
# The one script run on the GPU machine: environment, build, GPU tests, the rest of the suite,
# kernel benchmarks, training against PyTorch, a few real training steps, docs. Every step runs
# under `timeout`, a failing step does not stop the next, and the whole script ends within its
# budget (short mode: 290 s, meant to fit 5 minutes on an H100 with 16 cores).
#
#   tools/gpu_check.sh OUT [--full] [--skip-build] [--build-dir DIR] [--budget SECONDS]
#
#   OUT           results folder (the device tool's $OUT): summary.txt (one line per step:
#                 ok / FAILED / TIMEOUT / SKIPPED, seconds, a note), env.txt, build.log,
#                 ctest-gpu.log + ctest-gpu.xml (JUnit), ctest-rest.log + ctest-rest.xml,
#                 bench-<name>.json + .log, train-vs-pytorch.json + .log, resnet50-train.log,
#                 benchmarks.md + benchmarks.svg.
#   --full        all batches (32,128,256), every precision, longer benchmark min time, more
#                 rounds; budget 570 s: run it alone in one call.
#   --skip-build  use the existing build folder as it is (e.g. one carried from elsewhere).
#   --build-dir   relative to the repository root; default build-gpu (reused when configured for
#                 this source path with the same generator, else made afresh).
#   --budget      seconds for the whole script (default 290 short, 570 full).
#   --only LIST   run only these steps (comma-separated): build,tests,bench,train,example,docs
#                 (the environment is always recorded), e.g. a second call on the warm machine:
#                 --only bench,train,docs (the build folder stays there between calls).
#
# Short-mode step budgets (capped by what is left of the whole budget): build 150 s; tests 75 s
# (GPU tests with CUDAGRAD_REQUIRE_GPU=1 and the rest of the suite side by side, each ctest stopping
# itself at the deadline so its JUnit file is still written); kernel benchmarks ~75 s
# (--benchmark_min_time=0.05, CUDAGRAD_BENCH_BATCHES=128, a cap per binary; a binary cut short
# leaves the cases it finished); training vs PyTorch 90 s (fp32 and tf32, batch 128, 5 steps);
# resnet50 train 40 s (20 steps of the GPU recipe on Fashion-MNIST, if the data is there:
# $CUDAGRAD_FASHION_MNIST, build-data/fashion-mnist (carry it: ignored by /build*/), data/...,
# or /usr/share/datasets/fashion-mnist).
#
# Without a GPU it still builds and runs every step: the GPU tests fail (CUDAGRAD_REQUIRE_GPU=1),
# the GPU benchmarks and training report skipped, and the script exits 1 saying so.
# Exit status: 0 when every step passed on a GPU, 1 otherwise.
set -u
caller_dir=$PWD
cd "$(dirname "$0")/.." || exit 2
source_dir=$(pwd)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
out="" full=0 skip_build=0 build_dir=build-gpu budget="" only="build,tests,bench,train,example,docs"
while (( $# )); do
  case "$1" in
    --full) full=1 ;;
    --skip-build) skip_build=1 ;;
    --build-dir) build_dir=${2:?--build-dir needs a folder}; shift ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --only) only=${2:?--only needs a list of steps}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu_check: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) if [[ -z "$out" ]]; then out=$1; else echo "gpu_check: one results folder only" >&2; exit 2; fi ;;
  esac
  shift
done
[[ -n "$out" ]] || { usage >&2; exit 2; }
for step in ${only//,/ }; do
  case $step in build|tests|bench|train|example|docs) ;; *) echo "gpu_check: unknown step '$step' in --only" >&2; exit 2 ;; esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }
wants build || skip_build=1
[[ "$out" = /* ]] || out="$caller_dir/$out"
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
[[ "$build_dir" = /* ]] || build_dir="$source_dir/$build_dir"
if [[ -z "$budget" ]]; then budget=$(( full ? 570 : 290 )); fi
start=$(date +%s)
deadline=$(( start + budget ))
summary="$out/summary.txt"
: > "$summary"
failures=0

# ------------------------------------------------------------------------------ helpers
log() { echo "[gpu_check $(( $(date +%s) - start ))s] $*"; }

# record STEP STATUS SECONDS NOTE: one summary line (and the console).
record() {
  printf '%-22s %-8s %4ss  %s\n' "$1" "$2" "$3" "${4:-}" | tee -a "$summary"
  case "$2" in ok|SKIPPED) ;; *) failures=$(( failures + 1 )) ;; esac
}

# time_left: seconds until the deadline, less $reserve (10 s kept for the docs step at the end).
reserve=10
time_left() { echo $(( deadline - $(date +%s) - reserve )); }

# run_step STEP CAP LOG COMMAND...: runs COMMAND under timeout (the smaller of CAP and the time
# left), output to LOG; records ok / FAILED (status) / TIMEOUT / SKIPPED (exit 77). Sets step_status.
run_step() {
  local step=$1 cap=$2 logfile=$3
  shift 3
  local left limit began status
  left=$(time_left)
  if (( left < 5 )); then
    step_status=TIMEOUT
    record "$step" TIMEOUT 0 "not started: the ${budget} s budget is spent"
    return
  fi
  limit=$(( cap < left ? cap : left ))
  log "$step (up to ${limit}s): $*"
  began=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$logfile" 2>&1
  status=$?
  local seconds=$(( $(date +%s) - began ))
  case $status in
    0) if [[ ${gpu_only:-0} = 1 && $has_gpu = 0 ]]; then
         step_status=SKIPPED; record "$step" SKIPPED "$seconds" "no GPU: every case skipped"
       else
         step_status=ok; record "$step" ok "$seconds" "${step_note:-}"
       fi ;;
    77) step_status=SKIPPED; record "$step" SKIPPED "$seconds" "${step_note:+$step_note }(exit 77: nothing to run here)" ;;
    124|137) step_status=TIMEOUT; record "$step" TIMEOUT "$seconds" "killed after ${limit}s; see $(basename "$logfile")" ;;
    *) step_status=FAILED; record "$step" FAILED "$seconds" "exit $status; see $(basename "$logfile")" ;;
  esac
  step_note=""
  gpu_only=0
}

# find_tool NAME: the first NAME on PATH or in a Python venv under /opt (the GPU image keeps
# cmake 4 and ninja in /opt/torch/.venv/bin).
find_tool() {
  local candidate
  for candidate in "$(command -v "$1" 2>/dev/null)" /opt/torch/.venv/bin/"$1" /opt/*/.venv/bin/"$1" /opt/*/bin/"$1"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then echo "$candidate"; return 0; fi
  done
  return 1
}

# cmake 3.25 or newer (the project's minimum).
find_cmake() {
  local candidate version
  for candidate in ${CMAKE:-} "$(command -v cmake 2>/dev/null)" /opt/torch/.venv/bin/cmake /opt/*/.venv/bin/cmake /opt/*/bin/cmake; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    version=$("$candidate" --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+' | head -1)
    if [[ -n "$version" ]] && printf '3.25\n%s\n' "$version" | sort -V -C; then echo "$candidate"; return 0; fi
  done
  return 1
}

# ------------------------------------------------------------------------------ 1. environment
step_began=$(date +%s)
has_gpu=0
if command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi -L > /dev/null 2>&1; then has_gpu=1; fi
cmake_bin=$(find_cmake) || cmake_bin=""
ctest_bin=""
if [[ -n "$cmake_bin" ]]; then
  ctest_bin="$(dirname "$cmake_bin")/ctest"
  [[ -x "$ctest_bin" ]] || ctest_bin=$(command -v ctest 2>/dev/null || echo "")
fi
ninja_bin=$(find_tool ninja) || ninja_bin=""
nvcc_bin=$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)
if git -C "$source_dir" rev-parse HEAD > /dev/null 2>&1; then
  commit=$(git -C "$source_dir" rev-parse --short HEAD)
  if [[ -n "$(git -C "$source_dir" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then commit="$commit+changes"; fi
elif [[ -f "$source_dir/COMMIT" ]]; then
  commit=$(head -1 "$source_dir/COMMIT")
else
  commit="unknown"
fi
export CUDAGRAD_COMMIT="${CUDAGRAD_COMMIT:-$commit}"
jobs=${CUDAGRAD_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}  # CUDAGRAD_CHECK_JOBS: fewer on a shared machine
{
  echo "gpu_check started $(date -u '+%Y-%m-%d %H:%M:%S UTC'), mode $([[ $full = 1 ]] && echo full || echo short), budget ${budget}s"
  echo "source: $source_dir   commit: $CUDAGRAD_COMMIT   build: $build_dir"
  echo "host: $(hostname) $(uname -srm), $jobs cores, $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB memory"}')"
  echo; echo "== nvidia-smi"
  timeout 20 nvidia-smi 2>&1 || echo "(nvidia-smi failed or absent: no GPU)"
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1 || true
  echo; echo "== nvcc ($nvcc_bin)"; "$nvcc_bin" --version 2>&1 | tail -2 || echo "(no nvcc)"
  echo; echo "== cmake ($cmake_bin)"; [[ -n "$cmake_bin" ]] && "$cmake_bin" --version | head -1
  echo "ninja: ${ninja_bin:-none} $([[ -n "$ninja_bin" ]] && "$ninja_bin" --version)"
  echo "g++: $(g++ --version 2>&1 | head -1)"
  echo; echo "== cuDNN header"
  grep -hE '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' /usr/include/x86_64-linux-gnu/cudnn_version*.h /usr/local/cuda/include/cudnn_version.h 2>/dev/null | head -3
  echo; echo "== Python and PyTorch"
  for python in "${CUDAGRAD_TORCH_PYTHON:-}" /opt/torch/.venv/bin/python /opt/*/.venv/bin/python3 "$(command -v python3)" /usr/bin/python3; do
    [[ -n "$python" && -x "$python" ]] || continue
    echo "$python: $(timeout 60 "$python" -c 'import sys; print(sys.version.split()[0], end=" ")
try:
    import torch, torchvision
    print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda,
          "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.is_available())
except Exception as error:
    print("no torch:", error)' 2>&1 | tail -1)"
  done
} > "$out/env.txt" 2>&1
note="GPU: $([[ $has_gpu = 1 ]] && timeout 10 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo 'NONE (no nvidia-smi / no device)'); commit $CUDAGRAD_COMMIT"
record environment ok $(( $(date +%s) - step_began )) "$note"

# ------------------------------------------------------------------------------ 2. build
if (( skip_build )); then
  if [[ -f "$build_dir/CMakeCache.txt" ]]; then
    record build SKIPPED 0 "--skip-build: using $build_dir as it is"
  else
    record build FAILED 0 "--skip-build but $build_dir has no CMakeCache.txt"
  fi
elif [[ -z "$cmake_bin" ]]; then
  record build FAILED 0 "no cmake >= 3.25 found (PATH, /opt/*/.venv/bin)"
else
  generator=()
  if [[ -n "$ninja_bin" ]]; then generator=(-G Ninja -DCMAKE_MAKE_PROGRAM="$ninja_bin"); fi
  if [[ -f "$build_dir/CMakeCache.txt" ]]; then
    cached_home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt")
    cached_generator=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build_dir/CMakeCache.txt")
    cached_make=$(sed -n 's/^CMAKE_MAKE_PROGRAM:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
    wanted_generator=$([[ -n "$ninja_bin" ]] && echo Ninja || echo "Unix Makefiles")
    if [[ "$cached_home" != "$source_dir" || "$cached_generator" != "$wanted_generator" || ! -x "$cached_make" ]]; then
      log "build: $build_dir was configured elsewhere ($cached_home, $cached_generator); starting fresh"
      rm -rf "$build_dir"
    else
      log "build: reusing $build_dir"
    fi
  fi
  keep_going=(-k)
  [[ -n "$ninja_bin" ]] && keep_going=(-k 0)
  # The parity test runs PyTorch: give it a Python that imports torch and torchvision.
  parity_python=/usr/bin/python3
  for python in "${CUDAGRAD_TORCH_PYTHON:-}" /opt/torch/.venv/bin/python /opt/*/.venv/bin/python3 /usr/bin/python3; do
    if [[ -n "$python" && -x "$python" ]] && timeout 60 "$python" -c 'import torch, torchvision' >/dev/null 2>&1; then
      parity_python=$python
      break
    fi
  done
  build_script=$(printf '%q ' "$cmake_bin" -S "$source_dir" -B "$build_dir" "${generator[@]}" \
                 -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCUDAGRAD_PYTHON="$parity_python")
  build_script+=" && "$(printf '%q ' "$cmake_bin" --build "$build_dir" -j "$jobs" -- "${keep_going[@]}")
  run_step build $(( full ? 400 : 150 )) "$out/build.log" bash -c "$build_script"
  if [[ $step_status != ok ]]; then
    grep -E 'error|Error|FAILED' "$out/build.log" | head -20 > "$out/build-errors.txt"
  fi
fi
# Whatever built can still run: the test, benchmark and example steps look for their binaries.

# A build made on another machine may not find cuBLAS/cuDNN through its RUNPATH: add the usual
# folders then (not otherwise: PyTorch must keep loading its own cuDNN).
if [[ -f "$build_dir/libcudagrad.so" ]] && ldd "$build_dir/libcudagrad.so" 2>/dev/null | grep -q "not found"; then
  for folder in /usr/local/cuda/lib64 /usr/local/cuda-13.0/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [[ -d "$folder" ]] && LD_LIBRARY_PATH="$folder${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
  export LD_LIBRARY_PATH
  echo "LD_LIBRARY_PATH set for the carried build: $LD_LIBRARY_PATH" >> "$out/env.txt"
fi

# ------------------------------------------------------------------------------ 3. tests
if wants tests; then
  # The GPU tests (CUDAGRAD_REQUIRE_GPU=1: no GPU is a failure) and the rest of the suite run side
  # by side (CPU-bound tests barely touch the GPU); each ctest stops itself at the step's end so its
  # log and JUnit file are complete.
  if [[ -n "$ctest_bin" && -f "$build_dir/CTestTestfile.cmake" ]]; then
    tests_cap=$(( full ? 240 : 75 ))
    left=$(time_left)
    tests_limit=$(( tests_cap < left ? tests_cap : left ))
    if (( tests_limit < 10 )); then
      record gpu-tests TIMEOUT 0 "not started: budget spent"
      record cpu-tests TIMEOUT 0 "not started: budget spent"
    else
      stop_time=$(date -d "@$(( $(date +%s) + tests_limit ))" '+%H:%M:%S')  # local time of day: the form ctest reads
      per_test=$(( full ? 300 : 60 ))
      log "tests (up to ${tests_limit}s): GPU tests with CUDAGRAD_REQUIRE_GPU=1 beside the rest"
      began=$(date +%s)
      CUDAGRAD_REQUIRE_GPU=1 timeout --kill-after=5 $(( tests_limit + 10 )) "$ctest_bin" --test-dir "$build_dir" \
        -R '^test_cuda_' --no-tests=error -j 4 --timeout "$per_test" --stop-time "$stop_time" --output-on-failure \
        --output-junit "$out/ctest-gpu.xml" > "$out/ctest-gpu.log" 2>&1 &
      gpu_pid=$!
      timeout --kill-after=5 $(( tests_limit + 10 )) "$ctest_bin" --test-dir "$build_dir" -E '^test_cuda_' \
        -j $(( jobs > 6 ? jobs - 4 : 2 )) --timeout "$per_test" --stop-time "$stop_time" --output-on-failure \
        --output-junit "$out/ctest-rest.xml" > "$out/ctest-rest.log" 2>&1 &
      rest_pid=$!
      wait $gpu_pid; gpu_status=$?
      wait $rest_pid; rest_status=$?
      seconds=$(( $(date +%s) - began ))
      for pair in "gpu-tests:$gpu_status:ctest-gpu.log" "cpu-tests:$rest_status:ctest-rest.log"; do
        IFS=: read -r step status logname <<< "$pair"
        result_line=$(grep -E 'tests passed|No tests were found' "$out/$logname" | tail -1)
        failed_tests=$(sed -n '/The following tests FAILED/,$p' "$out/$logname" | grep -E '^\s+[0-9]+ - ' | \
                       sed -E 's/^\s+[0-9]+ - //' | tr '\n' ';' | cut -c1-300)
        if [[ $step = gpu-tests && $has_gpu = 0 ]]; then failed_tests="no GPU on this machine (CUDAGRAD_REQUIRE_GPU=1): $failed_tests"; fi
        if grep -q "The stop time has been passed" "$out/$logname"; then status=124; fi
        case $status in
          0) record "$step" ok "$seconds" "$result_line" ;;
          124|137) record "$step" TIMEOUT "$seconds" "$result_line; stopped at the step's limit: $failed_tests" ;;
          *) record "$step" FAILED "$seconds" "$result_line; $failed_tests" ;;
        esac
      done
    fi
  else
    record gpu-tests FAILED 0 "no ctest or no test tree in $build_dir"
    record cpu-tests FAILED 0 "no ctest or no test tree in $build_dir"
  fi
fi

# ------------------------------------------------------------------------------ 4. kernel benchmarks
if wants bench; then
  export CUDAGRAD_BENCH_BATCHES
  if (( full )); then CUDAGRAD_BENCH_BATCHES=${CUDAGRAD_BENCH_BATCHES:-32,128,256}; min_time=0.5
  else CUDAGRAD_BENCH_BATCHES=${CUDAGRAD_BENCH_BATCHES:-128}; min_time=0.05; fi
  shopt -s nullglob
  bench_binaries=("$build_dir"/benchmarks/bench_cuda_*)
  shopt -u nullglob
  if (( ${#bench_binaries[@]} == 0 )); then
    record benchmarks FAILED 0 "no bench_cuda_* binaries in $build_dir/benchmarks"
  fi
  for binary in "${bench_binaries[@]}"; do
    [[ -x "$binary" && -f "$binary" ]] || continue
    name=$(basename "$binary")
    short=${name#bench_cuda_}
    case $short in conv2d) cap=30 ;; gemm) cap=15 ;; *) cap=8 ;; esac
    (( full )) && cap=$(( cap * 5 ))
    json="$out/bench-$short.json"
    step_note="batches $CUDAGRAD_BENCH_BATCHES, min time ${min_time}s"
    gpu_only=1
    run_step "bench-$short" "$cap" "$out/bench-$short.log" "$binary" --benchmark_min_time="$min_time" \
      --benchmark_out="$json" --benchmark_out_format=json
  done
fi

# ------------------------------------------------------------------------------ 5. training vs PyTorch
if wants train; then
  train_json="$out/train-vs-pytorch.json"
  if [[ -x "$build_dir/benchmarks/bench_train" ]]; then
    if (( full )); then train_args=(--batches "32,128,256" --precisions "fp32,tf32,bf16" --steps 10 --warmup 3 --rounds 2)
    else train_args=(--batches 128 --precisions "fp32,tf32" --steps 5 --warmup 2 --rounds 1); fi
    driver_python=$(command -v python3 || echo /usr/bin/python3)
    run_step train-vs-pytorch $(( full ? 300 : 90 )) "$out/train-vs-pytorch.log" "$driver_python" \
      benchmarks/train_vs_pytorch.py --device cuda --binary "$build_dir/benchmarks/bench_train" "${train_args[@]}" \
      --json "$train_json"
    grep -A12 '^ResNet-50 training, cudagrad vs PyTorch' "$out/train-vs-pytorch.log" | head -14 | sed 's/^/    /' >> "$summary"
  else
    record train-vs-pytorch FAILED 0 "no $build_dir/benchmarks/bench_train"
  fi
fi

# ------------------------------------------------------------------------------ 6. real training steps
if wants example; then
  resnet=$build_dir/examples/resnet50/resnet50
  data=""
  for candidate in "${CUDAGRAD_FASHION_MNIST:-}" build-data/fashion-mnist data/fashion-mnist out/fashion-mnist \
                   /usr/share/datasets/fashion-mnist; do
    if [[ -n "$candidate" && ( -f "$candidate/train-images-idx3-ubyte.gz" || -f "$candidate/train-images-idx3-ubyte" ) ]]; then
      data=$candidate; break
    fi
  done
  if [[ ! -x "$resnet" ]]; then
    record resnet50-train FAILED 0 "no $resnet"
  elif [[ -z "$data" ]]; then
    record resnet50-train SKIPPED 0 "no Fashion-MNIST (copy it to build-data/fashion-mnist and carry build-data)"
  else
    step_note="20 steps of the GPU recipe (batch 256) on $data"
    run_step resnet50-train $(( full ? 120 : 40 )) "$out/resnet50-train.log" "$resnet" train --device cuda \
      --data-dir "$data" --epochs 1 --max-steps 20 --train-subset 5120 --test-subset 1000 --workers 4 \
      --output "$build_dir/resnet50-run"
    # The checkpoints (~200 MB each) stay in the build folder; the metrics come back.
    cp "$build_dir"/resnet50-run/metrics.* "$out/" 2> /dev/null
    tail -4 "$out/resnet50-train.log" | sed 's/^/    /' >> "$summary"
  fi
fi

# ------------------------------------------------------------------------------ 7. docs
if wants docs; then
  reserve=1
  shopt -s nullglob
  inputs=("$out"/bench-*.json)
  shopt -u nullglob
  [[ -s "$out/train-vs-pytorch.json" ]] && inputs+=("$out/train-vs-pytorch.json")
  if (( ${#inputs[@]} )); then
    run_step benchmarks.md 30 "$out/benchmarks-md.log" "$(command -v python3 || echo /usr/bin/python3)" \
      tools/benchmarks_to_markdown.py "${inputs[@]}" --output "$out/benchmarks.md" --svg "$out/benchmarks.svg"
  else
    record benchmarks.md FAILED 0 "no benchmark results to render"
  fi
fi

# ------------------------------------------------------------------------------ verdict
total=$(( $(date +%s) - start ))
if (( has_gpu == 0 )); then
  verdict="NO GPU on this machine: GPU tests fail by design (CUDAGRAD_REQUIRE_GPU=1), GPU benchmarks skipped"
  failures=$(( failures + 1 ))
elif (( failures == 0 )); then
  verdict="all steps passed"
else
  verdict="$failures step(s) did not pass"
fi
echo "total ${total}s of ${budget}s: $verdict" | tee -a "$summary"
(( failures == 0 ))
