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

namespace dermfed {
namespace {

TEST(ConfusionMatrixTest, SpecificityPrecisionF1ByHand) {
  ConfusionMatrix m(2);
  // truth:     0 0 0 1 1
  // predicted: 0 1 1 1 0
  ASSERT_TRUE(m.Add({0, 0, 0, 1, 1}, {0, 1, 1, 1, 0}).ok());
  // class 1: TP 1, FP 2, FN 1, TN 1.
  EXPECT_DOUBLE_EQ(m.Sensitivity(1), 0.5);
  EXPECT_DOUBLE_EQ(m.Specificity(1), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.Precision(1), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.F1(1), 2 * (0.5 / 3) / (0.5 + 1.0 / 3));
}

TEST(ConfusionMatrixTest, MergeAddsCountsAndRefusesOtherSizes) {
  ConfusionMatrix a(2), b(2), c(3);
  ASSERT_TRUE(a.Add({0}, {1}).ok());
  ASSERT_TRUE(b.Add({0, 1}, {1, 1}).ok());
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.at(0, 1), 2);
  EXPECT_EQ(a.at(1, 1), 1);
  EXPECT_FALSE(a.Merge(c).ok());
}

TEST(AucTest, MatchesHandCountedPairsWithTies) {
  // Positives (class 1) scores {0.8, 0.4}, negatives {0.4, 0.1, 0.3}.
  // Pairs pos > neg: 0.8 beats 3; 0.4 beats 0.1 and 0.3, ties 0.4 (half) -> (3 + 2.5) / 6.
  std::vector<float> s = {0.8f, 0.4f, 0.4f, 0.1f, 0.3f};
  std::vector<int64_t> t = {1, 1, 0, 0, 0};
  EXPECT_DOUBLE_EQ(OneVsRestAuc(s, t, 1), 5.5 / 6.0);
  EXPECT_TRUE(std::isnan(OneVsRestAuc(s, {0, 0, 0, 0, 0}, 1)));
}

TEST(EvaluateTest, ReportHasTheDocumentedJsonKeys) {
  std::vector<float> probs = {0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f, 0.3f, 0.7f};
  auto r = Evaluate({"NEV", "MEL"}, {0, 1, 1, 1}, probs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->confusion.Accuracy(), 0.75);
  const std::string json = r->ToJson();
  for (const char* key : {"\"accuracy\"", "\"balanced_accuracy\"", "\"macro_auc\"",
                          "\"per_class\"", "\"confusion_matrix\"", "\"MEL\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " missing from\n" << json;
  }
}

TEST(EvaluateTest, NonFiniteProbabilityNamesTheRow) {
  std::vector<float> probs = {0.5f, 0.5f, std::nanf(""), 0.5f};
  auto r = Evaluate({"A", "B"}, {0, 1}, probs);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("row 1"), std::string::npos) << r.status();
}

TEST(ScoreRowsTest, RowsADivergedModelCannotScoreAreCountedNotScored) {
  // Four rows of two classes; rows 1 and 3 have a NaN and an infinite probability.
  const std::vector<float> probs = {0.9f, 0.1f, std::nanf(""), 0.5f,
                                    0.2f, 0.8f, INFINITY,      0.0f};
  auto r = ScoreRows({"A", "B"}, {0, 1, 1, 0}, probs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->scored_rows, 2);
  EXPECT_EQ(r->non_finite_rows, 2);
  EXPECT_EQ(r->report.confusion.total(), 2);
  EXPECT_EQ(r->report.confusion.at(0, 0), 1);
  EXPECT_EQ(r->report.confusion.at(1, 1), 1);
  EXPECT_DOUBLE_EQ(r->report.confusion.Accuracy(), 1.0);
  EXPECT_TRUE(std::isinf(r->loss) && r->loss > 0);
}

TEST(ScoreRowsTest, AllFiniteRowsGiveTheMeanLogLossAndEvaluatesReport) {
  const std::vector<float> probs = {0.5f, 0.5f, 0.25f, 0.75f, 1.0f, 0.0f};
  auto r = ScoreRows({"A", "B"}, {0, 1, 1}, probs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->scored_rows, 3);
  EXPECT_EQ(r->non_finite_rows, 0);
  // -(log 0.5 + log 0.75 + log 1e-12) / 3: a zero probability is floored, not infinite.
  EXPECT_NEAR(r->loss, -(std::log(0.5) + std::log(0.75) + std::log(1e-12)) / 3, 1e-6);
  auto direct = Evaluate({"A", "B"}, {0, 1, 1}, probs);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(r->report.ToJson(), direct->ToJson());
}

TEST(ScoreRowsTest, NoScorableRowIsNotAnError) {
  auto r = ScoreRows({"A", "B"}, {0, 1}, {std::nanf(""), std::nanf(""), std::nanf(""), 1.0f});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->scored_rows, 0);
  EXPECT_EQ(r->non_finite_rows, 2);
  EXPECT_EQ(r->report.confusion.total(), 0);
}

TEST(ScoreRowsTest, BadSizesAndClassesNameTheProblem) {
  auto sizes = ScoreRows({"A", "B"}, {0, 1}, {0.5f, 0.5f});
  ASSERT_FALSE(sizes.ok());
  EXPECT_NE(sizes.status().message().find("2 probabilities for 2 rows"), std::string::npos)
      << sizes.status();
  auto cls = ScoreRows({"A", "B"}, {0, 2}, {0.5f, 0.5f, 0.5f, 0.5f});
  ASSERT_FALSE(cls.ok());
  EXPECT_NE(cls.status().message().find("row 1"), std::string::npos) << cls.status();
}

}  // namespace
}  // namespace dermfed
