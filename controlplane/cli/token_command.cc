// `outrigger token create`: issues a join token for one service, the credential a sidecar's first
// contact with the control plane is authenticated with. Run where the control plane's --ca-dir is
// (the token is an HMAC keyed with <ca-dir>/token.key, which only that directory holds); the
// control plane itself needs no call.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "certs/certificate.h"
#include "certs/join_token.h"
#include "controlplane/cli/command.h"
#include "controlplane/identity/mesh_identity.h"
#include "xds/common/file.h"

namespace outrigger::cli {
namespace {

int Run(const std::vector<std::string>& args);

const Command kCommand = {
    "token",
    "issue a join token for a service's sidecars (needs the control plane's --ca-dir)",
    "usage: outrigger token create --ca-dir DIR --service NAME [--namespace NS]\n"
    "                              [--trust-domain TD] [--ttl DURATION]\n\n"
    "Prints a token that lets a sidecar of NAME (in NS, default \"default\") get its first\n"
    "certificate: spiffe://TD/ns/NS/sa/NAME and no other identity. The trust domain is read\n"
    "from DIR/ca.pem when it exists (default cluster.local). --ttl (default 24h) bounds how\n"
    "long the token can be used to join; the sidecar renews with its certificate afterwards.\n"
    "Give it to the sidecar with --join-token-file or OUTRIGGER_JOIN_TOKEN. Example:\n\n"
    "  outrigger token create --ca-dir /var/lib/outrigger --service reviews\n",
    &Run};

int Run(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << kCommand.usage;
    return kExitOk;
  }
  if (args.empty() || args[0] != "create") return UsageError(kCommand, "expected 'create'");
  std::string dir, service, ns = "default", trust_domain, ttl_text = "24h";
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto take = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    bool ok = true;
    if (a == "--ca-dir") {
      ok = take(&dir);
    } else if (a == "--service") {
      ok = take(&service);
    } else if (a == "--namespace") {
      ok = take(&ns);
    } else if (a == "--trust-domain") {
      ok = take(&trust_domain);
    } else if (a == "--ttl") {
      ok = take(&ttl_text);
    } else {
      return UsageError(kCommand, absl::StrCat("unknown argument '", a, "'"));
    }
    if (!ok) return UsageError(kCommand, absl::StrCat(a, " needs a value"));
  }
  if (dir.empty() || service.empty()) return UsageError(kCommand, "needs --ca-dir and --service");
  absl::Duration ttl;
  if (!absl::ParseDuration(ttl_text, &ttl) || ttl <= absl::ZeroDuration()) {
    return UsageError(kCommand, absl::StrCat("--ttl: '", ttl_text, "' is not a duration"));
  }
  if (trust_domain.empty()) {
    trust_domain = "cluster.local";
    if (auto pem = ReadFile(dir + "/ca.pem"); pem.ok()) {
      auto ca = certs::Certificate::FromPem(*pem);
      // The root's subject CN is "<trust-domain> root" (certs::CertificateAuthority::CreateRoot).
      if (ca.ok()) {
        const std::string subject = ca->subject();
        const size_t cn = subject.find("CN=");
        const size_t root = subject.rfind(" root");
        if (cn != std::string::npos && root != std::string::npos && root > cn + 3) {
          trust_domain = subject.substr(cn + 3, root - cn - 3);
        }
      }
    }
  }
  if (access(dir.c_str(), F_OK) != 0) {
    std::cerr << "outrigger token: --ca-dir " << dir
              << ": no such directory (give the control plane's --ca-dir)\n";
    return kExitFailure;
  }
  auto secret = controlplane::LoadOrCreateTokenSecret(dir);
  if (!secret.ok()) {
    std::cerr << "outrigger token: " << secret.status().message() << "\n";
    return kExitFailure;
  }
  auto token = certs::MintJoinToken(*secret, {trust_domain, ns, service}, absl::Now() + ttl);
  if (!token.ok()) {
    std::cerr << "outrigger token: " << token.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << *token << "\n";
  return kExitOk;
}

}  // namespace

const Command& TokenCommand() { return kCommand; }

}  // namespace outrigger::cli
