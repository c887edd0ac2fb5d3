#include "checkpointing.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef MENTALLAM_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include <mutex>
#include <utility>
#include <vector>

namespace mentallam {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// RNG state of the generators a layer may draw dropout masks from.
struct RngState {
  torch::Tensor cpu;
  torch::Tensor cuda;  // undefined unless the layer runs on CUDA
};

RngState CaptureRng(const torch::Device& device) {
  RngState state;
  auto cpu = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(cpu.mutex());
    state.cpu = cpu.get_state();
  }
#ifdef MENTALLAM_WITH_CUDA
  if (device.is_cuda()) {
    auto cuda = at::cuda::detail::getDefaultCUDAGenerator(device.index());
    std::lock_guard<std::mutex> lock(cuda.mutex());
    state.cuda = cuda.get_state();
  }
#endif
  return state;
}

void RestoreRng(const RngState& state, const torch::Device& device) {
  auto cpu = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(state.cpu);
  }
#ifdef MENTALLAM_WITH_CUDA
  if (device.is_cuda() && state.cuda.defined()) {
    auto cuda = at::cuda::detail::getDefaultCUDAGenerator(device.index());
    std::lock_guard<std::mutex> lock(cuda.mutex());
    cuda.set_state(state.cuda);
  }
#endif
}

// The attention inputs' tensors by name, for saved_data (undefined ones are left out).
std::vector<std::pair<const char*, torch::Tensor AttentionInputs::*>> AttentionFields() {
  return {{"cos", &AttentionInputs::cos},
          {"sin", &AttentionInputs::sin},
          {"mask", &AttentionInputs::mask},
          {"prefix_mask", &AttentionInputs::prefix_mask},
          {"segment_rows", &AttentionInputs::segment_rows},
          {"segment_gather", &AttentionInputs::segment_gather},
          {"segment_mask", &AttentionInputs::segment_mask},
          {"output_gather", &AttentionInputs::output_gather}};
}

// Inputs: hidden (B, L, H), the layer's adapter leaves, the shared attention tensors, and the
// layer and config by address (not traced). Non-tensor arguments get an undefined gradient.
struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  // Inputs: hidden (B, L, H) and the layer's adapter leaves are traced; the attention inputs,
  // the layer and the config come by address (not traced) and the tensors among them are kept in
  // saved_data for the recompute.
  static variable_list forward(AutogradContext* ctx, torch::Tensor hidden,
                               torch::TensorList adapters, int64_t attn_address,
                               int64_t layer_address, int64_t config_address, bool training) {
    const auto* attn = reinterpret_cast<const AttentionInputs*>(attn_address);
    const auto* layer = reinterpret_cast<const DecoderLayer*>(layer_address);
    const auto* config = reinterpret_cast<const LlamaConfig*>(config_address);
    RngState rng = CaptureRng(hidden.device());
    ctx->saved_data["cpu_rng"] = rng.cpu;
    if (rng.cuda.defined()) ctx->saved_data["cuda_rng"] = rng.cuda;
    for (const auto& [name, field] : AttentionFields()) {
      if ((attn->*field).defined()) ctx->saved_data[name] = attn->*field;
    }
    ctx->saved_data["layer"] = layer_address;
    ctx->saved_data["config"] = config_address;
    ctx->saved_data["training"] = training;
    ctx->saved_data["adapters"] = static_cast<int64_t>(adapters.size());
    // Only the layer input is kept; the layer's activations are dropped (apply() runs forward
    // with grad mode off).
    ctx->save_for_backward({hidden});
    return {DecoderLayerForward(*config, *layer, hidden, *attn, training)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto* layer = reinterpret_cast<const DecoderLayer*>(ctx->saved_data["layer"].toInt());
    const auto* config = reinterpret_cast<const LlamaConfig*>(ctx->saved_data["config"].toInt());
    bool training = ctx->saved_data["training"].toBool();
    int64_t adapter_count = ctx->saved_data["adapters"].toInt();
    auto device = saved[0].device();
    AttentionInputs attn;
    for (const auto& [name, field] : AttentionFields()) {
      if (ctx->saved_data.count(name)) attn.*field = ctx->saved_data[name].toTensor();
    }

    // fork_rng: replay the forward's RNG state for the recompute, then put the current one back.
    RngState stashed{ctx->saved_data["cpu_rng"].toTensor(),
                     ctx->saved_data.count("cuda_rng") ? ctx->saved_data["cuda_rng"].toTensor()
                                                       : torch::Tensor()};
    RngState current = CaptureRng(device);
    RestoreRng(stashed, device);

    bool hidden_needs_grad = ctx->needs_input_grad(0);
    torch::Tensor hidden = saved[0].detach().requires_grad_(hidden_needs_grad);
    torch::Tensor output;
    {
      torch::AutoGradMode enable(true);
      output = DecoderLayerForward(*config, *layer, hidden, attn, training);
    }
    RestoreRng(current, device);

    // The adapter leaves themselves are the inputs of the recomputed graph.
    auto adapters = layer->AdapterTensors();
    TORCH_CHECK(static_cast<int64_t>(adapters.size()) == adapter_count,
                "checkpointed layer: adapters changed between forward and backward");
    variable_list inputs;
    if (hidden_needs_grad) inputs.push_back(hidden);
    for (auto& t : adapters) inputs.push_back(t);
    variable_list grads;
    if (!inputs.empty()) {
      grads = torch::autograd::grad({output}, inputs, {grad_outputs[0]},
                                    /*retain_graph=*/false, /*create_graph=*/false,
                                    /*allow_unused=*/true);
    }
    variable_list result;
    size_t next = 0;
    result.push_back(hidden_needs_grad ? grads[next++] : torch::Tensor());
    for (int64_t i = 0; i < adapter_count; ++i) result.push_back(grads[next++]);
    // attn, layer, config, training
    for (int i = 0; i < 4; ++i) result.push_back(torch::Tensor());
    return result;
  }
};

}  // namespace

torch::Tensor CheckpointedLayerForward(const LlamaConfig& config, const DecoderLayer& layer,
                                       const torch::Tensor& h, const AttentionInputs& attn,
                                       bool training) {
  auto adapters = layer.AdapterTensors();
  if (adapters.empty() && !h.requires_grad()) {
    return DecoderLayerForward(config, layer, h, attn, training);
  }
  auto out = LayerCheckpoint::apply(
      h, torch::TensorList(adapters), reinterpret_cast<int64_t>(&attn),
      reinterpret_cast<int64_t>(&layer), reinterpret_cast<int64_t>(&config), training);
  return out[0];
}

}  // namespace mentallam
