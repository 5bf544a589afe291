#pragma once

// RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.
//
// Leaf hash = SHA-256(0x00 || leaf bytes); node hash = SHA-256(0x01 || l || r);
// the root of the empty tree is SHA-256(""). Leaf index = seq - 1.
//
// Proofs are built from a NodeSource that serves hashes of *perfect* subtrees
// (2^level leaves starting at index * 2^level). A subtree that is not perfect is
// folded from at most O(log n) perfect ones, so a proof costs O(log n) node reads
// per proof element and never rehashes the log.

#include <cstdint>
#include <functional>
#include <vector>

#include "crypto/crypto.h"
#include "domain/bytes.h"
#include "domain/status.h"

namespace via::eventstore::merkle {

Hash256 LeafHash(ByteView leaf);
// The same; `hasher` is not used (hashing here allocates nothing, see
// crypto::Sha256Concat) and is kept for existing callers.
Hash256 LeafHash(crypto::Sha256& hasher, ByteView leaf);
Hash256 NodeHash(const Hash256& left, const Hash256& right);
Hash256 EmptyRoot();

// Hashes of perfect subtrees. Implementations: the SQLite log's node table,
// and an in-memory one for tests.
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  // Hash of the perfect subtree of 2^level leaves starting at leaf index * 2^level.
  // Errors: NotFound when that subtree is not complete yet; DataLoss on a storage fault.
  virtual Result<Hash256> Node(int level, std::uint64_t index) = 0;
};

// MTH(D[begin:end]) for 0 <= begin < end, built from perfect subtrees. begin must be
// a multiple of bit_floor(end - begin), as every range RFC 6962 recursion visits is;
// InvalidArgument otherwise (such a range does not fold from stored perfect subtrees).
Result<Hash256> SubtreeHash(NodeSource& nodes, std::uint64_t begin, std::uint64_t end);

// Root of the first `size` leaves (EmptyRoot() for size 0).
Result<Hash256> Root(NodeSource& nodes, std::uint64_t size);

// RFC 6962 section 2.1.1 PATH(index, D[0:size]). InvalidArgument when index >= size.
Result<std::vector<Hash256>> InclusionProof(NodeSource& nodes, std::uint64_t index,
                                            std::uint64_t size);

// RFC 6962 section 2.1.2 PROOF(old_size, D[0:size]). InvalidArgument unless
// 0 < old_size <= size... (old_size == size gives an empty proof; old_size 0 is
// InvalidArgument since nothing can be proven about an empty tree).
Result<std::vector<Hash256>> ConsistencyProof(NodeSource& nodes, std::uint64_t old_size,
                                              std::uint64_t size);

// RFC 9162 section 2.1.3.2. OK when `proof` shows leaf `leaf_hash` at `index` in
// the tree of `size` with `root`; DataLoss("inclusion_proof_invalid") otherwise;
// InvalidArgument for index >= size.
Status VerifyInclusion(std::uint64_t index, std::uint64_t size, const Hash256& leaf_hash,
                       const std::vector<Hash256>& proof, const Hash256& root);

// RFC 9162 section 2.1.4.2. OK when `proof` shows that the tree (size1, root1)
// is a prefix of (size2, root2); DataLoss("consistency_proof_invalid") otherwise;
// InvalidArgument for size1 > size2. size1 == size2 needs an empty proof and
// equal roots; size1 == 0 is InvalidArgument, as in ConsistencyProof (nothing can
// be proven about an empty tree; the shared RFC 9162 vectors require this).
Status VerifyConsistency(std::uint64_t size1, std::uint64_t size2, const Hash256& root1,
                         const Hash256& root2, const std::vector<Hash256>& proof);

// The compact range [0, size): one perfect-subtree hash per set bit of size, the
// largest first. Appending a leaf costs O(log n) hashes amortized O(1), and the
// root is available at every size. Used to append and to verify a whole log in
// one streaming pass. A value type.
class Frontier {
 public:
  // Called for every perfect subtree completed by an append, leaves included
  // (level 0), so a store can persist exactly the nodes a NodeSource serves.
  using NodeSink = std::function<void(int level, std::uint64_t index, const Hash256& hash)>;

  Frontier() = default;
  // Rebuilds the frontier of a tree of `size` leaves from stored perfect nodes.
  static Result<Frontier> Load(NodeSource& nodes, std::uint64_t size);

  void Append(const Hash256& leaf_hash, const NodeSink& sink = nullptr);
  // The same; `hasher` is not used and is kept for existing callers.
  void Append(const Hash256& leaf_hash, const NodeSink& sink, crypto::Sha256& hasher);
  // The same for hot loops: writes the hashes of the perfect subtrees the leaf
  // completes to `completed` (room for kMaxCompleted), level 0 (the leaf)
  // first, and returns how many: 1 + the number of trailing one bits of the
  // old size.
  static constexpr int kMaxCompleted = 65;
  int Append(const Hash256& leaf_hash, Hash256* completed);
  std::uint64_t size() const { return size_; }
  Hash256 Root() const;

  bool operator==(const Frontier&) const = default;

 private:
  std::uint64_t size_ = 0;
  std::vector<Hash256> hashes_;  // perfect subtrees, largest (leftmost) first
};

// An in-memory NodeSource over all leaf hashes, for tests and small tools.
class MemoryTree : public NodeSource {
 public:
  void Append(const Hash256& leaf_hash);
  std::uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  Result<Hash256> Node(int level, std::uint64_t index) override;

 private:
  std::vector<std::vector<Hash256>> levels_;  // levels_[l][i]: perfect subtree hashes
};

}  // namespace via::eventstore::merkle
