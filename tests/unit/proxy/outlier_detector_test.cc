// Outlier detection: consecutive-5xx and consecutive-gateway-failure ejection, ejection times
// that grow and decay, the max-ejection-percent limit and success-rate ejection, all driven by a
// fake clock (plain nanosecond numbers).
#include "proxy/upstream/outlier_detector.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

using outrigger::proxy::Outcome;
using outrigger::proxy::OutlierConfig;
using outrigger::proxy::OutlierDetector;
using outrigger::proxy::OutlierHostState;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;

// A cluster's host states, and the pointer list the detector takes.
struct Cluster {
  explicit Cluster(int n) : states(n) {
    for (OutlierHostState& state : states) all.push_back(&state);
  }
  OutlierHostState& operator[](int i) { return states[i]; }
  int EjectedCount() const {
    int n = 0;
    for (const OutlierHostState& state : states) n += state.IsEjected() ? 1 : 0;
    return n;
  }
  std::vector<OutlierHostState> states;
  std::vector<OutlierHostState*> all;
};

// Records `n` outcomes; returns how many of those calls reported an ejection.
int RecordN(OutlierDetector& detector, Cluster& cluster, int host, Outcome outcome, int n,
            int64_t now_ns) {
  int ejections = 0;
  for (int i = 0; i < n; ++i) {
    if (detector.Record(&cluster[host], outcome, cluster.all, now_ns)) ++ejections;
  }
  return ejections;
}

}  // namespace

TEST_CASE("outlier: ejection after N consecutive 5xx; a success resets the count", "[outlier]") {
  OutlierConfig config;  // consecutive_5xx 5, base ejection 30 s
  OutlierDetector detector(config);
  Cluster cluster(3);
  const int64_t now = 1000 * kSecond;

  CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 4, now) == 0);
  CHECK(cluster[0].consecutive_5xx == 4);
  CHECK_FALSE(detector.Record(&cluster[0], Outcome::kSuccess, cluster.all, now));
  CHECK(cluster[0].consecutive_5xx == 0);
  // Gateway-type failures are 5xx too.
  CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 2, now) == 0);
  CHECK(RecordN(detector, cluster, 0, Outcome::kConnectFailure, 1, now) == 0);
  CHECK(RecordN(detector, cluster, 0, Outcome::kTimeout, 1, now) == 0);
  CHECK_FALSE(cluster[0].IsEjected());
  CHECK(detector.Record(&cluster[0], Outcome::kReset, cluster.all, now));
  CHECK(cluster[0].IsEjected());
  CHECK(cluster[0].ejected_until_ns == now + 30 * kSecond);
  CHECK(cluster[0].ejections == 1);
  CHECK(cluster[0].consecutive_5xx == 0);
  CHECK(cluster.EjectedCount() == 1);
  // The interval counters saw all 10 requests, one of them a success.
  CHECK(cluster[0].interval_requests == 10);
  CHECK(cluster[0].interval_successes == 1);
}

TEST_CASE("outlier: consecutive gateway failures", "[outlier]") {
  OutlierConfig config;
  config.consecutive_5xx = 0;  // disabled: only gateway failures eject
  config.consecutive_gateway_failure = 3;
  OutlierDetector detector(config);
  Cluster cluster(3);
  const int64_t now = 5 * kSecond;

  CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 20, now) == 0);
  CHECK_FALSE(cluster[0].IsEjected());

  CHECK(RecordN(detector, cluster, 0, Outcome::kGatewayError, 2, now) == 0);
  // A plain 500 breaks the run of gateway failures.
  CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 1, now) == 0);
  CHECK(cluster[0].consecutive_gateway == 0);
  CHECK(RecordN(detector, cluster, 0, Outcome::kConnectFailure, 1, now) == 0);
  CHECK(RecordN(detector, cluster, 0, Outcome::kTimeout, 1, now) == 0);
  CHECK_FALSE(cluster[0].IsEjected());
  CHECK(detector.Record(&cluster[0], Outcome::kReset, cluster.all, now));
  CHECK(cluster[0].IsEjected());

  SECTION("with both enabled, whichever threshold is reached first ejects") {
    OutlierConfig both;
    both.consecutive_5xx = 5;
    both.consecutive_gateway_failure = 3;
    OutlierDetector detector2(both);
    Cluster cluster2(3);
    CHECK(RecordN(detector2, cluster2, 1, Outcome::kGatewayError, 3, now) == 1);
    CHECK(cluster2[1].IsEjected());
  }
}

TEST_CASE("outlier: ejection time grows with repeat ejections and is capped", "[outlier]") {
  OutlierConfig config;
  config.base_ejection_ns = 30 * kSecond;
  config.max_ejection_ns = 300 * kSecond;
  OutlierDetector detector(config);
  Cluster cluster(3);
  int64_t now = 0;
  detector.Tick(cluster.all, now);
  for (int n = 1; n <= 13; ++n) {
    INFO("ejection " << n);
    REQUIRE(RecordN(detector, cluster, 0, Outcome::kServerError, 5, now) == 1);
    const int64_t expected = std::min<int64_t>(n * 30, 300) * kSecond;
    CHECK(cluster[0].ejected_until_ns - now == expected);
    CHECK(cluster[0].ejections == static_cast<uint32_t>(n));
    now = cluster[0].ejected_until_ns;
    CHECK(detector.Tick(cluster.all, now));
    CHECK_FALSE(cluster[0].IsEjected());
  }

  SECTION("a max below the base counts as the base (as in Envoy)") {
    OutlierConfig small_max;
    small_max.base_ejection_ns = 30 * kSecond;
    small_max.max_ejection_ns = 10 * kSecond;
    OutlierDetector detector2(small_max);
    Cluster cluster2(3);
    REQUIRE(RecordN(detector2, cluster2, 0, Outcome::kServerError, 5, 0) == 1);
    CHECK(cluster2[0].ejected_until_ns == 30 * kSecond);
  }
}

TEST_CASE("outlier: a host returns after its ejection time via Tick", "[outlier]") {
  OutlierConfig config;
  OutlierDetector detector(config);
  Cluster cluster(3);
  const int64_t t0 = 50 * kSecond;
  CHECK_FALSE(detector.Tick(cluster.all, t0));
  REQUIRE(RecordN(detector, cluster, 1, Outcome::kServerError, 5, t0 + kSecond) == 1);
  const int64_t until = cluster[1].ejected_until_ns;
  REQUIRE(until == t0 + 31 * kSecond);

  // Failures while ejected (panic routing) neither re-eject nor carry over.
  CHECK(RecordN(detector, cluster, 1, Outcome::kServerError, 12, t0 + 2 * kSecond) == 0);
  CHECK(cluster[1].ejections == 1);

  for (int64_t now = t0 + 100 * kMs; now < until; now += 100 * kMs) {
    detector.Tick(cluster.all, now);
  }
  CHECK(cluster[1].IsEjected());
  CHECK(detector.Tick(cluster.all, until));
  CHECK_FALSE(cluster[1].IsEjected());
  CHECK(cluster[1].ejections == 1);  // remembered: the next ejection is longer
  CHECK(cluster[1].consecutive_5xx == 0);
  CHECK_FALSE(detector.Tick(cluster.all, until + 100 * kMs));  // nothing changed

  // One more failure is not enough to eject it again.
  CHECK_FALSE(detector.Record(&cluster[1], Outcome::kServerError, cluster.all, until));
  CHECK_FALSE(cluster[1].IsEjected());
}

TEST_CASE("outlier: max ejection percent", "[outlier]") {
  OutlierConfig config;
  config.max_ejection_percent = 10;
  OutlierDetector detector(config);
  const int64_t t0 = 10 * kSecond;

  SECTION("10 hosts at 10%: one at a time") {
    Cluster cluster(10);
    detector.Tick(cluster.all, t0);
    CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 5, t0) == 1);
    CHECK(RecordN(detector, cluster, 1, Outcome::kServerError, 5, t0) == 0);
    CHECK_FALSE(cluster[1].IsEjected());
    CHECK(cluster[1].consecutive_5xx == 0);  // reset although the ejection was refused
    CHECK(RecordN(detector, cluster, 2, Outcome::kGatewayError, 50, t0) == 0);
    CHECK(cluster.EjectedCount() == 1);
    // Once host 0 is back, another may go.
    detector.Tick(cluster.all, cluster[0].ejected_until_ns);
    REQUIRE(cluster.EjectedCount() == 0);
    CHECK(RecordN(detector, cluster, 1, Outcome::kServerError, 5, t0 + 31 * kSecond) == 1);
    CHECK(cluster.EjectedCount() == 1);
  }
  SECTION("20 hosts at 10%: two at a time") {
    Cluster cluster(20);
    CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 5, t0) == 1);
    CHECK(RecordN(detector, cluster, 1, Outcome::kServerError, 5, t0) == 1);
    CHECK(RecordN(detector, cluster, 2, Outcome::kServerError, 5, t0) == 0);
    CHECK(cluster.EjectedCount() == 2);
  }
  SECTION("2 hosts at 10%: one may be ejected, not both") {
    Cluster cluster(2);
    CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 5, t0) == 1);
    CHECK(RecordN(detector, cluster, 1, Outcome::kServerError, 5, t0) == 0);
    CHECK(cluster.EjectedCount() == 1);
  }
  SECTION("a single host may be ejected (Envoy: panic routing still reaches it)") {
    Cluster cluster(1);
    CHECK(RecordN(detector, cluster, 0, Outcome::kServerError, 5, t0) == 1);
  }
  SECTION("100% allows all") {
    OutlierConfig all;
    all.max_ejection_percent = 100;
    OutlierDetector detector2(all);
    Cluster cluster(3);
    for (int i = 0; i < 3; ++i) {
      CHECK(RecordN(detector2, cluster, i, Outcome::kServerError, 5, t0) == 1);
    }
    CHECK(cluster.EjectedCount() == 3);
  }
}

TEST_CASE("outlier: success-rate ejection of one bad host among five", "[outlier]") {
  OutlierConfig config;
  config.consecutive_5xx = 0;  // only success rate
  config.success_rate_minimum_hosts = 5;
  config.success_rate_request_volume = 100;
  config.success_rate_stdev_factor = 1900;
  const int64_t interval = config.interval_ns;
  const int64_t t0 = 100 * kSecond;
  OutlierDetector detector(config);
  Cluster cluster(5);
  CHECK_FALSE(detector.Tick(cluster.all, t0));  // starts the interval clock

  // Hosts 0-3 answer every request; host 4 half of them (alternating, so no long failure run).
  auto traffic = [&](int requests_per_good_host, int requests_for_bad_host, int64_t now) {
    for (int h = 0; h < 4; ++h) {
      RecordN(detector, cluster, h, Outcome::kSuccess, requests_per_good_host, now);
    }
    for (int i = 0; i < requests_for_bad_host; ++i) {
      const Outcome outcome = i % 2 == 0 ? Outcome::kSuccess : Outcome::kServerError;
      detector.Record(&cluster[4], outcome, cluster.all, now);
    }
  };

  SECTION("the bad host is ejected at the interval's end") {
    traffic(200, 200, t0 + kSecond);
    CHECK_FALSE(detector.Tick(cluster.all, t0 + interval - 1));
    CHECK(cluster.EjectedCount() == 0);
    CHECK(detector.Tick(cluster.all, t0 + interval));
    CHECK(cluster[4].IsEjected());
    CHECK(cluster.EjectedCount() == 1);
    CHECK(cluster[4].ejected_until_ns == t0 + interval + config.base_ejection_ns);
    for (const OutlierHostState& state : cluster.states) {
      CHECK(state.interval_requests == 0);  // a new interval starts from zero
      CHECK(state.interval_successes == 0);
    }
  }
  SECTION("not below mean - 1.9 stdev: two bad hosts among five are not outliers") {
    traffic(200, 200, t0 + kSecond);
    for (int i = 0; i < 200; ++i) {
      // Undo host 3's perfect record: it is now as bad as host 4.
      cluster[3].interval_successes -= i % 2;
    }
    CHECK_FALSE(detector.Tick(cluster.all, t0 + interval));
    CHECK(cluster.EjectedCount() == 0);
  }
  SECTION("too few hosts with enough requests: no verdict") {
    traffic(200, 200, t0 + kSecond);
    cluster[0].interval_requests = 99;
    cluster[0].interval_successes = 99;
    CHECK_FALSE(detector.Tick(cluster.all, t0 + interval));
    CHECK(cluster.EjectedCount() == 0);
  }
  SECTION("the first Tick only starts the clock") {
    OutlierDetector fresh(config);
    traffic(200, 200, t0 + kSecond);
    CHECK_FALSE(fresh.Tick(cluster.all, t0 + interval));
    CHECK(cluster.EjectedCount() == 0);
    CHECK(fresh.Tick(cluster.all, t0 + 2 * interval));
    CHECK(cluster[4].IsEjected());
  }
  SECTION("disabled with success_rate_minimum_hosts 0") {
    OutlierConfig off = config;
    off.success_rate_minimum_hosts = 0;
    OutlierDetector disabled(off);
    disabled.Tick(cluster.all, t0);
    traffic(200, 200, t0 + kSecond);
    CHECK_FALSE(disabled.Tick(cluster.all, t0 + interval));
    CHECK(cluster.EjectedCount() == 0);
  }
}

TEST_CASE("outlier: the ejection multiplier decays while the host stays healthy", "[outlier]") {
  OutlierConfig config;  // interval 10 s, base 30 s
  OutlierDetector detector(config);
  Cluster cluster(3);
  int64_t now = 0;
  detector.Tick(cluster.all, now);
  // The worker's 100 ms sweep, with a success from host 0 at every step.
  auto run_until = [&](int64_t end, bool with_traffic) {
    while (now < end) {
      now += 100 * kMs;
      if (with_traffic) detector.Record(&cluster[0], Outcome::kSuccess, cluster.all, now);
      detector.Tick(cluster.all, now);
    }
  };

  // Three ejections in a row: 30 s, 60 s, 90 s.
  for (int n = 1; n <= 3; ++n) {
    REQUIRE(RecordN(detector, cluster, 0, Outcome::kServerError, 5, now) == 1);
    REQUIRE(cluster[0].ejected_until_ns == now + n * 30 * kSecond);
    run_until(cluster[0].ejected_until_ns, false);
    REQUIRE_FALSE(cluster[0].IsEjected());
  }
  REQUIRE(now == 180 * kSecond);
  CHECK(cluster[0].ejections == 3);

  // [180 s, 190 s): a failure (below the threshold) in the interval: no decay.
  detector.Record(&cluster[0], Outcome::kServerError, cluster.all, now);
  run_until(190 * kSecond, true);
  CHECK(cluster[0].ejections == 3);
  // Then one step down per clean interval, to zero and no further.
  run_until(200 * kSecond, true);
  CHECK(cluster[0].ejections == 2);
  run_until(210 * kSecond, true);
  CHECK(cluster[0].ejections == 1);
  run_until(220 * kSecond, false);  // no traffic at all is clean too
  CHECK(cluster[0].ejections == 0);
  run_until(230 * kSecond, true);
  CHECK(cluster[0].ejections == 0);

  // So the next ejection is back to the base time.
  REQUIRE(RecordN(detector, cluster, 0, Outcome::kServerError, 5, now) == 1);
  CHECK(cluster[0].ejected_until_ns == now + 30 * kSecond);
}
