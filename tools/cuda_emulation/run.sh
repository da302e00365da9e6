#!/usr/bin/env bash
# Builds and runs the CPU emulation of the CUDA kernels (see README.md in this folder).
#
#   tools/cuda_emulation/run.sh [BUILD_DIR] [FAMILY ...]
#
# BUILD_DIR defaults to build-cuda-emulation/ at the repository root (ignored by git). Families:
# conv2d, gemm, memory_bound (default: all). Each family is translated (generate.py), compiled
# (g++ -std=c++20 -O1 -pthread; only what changed is recompiled) and run under a time limit
# (EMULATION_TIMEOUT seconds per family, default 300: a deadlock, e.g. a __syncthreads that not
# every thread reaches, shows up as a timeout). Prints one summary line per family; exits
# nonzero if any family fails to translate, compile or match its references.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${1:-$repo/build-cuda-emulation}"
shift $(( $# > 0 ? 1 : 0 ))
families=("$@")
[ ${#families[@]} -eq 0 ] && families=(conv2d gemm memory_bound)
timeout_s="${EMULATION_TIMEOUT:-300}"
mkdir -p "$build/objects" || exit 1
build="$(cd "$build" && pwd)"

# __CUDA_ARCH__: compile the device code paths as for the H100 (sm_90).
flags=(-std=c++20 -O1 -pthread -w -D__CUDA_ARCH__=900 -I"$here/shims" -I"$here/harness" -I"$build/generated" -I"$repo/src"
       -I"$repo/include")
# Changed flags (or a new compiler) invalidate every object.
stamp="$(g++ --version | head -1) ${flags[*]}"
if [ "$(cat "$build/objects/flags" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$build"/objects/*.o
    echo "$stamp" > "$build/objects/flags"
fi

# Compiles $1 into $2 unless $2 is newer than $1 and than every shim and harness header.
compile() {
    local source="$1" object="$2"
    if [ -f "$object" ] && [ "$object" -nt "$source" ] &&
       [ -z "$(find "$here/shims" "$here/harness" "$repo/src/cuda" "$repo/include" -name '*.h*' -newer "$object" -print -quit)" ] &&
       [ -z "$(find "$build/generated" -name '*.cuh' -newer "$object" -print -quit)" ]; then
        return 0
    fi
    g++ "${flags[@]}" -c "$source" -o "$object"
}

declare -A summary
status=0
for family in "${families[@]}"; do
    start=$(date +%s)
    if ! python3 "$here/generate.py" "$build" "$family"; then
        summary[$family]="FAIL (translation)"; status=1; continue
    fi
    objects=()
    ok=1
    kernels=$(python3 -c "import sys; sys.path.insert(0, '$here'); import generate; print(' '.join(generate.FAMILIES['$family']))")
    for name in $kernels; do
        compile "$build/generated/$name.cpp" "$build/objects/$name.o" || { ok=0; break; }
        objects+=("$build/objects/$name.o")
    done
    [ $ok = 1 ] && { compile "$here/harness/$family.cpp" "$build/objects/harness_$family.o" || ok=0; }
    [ $ok = 1 ] && { compile "$here/shims/emu_support.cpp" "$build/objects/emu_support.o" || ok=0; }
    if [ $ok = 1 ]; then
        g++ -pthread "${objects[@]}" "$build/objects/harness_$family.o" "$build/objects/emu_support.o" \
            -o "$build/emulate_$family" || ok=0
    fi
    if [ $ok = 0 ]; then
        summary[$family]="FAIL (build)"; status=1; continue
    fi
    echo "== $family: running the emulation"
    timeout "$timeout_s" "$build/emulate_$family" > "$build/$family.log" 2>&1
    rc=$?
    grep -v '^cudagrad: ' "$build/$family.log" | grep -v '^  conv2d .*: checked$' | tail -n 40
    elapsed=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        summary[$family]="PASS (${elapsed}s)"
    elif [ $rc -eq 124 ]; then
        summary[$family]="FAIL (timed out after ${timeout_s}s: a deadlock? see $build/$family.log)"; status=1
    else
        summary[$family]="FAIL (exit $rc, see $build/$family.log)"; status=1
    fi
done

echo "== CUDA kernel emulation summary"
for family in "${families[@]}"; do printf '  %-13s %s\n' "$family" "${summary[$family]}"; done
exit $status
