// Gradient checkpointing per decoder layer (dora-llama-spec.md section 5.2): a custom autograd
// Function runs the layer without keeping activations and recomputes it during backward. The
// layer's adapter tensors are inputs of the Function, so gradients reach them even when the
// layer input comes from the frozen embedding, and the RNG state of the forward is replayed so
// dropout masks in the recompute equal the original ones. DoRA norms are cached per optimizer
// step in DoraLinear, so the recompute reuses them instead of computing them again.
#pragma once

#include <torch/torch.h>

#include "llama.h"

namespace mentallam {

// Same result as DecoderLayerForward(config, layer, h, attn, training); only the layer's input
// and output stay alive until backward.
torch::Tensor CheckpointedLayerForward(const LlamaConfig& config, const DecoderLayer& layer,
                                       const torch::Tensor& h, const AttentionInputs& attn,
                                       bool training);

}  // namespace mentallam
