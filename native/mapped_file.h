// A read-only memory mapping of a whole file, shared by the checkpoint readers (safetensors.h,
// gguf.h): the file's bytes are addressed in place and the kernel pages in only what is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mentallam {

class MappedFile {
 public:
  // Opens and maps `path`; UserError "<path>: cannot open/stat/mmap: <why>", or "is a directory".
  // The descriptor is closed right after mmap (the mapping keeps the file alive), so many
  // shards do not hold many descriptors. An empty file has size() 0 and data() nullptr.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mentallam
