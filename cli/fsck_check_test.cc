// CompareObjects (cli/fsck_check.h): the comparison of stripefs fsck over
// plain lists.
#include "cli/fsck_check.h"

#include "gtest/gtest.h"

namespace stripefs::cli {
namespace {

using Kind = FsckRefView::Kind;

FsckRefView FileRef(uint32_t ost, uint64_t oid, uint64_t ino,
                    uint64_t file_size, uint32_t stripe = 0,
                    uint32_t count = 1) {
  FsckRefView r;
  r.ost = ost;
  r.oid = oid;
  r.ino = ino;
  r.file_size = file_size;
  r.stripe_size = 65536;
  r.stripe = stripe;
  r.stripe_count = count;
  return r;
}

FsckOstView Ost(uint32_t ost, uint64_t horizon,
                std::vector<FsckObject> objects) {
  FsckOstView v;
  v.ost = ost;
  v.horizon = horizon;
  v.objects = std::move(objects);
  return v;
}

TEST(FsckCheckTest, CleanClusterReportsNothing) {
  // Two files, one striped over both OSTs (file size 100000: object 0
  // holds 65536, object 1 the rest), a pooled object, a queued destroy.
  std::vector<FsckOstView> osts = {Ost(0, 5, {{1, 65536}, {2, 10}, {3, 0}}),
                                   Ost(1, 4, {{1, 100000 - 65536}, {4, 7}})};
  osts[0].reserved = {{3, 6}};
  FsckRefView queued;
  queued.kind = Kind::kDestroyQueued;
  queued.ost = 1;
  queued.oid = 4;
  std::vector<FsckRefView> refs = {FileRef(0, 1, 10, 100000, 0, 2),
                                   FileRef(1, 1, 10, 100000, 1, 2),
                                   FileRef(0, 2, 11, 10), queued};
  FsckResult r = CompareObjects(osts, refs);
  EXPECT_TRUE(r.findings.empty()) << FormatFinding(r.findings[0]);
  EXPECT_EQ(r.counts.objects, 5u);
  EXPECT_EQ(FsckExitCode(r, 0), 0);
}

TEST(FsckCheckTest, FindsOrphanMissingAndWrongSize) {
  std::vector<FsckOstView> osts = {
      Ost(0, 10, {{1, 20}, {2, 4096}, {9, 0}}),
  };
  std::vector<FsckRefView> refs = {
      FileRef(0, 1, 10, 10),  // 20 bytes for a 10-byte file
      FileRef(0, 3, 11, 0),   // not on the OST
  };
  FsckResult r = CompareObjects(osts, refs);
  ASSERT_EQ(r.findings.size(), 4u);
  EXPECT_EQ(r.findings[0].problem, FsckProblem::kWrongSize);
  EXPECT_EQ(r.findings[0].oid, 1u);
  EXPECT_EQ(r.findings[0].object_size, 20u);
  EXPECT_EQ(r.findings[0].expected_size, 10u);
  EXPECT_EQ(r.findings[1].problem, FsckProblem::kOrphan);
  EXPECT_EQ(r.findings[1].oid, 2u);
  EXPECT_EQ(r.findings[2].problem, FsckProblem::kMissing);
  EXPECT_EQ(r.findings[2].oid, 3u);
  EXPECT_EQ(r.findings[2].ino, 11u);
  EXPECT_EQ(r.findings[3].problem, FsckProblem::kOrphan);
  EXPECT_EQ(r.findings[3].oid, 9u);
  EXPECT_EQ(FsckExitCode(r, 0), 4);
  EXPECT_EQ(FsckExitCode(r, 2), 4);  // missing and wrong size stay
}

TEST(FsckCheckTest, AllOrphansRepairedExitsOne) {
  FsckResult r = CompareObjects({Ost(0, 10, {{5, 0}})}, {});
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(FsckExitCode(r, 1), 1);
}

TEST(FsckCheckTest, ObjectsAboveTheHorizonAreNotChecked) {
  // Precreated after fsck started (or in flight): not orphans yet.
  FsckResult r = CompareObjects({Ost(0, 10, {{11, 0}, {12, 5}})}, {});
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.counts.above_horizon, 2u);
}

TEST(FsckCheckTest, ReferenceAboveTheHorizonIsNotMissing) {
  // A file created after the OSS was listed, with an object precreated
  // after fsck started: the list could not hold it.
  FsckResult r = CompareObjects({Ost(0, 10, {})}, {FileRef(0, 11, 10, 0)});
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.counts.above_horizon, 1u);
}

TEST(FsckCheckTest, ReservedAndReferencedObjectsAreNotOrphans) {
  FsckOstView v = Ost(0, 100, {{5, 0}, {50, 0}, {60, 0}, {70, 0}});
  v.reserved = {{50, 61}};
  FsckRefView unlinked = FileRef(0, 70, 12, 0);
  unlinked.kind = Kind::kUnlinkedOpen;
  FsckRefView queued;
  queued.kind = Kind::kDestroyQueued;
  queued.oid = 5;
  FsckResult r = CompareObjects({v}, {unlinked, queued});
  EXPECT_TRUE(r.findings.empty());
}

TEST(FsckCheckTest, SparseFilesAndHolesAreFine) {
  // A 3 MiB file striped over 3 objects of 64 KiB units, written only at
  // the start: short objects are holes, not errors.
  const uint64_t size = 3 << 20;
  FsckResult r = CompareObjects(
      {Ost(0, 10, {{1, 4096}}), Ost(1, 10, {{1, 0}}), Ost(2, 10, {{1, 0}})},
      {FileRef(0, 1, 10, size, 0, 3), FileRef(1, 1, 10, size, 1, 3),
       FileRef(2, 1, 10, size, 2, 3)});
  EXPECT_TRUE(r.findings.empty());
}

TEST(FsckCheckTest, DataBeyondEofOnALaterStripe) {
  // File of 100 bytes over two objects: object 1 must be empty.
  FsckResult r = CompareObjects(
      {Ost(0, 10, {{1, 100}}), Ost(1, 10, {{1, 1}})},
      {FileRef(0, 1, 10, 100, 0, 2), FileRef(1, 1, 10, 100, 1, 2)});
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].problem, FsckProblem::kWrongSize);
  EXPECT_EQ(r.findings[0].ost, 1u);
  EXPECT_EQ(r.findings[0].expected_size, 0u);
}

TEST(FsckCheckTest, FilesOpenForWritingAreNotSizeChecked) {
  FsckRefView w = FileRef(0, 1, 10, 0);
  w.open_for_write = true;
  FsckResult r = CompareObjects({Ost(0, 10, {{1, 4096}})}, {w});
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.counts.size_unchecked, 1u);
}

TEST(FsckCheckTest, ObjectInTwoFilesIsShared) {
  FsckResult r = CompareObjects({Ost(0, 10, {{1, 0}})},
                                {FileRef(0, 1, 10, 0), FileRef(0, 1, 11, 0)});
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].problem, FsckProblem::kShared);
  EXPECT_EQ(FormatFinding(r.findings[0]),
            "shared: ost0 object 1 is in the layouts of inodes 10 and 11");
}

TEST(FsckCheckTest, ReferenceToAnUnknownOstIsMissing) {
  FsckResult r = CompareObjects({Ost(0, 10, {})}, {FileRef(7, 1, 10, 0)});
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].problem, FsckProblem::kMissing);
}

TEST(FsckCheckTest, SummaryCountsEachProblem) {
  FsckResult r =
      CompareObjects({Ost(0, 10, {{2, 0}, {3, 0}})}, {FileRef(0, 1, 10, 0)});
  EXPECT_EQ(FormatSummary(r, 2),
            "fsck: 2 objects on the OSTs, 1 references at the MDS: 2 orphan, "
            "1 missing, 0 wrong size, 0 shared; 2 orphans destroyed\n");
}

}  // namespace
}  // namespace stripefs::cli
