// cudagrad CPU threading: a tiny persistent thread pool and parallel_for.
//
// What it computes: parallel_for(begin, end, grain, body) calls body(lo, hi)
// on disjoint contiguous chunks whose union is exactly [begin, end).
//
// Contract (tests/test_gemm.cpp checks each point):
//   * At most num_threads() chunks; no chunk shorter than grain_size unless
//     the whole range is. Chunk boundaries depend only on (begin, end,
//     grain_size, num_threads()), so a body that reduces per chunk gives
//     bitwise-identical results run after run.
//   * The calling thread runs one chunk itself; parallel_for returns only
//     when every chunk has finished.
//   * If chunks throw, every chunk still runs to completion and the
//     exception of the lowest-numbered failing chunk is rethrown (lowest, not
//     earliest in time, so the error a user sees does not depend on timing).
//   * A parallel_for called from inside a chunk (or while another thread is
//     using the pool) runs the same chunks serially in the calling thread,
//     which can never deadlock.
//
// What limits its speed: waking sleeping workers costs about a microsecond,
// so parallel_for only pays off for bodies that do tens of microseconds of
// work; choose grain_size accordingly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace cudagrad::cpu {

// Number of threads parallel_for may use (the caller counts as one).
// Default: the environment variable CUDAGRAD_NUM_THREADS if set, else
// std::thread::hardware_concurrency(). An invalid CUDAGRAD_NUM_THREADS makes
// this throw std::invalid_argument naming the bad value.
int num_threads();

// Sets the thread count (n >= 1, else std::invalid_argument). Restarts the
// pool; do not call it from inside a parallel_for body.
void set_num_threads(int n);

// Parses a thread count the way CUDAGRAD_NUM_THREADS is parsed: a whole
// decimal number >= 1. Throws std::invalid_argument naming the text otherwise.
int parse_num_threads(const std::string& text);

// True while the current thread is running a parallel_for chunk.
bool in_parallel_region();

void parallel_for(int64_t begin, int64_t end, int64_t grain_size,
                  const std::function<void(int64_t, int64_t)>& body);

}  // namespace cudagrad::cpu
