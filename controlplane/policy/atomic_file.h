// Replacing a file so that a crash at any moment leaves either the old or the new contents, never
// a mix or nothing: how the control plane writes policy back (canary weights).
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_ATOMIC_FILE_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace outrigger::policy {

// Writes `contents` to a temporary file in the directory of `path` (following a symlink to the
// real file), fsyncs it, renames it over the file and fsyncs the directory. The file keeps its
// permission bits. On failure the original file is untouched and the temporary file removed.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_ATOMIC_FILE_H_
