// The control plane's identity state: a new CA is created with its key and token secret 0600 and
// loaded again (the same root) on the next start; a certificate issued through the CA chains to
// the bundle; a user's intermediate is used as given; extra roots join the trust bundle.
#include "controlplane/identity/mesh_identity.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "certs/authority.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "tests/unit/controlplane/temp_dir.h"

using outrigger::controlplane::IdentityOptions;
using outrigger::controlplane::MeshIdentity;

namespace {

int Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("a new mesh CA is persisted privately and loaded again", "[identity]") {
  outrigger::testing::TempDir tmp;
  IdentityOptions options;
  options.ca_dir = tmp.path() + "/ca";
  options.trust_domain = "example.org";
  auto first = MeshIdentity::Open(options, absl::Now());
  REQUIRE(first.ok());
  CHECK(Mode(options.ca_dir) == 0700);
  CHECK(Mode(options.ca_dir + "/ca-key.pem") == 0600);
  CHECK(Mode(options.ca_dir + "/token.key") == 0600);
  const std::string root = (*first)->ca().RootPem();
  const std::string secret = (*first)->token_secret();

  auto second = MeshIdentity::Open(options, absl::Now());
  REQUIRE(second.ok());
  CHECK((*second)->ca().RootPem() == root);
  CHECK((*second)->token_secret() == secret);

  // The control plane's own certificate names it and chains to the root.
  auto leaf = outrigger::certs::Certificate::FromPem((*second)->server_identity().chain_pem);
  REQUIRE(leaf.ok());
  REQUIRE(leaf->spiffe_id().has_value());
  CHECK(leaf->spiffe_id()->ToString() ==
        "spiffe://example.org/ns/outrigger-system/sa/outrigger-control");
}

TEST_CASE("extra roots join the trust bundle for a rotation", "[identity]") {
  outrigger::testing::TempDir tmp;
  IdentityOptions options;
  options.ca_dir = tmp.path() + "/ca";
  REQUIRE(MeshIdentity::Open(options, absl::Now()).ok());
  auto next = outrigger::certs::CertificateAuthority::CreateRoot("cluster.local",
                                                                 absl::Hours(24), absl::Now());
  REQUIRE(next.ok());
  tmp.Write("ca/trust-bundle.pem", next->RootPem());
  auto id = MeshIdentity::Open(options, absl::Now());
  REQUIRE(id.ok());
  auto bundle = outrigger::certs::Certificate::ChainFromPem((*id)->bundle_pem());
  REQUIRE(bundle.ok());
  CHECK(bundle->size() == 2);
}

TEST_CASE("a user's CA is used as given, and a mismatched key is refused", "[identity]") {
  outrigger::testing::TempDir tmp;
  auto root = outrigger::certs::CertificateAuthority::CreateRoot("cluster.local",
                                                                 absl::Hours(48), absl::Now());
  REQUIRE(root.ok());
  auto other = outrigger::certs::PrivateKey::GenerateP256();
  REQUIRE(other.ok());
  IdentityOptions options;
  options.ca_dir = tmp.path() + "/ca";
  options.ca_cert_file = tmp.Write("user-ca.pem", root->RootPem());
  options.ca_key_file = tmp.Write("user-ca-key.pem", root->key().ToPem());
  auto id = MeshIdentity::Open(options, absl::Now());
  REQUIRE(id.ok());
  CHECK((*id)->ca().RootPem() == root->RootPem());

  options.ca_key_file = tmp.Write("wrong-key.pem", other->ToPem());
  auto bad = MeshIdentity::Open(options, absl::Now());
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("--ca-cert/--ca-key") != std::string::npos);
  CHECK(std::string(bad.status().message()).find("PRIVATE KEY") == std::string::npos);
}
