#include "cli/stripe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/proc.h"
#include "common/errors.h"
#include "common/size.h"

namespace stripefs::cli {
namespace {

bool NotStripefs(int err) {
  return err == ENODATA || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS;
}

absl::Status NotOnStripefs(const std::string& path) {
  return Errno(ENOTSUP, absl::StrCat(path, " is not on a stripefs filesystem"));
}

absl::StatusOr<std::string> GetXattr(const std::string& path,
                                     const char* name) {
  std::string buf(4096, '\0');
  for (int attempt = 0; attempt < 4; ++attempt) {
    ssize_t n = ::getxattr(path.c_str(), name, buf.data(), buf.size());
    if (n >= 0) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    if (errno != ERANGE) {
      const int err = errno;
      if (NotStripefs(err)) return NotOnStripefs(path);
      return Errno(err, absl::StrCat(path, ": ", std::strerror(err)));
    }
    ssize_t need = ::getxattr(path.c_str(), name, nullptr, 0);
    if (need < 0) {
      const int err = errno;
      return Errno(err, absl::StrCat(path, ": ", std::strerror(err)));
    }
    buf.assign(static_cast<size_t>(need) + 1, '\0');
  }
  return Errno(EIO, absl::StrCat(path, ": ", name, " keeps changing size"));
}

// Turns the errno of a failed layout setxattr into a message.
absl::Status SetError(int err, const std::string& path,
                      const LayoutSetting& req) {
  switch (err) {
    case EINVAL: {
      absl::StatusOr<std::vector<DfTarget>> df = ReadDf(path);
      if (df.ok()) {
        const int osts = CountOsts(*df);
        if (req.stripe_count && *req.stripe_count > osts) {
          return Errno(EINVAL,
                       absl::StrCat("invalid layout: stripe count ",
                                    *req.stripe_count, " > ", osts, " OSTs"));
        }
        if (req.stripe_offset && *req.stripe_offset >= osts) {
          return Errno(EINVAL,
                       absl::StrCat("invalid layout: OST index ",
                                    *req.stripe_offset, " does not exist (",
                                    osts, " OSTs: 0..", osts - 1, ")"));
        }
      }
      return Errno(EINVAL, absl::StrCat("invalid layout '", LayoutSetText(req),
                                        "' for ", path));
    }
    case EBUSY:
      return Errno(EBUSY, absl::StrCat(path,
                                       ": file already has data; a layout "
                                       "can only be set on an empty file"));
    case ENOENT:
      return Errno(ENOENT, absl::StrCat(path, ": no such file or directory"));
    case EACCES:
    case EPERM:
      return Errno(err, absl::StrCat(path, ": permission denied"));
    case ENODATA:
    case ENOTSUP:
    case ENOSYS:
      return NotOnStripefs(path);
    default:
      return Errno(
          err, absl::StrCat(path, ": cannot set layout: ", std::strerror(err)));
  }
}

// OK if path (which must exist) is on a stripefs mount: only stripefs
// answers its df xattr. Without this a setstripe on another filesystem
// would store an ordinary user xattr and "succeed".
absl::Status CheckOnStripefs(const std::string& path,
                             const std::string& shown) {
  ssize_t n = ::getxattr(path.c_str(), kDfXattr, nullptr, 0);
  if (n >= 0) return absl::OkStatus();
  const int err = errno;
  if (NotStripefs(err)) return NotOnStripefs(shown);
  return Errno(err, absl::StrCat(shown, ": ", std::strerror(err)));
}

std::string ParentDir(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  const size_t slash = path.rfind('/', end - 1);
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int SetLayoutXattr(const std::string& path, const std::string& value) {
  if (::setxattr(path.c_str(), kLayoutXattr, value.data(), value.size(), 0) ==
      0) {
    return 0;
  }
  return errno;
}

}  // namespace

absl::Status SetStripe(const std::string& path, const LayoutSetting& req) {
  if (absl::Status s = ValidateLayoutSetting(req); !s.ok()) return s;
  const std::string value = LayoutSetText(req);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (req.empty()) {
      return Errno(EINVAL, "nothing to set: give -c, -S and/or -i");
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
      return Errno(EINVAL, absl::StrCat(path,
                                        " is neither a regular file nor a "
                                        "directory"));
    }
    if (absl::Status s = CheckOnStripefs(path, path); !s.ok()) return s;
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
      return SetError(EBUSY, path, req);
    }
    if (int err = SetLayoutXattr(path, value); err != 0) {
      return SetError(err, path, req);
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT) {
    const int err = errno;
    return Errno(err, absl::StrCat(path, ": ", std::strerror(err)));
  }
  if (absl::Status s = CheckOnStripefs(ParentDir(path), path); !s.ok()) {
    if (ToErrno(s) == ENOENT) {
      return Errno(ENOENT,
                   absl::StrCat(path, ": parent directory does not exist"));
    }
    return s;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    return Errno(
        err, absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  }
  ::close(fd);
  if (req.empty()) return absl::OkStatus();
  if (int err = SetLayoutXattr(path, value); err != 0) {
    absl::Status s = SetError(err, path, req);
    if (::unlink(path.c_str()) != 0) {
      const int uerr = errno;
      return Errno(
          err, absl::StrCat(s.message(), " (and removing the new file failed: ",
                            std::strerror(uerr), ")"));
    }
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Layout> ReadLayout(const std::string& path) {
  absl::StatusOr<std::string> text = GetXattr(path, kLayoutXattr);
  if (!text.ok()) return text.status();
  absl::StatusOr<Layout> layout = ParseLayout(*text);
  if (!layout.ok()) {
    return Errno(
        EIO,
        absl::StrCat(path, ": unreadable layout: ", layout.status().message()));
  }
  return layout;
}

std::string FormatGetStripe(const std::string& path, const Layout& layout,
                            bool is_dir) {
  std::string out = absl::StrCat(path, "\n");
  absl::StrAppend(&out, "stripe_count:  ", layout.stripe_count, "\n");
  absl::StrAppend(&out, "stripe_size:   ", layout.stripe_size, "\n");
  absl::StrAppend(&out, "stripe_offset: ", layout.stripe_offset, "\n");
  if (!is_dir) {
    absl::StrAppend(&out, "obdidx objid\n");
    for (const auto& o : layout.objects) {
      absl::StrAppend(&out, absl::StrFormat("%6u %u\n", o.ost, o.oid));
    }
  }
  return out;
}

absl::Status GetStripe(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Errno(err, absl::StrCat(path, ": ", std::strerror(err)));
  }
  if (absl::Status s = CheckOnStripefs(path, path); !s.ok()) return s;
  absl::StatusOr<Layout> layout = ReadLayout(path);
  if (!layout.ok()) return layout.status();
  std::fputs(FormatGetStripe(path, *layout, S_ISDIR(st.st_mode)).c_str(),
             stdout);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DfTarget>> ReadDf(const std::string& path) {
  absl::StatusOr<std::string> text = GetXattr(path, kDfXattr);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<DfTarget>> df = ParseDf(*text);
  if (!df.ok()) {
    return Errno(
        EIO,
        absl::StrCat(path, ": unreadable df report: ", df.status().message()));
  }
  return df;
}

std::string FormatDf(const std::string& mountpoint,
                     const std::vector<DfTarget>& targets, bool human) {
  auto num = [human](uint64_t v) {
    return human ? FormatSize(v) : absl::StrCat(v);
  };
  auto pct = [](uint64_t used, uint64_t total) {
    if (total == 0) return std::string("-");
    return absl::StrCat((used * 100 + total - 1) / total, "%");
  };
  std::string out = absl::StrFormat("%-8s %14s %14s %14s %5s  %s\n", "TARGET",
                                    human ? "SIZE" : "BYTES", "USED", "AVAIL",
                                    "USE%", "MOUNTED ON");
  uint64_t total = 0, used = 0, avail = 0;
  for (const auto& t : targets) {
    if (t.is_mdt) {
      const uint64_t iused = t.files >= t.ffree ? t.files - t.ffree : 0;
      absl::StrAppend(
          &out,
          absl::StrFormat("%-8s %14s %14s %14s %5s  %s[MDT]\n", t.target,
                          absl::StrCat(t.files, "i"), absl::StrCat(iused, "i"),
                          absl::StrCat(t.ffree, "i"), pct(iused, t.files),
                          mountpoint));
      continue;
    }
    const uint64_t u = t.total >= t.free ? t.total - t.free : 0;
    total += t.total;
    used += u;
    avail += t.avail;
    absl::StrAppend(
        &out,
        absl::StrFormat("%-8s %14s %14s %14s %5s  %s[OST:%s]%s\n", t.target,
                        num(t.total), num(u), num(t.avail), pct(u, u + t.avail),
                        mountpoint, t.target.substr(3),
                        t.state.empty() || t.state == "active"
                            ? std::string()
                            : absl::StrCat(" ", t.state)));
  }
  absl::StrAppend(&out,
                  absl::StrFormat("%-8s %14s %14s %14s %5s  %s\n", "total",
                                  num(total), num(used), num(avail),
                                  pct(used, used + avail), mountpoint));
  return out;
}

absl::Status Df(std::vector<std::string> mountpoints, bool human) {
  if (mountpoints.empty()) {
    mountpoints = StripefsMounts();
    if (mountpoints.empty()) {
      return Errno(ENOENT, "no stripefs filesystem is mounted");
    }
  }
  absl::Status first;
  bool first_out = true;
  for (const auto& m : mountpoints) {
    absl::StatusOr<std::vector<DfTarget>> df = ReadDf(m);
    if (!df.ok()) {
      std::fprintf(stderr, "stripefs: %s\n",
                   std::string(df.status().message()).c_str());
      if (first.ok()) first = df.status();
      continue;
    }
    if (!first_out) std::fputc('\n', stdout);
    first_out = false;
    std::fputs(FormatDf(m, *df, human).c_str(), stdout);
  }
  // Errors were printed already; report failure without repeating them.
  if (!first.ok()) return Errno(ToErrno(first), "");
  return absl::OkStatus();
}

}  // namespace stripefs::cli
