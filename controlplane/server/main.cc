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
ABSL_FLAG(std::string, ca_dir, "",
          "Run the mesh CA with its state in this directory (created 0700; the CA key is written "
          "0600): TLS on --xds, certificates for sidecars, join tokens. Empty: plaintext.");
ABSL_FLAG(std::string, ca_cert, "",
          "Use this CA certificate chain (PEM, signer first; e.g. an intermediate under your "
          "own root) instead of a generated root. With --ca-key.");
ABSL_FLAG(std::string, ca_key, "", "The key of --ca-cert (PEM).");
ABSL_FLAG(absl::Duration, cert_ttl, absl::Hours(24),
          "Lifetime of sidecar certificates (at least 10s); sidecars renew at about half of it.");

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
                                                   "log_level", "ca_dir", "ca_cert", "ca_key",
                                                   "cert_ttl"});
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
  options.identity.ca_dir = absl::GetFlag(FLAGS_ca_dir);
  options.identity.ca_cert_file = absl::GetFlag(FLAGS_ca_cert);
  options.identity.ca_key_file = absl::GetFlag(FLAGS_ca_key);
  options.identity.cert_ttl = absl::GetFlag(FLAGS_cert_ttl);
  if (options.identity.cert_ttl < absl::Seconds(10)) {
    std::cerr << "outrigger-control: --cert-ttl: at least 10s\n";
    return 1;
  }
  if (options.identity.ca_dir.empty() &&
      (!options.identity.ca_cert_file.empty() || !options.identity.ca_key_file.empty())) {
    std::cerr << "outrigger-control: --ca-cert/--ca-key need --ca-dir (for the token secret)\n";
    return 1;
  }
  outrigger::controlplane::ControlPlane cp(options);
  if (auto s = cp.Start(); !s.ok()) {
    std::cerr << "outrigger-control: " << s.message() << "\n";
    return 1;
  }
  return cp.Run();
}
