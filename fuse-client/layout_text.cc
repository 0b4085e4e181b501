#include "fuse-client/layout_text.h"

namespace stripefs::client {

std::string FormatLayout(const rpc::Layout& layout, bool with_objects) {
  stripefs::Layout l;
  l.stripe_size = layout.stripe_size();
  l.stripe_count = layout.stripe_count();
  l.stripe_offset = layout.stripe_offset();
  if (with_objects) {
    for (const rpc::StripeObject& o : layout.objects()) {
      l.objects.push_back({o.ost(), o.oid()});
    }
  }
  std::string out = stripefs::FormatLayout(l);
  // A file with no objects yet still says so.
  if (with_objects && l.objects.empty()) out += " objects=";
  return out;
}

}  // namespace stripefs::client
