// `outrigger`, the mesh's command line: a table of subcommands, each in its own file. To add one,
// write <name>_command.cc defining `const Command& <Name>Command()` and add it to Commands().
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/cli/command.h"

namespace outrigger::cli {

const Command& ValidateCommand();     // validate_command.cc
const Command& ProxyStatusCommand();  // proxy_status_command.cc
const Command& CanaryCommand();       // canary_command.cc
const Command& TokenCommand();        // token_command.cc
const Command& CheckCommand();        // check_command.cc

namespace {

const std::vector<const Command*>& Commands() {
  static const auto* commands = new std::vector<const Command*>{
      &ValidateCommand(),
      &ProxyStatusCommand(),
      &CanaryCommand(),
      &CheckCommand(),
      &TokenCommand(),
  };
  return *commands;
}

const Command* Find(absl::string_view name) {
  for (const Command* c : Commands()) {
    if (c->name == name) return c;
  }
  return nullptr;
}

void PrintUsage(std::ostream& out) {
  out << "usage: outrigger COMMAND [ARGS...]\n\n"
         "The command line of the Outrigger service mesh.\n\n"
         "Commands:\n";
  for (const Command* c : Commands()) {
    std::string name(c->name);
    name.resize(std::max<size_t>(name.size() + 2, 16), ' ');
    out << "  " << name << c->summary << "\n";
  }
  out << "\nRun 'outrigger COMMAND --help' for a command's arguments.\n";
}

}  // namespace

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  if (args[0] == "-h" || args[0] == "--help" || (args[0] == "help" && args.size() == 1)) {
    PrintUsage(std::cout);
    return kExitOk;
  }
  if (args[0] == "help") {  // `outrigger help COMMAND` == `outrigger COMMAND --help`
    args = {args[1], "--help"};
  }
  const Command* command = Find(args[0]);
  if (command == nullptr) {
    std::cerr << "outrigger: unknown command '" << args[0] << "'\n\n";
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  return command->run(std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace outrigger::cli

int main(int argc, char** argv) { return outrigger::cli::Main(argc, argv); }
