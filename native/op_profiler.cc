#include "op_profiler.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <set>

namespace mentallam {
namespace {

namespace impl = torch::profiler::impl;

std::string ShapesJson(const c10::ArrayRef<std::vector<int64_t>> shapes) {
  std::string out = "[";
  for (size_t i = 0; i < shapes.size(); ++i) {
    out += i == 0 ? "[" : ",[";
    for (size_t j = 0; j < shapes[i].size(); ++j) {
      out += (j == 0 ? "" : ",") + std::to_string(shapes[i][j]);
    }
    out += "]";
  }
  return out + "]";
}

}  // namespace

void StartOpProfiler(bool record_shapes) {
  impl::ProfilerConfig config(impl::ProfilerState::KINETO, record_shapes);
  const std::set<impl::ActivityType> activities{impl::ActivityType::CPU};
  torch::autograd::profiler::prepareProfiler(config, activities);
  torch::autograd::profiler::enableProfiler(config, activities);
}

std::vector<OpEvent> StopOpProfiler(const std::string& trace_path) {
  auto result = torch::autograd::profiler::disableProfiler();
  if (!trace_path.empty()) result->save(trace_path);
  std::vector<OpEvent> events;
  events.reserve(result->events().size());
  for (const auto& event : result->events()) {
    if (event.deviceType() != c10::DeviceType::CPU) continue;
    OpEvent op;
    op.name = event.name();
    op.start_us = static_cast<double>(event.startNs()) / 1e3;
    op.duration_us = static_cast<double>(event.durationNs()) / 1e3;
    op.thread = event.startThreadId();
    if (event.hasShapes()) op.shapes = ShapesJson(event.shapes());
    events.push_back(std::move(op));
  }
  return events;
}

}  // namespace mentallam
