// The layout and space commands: setstripe, getstripe and df. They work on a
// mounted stripefs through its virtual xattrs (user.stripefs.layout,
// user.stripefs.df), so they need no cluster home. Output goes to stdout;
// errors come back as statuses with a user-facing message. Thread-safe (no
// shared state).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/layout_text.h"

namespace stripefs::cli {

// Directory: sets its default layout. Missing path: creates an empty file
// and sets its layout (removing it again on failure). Empty regular file:
// replaces its layout.
absl::Status SetStripe(const std::string& path, const LayoutSetting& req);

// Reads the layout of path (ENOTSUP-like error if not on stripefs).
absl::StatusOr<Layout> ReadLayout(const std::string& path);
std::string FormatGetStripe(const std::string& path, const Layout& layout,
                            bool is_dir);
absl::Status GetStripe(const std::string& path);

// Reads user.stripefs.df at a path on the mount.
absl::StatusOr<std::vector<DfTarget>> ReadDf(const std::string& path);
std::string FormatDf(const std::string& mountpoint,
                     const std::vector<DfTarget>& targets, bool human);
// Without mountpoints: every fuse.stripefs mount in /proc/mounts.
absl::Status Df(std::vector<std::string> mountpoints, bool human);

}  // namespace stripefs::cli
