#include "atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "errors.h"

namespace mentallam {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

// write(2) may write less than asked.
void WriteAll(int fd, const void* data, std::size_t size, const std::string& path) {
  const char* cursor = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, cursor, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw UserError(path + ": write failed: " + ErrnoText());
    }
    cursor += written;
    size -= static_cast<std::size_t>(written);
  }
}

std::string TempName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) +
         "-" + std::to_string(std::random_device{}());
}

// The rename is durable only once the directory entry is on disk. Best effort: some file
// systems refuse fsync on a directory, and the file itself is already complete.
void SyncDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void WriteFileAtomically(const std::string& path,
                         const std::function<void(const FileSink&)>& write) {
  std::string temp = TempName(path);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw UserError(path + ": cannot create " + temp + ": " + ErrnoText());
  try {
    write([fd, &path](const void* data, std::size_t size) { WriteAll(fd, data, size, path); });
    if (::fsync(fd) != 0) throw UserError(path + ": fsync failed: " + ErrnoText());
    int closed = ::close(fd);
    fd = -1;
    if (closed != 0) throw UserError(path + ": close failed: " + ErrnoText());
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      throw UserError(path + ": cannot rename " + temp + " into place: " + ErrnoText());
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  SyncDirectory(path);
}

void WriteFileAtomically(const std::string& path, std::string_view content) {
  WriteFileAtomically(path,
                      [content](const FileSink& sink) { sink(content.data(), content.size()); });
}

}  // namespace mentallam
