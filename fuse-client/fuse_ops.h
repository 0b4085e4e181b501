// The FUSE low-level glue: maps each kernel request onto Fs. This is the one
// place where a status becomes an errno (stripefs::ToErrno). Every request
// gets exactly one reply, never sent while holding a lock.
// The session's userdata must be the Fs*. Thread-safe (stateless).
#pragma once

#include <fuse_lowlevel.h>

namespace stripefs::client {

const fuse_lowlevel_ops& FuseOps();

}  // namespace stripefs::client
