#include "compute_thread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace mentallam {
namespace {

struct Job {
  const std::function<void()>* work;
  std::exception_ptr error;
  bool done = false;
};

class ComputeThread {
 public:
  ComputeThread() : thread_([this] { Loop(); }) {
    // Never joined: the object lives until the process ends, and joining from a static
    // destructor would race libtorch's own static teardown at exit.
    thread_.detach();
  }

  void Run(const std::function<void()>& work) {
    Job job{&work, nullptr, false};
    std::unique_lock<std::mutex> lock(mutex_);
    queue_.push_back(&job);
    wake_.notify_all();
    finished_.wait(lock, [&job] { return job.done; });
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return !queue_.empty(); });
      Job* job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      try {
        (*job->work)();
      } catch (...) {
        job->error = std::current_exception();
      }
      lock.lock();
      job->done = true;
      finished_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::deque<Job*> queue_;
  std::thread thread_;
};

ComputeThread& Instance() {
  // Leaked on purpose (see the constructor): no destructor runs at exit.
  static ComputeThread* instance = new ComputeThread();
  return *instance;
}

}  // namespace

void RunOnComputeThread(const std::function<void()>& job) {
  // Re-entrant use from the compute thread itself would deadlock; run inline instead.
  static thread_local bool on_compute_thread = false;
  if (on_compute_thread) {
    job();
    return;
  }
  Instance().Run([&job] {
    on_compute_thread = true;
    job();
  });
}

}  // namespace mentallam
