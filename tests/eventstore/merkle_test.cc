#include "eventstore/merkle.h"

#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "crypto/crypto.h"

using namespace via;
using namespace via::eventstore::merkle;

namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kMaxSize = 70;

Hash256 HashFromHex(const std::string& hex) {
  Hash256 out{};
  REQUIRE(hex.size() == 64);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

// Leaf i of the test trees: distinct bytes per index.
Hash256 TestLeaf(std::uint64_t i) { return LeafHash(AsBytes("leaf " + std::to_string(i))); }

std::vector<Hash256> TestLeaves(std::uint64_t n) {
  std::vector<Hash256> leaves;
  for (std::uint64_t i = 0; i < n; ++i) leaves.push_back(TestLeaf(i));
  return leaves;
}

MemoryTree TreeOf(const std::vector<Hash256>& leaves) {
  MemoryTree tree;
  for (const Hash256& leaf : leaves) tree.Append(leaf);
  return tree;
}

// The RFC 6962 section 2.1 definitions, written as directly as possible over
// leaf hashes, as an oracle independent of the code under test.
std::uint64_t Split(std::uint64_t n) { return std::bit_floor(n - 1); }

Hash256 ReferenceMth(const std::vector<Hash256>& d, std::uint64_t begin, std::uint64_t end) {
  if (end - begin == 1) return d[begin];
  std::uint64_t k = Split(end - begin);
  return NodeHash(ReferenceMth(d, begin, begin + k), ReferenceMth(d, begin + k, end));
}

std::vector<Hash256> ReferencePath(const std::vector<Hash256>& d, std::uint64_t m,
                                   std::uint64_t begin, std::uint64_t end) {
  if (end - begin == 1) return {};
  std::uint64_t k = Split(end - begin);
  std::vector<Hash256> path;
  if (m < k) {
    path = ReferencePath(d, m, begin, begin + k);
    path.push_back(ReferenceMth(d, begin + k, end));
  } else {
    path = ReferencePath(d, m - k, begin + k, end);
    path.push_back(ReferenceMth(d, begin, begin + k));
  }
  return path;
}

std::vector<Hash256> ReferenceSubproof(const std::vector<Hash256>& d, std::uint64_t m,
                                       std::uint64_t begin, std::uint64_t end, bool b) {
  std::uint64_t n = end - begin;
  if (m == n) {
    if (b) return {};
    return {ReferenceMth(d, begin, end)};
  }
  std::uint64_t k = Split(n);
  std::vector<Hash256> proof;
  if (m <= k) {
    proof = ReferenceSubproof(d, m, begin, begin + k, b);
    proof.push_back(ReferenceMth(d, begin + k, end));
  } else {
    proof = ReferenceSubproof(d, m - k, begin + k, end, false);
    proof.push_back(ReferenceMth(d, begin, begin + k));
  }
  return proof;
}

// A NodeSource that records every read, to check what the builders touch.
class CountingSource : public NodeSource {
 public:
  explicit CountingSource(NodeSource& inner) : inner_(inner) {}
  Result<Hash256> Node(int level, std::uint64_t index) override {
    reads.emplace_back(level, index);
    return inner_.Node(level, index);
  }
  std::vector<std::pair<int, std::uint64_t>> reads;

 private:
  NodeSource& inner_;
};

// --- The shared RFC 9162 vectors (C2SP-style probes, base64 in JSON). ---

// A field that is null or missing reads as empty bytes.
Bytes DecodeField(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return {};
  std::optional<Bytes> bytes = crypto::Base64Decode(j.at(key).get<std::string>());
  REQUIRE(bytes.has_value());
  return *bytes;
}

std::vector<Bytes> DecodeList(const nlohmann::json& j, const char* key) {
  std::vector<Bytes> out;
  if (!j.contains(key) || j.at(key).is_null()) return out;
  for (const auto& item : j.at(key)) {
    if (item.is_null()) {
      out.emplace_back();
      continue;
    }
    std::optional<Bytes> bytes = crypto::Base64Decode(item.get<std::string>());
    REQUIRE(bytes.has_value());
    out.push_back(*bytes);
  }
  return out;
}

// A leaf hash or proof node is SHA-256 input, so a caller decodes it into a
// Hash256 and must refuse any other length there: nullopt means "refused".
std::optional<Hash256> DecodeHash(const Bytes& bytes) {
  if (bytes.size() != Hash256().size()) return std::nullopt;
  Hash256 h{};
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

std::optional<std::vector<Hash256>> DecodeProof(const std::vector<Bytes>& items) {
  std::vector<Hash256> proof;
  for (const Bytes& item : items) {
    std::optional<Hash256> h = DecodeHash(item);
    if (!h) return std::nullopt;
    proof.push_back(*h);
  }
  return proof;
}

// Roots are only ever compared, and some vectors use short placeholders
// ("don't care 1", "WrongRoot", "") to test exactly that. A placeholder
// stands in as a distinct 32-byte value (equal placeholders stay equal) that
// no tree in the vectors has as its root.
Hash256 DecodeRoot(const Bytes& bytes) {
  if (std::optional<Hash256> h = DecodeHash(bytes)) return *h;
  crypto::Sha256 hasher;
  return hasher.Update("via merkle_test placeholder root:").Update(ByteView(bytes)).Final();
}

std::vector<fs::path> VectorFiles(const std::string& kind) {
  fs::path dir = fs::path(VIA_SHARED_DIR) / "testdata" / "merkle" / kind;
  REQUIRE(fs::is_directory(dir));
  std::vector<fs::path> files;
  std::map<fs::path, int> per_dir;  // each directory and the JSON files below it
  per_dir[dir] = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_directory()) per_dir.emplace(entry.path(), 0);
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    files.push_back(entry.path());
    for (fs::path p = entry.path().parent_path(); p.string().size() >= dir.string().size();
         p = p.parent_path()) {
      ++per_dir[p];
      if (p == dir) break;
    }
  }
  for (const auto& [path, count] : per_dir) {
    INFO("vector directory " << path.string());
    CHECK(count > 0);
  }
  REQUIRE(!files.empty());
  std::sort(files.begin(), files.end());
  return files;
}

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("merkle empty tree has the RFC 6962 empty root", "[eventstore]") {
  Hash256 want = HashFromHex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(EmptyRoot() == want);
  MemoryTree tree;
  auto root = Root(tree, 0);
  REQUIRE(root.ok());
  CHECK(*root == want);
  CHECK(Frontier().Root() == want);
}

TEST_CASE("merkle roots of the RFC 6962 test leaves match the published vectors", "[eventstore]") {
  const std::vector<std::string> leaf_hex = {"",
                                             "00",
                                             "10",
                                             "2021",
                                             "3031",
                                             "40414243",
                                             "5051525354555657",
                                             "606162636465666768696a6b6c6d6e6f"};
  const std::vector<std::string> root_hex = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  MemoryTree tree;
  Frontier frontier;
  for (std::size_t i = 0; i < leaf_hex.size(); ++i) {
    Bytes leaf;
    for (std::size_t j = 0; j < leaf_hex[i].size(); j += 2) {
      leaf.push_back(static_cast<std::uint8_t>(std::stoi(leaf_hex[i].substr(j, 2), nullptr, 16)));
    }
    tree.Append(LeafHash(leaf));
    frontier.Append(LeafHash(leaf));
    auto root = Root(tree, i + 1);
    REQUIRE(root.ok());
    INFO("size " << i + 1);
    CHECK(HexEncode(*root) == root_hex[i]);
    CHECK(HexEncode(frontier.Root()) == root_hex[i]);
  }
}

TEST_CASE("merkle inclusion verifier agrees with every shared vector", "[eventstore]") {
  int accepted = 0, rejected_by_verifier = 0, refused_at_decode = 0;
  for (const fs::path& file : VectorFiles("inclusion")) {
    INFO("vector " << file.string());
    nlohmann::json j = ReadJson(file);
    bool want_err = j.value("wantErr", false);
    std::optional<Hash256> leaf = DecodeHash(DecodeField(j, "leafHash"));
    std::optional<std::vector<Hash256>> proof = DecodeProof(DecodeList(j, "proof"));
    if (!leaf || !proof) {
      CHECK(want_err);
      ++refused_at_decode;
      continue;
    }
    Status status =
        VerifyInclusion(j.at("leafIdx").get<std::uint64_t>(), j.at("treeSize").get<std::uint64_t>(),
                        *leaf, *proof, DecodeRoot(DecodeField(j, "root")));
    INFO("status " << status.ToString());
    CHECK(status.ok() == !want_err);
    if (!status.ok()) {
      CHECK((status.code() == StatusCode::kDataLoss ||
             status.code() == StatusCode::kInvalidArgument));
    }
    ++(status.ok() ? accepted : rejected_by_verifier);
  }
  INFO("accepted " << accepted << ", rejected by verifier " << rejected_by_verifier
                   << ", refused at decode " << refused_at_decode);
  CHECK(accepted > 0);
  CHECK(rejected_by_verifier > 0);
}

TEST_CASE("merkle consistency verifier agrees with every shared vector", "[eventstore]") {
  int accepted = 0, rejected_by_verifier = 0, refused_at_decode = 0;
  for (const fs::path& file : VectorFiles("consistency")) {
    INFO("vector " << file.string());
    nlohmann::json j = ReadJson(file);
    bool want_err = j.value("wantErr", false);
    std::optional<std::vector<Hash256>> proof = DecodeProof(DecodeList(j, "proof"));
    if (!proof) {
      CHECK(want_err);
      ++refused_at_decode;
      continue;
    }
    Status status = VerifyConsistency(
        j.at("size1").get<std::uint64_t>(), j.at("size2").get<std::uint64_t>(),
        DecodeRoot(DecodeField(j, "root1")), DecodeRoot(DecodeField(j, "root2")), *proof);
    INFO("status " << status.ToString());
    CHECK(status.ok() == !want_err);
    if (!status.ok()) {
      CHECK((status.code() == StatusCode::kDataLoss ||
             status.code() == StatusCode::kInvalidArgument));
    }
    ++(status.ok() ? accepted : rejected_by_verifier);
  }
  INFO("accepted " << accepted << ", rejected by verifier " << rejected_by_verifier
                   << ", refused at decode " << refused_at_decode);
  CHECK(accepted > 0);
  CHECK(rejected_by_verifier > 0);
}

TEST_CASE("merkle root of a memory tree matches the RFC 6962 definition at sizes 1 to 70",
          "[eventstore]") {
  std::vector<Hash256> leaves = TestLeaves(kMaxSize);
  MemoryTree tree = TreeOf(leaves);
  for (std::uint64_t n = 1; n <= kMaxSize; ++n) {
    INFO("size " << n);
    auto root = Root(tree, n);
    REQUIRE(root.ok());
    CHECK(*root == ReferenceMth(leaves, 0, n));
  }
}

TEST_CASE("merkle root reads one stored node per set bit of the size", "[eventstore]") {
  MemoryTree tree = TreeOf(TestLeaves(kMaxSize));
  for (std::uint64_t n = 1; n <= kMaxSize; ++n) {
    CountingSource source(tree);
    REQUIRE(Root(source, n).ok());
    INFO("size " << n);
    CHECK(source.reads.size() == static_cast<std::size_t>(std::popcount(n)));
  }
}

TEST_CASE("merkle subtree hash folds aligned ranges and rejects the others", "[eventstore]") {
  std::vector<Hash256> leaves = TestLeaves(kMaxSize);
  MemoryTree tree = TreeOf(leaves);
  for (std::uint64_t begin = 0; begin < kMaxSize; ++begin) {
    for (std::uint64_t end = begin + 1; end <= kMaxSize; ++end) {
      INFO("range [" << begin << ", " << end << ")");
      auto hash = SubtreeHash(tree, begin, end);
      if (begin % std::bit_floor(end - begin) == 0) {
        REQUIRE(hash.ok());
        CHECK(*hash == ReferenceMth(leaves, begin, end));
      } else {
        REQUIRE_FALSE(hash.ok());
        CHECK(hash.status().code() == StatusCode::kInvalidArgument);
      }
    }
  }
  CHECK(SubtreeHash(tree, 3, 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(SubtreeHash(tree, 4, 3).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("merkle inclusion proofs from a memory tree verify for every index of sizes 1 to 70",
          "[eventstore]") {
  std::vector<Hash256> leaves = TestLeaves(kMaxSize);
  MemoryTree tree = TreeOf(leaves);
  for (std::uint64_t n = 1; n <= kMaxSize; ++n) {
    Hash256 root = ReferenceMth(leaves, 0, n);
    for (std::uint64_t i = 0; i < n; ++i) {
      INFO("index " << i << " size " << n);
      CountingSource source(tree);
      auto proof = InclusionProof(source, i, n);
      REQUIRE(proof.ok());
      CHECK(*proof == ReferencePath(leaves, i, 0, n));
      CHECK(source.reads.size() <= 2 * static_cast<std::size_t>(std::bit_width(n)));
      CHECK(VerifyInclusion(i, n, leaves[i], *proof, root).ok());
    }
  }
}

TEST_CASE("merkle inclusion verifier rejects a tampered proof, leaf, index or root",
          "[eventstore]") {
  std::vector<Hash256> leaves = TestLeaves(kMaxSize);
  MemoryTree tree = TreeOf(leaves);
  for (std::uint64_t n : {2, 3, 7, 8, 13, 64, 70}) {
    Hash256 root = ReferenceMth(leaves, 0, n);
    for (std::uint64_t i = 0; i < n; ++i) {
      INFO("index " << i << " size " << n);
      auto proof = InclusionProof(tree, i, n);
      REQUIRE(proof.ok());
      for (std::size_t p = 0; p < proof->size(); ++p) {
        std::vector<Hash256> bad = *proof;
        bad[p][31] ^= 1;
        CHECK(VerifyInclusion(i, n, leaves[i], bad, root).reason() == "inclusion_proof_invalid");
      }
      Hash256 bad_root = root;
      bad_root[0] ^= 0x80;
      CHECK_FALSE(VerifyInclusion(i, n, leaves[i], *proof, bad_root).ok());
      CHECK_FALSE(VerifyInclusion(i, n, leaves[(i + 1) % n], *proof, root).ok());
      CHECK_FALSE(VerifyInclusion((i + 1) % n, n, leaves[i], *proof, root).ok());
      std::vector<Hash256> longer = *proof;
      longer.push_back(root);
      CHECK_FALSE(VerifyInclusion(i, n, leaves[i], longer, root).ok());
      if (!proof->empty()) {
        std::vector<Hash256> shorter(proof->begin(), proof->end() - 1);
        CHECK_FALSE(VerifyInclusion(i, n, leaves[i], shorter, root).ok());
      }
    }
  }
}

TEST_CASE("merkle consistency proofs from a memory tree verify for every old size up to 70",
          "[eventstore]") {
  std::vector<Hash256> leaves = TestLeaves(kMaxSize);
  MemoryTree tree = TreeOf(leaves);
  for (std::uint64_t n = 1; n <= kMaxSize; ++n) {
    Hash256 root2 = ReferenceMth(leaves, 0, n);
    for (std::uint64_t m = 1; m <= n; ++m) {
      INFO("old size " << m << " size " << n);
      Hash256 root1 = ReferenceMth(leaves, 0, m);
      CountingSource source(tree);
      auto proof = ConsistencyProof(source, m, n);
      REQUIRE(proof.ok());
      CHECK(*proof == ReferenceSubproof(leaves, m, 0, n, true));
      CHECK(source.reads.size() <= 3 * static_cast<std::size_t>(std::bit_width(n)));
      CHECK(VerifyConsistency(m, n, root1, root2, *proof).ok());
    }
  }
}

TEST_CASE("merkle consistency verifier rejects a tampered proof or root", "[eventstore]") {
  std::vector<Hash256> leaves = TestLeaves(kMaxSize);
  MemoryTree tree = TreeOf(leaves);
  for (std::uint64_t n : {2, 3, 7, 8, 13, 64, 70}) {
    Hash256 root2 = ReferenceMth(leaves, 0, n);
    for (std::uint64_t m = 1; m < n; ++m) {
      INFO("old size " << m << " size " << n);
      Hash256 root1 = ReferenceMth(leaves, 0, m);
      auto proof = ConsistencyProof(tree, m, n);
      REQUIRE(proof.ok());
      for (std::size_t p = 0; p < proof->size(); ++p) {
        std::vector<Hash256> bad = *proof;
        bad[p][0] ^= 1;
        CHECK(VerifyConsistency(m, n, root1, root2, bad).reason() == "consistency_proof_invalid");
      }
      CHECK_FALSE(VerifyConsistency(m, n, root2, root1, *proof).ok());
      CHECK_FALSE(VerifyConsistency(m, n, root1, root1, *proof).ok());
      std::vector<Hash256> longer = *proof;
      longer.push_back(root2);
      CHECK_FALSE(VerifyConsistency(m, n, root1, root2, longer).ok());
      std::vector<Hash256> shorter(proof->begin(), proof->end() - 1);
      CHECK_FALSE(VerifyConsistency(m, n, root1, root2, shorter).ok());
      CHECK_FALSE(VerifyConsistency(m, n, root1, root2, {}).ok());
    }
  }
}

TEST_CASE("merkle consistency of equal sizes needs an empty proof and equal roots",
          "[eventstore]") {
  Hash256 a = TestLeaf(1);
  Hash256 b = TestLeaf(2);
  CHECK(VerifyConsistency(5, 5, a, a, {}).ok());
  CHECK(VerifyConsistency(5, 5, a, b, {}).reason() == "consistency_proof_invalid");
  CHECK(VerifyConsistency(5, 5, a, a, {a}).reason() == "consistency_proof_invalid");
}

TEST_CASE("merkle verifiers refuse an empty old tree and impossible indices", "[eventstore]") {
  Hash256 empty = EmptyRoot();
  Hash256 leaf = TestLeaf(0);
  CHECK(VerifyInclusion(0, 0, leaf, {}, empty).code() == StatusCode::kInvalidArgument);
  CHECK(VerifyInclusion(3, 3, leaf, {}, leaf).code() == StatusCode::kInvalidArgument);
  CHECK(VerifyConsistency(0, 0, empty, empty, {}).code() == StatusCode::kInvalidArgument);
  CHECK(VerifyConsistency(0, 1, empty, leaf, {}).code() == StatusCode::kInvalidArgument);
  CHECK(VerifyConsistency(2, 1, leaf, leaf, {}).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("merkle verifiers stay total on huge sizes and long proofs", "[eventstore]") {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  Hash256 h = TestLeaf(0);
  std::vector<Hash256> long_proof(200, h);
  for (std::size_t len : {0, 1, 63, 64, 65, 200}) {
    std::vector<Hash256> proof(long_proof.begin(), long_proof.begin() + len);
    INFO("proof length " << len);
    CHECK_FALSE(VerifyInclusion(kMax - 1, kMax, h, proof, h).ok());
    CHECK_FALSE(VerifyInclusion(0, kMax, h, proof, h).ok());
    CHECK_FALSE(VerifyInclusion(kMax / 2, kMax / 2 + 1, h, proof, h).ok());
    CHECK_FALSE(VerifyConsistency(1, kMax, h, h, proof).ok());
    CHECK_FALSE(VerifyConsistency(kMax - 1, kMax, h, h, proof).ok());
    CHECK_FALSE(VerifyConsistency(std::uint64_t{1} << 63, kMax, h, h, proof).ok());
  }
  CHECK(VerifyInclusion(kMax, kMax, h, {}, h).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("merkle proof builders refuse out of range arguments", "[eventstore]") {
  MemoryTree tree = TreeOf(TestLeaves(8));
  CHECK(InclusionProof(tree, 8, 8).status().code() == StatusCode::kInvalidArgument);
  CHECK(InclusionProof(tree, 0, 0).status().code() == StatusCode::kInvalidArgument);
  CHECK(ConsistencyProof(tree, 0, 8).status().code() == StatusCode::kInvalidArgument);
  CHECK(ConsistencyProof(tree, 9, 8).status().code() == StatusCode::kInvalidArgument);
  auto same = ConsistencyProof(tree, 8, 8);
  REQUIRE(same.ok());
  CHECK(same->empty());
}

TEST_CASE("merkle builders report not found beyond the stored tree", "[eventstore]") {
  MemoryTree tree = TreeOf(TestLeaves(5));
  CHECK(Root(tree, 6).status().code() == StatusCode::kNotFound);
  CHECK(InclusionProof(tree, 0, 6).status().code() == StatusCode::kNotFound);
  CHECK(ConsistencyProof(tree, 2, 6).status().code() == StatusCode::kNotFound);
  CHECK(Frontier::Load(tree, 6).status().code() == StatusCode::kNotFound);
  CHECK(tree.Node(-1, 0).status().code() == StatusCode::kNotFound);
  CHECK(tree.Node(64, 0).status().code() == StatusCode::kNotFound);
}

TEST_CASE("merkle frontier root equals the memory tree root at every size", "[eventstore]") {
  MemoryTree tree;
  Frontier frontier;
  for (std::uint64_t n = 1; n <= kMaxSize; ++n) {
    tree.Append(TestLeaf(n - 1));
    frontier.Append(TestLeaf(n - 1));
    INFO("size " << n);
    CHECK(frontier.size() == n);
    auto root = Root(tree, n);
    REQUIRE(root.ok());
    CHECK(frontier.Root() == *root);
  }
}

TEST_CASE("merkle frontier loaded from stored nodes equals the appended frontier", "[eventstore]") {
  MemoryTree tree = TreeOf(TestLeaves(kMaxSize));
  Frontier appended;
  for (std::uint64_t n = 0; n <= kMaxSize; ++n) {
    INFO("size " << n);
    CountingSource source(tree);
    auto loaded = Frontier::Load(source, n);
    REQUIRE(loaded.ok());
    CHECK(source.reads.size() == static_cast<std::size_t>(std::popcount(n)));
    CHECK(*loaded == appended);
    CHECK(loaded->Root() == appended.Root());
    if (n < kMaxSize) appended.Append(TestLeaf(n));
  }
}

TEST_CASE("merkle frontier sink receives exactly the nodes a memory tree holds", "[eventstore]") {
  MemoryTree tree = TreeOf(TestLeaves(kMaxSize));
  std::vector<std::tuple<int, std::uint64_t, Hash256>> sunk;
  Frontier frontier;
  for (std::uint64_t i = 0; i < kMaxSize; ++i) {
    std::size_t before = sunk.size();
    frontier.Append(TestLeaf(i), [&](int level, std::uint64_t index, const Hash256& hash) {
      sunk.emplace_back(level, index, hash);
    });
    // One leaf plus one parent per trailing set bit of the old size.
    INFO("append at size " << i);
    CHECK(sunk.size() - before == 1 + static_cast<std::size_t>(std::countr_one(i)));
  }
  std::set<std::pair<int, std::uint64_t>> seen;
  for (const auto& [level, index, hash] : sunk) {
    INFO("level " << level << " index " << index);
    CHECK(seen.insert({level, index}).second);
    auto stored = tree.Node(level, index);
    REQUIRE(stored.ok());
    CHECK(hash == *stored);
  }
  // Every perfect subtree of the 70-leaf tree was sunk: 70 >> l nodes at level l.
  std::size_t total = 0;
  for (int level = 0; (kMaxSize >> level) != 0; ++level) {
    total += kMaxSize >> level;
    CHECK(tree.Node(level, kMaxSize >> level).status().code() == StatusCode::kNotFound);
  }
  CHECK(seen.size() == total);
}

TEST_CASE("merkle frontier appends without a sink", "[eventstore]") {
  Frontier with_sink;
  Frontier without_sink;
  for (std::uint64_t i = 0; i < 9; ++i) {
    with_sink.Append(TestLeaf(i), [](int, std::uint64_t, const Hash256&) {});
    without_sink.Append(TestLeaf(i));
  }
  CHECK(with_sink == without_sink);
}

TEST_CASE("the hashes the tree uses equal SHA-256 of the concatenated bytes", "[eventstore]") {
  // crypto::Sha256Concat (what leaf and node hashes use) against crypto::Sha256
  // over one contiguous buffer, at every length around the 64-byte block and
  // its padding boundaries, split at every point.
  Bytes data(200);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 37 + 11);
  for (std::size_t n = 0; n <= data.size(); ++n) {
    ByteView all(data.data(), n);
    const Hash256 expected = crypto::Sha256::Digest(all);
    for (std::size_t cut = 0; cut <= n; cut += (n < 70 ? 1 : 17)) {
      INFO("length " << n << " cut " << cut);
      CHECK(crypto::Sha256Concat({all.first(cut), all.subspan(cut)}) == expected);
      CHECK(crypto::Sha256Concat({all.first(cut), ByteView(), all.subspan(cut)}) == expected);
    }
  }
  CHECK(crypto::Sha256Concat({}) == EmptyRoot());
  const std::uint8_t leaf_prefix[1] = {0x00};
  const std::uint8_t node_prefix[1] = {0x01};
  Bytes leaf = {'a', 'b', 'c'};
  CHECK(LeafHash(leaf) == crypto::Sha256::Digest(Bytes{0x00, 'a', 'b', 'c'}));
  CHECK(LeafHash(leaf) == crypto::Sha256Concat({ByteView(leaf_prefix), leaf}));
  Hash256 l = LeafHash(leaf);
  Hash256 r = LeafHash(Bytes{'d'});
  Bytes joined = {0x01};
  joined.insert(joined.end(), l.begin(), l.end());
  joined.insert(joined.end(), r.begin(), r.end());
  CHECK(NodeHash(l, r) == crypto::Sha256::Digest(joined));
  CHECK(NodeHash(l, r) == crypto::Sha256Concat({ByteView(node_prefix), l, r}));
}
