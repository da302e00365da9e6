// Public thread-count control, forwarded to the CPU thread pool (and through it to OpenBLAS).
#include "cudagrad/threads.hpp"

#include "cpu/parallel.hpp"

namespace cudagrad {
void set_num_threads(int threads) { cpu::set_num_threads(threads); }
int num_threads() { return cpu::num_threads(); }
}  // namespace cudagrad
