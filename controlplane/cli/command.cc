// See command.h.
#include "controlplane/cli/command.h"

#include <iostream>

namespace outrigger::cli {

bool WantsHelp(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}

int UsageError(const Command& command, absl::string_view problem) {
  std::cerr << "outrigger " << command.name << ": " << problem << "\n\n" << command.usage;
  return kExitUsage;
}

}  // namespace outrigger::cli
