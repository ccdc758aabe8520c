// See env_flags.h.
#include "xds/common/env_flags.h"

#include <cstdlib>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace outrigger {

void NormalizeFlagDashes(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* a = argv[i];
    if (a[0] != '-' || a[1] != '-') continue;
    if (a[2] == '\0') break;  // "--" ends the flags
    for (char* p = a + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

std::string EnvNameForFlag(const std::string& name) {
  std::string env = "OUTRIGGER_" + absl::AsciiStrToUpper(name);
  for (char& c : env) {
    if (c == '-') c = '_';
  }
  return env;
}

absl::Status ApplyEnvironmentToFlags(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const std::string env = EnvNameForFlag(name);
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", env, "='", value, "': ", error));
    }
  }
  return absl::OkStatus();
}

}  // namespace outrigger
