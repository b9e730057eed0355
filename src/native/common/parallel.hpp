// The native kernels' thread pool: parallel_for over task ids, GIL already released.
//
// Tasks are handed out one at a time from a shared atomic counter, and the calling
// thread works too: a core slowed down by another process simply takes fewer tasks,
// so the kernels degrade gracefully under contention (no static partition, no
// spinning barrier). The caller waits for the tasks to finish, never for a helper to
// wake up: on a busy machine it may do every task itself. Workers sleep on a
// condition variable between calls.
//
// Determinism: a kernel that sums writes one partial result per *task* (not per
// thread) and adds them in task order afterwards, so its result does not depend
// on the thread count or on the schedule.
#pragma once

#include <cstddef>

namespace xent {

// A task: fn(ctx, task). A plain function pointer, not std::function, so that the
// per-instruction-set kernel sources instantiate no shared templates (see isa.hpp).
using TaskFn = void (*)(void* ctx, std::size_t task);

// Run fn(ctx, task) for task in [0, n_tasks) on up to `threads` threads (the caller
// included). The first exception thrown by a task is rethrown here after every
// thread has stopped taking tasks. threads <= 1 or n_tasks <= 1 runs inline.
void parallel_for(int threads, std::size_t n_tasks, TaskFn fn, void* ctx);

// Scratch memory of the calling thread: at least `bytes`, 64-byte aligned, kept for the
// thread's lifetime and reused by its next call (so a task's buffers cost no page faults
// after the first call). Valid until this thread calls it again; a task that needs
// several buffers carves them out of one call. Null if the allocation fails.
void* thread_scratch(std::size_t bytes);

// Number of tasks of `grain` items covering n items (at least 1 when n > 0).
inline std::size_t n_tasks_for(std::size_t n, std::size_t grain) { return grain ? (n + grain - 1) / grain : 1; }

}  // namespace xent
