// Checks shared by MdsCore's operations (names, permissions, set-id
// bits). Internal to the mds_core*.cc files.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"

namespace stripefs::mds {

inline bool IsDots(const std::string& name) { return name == "." || name == ".."; }

inline absl::Status CheckNameLength(const std::string& name) {
  if (name.size() > kNameMax) {
    return Errno(ENAMETOOLONG,
                 absl::StrCat("name of ", name.size(), " bytes is too long"));
  }
  return absl::OkStatus();
}

// A name a new entry may get ("." and ".." are handled by callers).
inline absl::Status CheckName(const std::string& name) {
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(name));
  if (name.empty()) return Errno(EINVAL, "empty name");
  if (name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Errno(EINVAL, "name contains '/' or NUL");
  }
  return absl::OkStatus();
}

inline absl::Status NeedAccess(const Inode& n, const Cred& cred, uint32_t mask) {
  if (MayAccess(n, cred, mask)) return absl::OkStatus();
  return Errno(EACCES, absl::StrCat("permission denied on inode ", n.ino));
}

// Sticky directory: only the owner of the entry or of the directory, or
// root, may remove or rename it.
inline absl::Status CheckSticky(const Inode& dir, const Inode& victim,
                         const Cred& cred) {
  if ((dir.mode & S_ISVTX) && cred.uid != 0 && cred.uid != victim.uid &&
      cred.uid != dir.uid) {
    return Errno(EPERM, "sticky directory: not the owner");
  }
  return absl::OkStatus();
}

// Clears set-user-id, and set-group-id when the file is group-executable or
// the caller is neither privileged nor in the file's group (Linux's
// setattr_should_drop_sgid), as a write, truncate or chown must.
inline void KillPriv(Inode* n, const Cred& cred) {
  n->mode &= ~S_ISUID;
  if ((n->mode & S_IXGRP) || (cred.uid != 0 && !InGroup(cred, n->gid))) {
    n->mode &= ~S_ISGID;
  }
}

// The kernel opens a file for execve with this bit (__FMODE_EXEC) in the
// open flags it passes on; such an open needs execute permission.
constexpr uint32_t kOpenExec = 040;

inline bool IsWriteMode(uint32_t flags) {
  return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR;
}

}  // namespace stripefs::mds
