// One long-lived thread that runs every libtorch computation of the process.
//
// Why not the libuv pool directly: each pool thread that touches libtorch gets its own glibc
// malloc arena, OpenMP team and MKL scratch buffers. A train step landing on a different worker
// than the last one then allocates its activations afresh while the previous worker's arena
// still holds a whole step's worth of freed memory (peak RSS about 2x the step's need), and
// trimming the arenas after every step instead costs a page fault per page of every activation
// on the next step. Funnelling the work through one thread keeps one arena that each step reuses.
//
// A libuv worker (AsyncTask::Execute) calls Run() and blocks until the job has run here, so the
// JS side keeps its Promise-per-call model and the event loop stays free.
#pragma once

#include <functional>

namespace mentallam {

// Runs `job` on the compute thread and waits for it; an exception thrown by `job` is rethrown
// in the caller. Calls from several threads are served one at a time, in arrival order.
void RunOnComputeThread(const std::function<void()>& job);

}  // namespace mentallam
