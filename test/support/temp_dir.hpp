#pragma once

#include <filesystem>
#include <string_view>

namespace reprise::test {

/// A fresh directory under /tmp (mkdtemp, mode 0700), removed with its contents on destruction.
///
///     TempDir dir("cluster");
///     auto data_dir = dir.path() / "pgdata";  // e.g. /tmp/reprise-cluster-Xa12bC/pgdata
class TempDir {
 public:
  /// Creates /tmp/reprise-<label>-XXXXXX; throws std::runtime_error when it cannot.
  explicit TempDir(std::string_view label = "test");
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// Removes the directory tree; errors are ignored (a test must not fail on cleanup).
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  /// Keeps the directory on destruction (to look at it after a failure) and returns its path.
  std::filesystem::path release();

 private:
  std::filesystem::path path_;  ///< empty once released or moved from
};

}  // namespace reprise::test
