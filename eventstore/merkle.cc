#include "eventstore/merkle.h"

// Invariants:
//   - Every NodeSource read names a perfect subtree that lies inside the range
//     being folded: (level, index) covers leaves [index << level, (index + 1) << level).
//   - A range [begin, end) is folded from stored nodes only when begin is a
//     multiple of bit_floor(end - begin); every range that RFC 6962's MTH, PATH
//     and PROOF recurse into has this shape, so each costs popcount(end - begin)
//     node reads.
//   - Proofs are collected top-down and returned bottom-up (leaf side first),
//     the order RFC 6962 section 2.1.1 and 2.1.2 produce.
//   - The verifiers do only shifts and comparisons on the sizes, so they are
//     total on any input, and they reject any proof that is not exactly as
//     long as the sizes require.

#include <algorithm>
#include <bit>
#include <string>
#include <utility>

#include "crypto/crypto.h"

namespace via::eventstore::merkle {
namespace {

constexpr std::uint8_t kLeafPrefix[1] = {0x00};
constexpr std::uint8_t kNodePrefix[1] = {0x01};

Hash256 HashChildren(const Hash256& left, const Hash256& right) {
  return crypto::Sha256Concat({ByteView(kNodePrefix), left, right});
}

// The perfect subtrees that [begin, end) folds from, left to right, as
// (level, index). Requires begin % bit_floor(end - begin) == 0.
std::vector<std::pair<int, std::uint64_t>> PerfectPieces(std::uint64_t begin, std::uint64_t end) {
  std::vector<std::pair<int, std::uint64_t>> pieces;
  while (begin < end) {
    std::uint64_t width = std::bit_floor(end - begin);
    int level = std::countr_zero(width);
    pieces.emplace_back(level, begin >> level);
    begin += width;
  }
  return pieces;
}

// MTH(D[begin:end]) from the nodes of PerfectPieces: the rightmost pieces are
// the deepest, so the hash folds from the right.
Result<Hash256> FoldRange(NodeSource& nodes, std::uint64_t begin, std::uint64_t end) {
  auto pieces = PerfectPieces(begin, end);
  Hash256 acc{};
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
    VIA_ASSIGN_OR_RETURN(Hash256 node, nodes.Node(it->first, it->second));
    acc = it == pieces.rbegin() ? node : HashChildren(node, acc);
  }
  return acc;
}

// The largest power of two strictly below n, for n >= 2 (RFC 6962's split k).
std::uint64_t SplitPoint(std::uint64_t n) { return std::bit_floor(n - 1); }

Status InclusionInvalid(const std::string& why) {
  return DataLoss("inclusion_proof_invalid", "inclusion proof does not verify: " + why);
}

Status ConsistencyInvalid(const std::string& why) {
  return DataLoss("consistency_proof_invalid", "consistency proof does not verify: " + why);
}

}  // namespace

Hash256 LeafHash(ByteView leaf) { return crypto::Sha256Concat({ByteView(kLeafPrefix), leaf}); }

// The hasher parameters are kept for the API: crypto::Sha256Concat needs no state.
Hash256 LeafHash(crypto::Sha256& /*hasher*/, ByteView leaf) { return LeafHash(leaf); }

Hash256 NodeHash(const Hash256& left, const Hash256& right) { return HashChildren(left, right); }

Hash256 EmptyRoot() { return crypto::Sha256::Digest(ByteView()); }

Result<Hash256> SubtreeHash(NodeSource& nodes, std::uint64_t begin, std::uint64_t end) {
  if (begin >= end) {
    return InvalidArgument("subtree_invalid", "subtree [" + std::to_string(begin) + ", " +
                                                  std::to_string(end) + ") is empty");
  }
  if (begin % std::bit_floor(end - begin) != 0) {
    return InvalidArgument("subtree_invalid",
                           "subtree [" + std::to_string(begin) + ", " + std::to_string(end) +
                               ") does not start on a multiple of its largest perfect part");
  }
  return FoldRange(nodes, begin, end);
}

Result<Hash256> Root(NodeSource& nodes, std::uint64_t size) {
  if (size == 0) return EmptyRoot();
  return FoldRange(nodes, 0, size);
}

Result<std::vector<Hash256>> InclusionProof(NodeSource& nodes, std::uint64_t index,
                                            std::uint64_t size) {
  if (index >= size) {
    return InvalidArgument("proof_index_out_of_range",
                           "inclusion proof: leaf index " + std::to_string(index) +
                               " is not below tree size " + std::to_string(size));
  }
  // PATH(m, D[begin:end]) descends into the half holding m; the other half's
  // MTH joins the proof. Collected root side first.
  std::vector<Hash256> proof;
  std::uint64_t begin = 0;
  std::uint64_t end = size;
  while (end - begin > 1) {
    std::uint64_t mid = begin + SplitPoint(end - begin);
    Result<Hash256> sibling =
        index < mid ? FoldRange(nodes, mid, end) : FoldRange(nodes, begin, mid);
    if (!sibling.ok()) return sibling.status();
    proof.push_back(*sibling);
    if (index < mid) {
      end = mid;
    } else {
      begin = mid;
    }
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

Result<std::vector<Hash256>> ConsistencyProof(NodeSource& nodes, std::uint64_t old_size,
                                              std::uint64_t size) {
  if (old_size == 0 || old_size > size) {
    return InvalidArgument("proof_size_invalid", "consistency proof: old size " +
                                                     std::to_string(old_size) + " must be in [1, " +
                                                     std::to_string(size) + "]");
  }
  // SUBPROOF(m, D[begin:end], b), m counted from begin. Collected root side first.
  std::vector<Hash256> proof;
  std::uint64_t begin = 0;
  std::uint64_t end = size;
  std::uint64_t m = old_size;
  bool whole_old_tree = true;  // b: D[begin:begin+m] is the old tree itself
  while (m != end - begin) {
    std::uint64_t k = SplitPoint(end - begin);
    Result<Hash256> sibling =
        m <= k ? FoldRange(nodes, begin + k, end) : FoldRange(nodes, begin, begin + k);
    if (!sibling.ok()) return sibling.status();
    proof.push_back(*sibling);
    if (m <= k) {
      end = begin + k;
    } else {
      begin += k;
      m -= k;
      whole_old_tree = false;
    }
  }
  if (!whole_old_tree) {
    VIA_ASSIGN_OR_RETURN(Hash256 old_part, FoldRange(nodes, begin, end));
    proof.push_back(old_part);
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

Status VerifyInclusion(std::uint64_t index, std::uint64_t size, const Hash256& leaf_hash,
                       const std::vector<Hash256>& proof, const Hash256& root) {
  if (index >= size) {
    return InvalidArgument("proof_index_out_of_range",
                           "inclusion proof: leaf index " + std::to_string(index) +
                               " is not below tree size " + std::to_string(size));
  }
  // RFC 9162 section 2.1.3.2.
  std::uint64_t fn = index;
  std::uint64_t sn = size - 1;
  Hash256 r = leaf_hash;
  for (const Hash256& p : proof) {
    if (sn == 0) return InclusionInvalid("proof is too long");
    if ((fn & 1) != 0 || fn == sn) {
      r = HashChildren(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return InclusionInvalid("proof is too short");
  if (r != root) return InclusionInvalid("computed root differs");
  return Status::Ok();
}

Status VerifyConsistency(std::uint64_t size1, std::uint64_t size2, const Hash256& root1,
                         const Hash256& root2, const std::vector<Hash256>& proof) {
  if (size1 == 0 || size1 > size2) {
    return InvalidArgument("proof_size_invalid", "consistency proof: old size " +
                                                     std::to_string(size1) + " must be in [1, " +
                                                     std::to_string(size2) + "]");
  }
  if (size1 == size2) {
    if (!proof.empty()) return ConsistencyInvalid("sizes are equal but the proof is not empty");
    if (root1 != root2) return ConsistencyInvalid("sizes are equal but the roots differ");
    return Status::Ok();
  }
  // RFC 9162 section 2.1.4.2. When size1 is a power of two the old root is
  // the first node of the path and the proof omits it.
  if (proof.empty()) return ConsistencyInvalid("proof is empty");
  bool prepend_root1 = std::has_single_bit(size1);
  std::size_t next = 0;
  const Hash256& first = prepend_root1 ? root1 : proof[next++];

  std::uint64_t fn = size1 - 1;
  std::uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash256 fr = first;
  Hash256 sr = first;
  for (; next < proof.size(); ++next) {
    const Hash256& c = proof[next];
    if (sn == 0) return ConsistencyInvalid("proof is too long");
    if ((fn & 1) != 0 || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ConsistencyInvalid("proof is too short");
  if (fr != root1) return ConsistencyInvalid("computed old root differs");
  if (sr != root2) return ConsistencyInvalid("computed new root differs");
  return Status::Ok();
}

Result<Frontier> Frontier::Load(NodeSource& nodes, std::uint64_t size) {
  Frontier frontier;
  for (auto [level, index] : PerfectPieces(0, size)) {
    Result<Hash256> node = nodes.Node(level, index);
    if (!node.ok()) {
      return node.status().WithContext("frontier of size " + std::to_string(size));
    }
    frontier.hashes_.push_back(*node);
  }
  frontier.size_ = size;
  return frontier;
}

void Frontier::Append(const Hash256& leaf_hash, const NodeSink& sink) {
  Hash256 completed[kMaxCompleted];
  int n = Append(leaf_hash, completed);
  if (!sink) return;
  // Node i of `completed` is at level i; its index is the old size >> level.
  const std::uint64_t old_size = size_ - 1;
  for (int level = 0; level < n; ++level) sink(level, old_size >> level, completed[level]);
}

void Frontier::Append(const Hash256& leaf_hash, const NodeSink& sink, crypto::Sha256& /*hasher*/) {
  Append(leaf_hash, sink);
}

int Frontier::Append(const Hash256& leaf_hash, Hash256* completed) {
  // Each trailing set bit of size_ is a perfect subtree that the new leaf's
  // subtree of the same level completes into one of the next level.
  Hash256 node = leaf_hash;
  int level = 0;
  completed[0] = node;
  while (level < 64 && ((size_ >> level) & 1) != 0) {
    node = HashChildren(hashes_.back(), node);
    hashes_.pop_back();
    ++level;
    completed[level] = node;
  }
  hashes_.push_back(node);
  ++size_;
  return level + 1;
}

Hash256 Frontier::Root() const {
  if (hashes_.empty()) return EmptyRoot();
  Hash256 acc = hashes_.back();
  for (auto it = hashes_.rbegin() + 1; it != hashes_.rend(); ++it) {
    acc = HashChildren(*it, acc);
  }
  return acc;
}

void MemoryTree::Append(const Hash256& leaf_hash) {
  Hash256 node = leaf_hash;
  for (std::size_t level = 0;; ++level) {
    if (levels_.size() == level) levels_.emplace_back();
    levels_[level].push_back(node);
    if (levels_[level].size() % 2 != 0) break;
    const auto& row = levels_[level];
    node = HashChildren(row[row.size() - 2], row[row.size() - 1]);
  }
}

Result<Hash256> MemoryTree::Node(int level, std::uint64_t index) {
  if (level < 0 || static_cast<std::size_t>(level) >= levels_.size() ||
      index >= levels_[level].size()) {
    return NotFound(
        "merkle_node_not_found",
        "no perfect subtree at level " + std::to_string(level) + " index " + std::to_string(index));
  }
  return levels_[level][index];
}

}  // namespace via::eventstore::merkle
