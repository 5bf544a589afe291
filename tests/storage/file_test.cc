// The POSIX file layer (storage/file.h).

#include "storage/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "testing.h"

namespace via::fileio {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("WriteFileAtomically replaces the file with the mode asked for and leaves no temp") {
  testing::TempDir dir;
  const fs::path key = dir.path() / "secret.key";
  {
    std::ofstream(key) << "old";
  }
  ::chmod(key.c_str(), 0644);
  REQUIRE(WriteFileAtomically(key, AsBytes(std::string_view("new secret")), 0600).ok());
  CHECK(Slurp(key) == "new secret");
  struct stat st {};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(fs::exists(dir.path() / "secret.key.tmp"));
}

TEST_CASE("WriteFileAtomically into a missing folder fails and creates nothing") {
  testing::TempDir dir;
  Status s = WriteFileAtomically(dir.path() / "none" / "k", AsBytes(std::string_view("x")), 0600);
  CHECK_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_FALSE(fs::exists(dir.path() / "none"));
}

TEST_CASE("WriteAll names a full disk disk_full") {
  auto full = Open("/dev/full", O_WRONLY);
  REQUIRE(full.ok());
  Status s = WriteAll(*full, AsBytes(std::string_view("bytes")), "/dev/full");
  CHECK(s.reason() == "disk_full");
}

TEST_CASE("Open reports a missing file as NotFound file_not_found, with O_CLOEXEC set") {
  testing::TempDir dir;
  auto missing = Open(dir.path() / "nope", O_RDONLY);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().reason() == "file_not_found");
  auto made = Open(dir.path() / "made", O_WRONLY | O_CREAT | O_EXCL, 0600);
  REQUIRE(made.ok());
  CHECK((::fcntl(made->get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("Fd::Close reports a failed close and empties the Fd") {
  testing::TempDir dir;
  auto made = Open(dir.path() / "f", O_WRONLY | O_CREAT, 0600);
  REQUIRE(made.ok());
  Fd fd = std::move(made).value();
  REQUIRE(fd.Close(dir.path() / "f").ok());
  CHECK_FALSE(fd.valid());
  CHECK(fd.Close(dir.path() / "f").ok());  // nothing left to close
  Fd bogus(1000000);                         // not an open descriptor: EBADF
  Status s = bogus.Close("bogus");
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("close bogus") != std::string::npos);
}

TEST_CASE("RenameNoReplace never replaces an existing file") {
  testing::TempDir dir;
  std::ofstream(dir.path() / "a") << "a";
  std::ofstream(dir.path() / "b") << "b";
  Status s = RenameNoReplace(dir.path() / "a", dir.path() / "b");
  CHECK(s.code() == StatusCode::kAlreadyExists);
  CHECK(s.reason() == "file_exists");
  CHECK(Slurp(dir.path() / "b") == "b");
  REQUIRE(RenameNoReplace(dir.path() / "a", dir.path() / "c").ok());
  CHECK(Slurp(dir.path() / "c") == "a");
  CHECK_FALSE(fs::exists(dir.path() / "a"));
}

TEST_CASE("Remove accepts a missing file, CreateDirectories makes every parent") {
  testing::TempDir dir;
  CHECK(Remove(dir.path() / "never").ok());
  REQUIRE(CreateDirectories(dir.path() / "x" / "y" / "z").ok());
  CHECK(fs::is_directory(dir.path() / "x" / "y" / "z"));
  auto exists = Exists(dir.path() / "x" / "y");
  REQUIRE(exists.ok());
  CHECK(*exists);
}

TEST_CASE("ReadFile refuses a symbolic link and a file over the bound") {
  testing::TempDir dir;
  std::ofstream(dir.path() / "real") << "0123456789";
  fs::create_symlink(dir.path() / "real", dir.path() / "link");
  auto linked = ReadFile(dir.path() / "link");
  REQUIRE_FALSE(linked.ok());
  CHECK(linked.status().reason() == "not_a_regular_file");
  auto big = ReadFile(dir.path() / "real", 4);
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().reason() == "file_too_large");
  auto whole = ReadFile(dir.path() / "real");
  REQUIRE(whole.ok());
  CHECK(whole->size() == 10);
}

TEST_CASE("CreateExclusively keeps the first file and leaves no temporary file") {
  testing::TempDir dir;
  const fs::path key = dir.path() / "log.key";
  REQUIRE(CreateExclusively(key, AsBytes(std::string_view("first")), 0600).ok());
  REQUIRE(CreateExclusively(key, AsBytes(std::string_view("second")), 0600).ok());
  CHECK(Slurp(key) == "first");
  struct stat st {};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  int entries = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) entries += entry.exists() ? 1 : 0;
  CHECK(entries == 1);
}

TEST_CASE("DigestFile hashes the bytes on disk and refuses a folder") {
  testing::TempDir dir;
  std::ofstream(dir.path() / "blob") << "abc";
  auto digest = DigestFile(dir.path() / "blob");
  REQUIRE(digest.ok());
  CHECK(digest->bytes == 3);
  CHECK(HexEncode(digest->sha256) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto folder = DigestFile(dir.path());
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.status().reason() == "not_a_file");
  CHECK(DigestFile(dir.path() / "none").status().code() == StatusCode::kNotFound);
}

TEST_CASE("CopyVerified publishes the copy only when accepted") {
  testing::TempDir dir;
  std::ofstream(dir.path() / "src") << "snapshot bytes";
  const fs::path temp = dir.path() / "dest.tmp-1";
  auto refuse = [](const Digest&) { return DataLoss("mismatch", "not the expected bytes"); };
  auto refused = CopyVerified(dir.path() / "src", dir.path() / "dest", temp, refuse);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "mismatch");
  CHECK_FALSE(fs::exists(dir.path() / "dest"));
  CHECK_FALSE(fs::exists(temp));

  Digest seen;
  auto accept = [&](const Digest& d) {
    seen = d;
    return Status::Ok();
  };
  auto copied = CopyVerified(dir.path() / "src", dir.path() / "dest", temp, accept);
  REQUIRE(copied.ok());
  CHECK(*copied == seen);
  CHECK(copied->bytes == 14);
  CHECK(Slurp(dir.path() / "dest") == "snapshot bytes");
  CHECK_FALSE(fs::exists(temp));

  auto again = CopyVerified(dir.path() / "src", dir.path() / "dest", temp, accept);
  CHECK(again.status().reason() == "file_exists");
  auto nowhere =
      CopyVerified(dir.path() / "src", dir.path() / "no" / "dest", dir.path() / "no" / "t", accept);
  CHECK(nowhere.status().reason() == "directory_missing");
}

}  // namespace
}  // namespace via::fileio
