#pragma once
// Building blocks for self-contained HTML reports: inline SVG plots (scatter with colour groups and
// a legend, grouped bar chart) and an HTML page of sections, tables and figures. No scripts, no
// fonts or styles fetched from the network: a report opens the same way offline, years later.
//
//   report::ScatterOptions opt{.title = "Mean expression", .x_label = "real", .y_label = "predicted"};
//   opt.diagonal = true;
//   const std::string svg = report::scatter_svg({{"genes", report::palette_color(0), xs, ys}}, opt);
//   report::HtmlPage page("lingshu report");
//   page.add_section("Expression");
//   page.add_figures({svg});
//   write_text_atomically("report.html", page.render());
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lingshu::report {

// Escapes & < > " ' for text and attribute values.
std::string html_escape(std::string_view text);

// A colour from a qualitative palette (Tableau 10, then a second set); cycles after 20.
std::string palette_color(size_t index);

// Formats a number compactly for tables and axis ticks ("0.998", "1.2e-05", "2,700").
std::string format_number(double value, int significant_digits = 4);

struct ScatterSeries {
  std::string name;   // legend entry ("" = not listed)
  std::string color;  // any CSS colour
  std::vector<double> x;
  std::vector<double> y;  // same length as x; non-finite points are skipped
};

struct ScatterOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 520;
  int height = 440;
  double point_radius = 2.0;
  double opacity = 0.6;
  bool diagonal = false;    // draw y = x (for predicted-vs-real plots); implies equal_axes
  bool equal_axes = false;  // same range and scale on both axes (a square plot area)
  bool show_legend = true;
  // Fixed axis ranges (lo, hi), so that several panels share axes; unset = fitted to the data.
  std::optional<std::pair<double, double>> x_limits;
  std::optional<std::pair<double, double>> y_limits;
};

// A scatter plot; series are drawn in order (later ones on top), the legend sits at the right.
std::string scatter_svg(const std::vector<ScatterSeries>& series, const ScatterOptions& options);

struct BarSeries {
  std::string name;
  std::string color;
  std::vector<double> values;  // one per category
};

struct BarOptions {
  std::string title;
  std::string y_label;
  int width = 640;
  int height = 360;
  bool show_values = false;  // print each bar's value above it
};

// Grouped vertical bars: one group per category, one bar per series. Values must be >= 0.
std::string bar_chart_svg(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                          const BarOptions& options);

struct HeatmapOptions {
  std::string title;
  std::vector<std::string> row_labels;     // one per row, or empty for none
  std::vector<std::string> column_labels;  // one per column (written at the top), or empty
  double lo = -1.0;                        // colour range: lo blue, the middle white, hi red
  double hi = 1.0;
  double cell = 8.0;        // pixels per cell side
  std::string scale_label;  // beside the colour bar
};

// A rows x cols matrix (row-major) as coloured squares on a diverging blue-white-red scale, values
// clamped to [lo, hi], with a colour bar; non-finite values are grey. Each square's <title> gives its
// labels and value.
std::string heatmap_svg(const std::vector<double>& values, size_t rows, size_t cols,
                        const HeatmapOptions& options);

// One HTML document with inline CSS. Text arguments are escaped; `svg`/`html` arguments are
// inserted as they are (they come from the functions above).
class HtmlPage {
 public:
  explicit HtmlPage(std::string title);

  void add_section(const std::string& heading);
  void add_paragraph(const std::string& text);
  // A highlighted note (e.g. "UMAP is not available; the embedding is PCA").
  void add_note(const std::string& text);
  // A table; `emphasise_first_column` bolds row names.
  void add_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                 bool emphasise_first_column = true);
  // SVG figures side by side (wrapping on narrow windows), with an optional caption below.
  void add_figures(const std::vector<std::string>& svgs, const std::string& caption = "");
  void add_raw_html(const std::string& html);

  std::string render() const;

 private:
  std::string title_;
  std::string body_;
};

}  // namespace lingshu::report
