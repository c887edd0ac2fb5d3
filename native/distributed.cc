#include "distributed.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "errors.h"

// The CMake build defines MENTALLAM_WITH_GLOO (with USE_C10D_GLOO, for ProcessGroupGloo.hpp)
// when Gloo's headers were found, and MENTALLAM_WITH_NCCL (with USE_C10D_NCCL) for a CUDA
// libtorch with NCCL's headers. c10d itself (TCPStore, the backends' code) is in libtorch.
#if defined(MENTALLAM_WITH_GLOO) || defined(MENTALLAM_WITH_NCCL)
#define MENTALLAM_WITH_C10D 1
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef MENTALLAM_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef MENTALLAM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace mentallam {

bool DistributedBackendBuilt(const std::string& backend) {
#ifdef MENTALLAM_WITH_GLOO
  if (backend == "gloo") return true;
#endif
#ifdef MENTALLAM_WITH_NCCL
  if (backend == "nccl") return true;
#endif
  return false;
}

std::string DistributedBackendMissing(const std::string& backend) {
  if (backend == "gloo") {
    return "this build of the native addon has no Gloo backend for torch.distributed: libtorch "
           "ships c10d's Gloo code but not Gloo's headers; install them (Debian/Ubuntu: apt-get "
           "install libgloo-dev, or set GLOO_INCLUDE to a folder holding gloo/) and rebuild with "
           "npm run build:native";
  }
  if (backend == "nccl") {
    return "this build of the native addon has no NCCL backend for torch.distributed: it needs a "
           "CUDA build of libtorch and NCCL's headers (the nvidia-nccl wheel's include/, or set "
           "NCCL_INCLUDE) at build time; rebuild with npm run build:native";
  }
  return "unknown torch.distributed backend '" + backend + "': expected gloo or nccl";
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string HostName() {
  char buffer[256] = {0};
  if (gethostname(buffer, sizeof buffer - 1) != 0) return "unknown-host";
  return buffer;
}

bool IsLoopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "localhost" || address == "::1";
}

// Whether process `pid` on this host has ended (gone, or a zombie its parent has not reaped).
bool ProcessEnded(int64_t pid) {
  if (pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

std::string Seconds(milliseconds duration) {
  std::ostringstream out;
  out.precision(3);
  out << static_cast<double>(duration.count()) / 1000.0 << " s";
  return out.str();
}

std::string FirstLine(const std::string& text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string Describe(const std::exception& error) { return FirstLine(MessageOf(error)); }

std::vector<uint8_t> Bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string Text(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

}  // namespace

#ifdef MENTALLAM_WITH_C10D

// What each rank publishes about itself at join, and the watchdog's view of one peer.
struct Peer {
  std::string host;
  int64_t pid = 0;
  std::string last_beat;
  Clock::time_point last_change;
  int64_t collectives = 0;  // collectives the peer had entered at its last heartbeat
  bool left = false;
};

struct ProcessGroup::Impl {
  ProcessGroupOptions options;
  torch::Device device{torch::kCPU};
  std::string host = HostName();
  c10::intrusive_ptr<c10d::Store> store;  // prefixed "mentallam/"; used by the calling thread
  c10::intrusive_ptr<c10d::Backend> backend;
  std::atomic<int64_t> collectives{0};
  int64_t beats = 0;  // heartbeats sent (watchdog thread only)
  bool left = false;

  // The watchdog: its own store connection, so that a blocked call here never waits on it.
  c10::intrusive_ptr<c10d::Store> watch_store;
  std::thread watchdog;
  std::mutex mutex;  // guards peers, failure, stop
  std::condition_variable wake;
  std::vector<Peer> peers;
  std::optional<std::string> failure;
  bool stop = false;

  milliseconds Interval() const {
    return std::clamp(options.timeout / 10, milliseconds(100), milliseconds(2000));
  }

  std::string StoreAddress() const {
    return options.master_addr + ":" + std::to_string(options.master_port);
  }

  std::string Who(int rank) const {
    const auto& peer = peers[rank];
    return "rank " + std::to_string(rank) + " (pid " + std::to_string(peer.pid) + " on " +
           peer.host + ")";
  }

  void RecordFailure(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!failure) failure = message;
  }

  std::optional<std::string> CurrentFailure() {
    std::lock_guard<std::mutex> lock(mutex);
    return failure;
  }

  // One look at the peers (watchdog thread): heartbeats, processes on this host, leavers.
  void Check(c10d::Store& s) {
    ++beats;
    s.set("alive/" + std::to_string(options.rank),
          Bytes(std::to_string(beats) + " " + std::to_string(collectives.load())));
    auto now = Clock::now();
    for (int r = 0; r < options.world_size; ++r) {
      if (r == options.rank) continue;
      Peer snapshot;
      {
        std::lock_guard<std::mutex> lock(mutex);
        snapshot = peers[r];
      }
      if (snapshot.left) continue;
      if (s.check({"failed/" + std::to_string(r)})) {
        RecordFailure(Who(r) +
                      " stopped with an error: " + Text(s.get("failed/" + std::to_string(r))));
        continue;
      }
      if (s.check({"left/" + std::to_string(r)})) {
        std::lock_guard<std::mutex> lock(mutex);
        peers[r].left = true;
        continue;
      }
      if (snapshot.host == host && ProcessEnded(snapshot.pid)) {
        RecordFailure(Who(r) + " has exited (its process is gone)");
        continue;
      }
      std::string value = Text(s.get("alive/" + std::to_string(r)));
      std::lock_guard<std::mutex> lock(mutex);
      Peer& peer = peers[r];
      if (value != peer.last_beat) {
        peer.last_beat = value;
        peer.last_change = now;
        auto space = value.find(' ');
        if (space != std::string::npos) peer.collectives = std::stoll(value.substr(space + 1));
      } else if (now - peer.last_change > options.timeout) {
        auto silent = std::chrono::duration_cast<milliseconds>(now - peer.last_change);
        if (!failure) {
          failure = Who(r) + " has given no sign of life for " + Seconds(silent) +
                    " (training.distributed.timeout_s is " + Seconds(options.timeout) +
                    "): it is hung, stopped or cut off from the network";
        }
      }
    }
  }

  void Watch() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        if (wake.wait_for(lock, Interval(), [this] { return stop; })) return;
      }
      try {
        Check(*watch_store);
      } catch (const std::exception& error) {
        RecordFailure("lost the rendezvous store at " + StoreAddress() + ", which " +
                      (options.agent_store
                           ? std::string("the launcher's agent hosts: the launcher died?")
                           : Who(0) + " hosts: rank 0 has exited or its host is down") +
                      " (" + Describe(error) + ")");
      }
    }
  }

  // Why collective `number` (0: a store wait) failed: the watchdog's finding if it has one
  // (waiting a little for it: a peer's exit shows at its next look), else the peers that had not
  // reached the collective.
  std::string Diagnose(int64_t number) {
    auto deadline = Clock::now() + std::min(options.timeout, milliseconds(10000));
    while (Clock::now() < deadline) {
      if (auto found = CurrentFailure()) return *found;
      std::this_thread::sleep_for(Interval() / 2);
    }
    std::vector<std::string> behind;
    std::lock_guard<std::mutex> lock(mutex);
    if (number <= 0) return "no rank could be identified as the cause";
    for (int r = 0; r < options.world_size; ++r) {
      if (r != options.rank && peers[r].collectives < number) {
        behind.push_back(Who(r) + " is alive but had entered only " +
                         std::to_string(peers[r].collectives) + " collectives");
      }
    }
    if (behind.empty()) return "no rank could be identified as the cause";
    std::string text;
    for (const auto& line : behind) text += (text.empty() ? "" : "; ") + line;
    return text + " (hung in its own work, or its code took another path)";
  }

  [[noreturn]] void Fail(const std::string& what, int64_t number, const std::exception& error) {
    std::string cause = Diagnose(number);
    throw DistributedError("rank " + std::to_string(options.rank) + ": " + what + " (collective #" +
                           std::to_string(number) + ") failed: " + cause +
                           " [c10d: " + Describe(error) + "]");
  }

  void CheckUsable() const {
    if (left) throw UserError("the process group was left; join a new one");
  }

  int64_t Enter() {
    CheckUsable();
    if (auto found = CurrentFailure()) throw DistributedError(*found);
    return ++collectives;
  }
};

namespace {

class PendingWork : public ProcessGroup::Pending {
 public:
  PendingWork(ProcessGroup::Impl* impl, c10::intrusive_ptr<c10d::Work> work, std::string what,
              int64_t number)
      : impl_(impl), work_(std::move(work)), what_(std::move(what)), number_(number) {}

  void Wait() override {
    if (!work_) return;
    auto work = std::move(work_);
    try {
      work->wait();
    } catch (const std::exception& error) {
      impl_->Fail(what_, number_, error);
    }
  }

  ~PendingWork() override {
    // A collective that nobody waits for must still end before its tensors go.
    try {
      if (work_) work_->wait();
    } catch (...) {
    }
  }

 private:
  ProcessGroup::Impl* impl_;
  c10::intrusive_ptr<c10d::Work> work_;
  std::string what_;
  int64_t number_;
};

c10::intrusive_ptr<c10d::Backend> CreateBackend(const ProcessGroupOptions& options,
                                                const c10::intrusive_ptr<c10d::Store>& store) {
#ifdef MENTALLAM_WITH_GLOO
  if (options.backend == "gloo") {
    auto gloo = c10d::ProcessGroupGloo::Options::create(options.timeout);
    if (!options.gloo_interface.empty()) {
      gloo->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(options.gloo_interface));
    } else if (IsLoopback(options.master_addr)) {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, options.rank, options.world_size,
                                                       gloo);
  }
#endif
#ifdef MENTALLAM_WITH_NCCL
  if (options.backend == "nccl") {
    auto nccl = c10d::ProcessGroupNCCL::Options::create();
    nccl->timeout = options.timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, options.rank, options.world_size,
                                                       nccl);
  }
#endif
  throw UserError(DistributedBackendMissing(options.backend));
}

}  // namespace

std::shared_ptr<ProcessGroup> ProcessGroup::Join(const ProcessGroupOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    throw UserError("rank " + std::to_string(options.rank) + " is not in [0, world size " +
                    std::to_string(options.world_size) + ")");
  }
  if (options.master_port < 1 || options.master_port > 65535) {
    throw UserError("MASTER_PORT " + std::to_string(options.master_port) + " is not a TCP port");
  }
  if (!DistributedBackendBuilt(options.backend)) {
    throw UserError(DistributedBackendMissing(options.backend));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.backend == "nccl") {
    impl->device = torch::Device(options.device);
    if (!impl->device.is_cuda()) throw UserError("the nccl backend needs a CUDA device");
  }
  std::string where = "rank " + std::to_string(options.rank) + " of " +
                      std::to_string(options.world_size) + " joining the process group at " +
                      impl->StoreAddress();
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(options.master_port);
    store_options.isServer = !options.agent_store && options.rank == 0;
    store_options.numWorkers = options.world_size;
    store_options.waitWorkers = false;
    store_options.timeout = options.timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
    impl->store = c10::make_intrusive<c10d::PrefixStore>("mentallam", tcp);
    impl->watch_store = c10::make_intrusive<c10d::PrefixStore>("mentallam", tcp->clone());
    std::string me = std::to_string(options.rank);
    impl->store->set("who/" + me, Bytes(impl->host + " " + std::to_string(getpid())));
    impl->store->set("alive/" + me, Bytes("0 0"));
    impl->backend = CreateBackend(options, impl->store);
    // The backend's creation is a rendezvous of all ranks, so every rank's keys are there now.
    impl->peers.resize(options.world_size);
    auto now = Clock::now();
    for (int r = 0; r < options.world_size; ++r) {
      std::string who = Text(impl->store->get("who/" + std::to_string(r)));
      auto space = who.rfind(' ');
      impl->peers[r].host = who.substr(0, space);
      impl->peers[r].pid = std::stoll(who.substr(space + 1));
      impl->peers[r].last_change = now;
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& error) {
    throw DistributedError(where + " failed within training.distributed.timeout_s (" +
                           Seconds(options.timeout) + "): " + Describe(error) +
                           " (did every rank start, with the same MASTER_ADDR, MASTER_PORT and "
                           "WORLD_SIZE?)");
  }
  auto* raw = impl.get();
  impl->watchdog = std::thread([raw] { raw->Watch(); });
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProcessGroup::~ProcessGroup() {
  try {
    Leave();
  } catch (...) {
  }
}

int ProcessGroup::Rank() const { return impl_->options.rank; }
int ProcessGroup::WorldSize() const { return impl_->options.world_size; }
const ProcessGroupOptions& ProcessGroup::Options() const { return impl_->options; }
torch::Device ProcessGroup::Device() const { return impl_->device; }

std::unique_ptr<ProcessGroup::Pending> ProcessGroup::AllReduceSumAsync(torch::Tensor tensor,
                                                                       const std::string& what) {
  int64_t number = impl_->Enter();
  std::vector<at::Tensor> tensors{std::move(tensor)};
  try {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    return std::make_unique<PendingWork>(impl_.get(), impl_->backend->allreduce(tensors, options),
                                         what, number);
  } catch (const std::exception& error) {
    impl_->Fail(what, number, error);
  }
}

void ProcessGroup::AllReduceSum(torch::Tensor tensor, const std::string& what) {
  AllReduceSumAsync(std::move(tensor), what)->Wait();
}

void ProcessGroup::Broadcast(torch::Tensor tensor, int root, const std::string& what) {
  int64_t number = impl_->Enter();
  std::vector<at::Tensor> tensors{std::move(tensor)};
  try {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    PendingWork(impl_.get(), impl_->backend->broadcast(tensors, options), what, number).Wait();
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& error) {
    impl_->Fail(what, number, error);
  }
}

torch::Tensor ProcessGroup::AllGather(const torch::Tensor& tensor, const std::string& what) {
  int64_t number = impl_->Enter();
  auto input = tensor.contiguous();
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < WorldSize(); ++r) outputs[0].push_back(torch::empty_like(input));
  std::vector<at::Tensor> inputs{input};
  try {
    PendingWork(impl_.get(), impl_->backend->allgather(outputs, inputs), what, number).Wait();
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& error) {
    impl_->Fail(what, number, error);
  }
  return torch::stack(outputs[0]);
}

void ProcessGroup::Barrier(const std::string& what) {
  // A one-element all-reduce on the group's device: the same on every backend.
  AllReduceSum(torch::zeros({1}, torch::TensorOptions().device(impl_->device)), what);
}

void ProcessGroup::Publish(const std::string& key, const std::string& value) {
  impl_->CheckUsable();
  impl_->store->set("x/" + key, Bytes(value));
}

std::string ProcessGroup::Await(const std::string& key) {
  impl_->CheckUsable();
  std::string full = "x/" + key;
  auto pause = milliseconds(20);
  for (;;) {
    try {
      if (impl_->store->check({full})) return Text(impl_->store->get(full));
    } catch (const std::exception& error) {
      // The watchdog names who is gone; give it a moment to see it.
      throw DistributedError("rank " + std::to_string(Rank()) + " waiting for '" + key +
                             "': " + impl_->Diagnose(0) + " [c10d: " + Describe(error) + "]");
    }
    if (auto found = impl_->CurrentFailure()) {
      throw DistributedError("rank " + std::to_string(Rank()) + " waiting for '" + key +
                             "': " + *found);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(500));
  }
}

std::vector<std::string> ProcessGroup::Exchange(const std::string& key, const std::string& value) {
  Publish(key + "/" + std::to_string(Rank()), value);
  std::vector<std::string> values;
  for (int r = 0; r < WorldSize(); ++r) {
    values.push_back(r == Rank() ? value : Await(key + "/" + std::to_string(r)));
  }
  return values;
}

int64_t ProcessGroup::Add(const std::string& key, int64_t delta) {
  impl_->CheckUsable();
  try {
    return impl_->store->add("x/" + key, delta);
  } catch (const std::exception& error) {
    throw DistributedError("rank " + std::to_string(Rank()) + " updating '" + key +
                           "': " + impl_->Diagnose(0) + " [c10d: " + Describe(error) + "]");
  }
}

std::optional<std::string> ProcessGroup::Failure() const { return impl_->CurrentFailure(); }

void ProcessGroup::Leave() {
  if (impl_->left) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  if (impl_->watchdog.joinable()) impl_->watchdog.join();
  impl_->left = true;
  try {
    impl_->store->set("left/" + std::to_string(Rank()), Bytes("1"));
    // The store lives in rank 0's process: it stays up until the others have said goodbye (or
    // a short while has passed), so none of them loses it while finishing.
    if (!impl_->options.agent_store && Rank() == 0 && !impl_->CurrentFailure()) {
      auto deadline = Clock::now() + std::min(impl_->options.timeout, milliseconds(30000));
      for (int r = 1; r < WorldSize() && Clock::now() < deadline; ++r) {
        while (!impl_->store->check({"left/" + std::to_string(r)}) && !impl_->peers[r].left &&
               Clock::now() < deadline &&
               !(impl_->peers[r].host == impl_->host && ProcessEnded(impl_->peers[r].pid))) {
          std::this_thread::sleep_for(milliseconds(50));
        }
      }
    }
  } catch (...) {
    // The others are gone already: nothing to say goodbye to.
  }
  impl_->backend.reset();
  impl_->watch_store.reset();
  impl_->store.reset();
}

void ProcessGroup::LeaveWithError(const std::string& message) {
  if (!impl_->left) {
    try {
      impl_->store->set("failed/" + std::to_string(Rank()), Bytes(message));
    } catch (...) {
    }
  }
  Leave();
}

#else  // no c10d backend in this build

struct ProcessGroup::Impl {};

std::shared_ptr<ProcessGroup> ProcessGroup::Join(const ProcessGroupOptions& options) {
  throw UserError(DistributedBackendMissing(options.backend));
}
ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;
int ProcessGroup::Rank() const { return 0; }
int ProcessGroup::WorldSize() const { return 1; }
const ProcessGroupOptions& ProcessGroup::Options() const {
  static ProcessGroupOptions none;
  return none;
}
torch::Device ProcessGroup::Device() const { return torch::kCPU; }
std::unique_ptr<ProcessGroup::Pending> ProcessGroup::AllReduceSumAsync(torch::Tensor,
                                                                       const std::string&) {
  throw UserError(DistributedBackendMissing("gloo"));
}
void ProcessGroup::AllReduceSum(torch::Tensor, const std::string&) {}
void ProcessGroup::Broadcast(torch::Tensor, int, const std::string&) {}
torch::Tensor ProcessGroup::AllGather(const torch::Tensor& tensor, const std::string&) {
  return tensor.unsqueeze(0);
}
void ProcessGroup::Barrier(const std::string&) {}
void ProcessGroup::Publish(const std::string&, const std::string&) {}
std::string ProcessGroup::Await(const std::string& key) {
  throw UserError(DistributedBackendMissing("gloo"));
}
std::vector<std::string> ProcessGroup::Exchange(const std::string&, const std::string& value) {
  return {value};
}
int64_t ProcessGroup::Add(const std::string&, int64_t) {
  throw UserError(DistributedBackendMissing("gloo"));
}
std::optional<std::string> ProcessGroup::Failure() const { return std::nullopt; }
void ProcessGroup::Leave() {}
void ProcessGroup::LeaveWithError(const std::string&) {}

#endif

}  // namespace mentallam
