// Certificates and CSRs: PEM parsing (and its errors), the fields read from a certificate, and
// the CSR round trip the CA depends on (SPIFFE ID, URI count, signature check).
#include "certs/certificate.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "certs/authority.h"
#include "tests/unit/certs/test_pki.h"

namespace outrigger::certs {
namespace {

using testing::CsrWithUris;
using testing::Id;
using testing::Unwrap;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST_CASE("a CSR round-trips its SPIFFE ID", "[csr]") {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const std::string csr = Unwrap(CreateCsr(key, Id("default", "reviews")));
  CHECK(csr.rfind("-----BEGIN CERTIFICATE REQUEST-----", 0) == 0);
  CsrInfo info = Unwrap(ParseCsr(csr));
  CHECK(info.uri_count == 1);
  REQUIRE(info.spiffe_id.has_value());
  CHECK(*info.spiffe_id == Id("default", "reviews"));
}

TEST_CASE("a long SPIFFE ID still makes a CSR (the CN is left out past 64 characters)", "[csr]") {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const SpiffeId id = Id("a-rather-long-namespace-name", "an-even-longer-service-account-name");
  REQUIRE(id.ToString().size() > 64);
  CsrInfo info = Unwrap(ParseCsr(Unwrap(CreateCsr(key, id))));
  REQUIRE(info.spiffe_id.has_value());
  CHECK(*info.spiffe_id == id);
}

TEST_CASE("ParseCsr counts every URI SAN", "[csr]") {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  CsrInfo two = Unwrap(ParseCsr(
      CsrWithUris(key, {"spiffe://cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns/c/sa/d"})));
  CHECK(two.uri_count == 2);
  CHECK_FALSE(two.spiffe_id.has_value());

  CsrInfo mixed = Unwrap(
      ParseCsr(CsrWithUris(key, {"https://example.com", "spiffe://cluster.local/ns/a/sa/b"})));
  CHECK(mixed.uri_count == 2);
  REQUIRE(mixed.spiffe_id.has_value());  // still the one spiffe:// URI; the CA refuses it anyway
  CHECK(*mixed.spiffe_id == Id("a", "b"));

  CsrInfo none = Unwrap(ParseCsr(CsrWithUris(key, {})));
  CHECK(none.uri_count == 0);
  CHECK_FALSE(none.spiffe_id.has_value());
}

TEST_CASE("ParseCsr refuses a tampered or malformed CSR", "[csr]") {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  const std::string csr = Unwrap(CreateCsr(key, Id("default", "reviews")));

  // Swap the requested SAN for another identity in the signed bytes: the signature breaks.
  std::string tampered = csr;
  auto der_start = tampered.find('\n') + 1;
  std::string body = tampered.substr(der_start, tampered.find("-----END") - der_start);
  std::string der;
  REQUIRE(absl::Base64Unescape(body, &der));
  const auto at = der.find("reviews");
  REQUIRE(at != std::string::npos);
  der.replace(at, 7, "ratings");
  tampered = "-----BEGIN CERTIFICATE REQUEST-----\n" + absl::Base64Escape(der) +
             "\n-----END CERTIFICATE REQUEST-----\n";
  CHECK_THAT(Message(ParseCsr(tampered).status()), Catch::Contains("signature does not verify"));

  CHECK_THAT(Message(ParseCsr("").status()), Catch::StartsWith("not a PEM certificate request"));
  CHECK_THAT(Message(ParseCsr(key.ToPem()).status()),
             Catch::StartsWith("not a PEM certificate request"));
}

TEST_CASE("certificate PEM parsing names the bad block and never echoes a key", "[cert]") {
  CertificateAuthority a =
      Unwrap(CertificateAuthority::CreateRoot("a.local", absl::Hours(1), absl::Now()));
  CertificateAuthority b =
      Unwrap(CertificateAuthority::CreateRoot("b.local", absl::Hours(1), absl::Now()));
  const std::string two = a.RootPem() + "# a comment line between blocks\n" + b.RootPem();
  std::vector<Certificate> chain = Unwrap(Certificate::ChainFromPem(two));
  REQUIRE(chain.size() == 2);
  CHECK(chain[0].fingerprint() == a.chain().front().fingerprint());
  CHECK(chain[1].fingerprint() == b.chain().front().fingerprint());
  CHECK(Unwrap(Certificate::FromPem(two)).fingerprint() == a.chain().front().fingerprint());

  CHECK_THAT(Message(Certificate::ChainFromPem("").status()),
             Catch::StartsWith("no PEM certificate"));
  CHECK_THAT(Message(Certificate::FromPem("junk").status()),
             Catch::StartsWith("no PEM certificate"));

  const std::string key_pem = a.key().ToPem();
  const std::string msg = Message(Certificate::ChainFromPem(a.RootPem() + key_pem).status());
  CHECK(msg == "PEM block 2 is a private key, not a certificate");

  std::string broken = b.RootPem();
  broken[100] = '*';
  CHECK_THAT(Message(Certificate::ChainFromPem(a.RootPem() + broken).status()),
             Catch::StartsWith("PEM block 2 is malformed") ||
                 Catch::StartsWith("certificate 2 is not valid DER X.509"));
}

TEST_CASE("a Certificate copy shares the X509 and outlives the original", "[cert]") {
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::CreateRoot("a.local", absl::Hours(1), absl::Now()));
  std::optional<Certificate> copy;
  {
    Certificate original = Unwrap(Certificate::FromPem(ca.RootPem()));
    copy.emplace(original);
    CHECK(copy->get() == original.get());
    Certificate assigned = Unwrap(Certificate::FromPem(ca.RootPem()));
    assigned = original;
    CHECK(assigned.get() == original.get());
    assigned = assigned;
    CHECK(assigned.get() == original.get());
  }
  CHECK(copy->subject() == "O=outrigger, CN=a.local root");
  CHECK(copy->fingerprint().size() == 64);
}

}  // namespace
}  // namespace outrigger::certs
