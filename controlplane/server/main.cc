// outrigger-control: reads mesh policy, keeps the registry of connected sidecars, and streams each
// sidecar its config. Flags (or OUTRIGGER_* variables): --policy, --xds, --admin.
#include <signal.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "controlplane/server/control_plane.h"
#include "xds/common/env_flags.h"
#include "xds/common/log.h"

ABSL_FLAG(std::string, policy, "", "Mesh policy: a YAML file or a directory of them (required).");
ABSL_FLAG(std::string, xds, "127.0.0.1:15010",
          "Where proxies and the outrigger CLI connect (discovery stream and admin RPCs).");
ABSL_FLAG(std::string, admin, "", "HTTP admin IP:PORT for /ready and /metrics.");
ABSL_FLAG(absl::Duration, debounce, absl::Milliseconds(100),
          "Changes arriving within this interval are pushed together.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  // --help lists the flags defined in this file (Abseil's default looks for a file named like
  // the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::EndsWith(file, "main.cc"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "the Outrigger control plane.\n\n"
      "  outrigger-control --policy examples/mesh --xds 127.0.0.1:15010 --admin 127.0.0.1:15011\n\n"
      "Every flag can also be set as OUTRIGGER_<FLAG> (e.g. OUTRIGGER_POLICY).");
  if (auto s = outrigger::ApplyEnvironmentToFlags({"policy", "xds", "admin", "debounce",
                                                   "log_level"});
      !s.ok()) {
    std::cerr << "outrigger-control: " << s.message() << "\n";
    return 1;
  }
  outrigger::NormalizeFlagDashes(argc, argv);
  absl::ParseCommandLine(argc, argv);
  outrigger::LogLevel level;
  if (!outrigger::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::cerr << "outrigger-control: --log-level: not debug, info, warning or error\n";
    return 1;
  }
  outrigger::SetLogLevel(level);
  outrigger::controlplane::ControlOptions options;
  options.policy_path = absl::GetFlag(FLAGS_policy);
  if (options.policy_path.empty()) {
    std::cerr << "outrigger-control: --policy PATH is required\n";
    return 1;
  }
  options.xds_address = absl::GetFlag(FLAGS_xds);
  options.admin_address = absl::GetFlag(FLAGS_admin);
  options.discovery.debounce =
      std::chrono::milliseconds(absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_debounce)));
  outrigger::controlplane::ControlPlane cp(options);
  if (auto s = cp.Start(); !s.ok()) {
    std::cerr << "outrigger-control: " << s.message() << "\n";
    return 1;
  }
  return cp.Run();
}
