#include "model_source.h"

namespace mentallam {

ModelSource ModelSource::Open(const std::string& path) {
  ModelSource source;
  if (auto gguf = FindGgufModel(path)) {
    source.gguf_ = GgufReader::Open(*gguf);
    source.config_ = GgufLlamaConfig(*source.gguf_);
  } else {
    source.config_ = LoadLlamaConfig(path);
    source.safetensors_ = SafetensorsReader::Open(path);
  }
  return source;
}

LlamaConfig LoadModelConfig(const std::string& path) {
  if (auto gguf = FindGgufModel(path)) return GgufLlamaConfig(GgufReader::Open(*gguf));
  return LoadLlamaConfig(path);
}

const std::string& ModelSource::File(const std::string& name) const {
  return gguf_ ? gguf_->Source() : safetensors_->Entry(name).file;
}

std::string ModelSource::FileKey(const std::string& name) const {
  return gguf_ ? gguf_->Entry(name).name : name;
}

std::vector<std::string> ModelSource::Names() const {
  return gguf_ ? gguf_->Names() : safetensors_->Names();
}

const std::string& ModelSource::Source() const {
  return gguf_ ? gguf_->Source() : safetensors_->Source();
}

bool ModelSource::Has(const std::string& name) const {
  return gguf_ ? gguf_->Has(name) : safetensors_->Has(name);
}

std::vector<int64_t> ModelSource::Shape(const std::string& name) const {
  return gguf_ ? gguf_->Entry(name).shape : safetensors_->Entry(name).shape;
}

torch::Tensor ModelSource::Load(const std::string& name, torch::Dtype dtype) const {
  return gguf_ ? gguf_->Load(name, dtype) : safetensors_->Load(name, dtype);
}

}  // namespace mentallam
