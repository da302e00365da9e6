// The number of CPU threads cudagrad's ops use (default: all cores, or CUDAGRAD_NUM_THREADS).
#pragma once

namespace cudagrad {
void set_num_threads(int threads);
int num_threads();
}  // namespace cudagrad
