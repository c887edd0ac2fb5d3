// Data-parallel gradients: what torch.nn.parallel.DistributedDataParallel's reducer does, for the
// few tensors DoRA trains (adapters A and B, magnitudes, the score head).
//
// The trainable tensors are packed, in reverse order (the score head and the top layers first,
// as their gradients arrive first in backward), into flat fp32 buckets of about `bucket_bytes`.
// During the backward of an optimizer step's last micro-batch, a hook after each tensor's
// gradient accumulation marks it ready; a bucket whose tensors are all ready is copied into its
// flat buffer and its all-reduce (a sum) starts at once, asynchronously, while backward goes on
// with the lower layers. Buckets start strictly in order, so every rank issues the same
// collectives in the same order. Finish() starts what is left, waits for all and writes the sums
// back into .grad.
//
// Bucket 0 carries one extra element: the rank's micro-batch count for the step. Its sum is the
// step's total, the divisor that makes the result the mean over every micro-batch of the global
// batch, however the micro-batches were spread over the ranks.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <vector>

#include "distributed.h"
#include "train_step.h"

namespace mentallam {

class GradientSync : public std::enable_shared_from_this<GradientSync> {
 public:
  GradientSync(std::shared_ptr<ProcessGroup> group, int64_t bucket_bytes);

  // Before the backward of a step's last micro-batch (or before a step without one): binds the
  // hooks to `params` (again when the tensors changed, e.g. after an adapter reset) and arms them.
  void Arm(const std::vector<NamedParam>& params, int64_t local_micro_batches);
  // After that backward: starts the buckets not started yet, waits for every all-reduce and
  // writes the sums into each tensor's .grad. Returns the step's micro-batch count over all ranks.
  int64_t Finish();
  // Drops an armed step (an error in backward; gradients discarded).
  void Disarm();

  // Called by a tensor's hook when its gradient is complete.
  void Ready(size_t index);

  struct Stats {
    int64_t buckets = 0;
    // Buckets of the last step whose all-reduce started during backward (the rest in Finish).
    int64_t started_in_backward = 0;
    int64_t steps = 0;
  };
  Stats LastStats() const;
  ProcessGroup& Group() { return *group_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    torch::Tensor flat;          // fp32, the params' elements (+1 in bucket 0)
    int64_t waiting = 0;         // params not ready yet
    std::unique_ptr<ProcessGroup::Pending> pending;
  };

  void Bind(const std::vector<NamedParam>& params);
  void StartReadyBuckets();   // with mutex_ held
  void Start(size_t bucket);  // with mutex_ held

  std::shared_ptr<ProcessGroup> group_;
  int64_t bucket_bytes_;
  mutable std::mutex mutex_;  // hooks may run on autograd's device threads (CUDA)
  std::vector<NamedParam> params_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> ready_;
  std::vector<Bucket> buckets_;
  size_t next_ = 0;  // the next bucket to start
  bool armed_ = false;
  bool in_backward_ = false;
  int64_t local_micro_batches_ = 0;
  Stats stats_;
};

}  // namespace mentallam
