// Reading a whole (small) file: policy, certificates, keys, tokens. One place, one error text.
#ifndef OUTRIGGER_XDS_COMMON_FILE_H_
#define OUTRIGGER_XDS_COMMON_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace outrigger {

// The file's bytes, or NotFound "PATH: cannot read".
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace outrigger

#endif  // OUTRIGGER_XDS_COMMON_FILE_H_
