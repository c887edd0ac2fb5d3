// Op-level timing of what the compute thread runs, through libtorch's own profiler (the one
// torch.profiler drives): every aten op, autograd node and RECORD_FUNCTION scope with its start,
// duration and thread. For finding where a train step's time goes (scripts/profile-step.mjs);
// nothing in training turns it on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mentallam {

struct OpEvent {
  std::string name;
  double start_us = 0;
  double duration_us = 0;
  uint64_t thread = 0;
  // Input shapes as JSON ("[[16,128,576],[576]]"); empty unless asked for.
  std::string shapes;
};

// Starts recording the calling thread's ops (call it on the compute thread). Throws when a
// profiler is already running.
void StartOpProfiler(bool record_shapes);

// Stops recording and returns the CPU events; with a non-empty trace_path also writes the
// Chrome trace (chrome://tracing, Perfetto) there. Throws when no profiler is running.
std::vector<OpEvent> StopOpProfiler(const std::string& trace_path);

}  // namespace mentallam
