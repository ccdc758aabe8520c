// The mesh CA: the root it creates, the leaves it signs (checked with an independent
// X509_STORE), what it refuses, and a user-provided intermediate CA loaded from PEM.
#include "certs/authority.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_split.h"
#include "certs/openssl_util.h"
#include "tests/unit/certs/test_pki.h"

namespace outrigger::certs {
namespace {

using testing::CsrWithUris;
using testing::Id;
using testing::IssueLeaf;
using testing::SignIntermediate;
using testing::Unwrap;
using testing::VerifyChain;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// A fixed, whole-second instant: certificates store seconds.
const absl::Time kNow = absl::FromUnixSeconds(1'750'000'000);

TEST_CASE("CreateRoot makes a self-signed P-256 CA for the trust domain", "[ca]") {
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24 * 365), kNow));
  REQUIRE(ca.chain().size() == 1);
  const Certificate& root = ca.chain().front();
  CHECK(root.is_ca());
  CHECK(root.subject() == "O=outrigger, CN=cluster.local root");
  CHECK(root.not_before() == kNow - absl::Minutes(1));
  CHECK(root.not_after() == kNow + absl::Hours(24 * 365));
  CHECK(X509_self_signed(root.get(), 1) == 1);
  CHECK(internal::IsP256(ca.key().get()));
  CHECK(X509_check_private_key(root.get(), ca.key().get()) == 1);
  CHECK((X509_get_key_usage(root.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
        (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(root.get()) != nullptr);
  // The trust domain's own SPIFFE ID: a valid URI SAN, though not a workload ID.
  CHECK(internal::CertificateUris(root.get()) ==
        std::vector<std::string>{"spiffe://cluster.local"});
  CHECK_FALSE(root.spiffe_id().has_value());
  CHECK(ca.RootPem() == root.ToPem());
}

TEST_CASE("CreateRoot refuses a bad trust domain or validity", "[ca]") {
  CHECK_THAT(Message(CertificateAuthority::CreateRoot("Bad Domain", absl::Hours(1), kNow).status()),
             Catch::StartsWith("trust_domain: 'Bad Domain' is not a valid trust domain"));
  CHECK_THAT(Message(CertificateAuthority::CreateRoot("td", absl::ZeroDuration(), kNow).status()),
             Catch::StartsWith("validity: must be positive"));
}

TEST_CASE("Sign issues a leaf with the SPIFFE ID that chains to the root", "[ca]") {
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24 * 365), kNow));
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const SpiffeId id = Id("default", "reviews");
  const std::string chain_pem =
      Unwrap(ca.Sign(Unwrap(CreateCsr(key, id)), id, absl::Hours(24), kNow + absl::Hours(1)));
  std::vector<Certificate> chain = Unwrap(Certificate::ChainFromPem(chain_pem));
  REQUIRE(chain.size() == 1);  // the root is not sent: peers have it
  const Certificate& leaf = chain.front();
  REQUIRE(leaf.spiffe_id().has_value());
  CHECK(*leaf.spiffe_id() == id);
  CHECK_FALSE(leaf.is_ca());
  CHECK(leaf.subject() == "O=outrigger, CN=spiffe://cluster.local/ns/default/sa/reviews");
  CHECK(leaf.not_before() == kNow + absl::Hours(1) - absl::Minutes(1));
  CHECK(leaf.not_after() == kNow + absl::Hours(25));
  CHECK(X509_check_private_key(leaf.get(), key.get()) == 1);
  CHECK(X509_get_key_usage(leaf.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_extended_key_usage(leaf.get()) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
  CHECK(X509_get0_authority_key_id(leaf.get()) != nullptr);
  // 128-bit random serials: two leaves never share one.
  const std::string again =
      Unwrap(ca.Sign(Unwrap(CreateCsr(key, id)), id, absl::Hours(24), kNow + absl::Hours(1)));
  Certificate other = Unwrap(Certificate::FromPem(again));
  CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf.get()), X509_get0_serialNumber(other.get())) !=
        0);
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.get()), nullptr);
  CHECK(BN_num_bits(serial) > 100);
  BN_free(serial);

  int depth = 0;
  CHECK(VerifyChain(chain_pem, ca.RootPem(), kNow + absl::Hours(2), &depth) == X509_V_OK);
  CHECK(depth == 2);
  CHECK(VerifyChain(chain_pem, ca.RootPem(), kNow + absl::Hours(26)) ==
        X509_V_ERR_CERT_HAS_EXPIRED);
  CertificateAuthority foreign =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), kNow));
  CHECK(VerifyChain(chain_pem, foreign.RootPem(), kNow + absl::Hours(2)) != X509_V_OK);
}

TEST_CASE("Sign caps the leaf at the CA's notAfter", "[ca]") {
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(2), kNow));
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const SpiffeId id = Id("default", "reviews");
  Certificate leaf = Unwrap(Certificate::FromPem(
      Unwrap(ca.Sign(Unwrap(CreateCsr(key, id)), id, absl::Hours(24), kNow + absl::Hours(1)))));
  CHECK(leaf.not_after() == kNow + absl::Hours(2));
  CHECK_THAT(
      Message(
          ca.Sign(Unwrap(CreateCsr(key, id)), id, absl::Hours(1), kNow + absl::Hours(3)).status()),
      Catch::Contains("expired"));
}

TEST_CASE("Sign refuses another identity, several URIs, a bad key or a bad ttl", "[ca]") {
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), kNow));
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const SpiffeId id = Id("default", "reviews");
  const std::string csr = Unwrap(CreateCsr(key, Id("default", "admin")));

  absl::Status other = ca.Sign(csr, id, absl::Hours(1), kNow).status();
  CHECK(other.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Message(other) ==
        "the CSR asks for spiffe://cluster.local/ns/default/sa/admin but this request may only "
        "get spiffe://cluster.local/ns/default/sa/reviews");

  const std::string two = CsrWithUris(
      key, {"spiffe://cluster.local/ns/default/sa/reviews", "https://reviews.example.com"});
  CHECK_THAT(Message(ca.Sign(two, id, absl::Hours(1), kNow).status()),
             Catch::StartsWith("csr: has 2 URI SANs"));
  CHECK_THAT(Message(ca.Sign(CsrWithUris(key, {}), id, absl::Hours(1), kNow).status()),
             Catch::StartsWith("csr: has 0 URI SANs"));
  CHECK_THAT(
      Message(
          ca.Sign(CsrWithUris(key, {"spiffe://cluster.local"}), id, absl::Hours(1), kNow).status()),
      Catch::StartsWith("csr: its URI SAN is not a SPIFFE ID"));

  const std::string good = Unwrap(CreateCsr(key, id));
  CHECK_THAT(Message(ca.Sign(good, id, absl::ZeroDuration(), kNow).status()),
             Catch::StartsWith("ttl: must be positive"));
  CHECK_THAT(Message(ca.Sign(good, id, -absl::Hours(1), kNow).status()),
             Catch::StartsWith("ttl: must be positive"));
  CHECK_THAT(Message(ca.Sign("garbage", id, absl::Hours(1), kNow).status()),
             Catch::StartsWith("csr: not a PEM certificate request"));

  // A P-384 key in an otherwise good CSR.
  EVP_PKEY* p384 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  REQUIRE(p384 != nullptr);
  const std::string p384_csr = CsrWithUris(p384, {id.ToString()});
  EVP_PKEY_free(p384);
  CHECK(Unwrap(ParseCsr(p384_csr)).spiffe_id == id);
  CHECK(Message(ca.Sign(p384_csr, id, absl::Hours(1), kNow).status()) ==
        "csr: the key is not ECDSA P-256");
}

TEST_CASE("an intermediate CA from PEM signs leaves that chain leaf, intermediate, root", "[ca]") {
  const absl::Time now = absl::Now();
  CertificateAuthority root =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24 * 365), now));
  testing::IntermediatePem inter =
      SignIntermediate(root, "mesh intermediate", absl::Hours(24 * 30), now);
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::FromPem(inter.cert_pem + root.RootPem(), inter.key_pem));
  REQUIRE(ca.chain().size() == 2);
  CHECK(ca.chain().front().subject() == "O=outrigger, CN=mesh intermediate");
  CHECK(ca.RootPem() == root.RootPem());

  const SpiffeId id = Id("shop", "cart");
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const std::string chain_pem =
      Unwrap(ca.Sign(Unwrap(CreateCsr(key, id)), id, absl::Hours(1), now));
  std::vector<Certificate> chain = Unwrap(Certificate::ChainFromPem(chain_pem));
  REQUIRE(chain.size() == 2);  // leaf + intermediate, not the root
  CHECK(*chain[0].spiffe_id() == id);
  CHECK(chain[1].fingerprint() == ca.chain().front().fingerprint());
  CHECK(chain_pem.find(inter.cert_pem) != std::string::npos);
  int depth = 0;
  CHECK(VerifyChain(chain_pem, ca.RootPem(), now, &depth) == X509_V_OK);
  CHECK(depth == 3);
  // Without the intermediate the leaf does not reach the root.
  CHECK(VerifyChain(chain[0].ToPem(), ca.RootPem(), now) ==
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_CASE("CertificateAuthority::FromPem checks the key, the CA flags and the order", "[ca]") {
  const absl::Time now = absl::Now();
  CertificateAuthority root =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), now));
  CertificateAuthority other =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), now));
  // The root itself, loaded back.
  CertificateAuthority again =
      Unwrap(CertificateAuthority::FromPem(root.RootPem(), root.key().ToPem()));
  CHECK(again.chain().front().fingerprint() == root.chain().front().fingerprint());

  CHECK_THAT(Message(CertificateAuthority::FromPem(root.RootPem(), other.key().ToPem()).status()),
             Catch::StartsWith("key_pem: the key does not match certificate 1 of chain_pem "
                               "(O=outrigger, CN=cluster.local root)"));

  testing::Leaf leaf = IssueLeaf(root, Id("a", "b"));
  CHECK_THAT(Message(CertificateAuthority::FromPem(leaf.chain_pem, leaf.key.ToPem()).status()),
             Catch::StartsWith("chain_pem: certificate 1 (O=outrigger, "
                               "CN=spiffe://cluster.local/ns/a/sa/b) is not a CA certificate"));

  testing::IntermediatePem no_sign =
      SignIntermediate(root, "no signing", absl::Hours(1), now, "critical,digitalSignature");
  CHECK_THAT(Message(CertificateAuthority::FromPem(no_sign.cert_pem, no_sign.key_pem).status()),
             Catch::Contains("lacks keyCertSign"));

  testing::IntermediatePem inter = SignIntermediate(root, "inter", absl::Hours(1), now);
  CHECK_THAT(
      Message(
          CertificateAuthority::FromPem(inter.cert_pem + other.RootPem(), inter.key_pem).status()),
      Catch::StartsWith("chain_pem: certificate 2 (O=outrigger, CN=cluster.local root) did "
                        "not issue certificate 1 (O=outrigger, CN=inter)"));
  CHECK_THAT(Message(CertificateAuthority::FromPem("", root.key().ToPem()).status()),
             Catch::StartsWith("chain_pem: no PEM certificate"));
  CHECK_THAT(Message(CertificateAuthority::FromPem(root.RootPem(), "").status()),
             Catch::StartsWith("key_pem: not a PEM private key"));
}

TEST_CASE("CA errors never carry private key material", "[ca]") {
  CertificateAuthority root =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), absl::Now()));
  const std::string key_pem = root.key().ToPem();
  // Every base64 line of the key, any of which would be a leak.
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(key_pem, '\n')) {
    if (!line.empty() && line[0] != '-') lines.emplace_back(line);
  }
  REQUIRE(lines.size() >= 2);
  auto check_clean = [&](const absl::Status& s) {
    REQUIRE_FALSE(s.ok());
    const std::string msg(s.message());
    INFO(msg);
    CHECK(msg.find("PRIVATE KEY") == std::string::npos);
    for (const std::string& line : lines) CHECK(msg.find(line.substr(0, 16)) == std::string::npos);
  };
  // A key where a certificate (or a CSR) belongs, alone or appended, and a damaged key.
  check_clean(CertificateAuthority::FromPem(key_pem, key_pem).status());
  check_clean(CertificateAuthority::FromPem(root.RootPem() + key_pem, key_pem).status());
  check_clean(CertificateAuthority::FromPem(root.RootPem(), key_pem.substr(0, 100)).status());
  std::string damaged = key_pem;
  damaged[50] = '#';
  check_clean(CertificateAuthority::FromPem(root.RootPem(), damaged).status());
  check_clean(CertificateAuthority::FromPem(damaged, key_pem).status());
  check_clean(root.Sign(key_pem, Id("a", "b"), absl::Hours(1), absl::Now()).status());
  check_clean(PrivateKey::FromPem(root.RootPem()).status());
}

}  // namespace
}  // namespace outrigger::certs
