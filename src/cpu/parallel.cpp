// cudagrad CPU threading: implementation of parallel.hpp.
//
// Design: one global pool of (num_threads() - 1) workers that sleep on a
// condition variable. parallel_for publishes a "job" (a chunk function and a
// chunk count), bumps a generation counter and wakes the workers; everybody,
// the caller included, then claims chunk indices from an atomic counter until
// none are left. Chunk *boundaries* are fixed up front, only the assignment
// of chunks to threads is dynamic, so results do not depend on scheduling.
#include "parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace cudagrad::cpu {
namespace {

// Set while a thread runs a chunk, so nested parallel_for calls go serial
// instead of waiting for workers that are busy running their parent.
thread_local bool inside_parallel_region = false;

class ThreadPool {
 public:
  explicit ThreadPool(int num_workers) {
    for (int i = 0; i < num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  // Only one job at a time: a second concurrent caller gets false and runs
  // its chunks serially rather than queueing behind the first.
  bool try_begin_job() { return job_mutex_.try_lock(); }
  void end_job() { job_mutex_.unlock(); }

  // Runs run_chunk(0 .. num_chunks-1) on the workers and the caller.
  void run(int64_t num_chunks, const std::function<void(int64_t)>& run_chunk) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &run_chunk;
      num_chunks_ = num_chunks;
      chunks_done_ = 0;
      next_chunk_.store(0);
      ++generation_;
    }
    work_ready_.notify_all();
    claim_chunks();
    // Wait for the chunks *and* for every worker to leave claim_chunks, so no
    // worker still reads task_ when the next job overwrites it.
    std::unique_lock<std::mutex> lock(mutex_);
    work_done_.wait(lock, [this] { return chunks_done_ == num_chunks_ && active_workers_ == 0; });
  }

 private:
  void worker_loop() {
    uint64_t seen_generation = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
        if (stopping_) return;
        seen_generation = generation_;
        ++active_workers_;  // registered under the lock that published the job
      }
      claim_chunks();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --active_workers_;
      }
      work_done_.notify_one();
    }
  }

  void claim_chunks() {
    for (;;) {
      const int64_t chunk = next_chunk_.fetch_add(1);
      if (chunk >= num_chunks_) return;
      (*task_)(chunk);  // never throws: parallel_for's wrapper catches
      std::lock_guard<std::mutex> lock(mutex_);
      if (++chunks_done_ == num_chunks_) work_done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;  // guards everything below except next_chunk_
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  int active_workers_ = 0;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t num_chunks_ = 0;
  int64_t chunks_done_ = 0;
  std::atomic<int64_t> next_chunk_{0};
};

std::mutex settings_mutex;            // guards the two globals below
int configured_threads = 0;           // 0 = not yet read from the environment
std::shared_ptr<ThreadPool> the_pool;  // shared_ptr: set_num_threads may swap it mid-job

int default_num_threads() {
  if (const char* text = std::getenv("CUDAGRAD_NUM_THREADS")) {
    return parse_num_threads(text);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

int parse_num_threads(const std::string& text) {
  const bool all_digits = !text.empty() && text.size() <= 6 &&
                          std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int value = all_digits ? std::stoi(text) : 0;
  if (value < 1) {
    throw std::invalid_argument("cudagrad: invalid thread count '" + text +
                                "' (CUDAGRAD_NUM_THREADS must be a whole number >= 1)");
  }
  return value;
}

int num_threads() {
  std::lock_guard<std::mutex> lock(settings_mutex);
  if (configured_threads == 0) configured_threads = default_num_threads();
  return configured_threads;
}

void set_num_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("cudagrad: set_num_threads(" + std::to_string(n) + "): need n >= 1");
  }
  std::shared_ptr<ThreadPool> old_pool;
  {
    std::lock_guard<std::mutex> lock(settings_mutex);
    configured_threads = n;
    old_pool.swap(the_pool);  // the next parallel_for builds a pool of the new size
  }
  // old_pool's workers are joined here (or by the last job still using it).
}

bool in_parallel_region() { return inside_parallel_region; }

void parallel_for(int64_t begin, int64_t end, int64_t grain_size,
                  const std::function<void(int64_t, int64_t)>& body) {
  if (end <= begin) return;
  const int64_t length = end - begin;
  const int threads = num_threads();
  // floor(length / grain) chunks keeps every chunk >= grain_size.
  const int64_t num_chunks = std::max<int64_t>(1, std::min<int64_t>(threads, length / std::max<int64_t>(1, grain_size)));
  // Chunk c is [begin + c*length/num_chunks, begin + (c+1)*length/num_chunks):
  // sizes differ by at most one, so the work is balanced.
  auto chunk_begin = [&](int64_t chunk) { return begin + chunk * length / num_chunks; };

  std::vector<std::exception_ptr> errors(static_cast<size_t>(num_chunks));
  const std::function<void(int64_t)> run_chunk = [&](int64_t chunk) {
    const bool was_inside = inside_parallel_region;
    inside_parallel_region = true;
    try {
      body(chunk_begin(chunk), chunk_begin(chunk + 1));
    } catch (...) {
      errors[static_cast<size_t>(chunk)] = std::current_exception();
    }
    inside_parallel_region = was_inside;
  };

  std::shared_ptr<ThreadPool> pool;
  if (num_chunks > 1 && !inside_parallel_region) {
    std::lock_guard<std::mutex> lock(settings_mutex);
    // Size from configured_threads, not `threads`: set_num_threads may have run since.
    if (!the_pool) the_pool = std::make_shared<ThreadPool>(configured_threads - 1);
    pool = the_pool;
  }
  if (pool && pool->try_begin_job()) {
    pool->run(num_chunks, run_chunk);
    pool->end_job();
  } else {
    for (int64_t chunk = 0; chunk < num_chunks; ++chunk) run_chunk(chunk);  // same chunks, one thread
  }
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace cudagrad::cpu
