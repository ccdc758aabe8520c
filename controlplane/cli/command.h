// The shape of an `outrigger` subcommand: a name, a one-line summary for `outrigger --help`, its
// own usage text, and a function that runs it. main.cc holds the table; each command is one
// file (validate_command.cc, ...) defining `const Command& <Name>Command()`.
#ifndef OUTRIGGER_CONTROLPLANE_CLI_COMMAND_H_
#define OUTRIGGER_CONTROLPLANE_CLI_COMMAND_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace outrigger::cli {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and found a problem (invalid policy...)
inline constexpr int kExitUsage = 2;    // the command line itself is wrong

struct Command {
  absl::string_view name;
  absl::string_view summary;  // one line
  absl::string_view usage;    // full help, printed by `outrigger NAME --help`
  // `args` are the arguments after the command's name. Returns the exit code.
  int (*run)(const std::vector<std::string>& args) = nullptr;
};

// True when `args` asks for help (-h or --help anywhere).
bool WantsHelp(const std::vector<std::string>& args);

// Prints "outrigger NAME: PROBLEM" and the command's usage to stderr; returns kExitUsage.
int UsageError(const Command& command, absl::string_view problem);

}  // namespace outrigger::cli

#endif  // OUTRIGGER_CONTROLPLANE_CLI_COMMAND_H_
