#include "parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace xent {
namespace {

// One job at a time: a call holds run_mutex for its whole duration, so concurrent
// callers (several Python threads) queue up instead of sharing workers.
//
// The caller waits for the job's tasks, not for its helpers: a helper that the OS
// schedules late (a busy machine) finds no task left and goes back to sleep, and the
// call has already returned. Tasks are claimed from one 64-bit word holding the job's
// generation and the next task, so a late helper can never take a task of a later job.
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int threads, std::size_t n_tasks, TaskFn fn, void* ctx) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    const int helpers = std::min<int>(threads, static_cast<int>(std::min<std::size_t>(n_tasks, 1 << 20))) - 1;
    grow(helpers);
    std::uint32_t gen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      gen = static_cast<std::uint32_t>(++generation_);
      fn_ = fn;
      ctx_ = ctx;
      n_tasks_ = n_tasks;
      wanted_ = helpers;
      error_ = nullptr;
      failed_.store(false, std::memory_order_relaxed);
      done_.store(0, std::memory_order_relaxed);
      claim_.store(static_cast<std::uint64_t>(gen) << 32, std::memory_order_relaxed);
    }
    wake_.notify_all();
    work(gen, fn, ctx, n_tasks);
    if (done_.load(std::memory_order_acquire) < n_tasks) {
      std::unique_lock<std::mutex> lock(mutex_);
      finished_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == n_tasks; });
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void grow(int helpers) {
    while (static_cast<int>(workers_.size()) < helpers) {
      int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { loop(index); });
    }
  }

  // The next task of job `gen`, or false when it has none left (or a later job began).
  bool claim(std::uint32_t gen, std::size_t n_tasks, std::size_t& task) {
    std::uint64_t v = claim_.load(std::memory_order_relaxed);
    for (;;) {
      if (static_cast<std::uint32_t>(v >> 32) != gen) return false;
      const std::size_t t = static_cast<std::size_t>(v & 0xFFFFFFFFu);
      if (t >= n_tasks) return false;
      if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        task = t;
        return true;
      }
    }
  }

  void work(std::uint32_t gen, TaskFn fn, void* ctx, std::size_t n_tasks) {
    std::size_t task;
    while (claim(gen, n_tasks, task)) {
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          fn(ctx, task);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex_);
          if (!error_) error_ = std::current_exception();
          failed_.store(true, std::memory_order_relaxed);
        }
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_tasks) {
        std::lock_guard<std::mutex> lock(mutex_);  // pairs with the caller's wait: no lost wake-up
        finished_.notify_all();
      }
    }
  }

  void loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      TaskFn fn;
      void* ctx;
      std::size_t n_tasks;
      std::uint32_t gen;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || (generation_ != seen && index < wanted_); });
        if (stop_) return;
        seen = generation_;
        gen = static_cast<std::uint32_t>(generation_);
        fn = fn_;
        ctx = ctx_;
        n_tasks = n_tasks_;
      }
      work(gen, fn, ctx, n_tasks);
    }
  }

  std::mutex run_mutex_;
  std::mutex mutex_;
  std::mutex error_mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::vector<std::thread> workers_;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::size_t n_tasks_ = 0;
  int wanted_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::atomic<std::uint64_t> claim_{0};  // (generation << 32) | next task
  std::atomic<std::size_t> done_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

// The pool is leaked on purpose: joining threads from a static destructor at
// interpreter exit can deadlock. A forked child (multiprocessing, Dask's forkserver)
// has none of the parent's threads, so it starts a pool of its own.
std::atomic<Pool*> g_pool{nullptr};
std::mutex g_create;

#if defined(__unix__) || defined(__APPLE__)
void forget_pool_in_child() {
  g_pool.store(nullptr);
  new (&g_create) std::mutex();
}
#endif

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> lock(g_create);
  p = g_pool.load(std::memory_order_relaxed);
  if (!p) {
#if defined(__unix__) || defined(__APPLE__)
    static bool registered = (pthread_atfork(nullptr, nullptr, forget_pool_in_child) == 0);
    (void)registered;
#endif
    p = new Pool();
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

namespace {

struct Scratch {
  void* raw = nullptr;
  void* aligned = nullptr;
  std::size_t size = 0;
  ~Scratch() { std::free(raw); }
};

thread_local Scratch t_scratch;

}  // namespace

void* thread_scratch(std::size_t bytes) {
  Scratch& s = t_scratch;
  if (bytes > s.size || !s.aligned) {
    std::size_t want = std::max<std::size_t>(bytes + bytes / 4, 1 << 16);  // grow with headroom
    void* raw = std::malloc(want + 64);
    if (!raw) return nullptr;
    std::free(s.raw);
    s.raw = raw;
    s.aligned = reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(raw) + 63) & ~std::uintptr_t{63});
    s.size = want;
  }
  return s.aligned;
}

void parallel_for(int threads, std::size_t n_tasks, TaskFn fn, void* ctx) {
  if (n_tasks == 0) return;
  if (threads <= 1 || n_tasks == 1 || n_tasks > 0xFFFFFFFFu) {  // (2^32 tasks: never, with the engine's grain)
    for (std::size_t t = 0; t < n_tasks; ++t) fn(ctx, t);
    return;
  }
  pool().run(threads, n_tasks, fn, ctx);
}

}  // namespace xent
