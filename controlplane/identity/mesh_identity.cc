// See mesh_identity.h.
#include "controlplane/identity/mesh_identity.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "certs/certificate.h"
#include "xds/common/file.h"
#include "xds/common/log.h"

namespace outrigger::controlplane {

namespace {

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Writes a new file readable by its owner only; fails if it exists (never overwrites state).
absl::Status WritePrivate(const std::string& path, const std::string& contents) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": cannot create: ",
                                                         strerror(errno)));
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = write(fd, contents.data() + off, contents.size() - off);
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": write failed"));
    }
    off += static_cast<size_t>(n);
  }
  fsync(fd);
  close(fd);
  return absl::OkStatus();
}

absl::Status EnsureDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat(dir, ": cannot create: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> LoadOrCreateTokenSecret(const std::string& dir) {
  if (auto s = EnsureDir(dir); !s.ok()) return s;
  const std::string path = dir + "/token.key";
  if (!Exists(path)) {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("RAND_bytes failed");
    auto s = WritePrivate(path, std::string(reinterpret_cast<char*>(bytes), sizeof(bytes)));
    if (!s.ok() && !Exists(path)) return s;  // (lost a race with another creator: fine)
  }
  auto secret = ReadFile(path);
  if (!secret.ok()) return secret.status();
  if (secret->size() < 32) return absl::InvalidArgumentError(path + ": shorter than 32 bytes");
  return secret;
}

absl::StatusOr<std::unique_ptr<MeshIdentity>> MeshIdentity::Open(const IdentityOptions& options,
                                                                 absl::Time now) {
  auto id = std::unique_ptr<MeshIdentity>(new MeshIdentity());
  id->options_ = options;
  if (auto s = EnsureDir(options.ca_dir); !s.ok()) return s;

  // The CA: the user's, or ours from the directory, or a new root.
  const std::string cert_path = options.ca_dir + "/ca.pem";
  const std::string key_path = options.ca_dir + "/ca-key.pem";
  if (!options.ca_cert_file.empty() || !options.ca_key_file.empty()) {
    if (options.ca_cert_file.empty() || options.ca_key_file.empty()) {
      return absl::InvalidArgumentError("--ca-cert and --ca-key go together");
    }
    auto chain = ReadFile(options.ca_cert_file);
    if (!chain.ok()) return chain.status();
    auto key = ReadFile(options.ca_key_file);
    if (!key.ok()) return key.status();
    auto ca = certs::CertificateAuthority::FromPem(*chain, *key);
    if (!ca.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--ca-cert/--ca-key: ", ca.status().message()));
    }
    id->ca_ = std::make_unique<certs::CertificateAuthority>(*std::move(ca));
    LogInfo("mesh CA: ", options.ca_cert_file, " (", id->ca_->chain()[0].subject(), ")");
  } else if (Exists(cert_path) || Exists(key_path)) {
    auto chain = ReadFile(cert_path);
    if (!chain.ok()) return chain.status();
    auto key = ReadFile(key_path);
    if (!key.ok()) return key.status();
    auto ca = certs::CertificateAuthority::FromPem(*chain, *key);
    if (!ca.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(cert_path, ": ", ca.status().message()));
    }
    id->ca_ = std::make_unique<certs::CertificateAuthority>(*std::move(ca));
    LogInfo("mesh CA: loaded from ", options.ca_dir);
  } else {
    auto ca = certs::CertificateAuthority::CreateRoot(options.trust_domain,
                                                      absl::Hours(24 * 365 * 10), now);
    if (!ca.ok()) return ca.status();
    if (auto s = WritePrivate(key_path, ca->key().ToPem()); !s.ok()) return s;
    if (auto s = WritePrivate(cert_path, ca->chain()[0].ToPem()); !s.ok()) return s;
    id->ca_ = std::make_unique<certs::CertificateAuthority>(*std::move(ca));
    LogInfo("mesh CA: created a new root for ", options.trust_domain, " in ", options.ca_dir,
            " (key mode 0600)");
  }

  // The bundle: our root, plus extra roots an operator adds while rotating.
  id->bundle_pem_ = id->ca_->RootPem();
  const std::string extra_path = options.ca_dir + "/trust-bundle.pem";
  if (Exists(extra_path)) {
    auto extra = ReadFile(extra_path);
    if (!extra.ok()) return extra.status();
    auto certs_in = certs::Certificate::ChainFromPem(*extra);
    if (!certs_in.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(extra_path, ": ", certs_in.status().message()));
    }
    for (const auto& c : *certs_in) {
      if (c.fingerprint() != certs::Certificate::FromPem(id->ca_->RootPem())->fingerprint()) {
        id->bundle_pem_ += c.ToPem();
      }
    }
  }

  auto secret = LoadOrCreateTokenSecret(options.ca_dir);
  if (!secret.ok()) return secret.status();
  id->token_secret_ = *std::move(secret);

  // Our own serving certificate, issued through the same path as a sidecar's.
  auto key = certs::PrivateKey::GenerateP256();
  if (!key.ok()) return key.status();
  auto spiffe = certs::ParseSpiffeId(xds::ControlPlaneSpiffeId(options.trust_domain));
  if (!spiffe.ok()) return spiffe.status();
  auto csr = certs::CreateCsr(*key, *spiffe);
  if (!csr.ok()) return csr.status();
  const absl::Duration ttl = std::max(options.cert_ttl, absl::Hours(24 * 30));
  auto chain = id->ca_->Sign(*csr, *spiffe, ttl, now);
  if (!chain.ok()) return chain.status();
  id->server_identity_ = {key->ToPem(), *chain};
  id->server_not_after_ = certs::Certificate::FromPem(*chain)->not_after();
  return id;
}

}  // namespace outrigger::controlplane
