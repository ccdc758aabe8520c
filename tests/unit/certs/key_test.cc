// Private keys: P-256 generation, the PKCS#8 PEM round trip, and what FromPem refuses.
#include "certs/key.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <string>

#include "certs/openssl_util.h"
#include "tests/unit/certs/test_pki.h"

namespace outrigger::certs {
namespace {

using testing::BioString;
using testing::Unwrap;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST_CASE("a generated key is P-256 and round-trips through PKCS#8 PEM", "[key]") {
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  CHECK(internal::IsP256(key.get()));
  const std::string pem = key.ToPem();
  CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  PrivateKey back = Unwrap(PrivateKey::FromPem(pem));
  CHECK(EVP_PKEY_eq(key.get(), back.get()) == 1);
  CHECK(back.ToPem() == pem);
  // Two keys are never the same.
  PrivateKey other = Unwrap(PrivateKey::GenerateP256());
  CHECK(EVP_PKEY_eq(key.get(), other.get()) != 1);
}

TEST_CASE("PrivateKey::FromPem says what is wrong and never echoes the input", "[key]") {
  CHECK_THAT(Message(PrivateKey::FromPem("").status()), Catch::StartsWith("not a PEM private key"));
  CHECK_THAT(Message(PrivateKey::FromPem("hello").status()),
             Catch::StartsWith("not a PEM private key"));

  // A P-384 key is a valid key, but not one the mesh uses.
  EVP_PKEY* p384 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  REQUIRE(p384 != nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PKCS8PrivateKey(bio, p384, nullptr, nullptr, 0, nullptr, nullptr);
  const std::string p384_pem = BioString(bio);
  BIO_free(bio);
  EVP_PKEY_free(p384);
  CHECK_THAT(Message(PrivateKey::FromPem(p384_pem).status()), Catch::StartsWith("not P-256"));

  // Encrypted keys fail at once instead of prompting for a passphrase.
  PrivateKey key = Unwrap(PrivateKey::GenerateP256());
  bio = BIO_new(BIO_s_mem());
  char pass[] = "secret";
  PEM_write_bio_PKCS8PrivateKey(bio, key.get(), EVP_aes_256_cbc(), pass, 6, nullptr, nullptr);
  const std::string encrypted = BioString(bio);
  BIO_free(bio);
  CHECK_THAT(Message(PrivateKey::FromPem(encrypted).status()), Catch::Contains("encrypted"));

  // A damaged key: the message carries no line of it.
  std::string pem = key.ToPem();
  std::string damaged = pem;
  damaged[40] = '!';
  const std::string msg = Message(PrivateKey::FromPem(damaged).status());
  CHECK_THAT(msg, Catch::StartsWith("not a PEM private key"));
  CHECK(msg.find(pem.substr(28, 20)) == std::string::npos);
  CHECK(msg.find(pem.substr(pem.size() - 60, 20)) == std::string::npos);
}

}  // namespace
}  // namespace outrigger::certs
