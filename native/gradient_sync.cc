#include "gradient_sync.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <cmath>

#include "errors.h"

namespace mentallam {
namespace {

// Runs after AccumulateGrad has written a leaf's .grad (PyTorch's
// register_post_accumulate_grad_hook), so the value seen is the whole accumulation window's.
class ReadyHook : public torch::autograd::PostAccumulateGradHook {
 public:
  ReadyHook(std::weak_ptr<GradientSync> sync, size_t index)
      : sync_(std::move(sync)), index_(index) {}
  void operator()(const torch::autograd::Variable&) override {
    if (auto sync = sync_.lock()) sync->Ready(index_);
  }

 private:
  std::weak_ptr<GradientSync> sync_;  // the tensor may outlive the sync, never the other way
  size_t index_;
};

bool SameTensors(const std::vector<NamedParam>& a, const std::vector<NamedParam>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].tensor.is_same(b[i].tensor)) return false;
  }
  return true;
}

}  // namespace

GradientSync::GradientSync(std::shared_ptr<ProcessGroup> group, int64_t bucket_bytes)
    : group_(std::move(group)), bucket_bytes_(std::max<int64_t>(bucket_bytes, 1)) {}

void GradientSync::Bind(const std::vector<NamedParam>& params) {
  params_ = params;
  buckets_.clear();
  bucket_of_.assign(params.size(), 0);
  int64_t bytes = 0;
  // Reverse order: backward produces the top layers' (and the score head's) gradients first.
  for (size_t k = params.size(); k-- > 0;) {
    int64_t size = params[k].tensor.numel() * static_cast<int64_t>(sizeof(float));
    if (buckets_.empty() || (bytes > 0 && bytes + size > bucket_bytes_)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += size;
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t elements = b == 0 ? 1 : 0;
    for (size_t k : buckets_[b].params) elements += params[k].tensor.numel();
    buckets_[b].flat = torch::zeros(
        {elements}, torch::TensorOptions().dtype(torch::kFloat32).device(group_->Device()));
  }
  auto self = weak_from_this();
  for (size_t k = 0; k < params.size(); ++k) {
    torch::autograd::impl::set_post_acc_grad_hooks(params[k].tensor,
                                                   std::make_unique<ReadyHook>(self, k));
  }
  stats_.buckets = static_cast<int64_t>(buckets_.size());
}

void GradientSync::Arm(const std::vector<NamedParam>& params, int64_t local_micro_batches) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& p : params) {
    if (p.tensor.device() != group_->Device()) {
      throw UserError("data-parallel training: " + p.name + " is on " + p.tensor.device().str() +
                      " but the process group's backend works on " + group_->Device().str());
    }
  }
  if (!SameTensors(params, params_)) Bind(params);
  ready_.assign(params_.size(), false);
  for (auto& bucket : buckets_) {
    bucket.waiting = static_cast<int64_t>(bucket.params.size());
    bucket.pending.reset();
  }
  next_ = 0;
  local_micro_batches_ = local_micro_batches;
  armed_ = true;
  in_backward_ = true;
}

void GradientSync::Ready(size_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || !in_backward_ || index >= ready_.size()) return;
  if (ready_[index]) {
    // A leaf used twice is summed before AccumulateGrad, so this is a second backward.
    throw UserError("data-parallel training: the gradient of " + params_[index].name +
                    " arrived twice in one backward");
  }
  ready_[index] = true;
  if (--buckets_[bucket_of_[index]].waiting == 0) StartReadyBuckets();
}

void GradientSync::StartReadyBuckets() {
  while (next_ < buckets_.size() && buckets_[next_].waiting == 0) Start(next_++);
}

void GradientSync::Start(size_t b) {
  torch::NoGradGuard no_grad;
  auto& bucket = buckets_[b];
  int64_t offset = 0;
  for (size_t k : bucket.params) {
    const auto& tensor = params_[k].tensor;
    int64_t n = tensor.numel();
    auto slice = bucket.flat.narrow(0, offset, n);
    const auto& grad = tensor.grad();
    if (grad.defined()) {
      slice.copy_(grad.reshape({-1}));
    } else {
      slice.zero_();
    }
    offset += n;
  }
  if (b == 0) bucket.flat[offset].fill_(static_cast<double>(local_micro_batches_));
  bucket.pending =
      group_->AllReduceSumAsync(bucket.flat, "all-reduce of gradient bucket " + std::to_string(b));
}

int64_t GradientSync::Finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_) throw UserError("data-parallel training: Finish() without Arm()");
  in_backward_ = false;
  armed_ = false;
  stats_.started_in_backward = static_cast<int64_t>(next_);
  ++stats_.steps;
  // Tensors without a gradient this step count as zeros; the buckets still go in order.
  for (auto& bucket : buckets_) bucket.waiting = 0;
  StartReadyBuckets();
  for (auto& bucket : buckets_) bucket.pending->Wait();
  torch::NoGradGuard no_grad;
  int64_t total = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    auto& bucket = buckets_[b];
    int64_t offset = 0;
    for (size_t k : bucket.params) {
      auto& tensor = params_[k].tensor;
      int64_t n = tensor.numel();
      auto summed = bucket.flat.narrow(0, offset, n).view(tensor.sizes());
      if (tensor.grad().defined()) {
        tensor.mutable_grad().copy_(summed);
      } else {
        tensor.mutable_grad() = summed.clone();
      }
      offset += n;
    }
    if (b == 0) total = std::llround(bucket.flat[offset].item<double>());
    bucket.pending.reset();
  }
  return total;
}

void GradientSync::Disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Collectives already started must end on every rank alike; the others will wait in the same
  // step, so a disarmed step is only safe before its first bucket started (the caller's error
  // then ends the run).
  for (auto& bucket : buckets_) {
    if (bucket.pending) {
      try {
        bucket.pending->Wait();
      } catch (...) {
      }
      bucket.pending.reset();
    }
  }
  armed_ = false;
  in_backward_ = false;
}

GradientSync::Stats GradientSync::LastStats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace mentallam
