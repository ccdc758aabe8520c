// Tests proxy/upstream/load_balancer.cc: the peak-EWMA estimate, the hash, and every balancer's
// distribution, preferences, consistency (stickiness, remapping when a host leaves) and retries
// (PickContext::avoid). Randomness comes from seeded generators and time from plain numbers, so
// every run sees the same picks.
#include "proxy/upstream/load_balancer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace outrigger::proxy::lb {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kDecay = 10 * kSecond;

const Policy kAllPolicies[] = {Policy::kRoundRobin, Policy::kLeastRequest, Policy::kRingHash,
                               Policy::kMaglev,     Policy::kPeakEwma,     Policy::kRandom};

// A cluster's hosts: "10.0.0.N:8080" with the given weights. The LbHosts never move.
class Hosts {
 public:
  explicit Hosts(const std::vector<uint32_t>& weights) : storage_(weights.size()) {
    for (size_t i = 0; i < weights.size(); ++i) {
      storage_[i].key = "10.0.0." + std::to_string(i + 1) + ":8080";
      storage_[i].weight = weights[i];
      all_.push_back(&storage_[i]);
    }
  }
  const std::vector<LbHost*>& all() const { return all_; }
  LbHost* operator[](size_t i) { return &storage_[i]; }
  size_t size() const { return storage_.size(); }
  size_t IndexOf(const LbHost* host) const {
    for (size_t i = 0; i < storage_.size(); ++i) {
      if (&storage_[i] == host) return i;
    }
    FAIL("picked a host that is not in the cluster");
    return 0;
  }
  // All hosts but one.
  std::vector<LbHost*> AllBut(size_t skip) const {
    std::vector<LbHost*> hosts = all_;
    hosts.erase(hosts.begin() + static_cast<std::ptrdiff_t>(skip));
    return hosts;
  }

 private:
  std::deque<LbHost> storage_;
  std::vector<LbHost*> all_;
};

std::unique_ptr<LoadBalancer> Make(Policy policy, const std::vector<LbHost*>& hosts) {
  std::unique_ptr<LoadBalancer> balancer = MakeLoadBalancer(policy, kDecay);
  REQUIRE(balancer != nullptr);
  balancer->Rebuild(hosts);
  return balancer;
}

PickContext Context(std::mt19937_64& rng) {
  PickContext ctx;
  ctx.random = rng();
  ctx.now_ns = 100 * kSecond;
  return ctx;
}

// How many of `picks` picks went to each host (no request is ever in flight).
std::vector<int> CountPicks(LoadBalancer& balancer, const Hosts& hosts, int picks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> counts(hosts.size(), 0);
  for (int i = 0; i < picks; ++i) ++counts[hosts.IndexOf(balancer.Pick(Context(rng)))];
  return counts;
}

// The same, for a hash-based balancer fed a random request hash per pick.
std::vector<int> CountHashedPicks(LoadBalancer& balancer, const Hosts& hosts, int picks,
                                  uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> counts(hosts.size(), 0);
  for (int i = 0; i < picks; ++i) {
    PickContext ctx = Context(rng);
    ctx.hash = rng();
    ++counts[hosts.IndexOf(balancer.Pick(ctx))];
  }
  return counts;
}

// The same under load: every pick stays in flight (active_requests) until `in_flight` later
// requests have been sent, as with a steady stream of requests that take equally long anywhere.
std::vector<int> CountPicksUnderLoad(LoadBalancer& balancer, Hosts& hosts, int picks,
                                     size_t in_flight, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> counts(hosts.size(), 0);
  std::deque<LbHost*> pending;
  for (int i = 0; i < picks; ++i) {
    LbHost* host = balancer.Pick(Context(rng));
    ++counts[hosts.IndexOf(host)];
    ++host->active_requests;
    pending.push_back(host);
    if (pending.size() > in_flight) {
      --pending.front()->active_requests;
      pending.pop_front();
    }
  }
  for (LbHost* host : pending) --host->active_requests;
  return counts;
}

// Each host's share of the picks is within `tolerance` (relative) of its share of the weight.
void RequireWeightShares(const std::vector<int>& counts, const Hosts& hosts, double tolerance) {
  double total_weight = 0;
  double total_picks = 0;
  for (size_t i = 0; i < hosts.size(); ++i) {
    total_weight += hosts.all()[i]->weight;
    total_picks += counts[i];
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    const double expected = hosts.all()[i]->weight / total_weight;
    INFO("host " << i << ": " << counts[i] << " of " << total_picks << " picks, expected share "
                 << expected);
    CHECK(counts[i] / total_picks == Approx(expected).epsilon(tolerance));
  }
}

std::string PolicyName(Policy policy) {
  switch (policy) {
    case Policy::kRoundRobin:
      return "round robin";
    case Policy::kLeastRequest:
      return "least request";
    case Policy::kRingHash:
      return "ring hash";
    case Policy::kMaglev:
      return "maglev";
    case Policy::kPeakEwma:
      return "peak ewma";
    case Policy::kRandom:
      return "random";
  }
  return "?";
}

uint64_t Hash(const std::string& s) { return HashKey(s.data(), s.size()); }

// ---------------------------------------------------------------------------------------------

TEST_CASE("HashKey is xxHash64 with seed 0", "[lb]") {
  // Reference values from libxxhash 0.8.1 (XXH64(data, size, 0)); the lengths cover every path
  // of the algorithm (empty, tail bytes, 4- and 8-byte tail words, 32-byte stripes).
  CHECK(Hash("") == 0xef46db3751d8e999ULL);
  CHECK(Hash("a") == 0xd24ec4f1a98c6e5bULL);
  CHECK(Hash("abc") == 0x44bc2cf5ad770999ULL);
  CHECK(Hash("10.0.0.1:8080") == 0xcb972177068eb685ULL);
  CHECK(Hash("10.0.0.1:8080_0") == 0x23a29ae775dfd4a3ULL);
  CHECK(Hash("The quick brown fox jumps over the lazy dog") == 0x0b242d361fda71bcULL);
}

TEST_CASE("PeakEwma: default, peak, smoothing and idle decay", "[lb][ewma]") {
  PeakEwma ewma(30 * kMs);

  SECTION("the default estimate holds until the first sample, which replaces it") {
    CHECK(ewma.Estimate(0, kDecay) == 30 * kMs);
    CHECK(ewma.Estimate(1000 * kSecond, kDecay) == 30 * kMs);
    ewma.Observe(5 * kMs, 1 * kSecond, kDecay);
    CHECK(ewma.Estimate(1 * kSecond, kDecay) == Approx(5 * kMs));
  }

  SECTION("a sample above the estimate replaces it at once") {
    ewma.Observe(5 * kMs, 1 * kSecond, kDecay);
    ewma.Observe(100 * kMs, 1 * kSecond + 1 * kMs, kDecay);
    CHECK(ewma.Estimate(1 * kSecond + 1 * kMs, kDecay) == Approx(100 * kMs));
  }

  SECTION("a lower sample pulls it down by 1 - exp(-elapsed / decay)") {
    ewma.Observe(10 * kMs, 1 * kSecond, kDecay);
    ewma.Observe(2 * kMs, 1 * kSecond + kDecay, kDecay);
    const double w = std::exp(-1.0);
    CHECK(ewma.Estimate(1 * kSecond + kDecay, kDecay) == Approx(10 * kMs * w + 2 * kMs * (1 - w)));
    // Samples in quick succession barely move it: one outlier is not a trend.
    ewma.Observe(1 * kMs, 1 * kSecond + kDecay + 1 * kMs, kDecay);
    CHECK(ewma.Estimate(1 * kSecond + kDecay + 1 * kMs, kDecay) ==
          Approx(10 * kMs * w + 2 * kMs * (1 - w)).epsilon(0.001));
  }

  SECTION("after a peak, the estimate decays while idle and with lower samples") {
    ewma.Observe(1 * kMs, 1 * kSecond, kDecay);
    ewma.Observe(100 * kMs, 2 * kSecond, kDecay);
    CHECK(ewma.Estimate(2 * kSecond, kDecay) == Approx(100 * kMs));
    CHECK(ewma.Estimate(2 * kSecond + kDecay, kDecay) == Approx(100 * kMs * std::exp(-1.0)));
    CHECK(ewma.Estimate(2 * kSecond + 5 * kDecay, kDecay) < 1 * kMs);
    // Reading the estimate does not change it.
    CHECK(ewma.Estimate(2 * kSecond, kDecay) == Approx(100 * kMs));
    // One 1 ms sample a second for a minute: most of the peak is forgotten.
    for (int i = 1; i <= 60; ++i) ewma.Observe(1 * kMs, 2 * kSecond + i * kSecond, kDecay);
    CHECK(ewma.Estimate(62 * kSecond, kDecay) < 2 * kMs);
    CHECK(ewma.Estimate(62 * kSecond, kDecay) > 1 * kMs);
  }
}

TEST_CASE("MakeLoadBalancer makes every policy", "[lb]") {
  for (Policy policy : kAllPolicies) {
    INFO(PolicyName(policy));
    CHECK(MakeLoadBalancer(policy) != nullptr);
  }
}

// ---------------------------------------------------------------------------------------------
// Round robin

TEST_CASE("Round robin with equal weights goes round exactly", "[lb][rr]") {
  Hosts hosts({1, 1, 1, 1});
  auto balancer = Make(Policy::kRoundRobin, hosts.all());
  std::mt19937_64 rng(1);
  std::vector<int> counts(4, 0);
  for (int round = 0; round < 25'000; ++round) {
    std::vector<bool> seen(4, false);
    for (int i = 0; i < 4; ++i) {
      const size_t host = hosts.IndexOf(balancer->Pick(Context(rng)));
      CHECK_FALSE(seen[host]);
      seen[host] = true;
      ++counts[host];
    }
  }
  CHECK(counts == std::vector<int>{25'000, 25'000, 25'000, 25'000});
}

TEST_CASE("Weighted round robin is exact over every window of the total weight", "[lb][rr]") {
  Hosts hosts({1, 2, 3});
  auto balancer = Make(Policy::kRoundRobin, hosts.all());
  std::mt19937_64 rng(2);
  int same_in_a_row = 0;
  size_t last = 99;
  for (int window = 0; window < 100'000 / 6; ++window) {
    std::vector<int> counts(3, 0);
    for (int i = 0; i < 6; ++i) {
      const size_t host = hosts.IndexOf(balancer->Pick(Context(rng)));
      ++counts[host];
      same_in_a_row = host == last ? same_in_a_row + 1 : 1;
      last = host;
      // Smooth: the weight-3 host is interleaved, never sent three requests in a row.
      REQUIRE(same_in_a_row <= 2);
    }
    REQUIRE(counts == std::vector<int>{1, 2, 3});
  }

  SECTION("a rebuild with one host fewer keeps the proportions of the rest") {
    balancer->Rebuild(hosts.AllBut(0));
    const std::vector<int> counts = CountPicks(*balancer, hosts, 5'000, 3);
    CHECK(counts[0] == 0);
    CHECK(std::abs(counts[1] - 2'000) <= 2);
    CHECK(std::abs(counts[2] - 3'000) <= 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Least request, random, peak EWMA

TEST_CASE("Least request follows the weights when idle and under load", "[lb][least]") {
  Hosts hosts({1, 2, 3});
  auto balancer = Make(Policy::kLeastRequest, hosts.all());
  SECTION("idle") { RequireWeightShares(CountPicks(*balancer, hosts, 100'000, 4), hosts, 0.03); }
  SECTION("under load") {
    RequireWeightShares(CountPicksUnderLoad(*balancer, hosts, 100'000, 60, 5), hosts, 0.05);
  }
}

TEST_CASE("Least request avoids a host with many requests in flight", "[lb][least]") {
  Hosts hosts({1, 1, 1, 1});
  hosts[0]->active_requests = 20;
  hosts[1]->active_requests = 1;
  auto balancer = Make(Policy::kLeastRequest, hosts.all());
  const std::vector<int> counts = CountPicks(*balancer, hosts, 100'000, 6);
  // Host 0 loses every comparison; host 1 wins only against host 0 (when drawn with it).
  CHECK(counts[0] == 0);
  CHECK(counts[1] == Approx(100'000 / 6).epsilon(0.05));
  CHECK(counts[2] == Approx(100'000 * 5 / 12).epsilon(0.05));
  CHECK(counts[3] == Approx(100'000 * 5 / 12).epsilon(0.05));

  SECTION("per unit of weight") {
    // 6 in flight on weight 3 is as busy as 2 on weight 1: both beat 3 on weight 1.
    hosts[0]->weight = 3;
    hosts[0]->active_requests = 6;
    hosts[1]->active_requests = 2;
    hosts[2]->active_requests = 3;
    hosts[3]->active_requests = 3;
    balancer->Rebuild(hosts.all());
    const std::vector<int> busy = CountPicks(*balancer, hosts, 10'000, 7);
    CHECK(busy[0] > 0);
    CHECK(busy[1] > 0);
    CHECK(busy[2] + busy[3] < busy[0] + busy[1]);
  }
}

TEST_CASE("Random follows the weights", "[lb][random]") {
  Hosts hosts({1, 2, 3});
  auto balancer = Make(Policy::kRandom, hosts.all());
  RequireWeightShares(CountPicks(*balancer, hosts, 100'000, 8), hosts, 0.03);

  SECTION("equal weights") {
    Hosts equal({5, 5, 5, 5, 5});
    auto uniform = Make(Policy::kRandom, equal.all());
    RequireWeightShares(CountPicks(*uniform, equal, 100'000, 9), equal, 0.03);
  }
}

TEST_CASE("Peak EWMA with equal latencies follows the weights", "[lb][ewma]") {
  Hosts hosts({1, 2, 3});
  for (size_t i = 0; i < hosts.size(); ++i) hosts[i]->ewma.Observe(10 * kMs, 99 * kSecond, kDecay);
  auto balancer = Make(Policy::kPeakEwma, hosts.all());
  // Idle, the light host still gets its share (it is not always out-bid by heavier idle hosts).
  SECTION("idle") { RequireWeightShares(CountPicks(*balancer, hosts, 100'000, 10), hosts, 0.03); }
  // Under load the cost counts the new request too ((active + 1) / weight), which tilts the
  // shares towards heavy hosts by about one request each: small with 150 in flight.
  SECTION("under load") {
    RequireWeightShares(CountPicksUnderLoad(*balancer, hosts, 100'000, 150, 11), hosts, 0.05);
  }
}

TEST_CASE("Peak EWMA prefers the low-latency host", "[lb][ewma]") {
  SECTION("two hosts: the fast one takes everything while idle, nearly all under load") {
    Hosts hosts({1, 1});
    hosts[0]->ewma.Observe(1 * kMs, 99 * kSecond, kDecay);
    hosts[1]->ewma.Observe(50 * kMs, 99 * kSecond, kDecay);
    auto balancer = Make(Policy::kPeakEwma, hosts.all());
    CHECK(CountPicks(*balancer, hosts, 10'000, 11) == std::vector<int>{10'000, 0});
    // With 20 in flight the fast host costs at most 1 ms * 21, below the idle slow one's 50 ms.
    CHECK(CountPicksUnderLoad(*balancer, hosts, 10'000, 20, 12) == std::vector<int>{10'000, 0});
    // With 100 in flight the slow host gets a little: about 1 in 50.
    const std::vector<int> loaded = CountPicksUnderLoad(*balancer, hosts, 10'000, 100, 13);
    CHECK(loaded[1] > 0);
    CHECK(loaded[1] < 500);
  }

  SECTION("three hosts: the fast one wins every pair it is drawn into") {
    Hosts hosts({1, 1, 1});
    hosts[0]->ewma.Observe(1 * kMs, 99 * kSecond, kDecay);
    hosts[1]->ewma.Observe(50 * kMs, 99 * kSecond, kDecay);
    hosts[2]->ewma.Observe(50 * kMs, 99 * kSecond, kDecay);
    auto balancer = Make(Policy::kPeakEwma, hosts.all());
    const std::vector<int> counts = CountPicks(*balancer, hosts, 100'000, 14);
    CHECK(counts[0] == Approx(100'000 * 2 / 3).epsilon(0.03));
  }

  SECTION("one slow response moves traffic away at once; an idle estimate fades back") {
    Hosts hosts({1, 1});
    auto balancer = Make(Policy::kPeakEwma, hosts.all());
    hosts[0]->ewma.Observe(10 * kMs, 99 * kSecond, kDecay);
    hosts[1]->ewma.Observe(10 * kMs, 99 * kSecond, kDecay);
    hosts[1]->ewma.Observe(200 * kMs, 100 * kSecond, kDecay);
    std::mt19937_64 rng(15);
    PickContext ctx = Context(rng);
    ctx.now_ns = 100 * kSecond;
    CHECK(balancer->Pick(ctx) == hosts[0]);
    // Host 0 keeps answering in 10 ms; host 1 gets nothing and its 200 ms fades: after 4 decay
    // times it is 200 * e^-4 = 3.7 ms, cheaper than host 0, and is tried again.
    hosts[0]->ewma.Observe(10 * kMs, 100 * kSecond + 4 * kDecay, kDecay);
    ctx.now_ns = 100 * kSecond + 4 * kDecay;
    CHECK(balancer->Pick(ctx) == hosts[1]);
  }
}

// ---------------------------------------------------------------------------------------------
// Ring hash and Maglev

TEST_CASE("Consistent hashing: the same hash goes to the same host", "[lb][hash]") {
  for (Policy policy : {Policy::kRingHash, Policy::kMaglev}) {
    INFO(PolicyName(policy));
    Hosts hosts({1, 2, 3, 1, 1});
    auto balancer = Make(policy, hosts.all());
    // Another worker, or another proxy that lists the same hosts in another order.
    std::vector<LbHost*> reversed(hosts.all().rbegin(), hosts.all().rend());
    auto other = Make(policy, reversed);
    std::mt19937_64 rng(16);
    std::vector<bool> seen(hosts.size(), false);
    for (int i = 0; i < 10'000; ++i) {
      PickContext ctx = Context(rng);
      ctx.hash = rng();
      LbHost* host = balancer->Pick(ctx);
      seen[hosts.IndexOf(host)] = true;
      ctx.random = rng();
      REQUIRE(balancer->Pick(ctx) == host);
      REQUIRE(other->Pick(ctx) == host);
    }
    CHECK(seen == std::vector<bool>(hosts.size(), true));
  }
}

TEST_CASE("Consistent hashing follows the weights", "[lb][hash]") {
  for (Policy policy : {Policy::kRingHash, Policy::kMaglev}) {
    INFO(PolicyName(policy));
    Hosts hosts({1, 2, 3});
    auto balancer = Make(policy, hosts.all());
    RequireWeightShares(CountHashedPicks(*balancer, hosts, 100'000, 17), hosts, 0.05);
    Hosts ten({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    auto equal = Make(policy, ten.all());
    RequireWeightShares(CountHashedPicks(*equal, ten, 100'000, 18), ten, 0.1);
  }
}

TEST_CASE("Consistent hashing: requests without a hash are spread by weight", "[lb][hash]") {
  for (Policy policy : {Policy::kRingHash, Policy::kMaglev}) {
    INFO(PolicyName(policy));
    Hosts hosts({1, 2, 3});
    auto balancer = Make(policy, hosts.all());
    RequireWeightShares(CountPicks(*balancer, hosts, 100'000, 19), hosts, 0.03);
  }
}

TEST_CASE("Ring hash scales large weights down in proportion", "[lb][hash]") {
  // 1024 points per unit of weight would be 21 million here; the ring keeps about a million.
  std::vector<uint32_t> weights(20, 1'000);
  weights.push_back(500);
  Hosts hosts(weights);
  auto balancer = Make(Policy::kRingHash, hosts.all());
  RequireWeightShares(CountHashedPicks(*balancer, hosts, 100'000, 27), hosts, 0.1);
}

// When one host of ten leaves, which of 100,000 keys change host: {moved from the removed host,
// moved from the others}.
std::pair<int, int> RemapWhenOneLeaves(Policy policy) {
  Hosts hosts({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  constexpr size_t kRemoved = 3;
  auto before = Make(policy, hosts.all());
  auto after = Make(policy, hosts.AllBut(kRemoved));
  std::mt19937_64 rng(20);
  int moved_from_removed = 0;
  int moved_from_others = 0;
  for (int i = 0; i < 100'000; ++i) {
    PickContext ctx = Context(rng);
    ctx.hash = rng();
    LbHost* old_host = before->Pick(ctx);
    LbHost* new_host = after->Pick(ctx);
    REQUIRE(new_host != hosts[kRemoved]);
    if (old_host == hosts[kRemoved]) {
      ++moved_from_removed;
    } else if (new_host != old_host) {
      ++moved_from_others;
    }
  }
  return {moved_from_removed, moved_from_others};
}

TEST_CASE("Ring hash: when a host leaves, only its keys move", "[lb][hash]") {
  const auto [from_removed, from_others] = RemapWhenOneLeaves(Policy::kRingHash);
  CHECK(from_removed == Approx(10'000).epsilon(0.1));
  CHECK(from_others == 0);
}

TEST_CASE("Maglev: when a host leaves, little more than its keys move", "[lb][hash]") {
  const auto [from_removed, from_others] = RemapWhenOneLeaves(Policy::kMaglev);
  CHECK(from_removed == Approx(10'000).epsilon(0.05));
  // Maglev moves a little more than the minimum (here 0.2% of the keys), unlike the ring.
  CHECK(from_others <= 1'000);
}

TEST_CASE("Maglev: a heavier host gets a larger share of the table", "[lb][hash]") {
  Hosts hosts({1, 1, 1, 1, 1, 1, 1, 1, 1, 10});
  auto balancer = Make(Policy::kMaglev, hosts.all());
  RequireWeightShares(CountHashedPicks(*balancer, hosts, 100'000, 21), hosts, 0.1);
}

// ---------------------------------------------------------------------------------------------
// Every policy: retries, tiny and changing host sets

TEST_CASE("Every policy avoids the host to avoid when there is another", "[lb][avoid]") {
  for (Policy policy : kAllPolicies) {
    const std::vector<std::vector<uint32_t>> clusters = {
        {1, 2, 3}, {1, 1}, {5, 1}, {1, 1, 1, 1, 1}};
    for (const std::vector<uint32_t>& weights : clusters) {
      INFO(PolicyName(policy) << ", " << weights.size() << " hosts");
      Hosts hosts(weights);
      auto balancer = Make(policy, hosts.all());
      std::mt19937_64 rng(22);
      std::vector<int> counts(hosts.size(), 0);
      for (int i = 0; i < 3'000; ++i) {
        PickContext ctx = Context(rng);
        if (i % 2 == 0) ctx.hash = rng();
        ctx.avoid = hosts[rng() % hosts.size()];  // out of step with any rotation
        LbHost* host = balancer->Pick(ctx);
        REQUIRE(host != nullptr);
        REQUIRE(host != ctx.avoid);
        ++counts[hosts.IndexOf(host)];
      }
      // Avoiding one host does not mean never picking the others.
      for (int count : counts) CHECK(count > 0);
    }
  }
}

TEST_CASE("Consistent hashing sends a retry to the next host, the same each time", "[lb][avoid]") {
  for (Policy policy : {Policy::kRingHash, Policy::kMaglev}) {
    INFO(PolicyName(policy));
    Hosts hosts({1, 1, 1, 1, 1});
    auto balancer = Make(policy, hosts.all());
    std::mt19937_64 rng(23);
    for (int i = 0; i < 1'000; ++i) {
      PickContext ctx = Context(rng);
      ctx.hash = rng();
      ctx.avoid = balancer->Pick(ctx);
      LbHost* retry = balancer->Pick(ctx);
      CHECK(retry != ctx.avoid);
      ctx.random = rng();
      CHECK(balancer->Pick(ctx) == retry);
      if (policy == Policy::kRingHash) {
        // Where the key goes if the first host leaves.
        PickContext without = ctx;
        without.avoid = nullptr;
        auto smaller = Make(policy, hosts.AllBut(hosts.IndexOf(ctx.avoid)));
        CHECK(smaller->Pick(without) == retry);
      }
    }
  }
}

TEST_CASE("Every policy handles no host and a single host", "[lb]") {
  for (Policy policy : kAllPolicies) {
    INFO(PolicyName(policy));
    Hosts hosts({3});
    auto balancer = MakeLoadBalancer(policy);
    std::mt19937_64 rng(24);
    PickContext ctx = Context(rng);
    PickContext hashed = Context(rng);
    hashed.hash = 12345;

    balancer->Rebuild({});
    CHECK(balancer->Pick(ctx) == nullptr);
    CHECK(balancer->Pick(hashed) == nullptr);

    balancer->Rebuild(hosts.all());
    for (int i = 0; i < 10; ++i) {
      CHECK(balancer->Pick(Context(rng)) == hosts[0]);
      hashed.hash = rng();
      CHECK(balancer->Pick(hashed) == hosts[0]);
    }
    // The only host is picked even when it is the one to avoid.
    ctx.avoid = hosts[0];
    hashed.avoid = hosts[0];
    CHECK(balancer->Pick(ctx) == hosts[0]);
    CHECK(balancer->Pick(hashed) == hosts[0]);

    balancer->Rebuild({});
    CHECK(balancer->Pick(ctx) == nullptr);
    CHECK(balancer->Pick(hashed) == nullptr);
  }
}

TEST_CASE("Every policy picks only hosts of the last Rebuild", "[lb]") {
  for (Policy policy : kAllPolicies) {
    INFO(PolicyName(policy));
    Hosts hosts({1, 2, 3, 4, 5});
    auto balancer = Make(policy, hosts.all());
    CountPicks(*balancer, hosts, 1'000, 25);
    balancer->Rebuild({hosts[1], hosts[3]});
    std::mt19937_64 rng(26);
    std::vector<int> counts(hosts.size(), 0);
    for (int i = 0; i < 2'000; ++i) {
      PickContext ctx = Context(rng);
      if (i % 2 == 0) ctx.hash = rng();
      ++counts[hosts.IndexOf(balancer->Pick(ctx))];
    }
    CHECK(counts[0] + counts[2] + counts[4] == 0);
    CHECK(counts[1] > 0);
    CHECK(counts[3] > counts[1]);  // weight 4 against 2
  }
}

}  // namespace
}  // namespace outrigger::proxy::lb
