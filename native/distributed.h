// A torch.distributed process group for the addon, on PyTorch's own engine (c10d): the TCPStore
// rendezvous, ProcessGroupGloo on the CPU and ProcessGroupNCCL on CUDA. One per process, joined
// from what the launcher (torchrun, srun, mentallam-train --nproc) put in the environment.
//
// Faults. Every collective is bounded by the group's timeout. Beside the collectives, a watchdog
// thread publishes this rank's heartbeat (a counter, and how many collectives it has entered) in
// the store and watches the others': a peer on this host whose process is gone, a peer whose
// heartbeat has not changed for the timeout, or a store that stopped answering (rank 0 hosts it)
// is recorded as the group's failure, with a message naming the rank. The JS side polls
// Failure() between steps; a collective that fails names the rank at fault the same way.
//
// The c10d and Gloo headers stay in distributed.cc: without Gloo's headers at build time the
// addon still builds, and Join() throws an error saying what to install.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mentallam {

struct ProcessGroupOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // true when a launcher's agent hosts the store (torchrun: TORCHELASTIC_USE_AGENT_STORE), so
  // every rank is a client; false: rank 0 hosts it.
  bool agent_store = false;
  std::chrono::milliseconds timeout{300000};
  std::string backend = "gloo";  // "gloo" (CPU tensors) or "nccl" (CUDA tensors)
  std::string device = "cpu";    // nccl: "cuda:N", the rank's GPU
  // Gloo's network interface (GLOO_SOCKET_IFNAME); empty: loopback when the store is on a
  // loopback address, else the interface this host's name resolves to.
  std::string gloo_interface;
};

// Whether this build of the addon has `backend`, and if not, what to do about it.
bool DistributedBackendBuilt(const std::string& backend);
std::string DistributedBackendMissing(const std::string& backend);

class ProcessGroup {
 public:
  // Connects to the store, creates the backend (every rank waits for the others, up to the
  // timeout) and starts the watchdog. Errors name the rendezvous address and what failed.
  static std::shared_ptr<ProcessGroup> Join(const ProcessGroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int Rank() const;
  int WorldSize() const;
  const ProcessGroupOptions& Options() const;
  torch::Device Device() const;

  // A collective in flight; Wait() blocks up to the timeout.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void Wait() = 0;
  };

  // Sum over ranks, in place. `what` names the collective in errors ("gradient bucket 2").
  std::unique_ptr<Pending> AllReduceSumAsync(torch::Tensor tensor, const std::string& what);
  void AllReduceSum(torch::Tensor tensor, const std::string& what);
  void Broadcast(torch::Tensor tensor, int root, const std::string& what);
  // (world_size, ...tensor's shape): every rank's tensor, in rank order.
  torch::Tensor AllGather(const torch::Tensor& tensor, const std::string& what);
  void Barrier(const std::string& what);

  // Store exchanges for small values (run ids, JSON results). They wait as long as every rank is
  // alive, not just the timeout: a rank may spend hours on its folds before the others' results
  // are needed. Keys are namespaced under "mentallam/".
  void Publish(const std::string& key, const std::string& value);
  std::string Await(const std::string& key);
  // Every rank's value for `key`, in rank order (each rank publishes its own).
  std::vector<std::string> Exchange(const std::string& key, const std::string& value);
  // Adds `delta` to the counter `key` (created at 0) and returns the new value: atomic across
  // ranks (a ticket lock for files several ranks update).
  int64_t Add(const std::string& key, int64_t delta);

  // The watchdog's finding: a message naming the failed rank, or nothing.
  std::optional<std::string> Failure() const;
  // Stops the watchdog and destroys the backend; later calls throw. Rank 0, which hosts the
  // store, first waits (briefly) for the others to leave.
  void Leave();
  // Leave, telling the others why (their watchdogs report "rank r stopped with an error: ...").
  void LeaveWithError(const std::string& message);

  struct Impl;

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mentallam
