// OssService's stripefs fsck method (protocol 2, read-only): a page of
// ObjectStore::ListObjects.
#include "common/version.h"
#include "oss/oss_service.h"

#if STRIPEFS_PROTO_MAX >= 2
namespace stripefs::oss {

grpc::Status OssService::ListObjects(grpc::ServerContext*,
                                     const rpc::ListObjectsRequest* req,
                                     rpc::ListObjectsReply* reply) {
  Count(kListObjects);
  constexpr size_t kDefaultPage = 1024, kMaxPage = 16384;
  size_t max = req->max_objects() == 0 ? kDefaultPage : req->max_objects();
  if (max > kMaxPage) max = kMaxPage;
  bool done = false;
  auto objects = store_->ListObjects(req->after_oid(), max, &done);
  // Read after the list: every object listed is at or below it.
  const uint64_t last = store_->last_oid();
  if (objects.ok()) {
    for (const ObjectStore::ListedObject& o : *objects) {
      rpc::ListedObject* out = reply->add_objects();
      out->set_oid(o.oid);
      out->set_size(o.size);
    }
    reply->set_done(done);
    reply->set_last_oid(last);
  }
  return Finish(kListObjects, objects.status(), nullptr, 0);
}

}  // namespace stripefs::oss
#endif
