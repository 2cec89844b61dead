// The whole perturbation pipeline against an independent numpy/scipy implementation of the cell-eval
// definitions, run by /usr/bin/python3 on the same .h5ad files (anndata reads what write_h5ad wrote).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/perturbation_metrics.h"
#include "io/h5ad.h"
#include "test_perturbation_data.h"
#include "test_support.h"

namespace lingshu {
namespace {

// cell-eval's metrics written out with numpy/scipy: per-perturbation Mann-Whitney (scipy, axis=0),
// BH, pdex fold changes, DES, PDS (argsort rank), MAE, Pearson-delta, Spearman LFC, average
// precision (sklearn's formula), Spearman #DEG.
constexpr const char* kReferenceScript = R"PY(
import json, sys, warnings
warnings.simplefilter('ignore')
import anndata, numpy as np, scipy.stats as st

def lognorm(a):
    X = a.X.toarray().astype(np.float64)
    return np.log1p(X * (1e4 / X.sum(1))[:, None]).astype(np.float32)

def bh(p):
    o = np.argsort(p)[::-1]; m = len(p); q = np.empty(m)
    q[o] = np.minimum(1, np.minimum.accumulate(p[o] * m / np.arange(m, 0, -1)))
    return q

def fc(t, r):
    t, r = np.expm1(t), np.expm1(r)
    return np.where(r == 0, 20.0, np.where(t == 0, 1 / 20.0, t / np.where(r == 0, 1, r)))

def de(a, X, perts):
    lab = a.obs['condition'].astype(str).values
    ctrl = X[lab == 'control']
    out = {}
    for p in perts:
        x = X[lab == p]
        pv = st.mannwhitneyu(x, ctrl, alternative='two-sided', method='asymptotic', axis=0).pvalue
        pv = np.nan_to_num(pv, nan=1.0)
        mean = x.astype(np.float64).mean(0); cmean = ctrl.astype(np.float64).mean(0)
        out[p] = dict(fdr=bh(pv), lfc=np.log2(fc(mean, cmean)), mean=mean, delta=mean - cmean)
    return out

def ap(labels, scores):
    o = np.argsort(-scores, kind='stable'); s = scores[o]; l = labels[o]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(l)[last]; seen = last + 1
    prec = tp / seen; rec = tp / l.sum()
    return float(np.sum(np.diff(np.r_[0, rec]) * prec))

real, pred = anndata.read_h5ad(sys.argv[1]), anndata.read_h5ad(sys.argv[2])
genes = np.array(real.var_names)
perts = sorted(set(real.obs['condition'].astype(str)) - {'control'})
R, P = de(real, lognorm(real), perts), de(pred, lognorm(pred), perts)
res = {}
for p in perts:
    r, q = R[p], P[p]
    rs = np.flatnonzero(r['fdr'] < 0.05); ps = np.flatnonzero(q['fdr'] < 0.05)
    rs_sorted = rs[np.argsort(-np.abs(r['lfc'][rs]), kind='stable')]
    ps_sorted = ps[np.argsort(-np.abs(q['lfc'][ps]), kind='stable')]
    k = len(rs)
    des = 0.0 if k == 0 else len(np.intersect1d(rs_sorted[:k], ps_sorted[:k])) / k
    keep = genes != p
    d = [np.abs(R[o]['delta'][keep] - q['delta'][keep]).sum() for o in perts]
    rank = int(np.flatnonzero(np.argsort(d) == perts.index(p))[0])
    lab = (r['fdr'] < 0.05).astype(float)
    auprc = ap(lab, -np.log10(q['fdr'])) if 0 < lab.sum() < len(lab) else None
    slfc = float(st.spearmanr(r['lfc'][rs], q['lfc'][rs]).correlation) if k >= 2 else None
    res[p] = dict(real_deg=int(k), pred_deg=int(len(ps)), des=des, pds=1 - rank / len(perts),
                  mae=float(np.abs(q['mean'] - r['mean']).mean()),
                  pearson_delta=float(st.pearsonr(q['delta'], r['delta'])[0]),
                  spearman_lfc=slfc, auprc=auprc)
nr = [res[p]['real_deg'] for p in perts if res[p]['real_deg'] > 0]
npd = [res[p]['pred_deg'] for p in perts if res[p]['real_deg'] > 0]
print(json.dumps(dict(per=res, spearman_deg=float(st.spearmanr(nr, npd).correlation))))
)PY";

TEST(PerturbationReference, MatchesNumpyScipyImplementationOfCellEval) {
  if (!testing::python_has("anndata") || !testing::python_has("scipy")) {
    GTEST_SKIP() << "/usr/bin/python3 lacks anndata or scipy";
  }
  testing::ScreenSpec spec;
  spec.perts = {"P0", "P1", "G7", "P3", "P4"};  // "G7" names a gene: PDS leaves it out
  spec.cells_per_group = 25;
  spec.genes = 60;
  spec.effect = 2.5;
  spec.seed = 11;
  const AnnData real = testing::simulate_screen(spec);
  spec.seed = 12;
  spec.effect = 2.0;
  const AnnData pred = testing::simulate_screen(spec);
  testing::TempDir dir;
  write_h5ad(dir / "real.h5ad", real);
  write_h5ad(dir / "pred.h5ad", pred);
  const auto eval = evaluate_perturbations(real, pred, {});

  testing::TempDir script_dir;
  const auto script = script_dir / "reference.py";
  std::ofstream(script) << kReferenceScript;
  const auto out =
      testing::run_shell(fmt::format("/usr/bin/python3 '{}' '{}' '{}'", script.string(),
                                     (dir / "real.h5ad").string(), (dir / "pred.h5ad").string()));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto ref = nlohmann::json::parse(out.output);
  ASSERT_EQ(eval.scores.size(), 5u);
  auto expect_close = [](double got, const nlohmann::json& want, const std::string& what) {
    if (want.is_null()) {
      EXPECT_TRUE(std::isnan(got)) << what << " = " << got;
    } else {
      EXPECT_NEAR(got, static_cast<double>(want), 1e-6) << what;
    }
  };
  int64_t total_deg = 0;
  for (const auto& s : eval.scores) {
    const auto& r = ref["per"][s.perturbation];
    EXPECT_EQ(s.real_deg, static_cast<int64_t>(r["real_deg"])) << s.perturbation;
    EXPECT_EQ(s.pred_deg, static_cast<int64_t>(r["pred_deg"])) << s.perturbation;
    expect_close(s.des, r["des"], s.perturbation + " des");
    expect_close(s.pds, r["pds"], s.perturbation + " pds");
    expect_close(s.mae, r["mae"], s.perturbation + " mae");
    expect_close(s.pearson_delta, r["pearson_delta"], s.perturbation + " pearson_delta");
    expect_close(s.spearman_lfc, r["spearman_lfc"], s.perturbation + " spearman_lfc");
    expect_close(s.auprc, r["auprc"], s.perturbation + " auprc");
    total_deg += s.real_deg;
  }
  EXPECT_GT(total_deg, 10);  // the comparison covers DE-based metrics, not just empty sets
  expect_close(eval.metric("spearman_deg"), ref["spearman_deg"], "spearman_deg");
}

}  // namespace
}  // namespace lingshu
