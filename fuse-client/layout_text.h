// The client's side of the virtual xattrs user.stripefs.layout and
// user.stripefs.df: the text forms are common/layout_text.h (shared with
// the CLI); this adds the formatting of the MDS's rpc::Layout. Pure
// functions; thread-safe.
#pragma once

#include <string>

#include "common/layout_text.h"
#include "rpc/proto/mds.pb.h"

namespace stripefs::client {

// "stripe_size=1048576 stripe_count=4 stripe_offset=-1 objects=0:17,1:17"
// (no objects= part when with_objects is false: a directory's default).
std::string FormatLayout(const rpc::Layout& layout, bool with_objects);

}  // namespace stripefs::client
