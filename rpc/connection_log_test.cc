#include "rpc/connection_log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace stripefs::rpc {
namespace {

TEST(ConnectionLogTest, ListsClientsWithTheirProtocolMostRecentLast) {
  ConnectionLog log;
  EXPECT_EQ(log.Render(), "");
  log.Note("mount-a", 2);
  log.Note("mdt0", 1);
  EXPECT_EQ(log.Render(), "mount-a=2,mdt0=1");
  // A reconnect renegotiated: the new protocol, moved to the end.
  log.Note("mount-a", 1);
  EXPECT_EQ(log.Render(), "mdt0=1,mount-a=1");
  // Separators in names cannot break the list.
  log.Note("x,y=z", 2);
  EXPECT_EQ(log.Render(), "mdt0=1,mount-a=1,x_y_z=2");
}

TEST(ConnectionLogTest, KeepsOnlyTheMostRecent) {
  ConnectionLog log;
  for (int i = 0; i < 100; ++i) log.Note(absl::StrCat("c", i), 1);
  std::string r = log.Render();
  EXPECT_EQ(r.find("c35="), std::string::npos);
  EXPECT_EQ(r.rfind("c36=1,", 0), 0u) << r;
  EXPECT_NE(r.find(",c99=1"), std::string::npos);
}

}  // namespace
}  // namespace stripefs::rpc
