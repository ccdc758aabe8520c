// See file.h.
#include "xds/common/file.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace outrigger {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace outrigger
