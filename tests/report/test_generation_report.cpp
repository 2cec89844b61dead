// The generation report: every section present, one embedding point per cell in each panel, cell
// types in the proportion table, nothing fetched from outside, and the memorisation note when
// generated cells are copies of real ones.
#include <gtest/gtest.h>

#include "data/simulator.h"
#include "eval/expression.h"
#include "report/generation_report.h"
#include "report/svg.h"

namespace lingshu::report {
namespace {

GenerationEvaluation evaluate_halves(bool copies, int gene_gene_min_cells = 20) {
  SimulatorConfig config;
  config.n_cells = 300;
  config.n_genes = 200;
  config.n_cell_types = 3;
  config.seed = 9;
  AnnData data = simulate(config, 1).data;
  // A label with markup characters must come out escaped.
  Column& type = data.obs.columns[0];
  type.categories[0] = "T <CD4+> & co";
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < data.n_obs(); ++i) (i % 2 ? second : first).push_back(i);
  const AnnData real = data.select_cells(first);
  const AnnData generated = copies ? real : data.select_cells(second);
  GenerationOptions options;
  options.label = "cell_type";
  options.n_pcs = 10;
  options.threads = 1;
  // About 50 cells per type and side: a lower minimum makes sure every type is scored.
  options.gene_gene_min_cells = gene_gene_min_cells;
  return evaluate_generation(match_expression(real, generated, {}), options);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The SVG figures of the page, in order.
std::vector<std::string> figures(const std::string& html) {
  std::vector<std::string> out;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    out.push_back(html.substr(at, html.find("</svg>", at) - at));
  }
  return out;
}

TEST(GenerationReport, HasEverySectionAndOnePointPerCell) {
  const GenerationEvaluation e = evaluate_halves(false);
  GenerationReportInfo info{"real.h5ad", "gen.h5ad", "lingshu eval generation real.h5ad gen.h5ad", "0.1.0",
                            1.5};
  const std::string html = generation_report_html(e, info);
  for (const char* heading :
       {"<h2>Embedding</h2>", "<h2>Neighbourhoods</h2>", "<h2>Cell types (cell_type)</h2>",
        "<h2>Gene-gene structure</h2>", "<h2>Per-gene mean expression</h2>", "<h2>Notes</h2>"}) {
    EXPECT_NE(html.find(heading), std::string::npos) << heading;
  }
  EXPECT_NE(html.find("kNN real-vs-generated AUC"), std::string::npos);
  EXPECT_NE(html.find("<th>gene-gene correlation of correlations</th><td class=\"num\">"), std::string::npos)
      << "a number in the metrics table";
  EXPECT_NE(html.find("<th>gene-gene r</th>"), std::string::npos) << "a column of the cell-type table";
  EXPECT_NE(html.find("UMAP is not used"), std::string::npos) << "the embedding says what it is";
  EXPECT_EQ(html.find("may be copies"), std::string::npos) << "no memorisation note for distinct cells";

  const auto svgs = figures(html);
  ASSERT_EQ(svgs.size(), 8u)
      << "3 embedding panels, neighbour histogram, proportions, 2 gene-gene heat maps, gene means";
  const size_t n = static_cast<size_t>(e.metrics.n_cells);
  EXPECT_EQ(count(svgs[0], "<circle"), 2 * n) << "real and generated";
  EXPECT_EQ(count(svgs[1], "<circle"), n) << "real cells by type";
  EXPECT_EQ(count(svgs[2], "<circle"), n) << "generated cells by type";
  EXPECT_EQ(count(svgs[7], "<circle"), e.genes.size()) << "one point per gene";

  // The heat maps: one square per gene pair, each with its genes and value, the largest type named.
  ASSERT_GE(e.gene_gene_type, 0);
  const size_t k = e.gene_gene_genes.size();
  ASSERT_GE(k, 3u);
  for (const size_t panel : {5u, 6u}) {
    EXPECT_EQ(count(svgs[panel], "</title></rect>"), k * k) << panel;
    EXPECT_NE(svgs[panel].find(html_escape(e.gene_gene_genes[0]) + " / "), std::string::npos);
  }
  EXPECT_NE(
      svgs[5].find("Real: " + html_escape(e.metrics.cell_types[static_cast<size_t>(e.gene_gene_type)].name)),
      std::string::npos);
  EXPECT_NE(svgs[6].find("Generated: "), std::string::npos);

  // Labels are escaped everywhere, and every type appears in the proportions table.
  EXPECT_EQ(html.find("<CD4+>"), std::string::npos);
  EXPECT_NE(html.find("<th>T &lt;CD4+&gt; &amp; co</th>"), std::string::npos);
  for (const auto& t : e.metrics.cell_types) {
    EXPECT_NE(html.find(html_escape(t.name)), std::string::npos) << t.name;
  }
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_NE(html.find("lingshu eval generation real.h5ad gen.h5ad"), std::string::npos) << "provenance";
}

TEST(GenerationReport, NoHeatMapsWhenNoTypeIsScored) {
  const GenerationEvaluation e = evaluate_halves(false, 1000);
  ASSERT_EQ(e.gene_gene_type, -1);
  const std::string html = generation_report_html(e, {});
  EXPECT_EQ(html.find("<h2>Gene-gene structure</h2>"), std::string::npos);
  EXPECT_EQ(figures(html).size(), 6u);
  EXPECT_NE(html.find("gene-gene structure not computed"), std::string::npos) << "the note says why";
}

TEST(GenerationReport, WarnsWhenGeneratedCellsCopyRealOnes) {
  const GenerationEvaluation e = evaluate_halves(true);
  ASSERT_LT(e.metrics.knn_auc, 0.4) << "each cell's twin is always among its neighbours";
  const std::string html = generation_report_html(e, {});
  EXPECT_NE(html.find("may be copies of the real cells"), std::string::npos);
}

}  // namespace
}  // namespace lingshu::report
