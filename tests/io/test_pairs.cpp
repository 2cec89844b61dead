// The pairs CSV: quoted fields, stray spaces and CR line ends are read as meant; malformed files
// (a duplicated label combination among them) and a missing file are refused as user errors.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "io/pairs.h"
#include "test_support.h"

namespace lingshu {
namespace {

TEST(PredictionPairs, ParsesPairsFiles) {
  const auto pairs = parse_prediction_pairs(
      "cell_type, condition ,n_cells\r\n\"K562, clone 2\",KLF1,100\n\nA,X+Y,5\n", "pairs.csv");
  EXPECT_EQ(pairs.columns, (std::vector<std::string>{"cell_type", "condition"}));
  ASSERT_EQ(pairs.rows.size(), 2u);
  EXPECT_EQ(pairs.rows[0], (std::vector<std::string>{"K562, clone 2", "KLF1"}));
  EXPECT_EQ(pairs.n_cells, (std::vector<int64_t>{100, 5}));
  EXPECT_EQ(pairs.column("condition"), 1);
  EXPECT_EQ(pairs.column("donor"), -1);
  for (const char* bad : {"cell_type,condition\nA,B\n", "condition,n_cells\nA\n", "condition,n_cells\nA,0\n",
                          "condition,n_cells\nA,3.5\n", "condition,n_cells\n",
                          "cell_type,condition,n_cells\nA,B,5\nA,C,5\nA, B ,7\n"}) {
    EXPECT_THROW(parse_prediction_pairs(bad, "pairs.csv"), UserError) << bad;
  }
}

TEST(PredictionPairs, ReadsAFileAndRefusesAMissingOne) {
  const testing::TempDir dir;
  std::ofstream(dir / "pairs.csv") << "condition,n_cells\nKLF1,7\n";
  const auto pairs = read_prediction_pairs(dir / "pairs.csv");
  EXPECT_EQ(pairs.rows, (std::vector<std::vector<std::string>>{{"KLF1"}}));
  EXPECT_EQ(pairs.n_cells, (std::vector<int64_t>{7}));
  EXPECT_THROW(read_prediction_pairs(dir / "missing.csv"), UserError);
}

}  // namespace
}  // namespace lingshu
