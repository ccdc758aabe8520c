// See atomic_file.h. rename(2) within one file system is atomic; the fsyncs make it durable: the
// file's data before the rename (or the rename could land first and leave an empty file after a
// crash), the directory after it (or the rename itself could be lost).
#include "controlplane/policy/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace outrigger::policy {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = fs::is_symlink(path, ec) ? fs::canonical(path, ec) : fs::path(path);
  if (ec) return absl::InternalError(absl::StrCat(path, ": ", ec.message()));
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / absl::StrCat(".", target.filename().string(), ".tmp.XXXXXX")).string();

  mode_t mode = 0644;
  if (struct stat st; ::stat(target.c_str(), &st) == 0) mode = st.st_mode & 07777;

  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Errno("cannot create a temporary file", dir.string());
  absl::Status status = WriteAll(fd, contents, tmp);
  if (status.ok() && ::fchmod(fd, mode) != 0) status = Errno("fchmod", tmp);
  if (status.ok() && ::fsync(fd) != 0) status = Errno("fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = Errno("close", tmp);
  if (status.ok() && ::rename(tmp.c_str(), target.c_str()) != 0) {
    status = Errno("rename", target.string());
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Errno("open directory", dir.string());
  status = ::fsync(dir_fd) == 0 ? absl::OkStatus() : Errno("fsync directory", dir.string());
  ::close(dir_fd);
  return status;
}

}  // namespace outrigger::policy
