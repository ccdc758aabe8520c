// Twelve-factor configuration: every command-line flag can also come from the environment as
// OUTRIGGER_<FLAG_NAME_IN_UPPER_CASE>. Flags given on the command line win over the environment.
#ifndef OUTRIGGER_XDS_COMMON_ENV_FLAGS_H_
#define OUTRIGGER_XDS_COMMON_ENV_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace outrigger {

// Sets every registered flag named in `names` from its OUTRIGGER_* variable when that is set.
// Returns an error naming the variable and the problem when a value does not parse.
absl::Status ApplyEnvironmentToFlags(const std::vector<std::string>& names);

// Rewrites "--drain-timeout=5s" as "--drain_timeout=5s" in place, so that flags may be written
// with dashes (as people type them) as well as underscores (as Abseil names them).
void NormalizeFlagDashes(int argc, char** argv);

// The environment variable that carries flag `name` ("drain_timeout" -> OUTRIGGER_DRAIN_TIMEOUT).
std::string EnvNameForFlag(const std::string& name);

}  // namespace outrigger

#endif  // OUTRIGGER_XDS_COMMON_ENV_FLAGS_H_
