#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dermfed {
namespace {

TEST(ConfusionMatrixTest, AccuracyAndBalancedAccuracyByHand) {
  ConfusionMatrix m(3);
  // class 0: 3 rows, 2 right; class 1: 1 row, right; class 2: no rows.
  ASSERT_TRUE(m.Add({0, 0, 0, 1}, {0, 0, 1, 1}).ok());
  EXPECT_EQ(m.total(), 4);
  EXPECT_EQ(m.at(0, 1), 1);
  EXPECT_DOUBLE_EQ(m.Accuracy(), 0.75);
  EXPECT_DOUBLE_EQ(m.Sensitivity(0), 2.0 / 3.0);
  EXPECT_TRUE(std::isnan(m.Sensitivity(2)));
  // Mean over the classes that have rows: (2/3 + 1) / 2.
  EXPECT_DOUBLE_EQ(m.BalancedAccuracy(), (2.0 / 3.0 + 1.0) / 2.0);
}

TEST(ConfusionMatrixTest, OutOfRangeLabelNamesTheRow) {
  ConfusionMatrix m(2);
  Status s = m.Add({0, 1, 2}, {0, 1, 1});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("row 2"), std::string::npos) << s;
  EXPECT_EQ(m.total(), 0) << "a refused batch must not be half counted";
}

}  // namespace
}  // namespace dermfed
