#include "report/generation_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report/svg.h"

namespace lingshu::report {

namespace {

constexpr const char* kRealColour = "#4e79a7";
constexpr const char* kGeneratedColour = "#f28e2b";
// Beyond this many cells per side the embedding shows an evenly spaced subset (the file stays small).
constexpr int64_t kMaxPlottedCells = 4000;

std::string value_text(double v) {
  return std::isfinite(v) ? format_number(v, 4) : "n/a";
}

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100 * fraction);
}

// Rows [begin, end) of the embedding, thinned to at most kMaxPlottedCells by an even stride.
std::vector<int64_t> plotted_rows(int64_t begin, int64_t end) {
  const int64_t n = end - begin;
  const int64_t stride = std::max<int64_t>(1, (n + kMaxPlottedCells - 1) / kMaxPlottedCells);
  std::vector<int64_t> rows;
  for (int64_t i = begin; i < end; i += stride) rows.push_back(i);
  return rows;
}

ScatterSeries embedding_series(const GenerationEvaluation& e, const std::vector<int64_t>& rows,
                               std::string name, std::string colour) {
  ScatterSeries s{std::move(name), std::move(colour), {}, {}};
  for (const int64_t r : rows) {
    s.x.push_back(e.embedding.at(r, 0));
    s.y.push_back(e.embedding.cols > 1 ? e.embedding.at(r, 1) : 0.0);
  }
  return s;
}

std::string axis_label(const GenerationEvaluation& e, size_t pc) {
  if (pc < e.explained_variance_ratio.size()) {
    return fmt::format("PC{} ({:.1f}% of variance)", pc + 1, 100 * e.explained_variance_ratio[pc]);
  }
  return fmt::format("PC{}", pc + 1);
}

void add_summary(HtmlPage& page, const GenerationEvaluation& e, const GenerationReportInfo& info) {
  const GenerationMetrics& m = e.metrics;
  page.add_paragraph(fmt::format(
      "{} generated cells ({}) compared with {} real cells ({}) on {} shared genes. Expression is "
      "log1p(counts / total x 10,000); distances are measured on the first {} principal components of real "
      "and "
      "generated cells together.",
      m.n_cells, info.generated_file, m.n_cells, info.real_file,
      format_number(static_cast<double>(m.n_genes)), m.n_pcs));
  const std::string verdict = !std::isfinite(m.knn_auc) ? "could not be computed"
                              : m.knn_auc < 0.6         ? "barely tells them apart"
                              : m.knn_auc < 0.8         ? "partly tells them apart"
                                                        : "readily tells them apart";
  if (m.knn_auc < 0.4) {
    page.add_note(
        "The kNN AUC is well below 0.5: generated cells sit closer to real cells than real cells sit to each "
        "other. They may be copies of the real cells (a model that memorised its training data, or the same "
        "file twice); score generated cells against held-out cells the model never saw.");
  }
  page.add_paragraph(fmt::format(
      "A nearest-neighbour classifier {} (AUC {}; 0.5 = indistinguishable, 1 = fully separable). "
      "Mean-expression "
      "correlations are shown too, but they only see each gene's average: a generator with the right "
      "marginals "
      "and no gene-gene structure (lingshu baseline independent) scores close to 1 on them, so judge by the "
      "first rows of the table.",
      verdict, value_text(m.knn_auc)));
}

void add_metrics_table(HtmlPage& page, const GenerationMetrics& m, int min_cells, int n_genes) {
  std::vector<std::vector<std::string>> rows = {
      {"kNN real-vs-generated AUC", value_text(m.knn_auc), "0.5",
       "share of generated cells among each cell's 30 nearest neighbours, as a classifier score"},
      {"5-NN classifier AUC", value_text(m.classifier_auc), "0.5",
       "a 5-nearest-neighbour classifier fitted on a random 70% of the pooled cells, scored on the other "
       "30% (the definition most papers use)"},
      {"copy check", value_text(m.copy_ratio), "1 (well below 1 = copies)",
       std::isfinite(m.copy_ratio)
           ? fmt::format(
                 "median distance to the nearest of {} training cells, generated ({}) over real ({}), "
                 "in a PCA of the training cells",
                 m.copy_train_cells, value_text(m.copy_generated_distance), value_text(m.copy_real_distance))
           : "needs --train: the cells the model was trained on"},
      {"MMD", value_text(m.mmd), "near 0 (real halves ~0.01)",
       "distance between the two distributions in PC space (5 Gaussian kernels)"},
      {"iLISI (scaled)", value_text(m.ilisi), "~0.93 (0 = separate)",
       "how evenly real and generated cells mix in 30-cell neighbourhoods"},
      {"1-WD", value_text(m.wasserstein1), "near 0",
       "mean per-gene Wasserstein-1 distance of expression values"},
      {"gene-gene correlation of correlations", value_text(m.gene_gene_corr),
       "~real halves (independent genes ~0)",
       m.label.empty()
           ? "needs --label: correlations among genes are compared within cell types"
           : fmt::format("per {} with >= {} cells on both sides: Pearson between the real and "
                         "generated correlation matrices of its {} most variable genes; weighted by "
                         "real cells over {} scored types",
                         m.label, min_cells, n_genes, m.gene_gene_types)},
      {"gene-gene correlation mean |diff|", value_text(m.gene_gene_mad), "~real halves (lower = closer)",
       "mean absolute difference between the same two correlation matrices"},
      {"Pearson of per-gene means", value_text(m.mean_pearson), "1",
       "agreement of average expression per gene"},
      {"Spearman of per-gene means", value_text(m.mean_spearman), "1",
       "rank agreement of average expression"},
  };
  if (!m.label.empty()) {
    rows.push_back({"cell-type proportion TV distance", value_text(m.proportion_tv), "0",
                    "generated cells labelled by their 15 nearest real cells; half the L1 distance of the "
                    "proportions"});
    rows.push_back({"marker-gene mean Pearson", value_text(m.marker_pearson_mean), "1",
                    fmt::format("per cell type, over its 50 marker genes; averaged over types ({} labels)",
                                m.generated_grouping)});
    if (std::isfinite(m.label_agreement)) {
      rows.push_back({"declared vs transferred labels", value_text(m.label_agreement), "1",
                      "share of generated cells that look like the type they were generated as"});
    }
  }
  page.add_table({"metric", "value", "indistinguishable", "what it measures"}, rows);
}

void add_embedding(HtmlPage& page, const GenerationEvaluation& e) {
  const int64_t n = e.metrics.n_cells;
  const auto real_rows = plotted_rows(0, n);
  const auto generated_rows = plotted_rows(n, 2 * n);
  page.add_section("Embedding");
  page.add_note(
      "2-D view: the first two principal components of real and generated cells together. UMAP is not used: "
      "no "
      "maintained UMAP library for C++ is packaged in Debian, and PCA keeps distances faithful (it can hide "
      "differences that the kNN AUC and MMD, computed on all PCs, still see).");
  ScatterOptions options;
  options.x_label = axis_label(e, 0);
  options.y_label = axis_label(e, 1);
  options.point_radius = 1.8;
  options.opacity = 0.55;
  options.width = 420;
  options.height = 390;
  // Shared axes across the panels.
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (int64_t r = 0; r < e.embedding.rows; ++r) {
    x_lo = std::min<double>(x_lo, e.embedding.at(r, 0));
    x_hi = std::max<double>(x_hi, e.embedding.at(r, 0));
    const double y = e.embedding.cols > 1 ? e.embedding.at(r, 1) : 0.0;
    y_lo = std::min(y_lo, y);
    y_hi = std::max(y_hi, y);
  }
  const double x_pad = std::max(1e-9, (x_hi - x_lo) * 0.04);
  const double y_pad = std::max(1e-9, (y_hi - y_lo) * 0.04);
  options.x_limits = std::pair{x_lo - x_pad, x_hi + x_pad};
  options.y_limits = std::pair{y_lo - y_pad, y_hi + y_pad};

  std::vector<std::string> figures;
  options.title = "Real and generated cells";
  figures.push_back(scatter_svg({embedding_series(e, real_rows, "real", kRealColour),
                                 embedding_series(e, generated_rows, "generated", kGeneratedColour)},
                                options));
  const auto& types = e.metrics.cell_types;
  if (!types.empty()) {
    const auto by_type = [&](const std::vector<int64_t>& rows, int64_t offset,
                             const std::vector<int32_t>& codes) {
      std::vector<ScatterSeries> series;
      for (size_t t = 0; t < types.size(); ++t) {
        std::vector<int64_t> members;
        for (const int64_t r : rows) {
          if (codes[static_cast<size_t>(r - offset)] == static_cast<int32_t>(t)) members.push_back(r);
        }
        series.push_back(embedding_series(e, members, types[t].name, palette_color(t)));
      }
      std::vector<int64_t> unlabelled;
      for (const int64_t r : rows) {
        if (codes[static_cast<size_t>(r - offset)] < 0) unlabelled.push_back(r);
      }
      if (!unlabelled.empty())
        series.insert(series.begin(), embedding_series(e, unlabelled, "no label", "#cccccc"));
      return series;
    };
    options.title = fmt::format("Real cells by {}", e.metrics.label);
    figures.push_back(scatter_svg(by_type(real_rows, 0, e.real_types), options));
    options.title = fmt::format("Generated cells by transferred {}", e.metrics.label);
    figures.push_back(scatter_svg(by_type(generated_rows, n, e.generated_types), options));
  }
  page.add_figures(figures, n > kMaxPlottedCells
                                ? fmt::format("{} of {} cells per side shown.", real_rows.size(), n)
                                : "");
}

void add_neighbour_scores(HtmlPage& page, const GenerationEvaluation& e) {
  constexpr int kBins = 10;
  const int64_t n = e.metrics.n_cells;
  std::vector<double> real(kBins, 0.0);
  std::vector<double> generated(kBins, 0.0);
  for (int64_t i = 0; i < 2 * n; ++i) {
    const double score = e.generated_neighbour_fraction[static_cast<size_t>(i)];
    const int bin = std::clamp(static_cast<int>(score * kBins), 0, kBins - 1);
    (i < n ? real : generated)[static_cast<size_t>(bin)] += 1.0 / static_cast<double>(n);
  }
  std::vector<std::string> bins;
  for (int b = 0; b < kBins; ++b) bins.push_back(fmt::format("{:.1f}-{:.1f}", b / 10.0, (b + 1) / 10.0));
  BarOptions options;
  options.title = "Share of generated cells among each cell's neighbours";
  options.y_label = "fraction of cells";
  options.width = 620;
  options.height = 320;
  page.add_section("Neighbourhoods");
  page.add_figures(
      {bar_chart_svg(bins,
                     {{"real cells", kRealColour, real}, {"generated cells", kGeneratedColour, generated}},
                     options)},
      "Indistinguishable cells put both histograms around 0.5; separated ones push real cells to 0 and "
      "generated cells to 1 (this is what the kNN AUC summarises).");
}

void add_cell_types(HtmlPage& page, const GenerationEvaluation& e) {
  const GenerationMetrics& m = e.metrics;
  if (m.cell_types.empty()) return;
  page.add_section(fmt::format("Cell types ({})", m.label));
  std::vector<std::string> names;
  std::vector<double> real;
  std::vector<double> generated;
  for (const auto& t : m.cell_types) {
    names.push_back(t.name);
    real.push_back(t.real_fraction);
    generated.push_back(t.generated_fraction);
  }
  BarOptions options;
  options.title = fmt::format("Proportions (TV distance {})", value_text(m.proportion_tv));
  options.y_label = "fraction of cells";
  options.width = std::max(620, 60 * static_cast<int>(names.size()) + 260);
  options.height = 380;
  page.add_figures({bar_chart_svg(
      names, {{"real", kRealColour, real}, {"generated (transferred)", kGeneratedColour, generated}},
      options)});
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : m.cell_types) {
    std::string markers;
    for (size_t i = 0; i < std::min<size_t>(6, t.markers.size()); ++i)
      markers += (i ? ", " : "") + t.markers[i];
    rows.push_back({t.name, format_number(static_cast<double>(t.n_real)),
                    format_number(static_cast<double>(t.n_generated)), percent(t.real_fraction),
                    percent(t.generated_fraction), value_text(t.marker_pearson), value_text(t.gene_gene_corr),
                    value_text(t.gene_gene_mad), markers});
  }
  page.add_table(
      {m.label, "real cells", "generated (transferred)", "real %", "generated %",
       fmt::format("marker r ({})", m.generated_grouping), "gene-gene r", "gene-gene |diff|", "top markers"},
      rows);
  page.add_paragraph(
      fmt::format("Marker r: per type, the Pearson correlation between real and generated mean expression "
                  "over the type's 50 "
                  "marker genes (largest mean difference against the other real cells); generated cells are "
                  "grouped by {} "
                  "labels. Types with fewer than {} generated cells show n/a. Gene-gene r and |diff|: the "
                  "correlation between, and mean absolute difference of, the real and generated correlation "
                  "matrices of the type's {} most variable real genes (same grouping); n/a for types with "
                  "fewer than {} cells on a side.",
                  m.generated_grouping == "declared" ? "the generated file's own" : "kNN-transferred",
                  e.options.min_group_cells, e.options.gene_gene_genes, e.options.gene_gene_min_cells));
}

// Leaf order of average-linkage clustering with similarity r (a k x k correlation matrix), so that
// modules of co-varying genes sit together as blocks in the heat maps.
std::vector<size_t> cluster_order(const std::vector<double>& corr, size_t k) {
  std::vector<std::vector<size_t>> members(k);
  for (size_t i = 0; i < k; ++i) members[i] = {i};
  std::vector<double> similarity = corr;  // average r between clusters, updated as they merge
  std::vector<bool> active(k, true);
  for (size_t merges = 1; merges < k; ++merges) {
    size_t a = 0, b = 0;
    double best = -INFINITY;
    for (size_t i = 0; i < k; ++i) {
      for (size_t j = i + 1; j < k && active[i]; ++j) {
        if (active[j] && similarity[i * k + j] > best) {
          best = similarity[i * k + j];
          a = i;
          b = j;
        }
      }
    }
    if (a == b) break;  // only non-finite similarities left
    const auto na = static_cast<double>(members[a].size());
    const auto nb = static_cast<double>(members[b].size());
    for (size_t c = 0; c < k; ++c) {
      if (!active[c] || c == a || c == b) continue;
      const double s = (na * similarity[a * k + c] + nb * similarity[b * k + c]) / (na + nb);
      similarity[a * k + c] = s;
      similarity[c * k + a] = s;
    }
    members[a].insert(members[a].end(), members[b].begin(), members[b].end());
    members[b].clear();
    active[b] = false;
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < k; ++i) order.insert(order.end(), members[i].begin(), members[i].end());
  return order;
}

void add_gene_gene(HtmlPage& page, const GenerationEvaluation& e) {
  const GenerationMetrics& m = e.metrics;
  if (e.gene_gene_type < 0) return;
  const CellTypeResult& type = m.cell_types[static_cast<size_t>(e.gene_gene_type)];
  const size_t k = e.gene_gene_genes.size();
  const auto order = cluster_order(e.gene_gene_real, k);
  std::vector<std::string> labels;
  for (const size_t i : order) labels.push_back(e.gene_gene_genes[i]);
  const auto reordered = [&](const std::vector<double>& matrix) {
    std::vector<double> out;
    for (const size_t i : order) {
      for (const size_t j : order) out.push_back(matrix[i * k + j]);
    }
    return out;
  };
  page.add_section("Gene-gene structure");
  page.add_paragraph(fmt::format(
      "Correlation of correlations {} and mean |difference| {} (weighted over {} scored types). A generator "
      "that samples each gene independently within its cell type keeps every marginal and scores about 0 "
      "here; compare with two halves of real data (pbmc3k about 0.44, paul15 about 0.66), not with 1: "
      "correlations estimated from tens to hundreds of cells are noisy. That noise dominates the mean "
      "|difference|, which therefore separates less (pbmc3k: real halves 0.083, independent genes 0.096).",
      value_text(m.gene_gene_corr), value_text(m.gene_gene_mad), m.gene_gene_types));
  HeatmapOptions options;
  options.row_labels = labels;
  options.column_labels = labels;
  options.cell = k > 60 ? 6.0 : 8.0;
  options.scale_label = "Pearson r";
  std::vector<std::string> figures;
  options.title =
      fmt::format("Real: {} ({} cells)", type.name, format_number(static_cast<double>(type.n_real)));
  figures.push_back(heatmap_svg(reordered(e.gene_gene_real), k, k, options));
  options.title = fmt::format("Generated: {} ({} cells)", type.name,
                              format_number(static_cast<double>(type.n_grouped_generated)));
  figures.push_back(heatmap_svg(reordered(e.gene_gene_generated), k, k, options));
  page.add_figures(
      figures,
      fmt::format(
          "Pearson correlations among the {} most variable genes of the real {} cells (the largest scored "
          "type; r {}, mean |diff| {}), in the same gene order on both sides (average-linkage "
          "clustering of the real matrix). A gene constant in the generated cells shows as a white "
          "row and column.",
          k, type.name, value_text(type.gene_gene_corr), value_text(type.gene_gene_mad)));
}

void add_gene_means(HtmlPage& page, const GenerationEvaluation& e) {
  page.add_section("Per-gene mean expression");
  ScatterOptions options;
  options.title = fmt::format("Pearson {}, Spearman {}", value_text(e.metrics.mean_pearson),
                              value_text(e.metrics.mean_spearman));
  options.x_label = "real: mean log1p(CP10k)";
  options.y_label = "generated: mean log1p(CP10k)";
  options.diagonal = true;
  options.show_legend = false;
  options.point_radius = 1.6;
  options.opacity = 0.5;
  options.width = 520;
  options.height = 500;
  page.add_figures(
      {scatter_svg({{"genes", "#59a14f", e.real_gene_means, e.generated_gene_means}}, options)},
      "One point per gene: its mean log-normalised expression in real (x) and generated (y) cells; "
      "the dashed line is y = x.");
}

void add_notes_and_provenance(HtmlPage& page, const GenerationEvaluation& e,
                              const GenerationReportInfo& info) {
  page.add_section("Notes");
  for (const auto& note : e.metrics.notes) page.add_paragraph(note);
  page.add_paragraph(fmt::format(
      "Settings: {} PCs, {} neighbours for the kNN AUC and iLISI, {} for label transfer, seed {}. iLISI uses "
      "uniform weights over the neighbours (harmony weights them by a perplexity kernel), so perfectly mixed "
      "cells score about 0.93, not 1.",
      e.metrics.n_pcs, e.options.k_neighbors, e.options.label_k, e.options.seed));
  page.add_paragraph(
      fmt::format("Made by lingshu {} in {:.1f} s: {}", info.version, info.seconds, info.command_line));
}

}  // namespace

std::string generation_report_html(const GenerationEvaluation& evaluation, const GenerationReportInfo& info) {
  HtmlPage page(fmt::format("Generated vs real cells: {} vs {}", info.generated_file, info.real_file));
  add_summary(page, evaluation, info);
  add_metrics_table(page, evaluation.metrics, evaluation.options.gene_gene_min_cells,
                    evaluation.options.gene_gene_genes);
  add_embedding(page, evaluation);
  add_neighbour_scores(page, evaluation);
  add_cell_types(page, evaluation);
  add_gene_gene(page, evaluation);
  add_gene_means(page, evaluation);
  add_notes_and_provenance(page, evaluation, info);
  return page.render();
}

}  // namespace lingshu::report
