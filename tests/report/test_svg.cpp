// The SVG/HTML primitives: escaping, number formatting, geometry of scatter points and bars (read
// back from the SVG text), and well-formedness checked by Python's XML parser.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "report/svg.h"
#include "test_support.h"

namespace lingshu::report {
namespace {

using lingshu::testing::python_has;
using lingshu::testing::run_python;

struct Circle {
  double cx, cy;
};

std::vector<Circle> circles(const std::string& svg) {
  std::vector<Circle> out;
  const std::regex re(R"re(<circle cx="([-0-9.]+)" cy="([-0-9.]+)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  }
  return out;
}

struct Box {
  double x, y, w, h;
};

// The plot frame is the only unfilled rect with a stroke.
Box frame_of(const std::string& svg) {
  const std::regex re(
      R"re(<rect x="([-0-9.]+)" y="([-0-9.]+)" width="([-0-9.]+)" height="([-0-9.]+)" fill="none")re");
  std::smatch m;
  EXPECT_TRUE(std::regex_search(svg, m, re));
  return {std::stod(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4])};
}

std::vector<Box> bars(const std::string& svg) {
  std::vector<Box> out;
  const std::regex re(
      R"re(<rect x="([-0-9.]+)" y="([-0-9.]+)" width="([-0-9.]+)" height="([-0-9.]+)" fill="#[0-9a-f]+"><title>)re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3]), std::stod((*it)[4])});
  }
  return out;
}

void expect_well_formed_xml(const std::string& xml) {
  if (!python_has("xml")) GTEST_SKIP() << "python3 not available";
  std::string escaped;
  for (const char c : xml) {
    if (c == '\\' || c == '\'') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  const auto result =
      run_python("import xml.etree.ElementTree as ET\nET.fromstring('" + escaped + "')\nprint('ok')\n");
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST(Svg, EscapesMarkupCharacters) {
  EXPECT_EQ(html_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  EXPECT_EQ(html_escape("CD4+ T"), "CD4+ T");
}

TEST(Svg, FormatsNumbersCompactly) {
  EXPECT_EQ(format_number(0.99834, 3), "0.998");
  EXPECT_EQ(format_number(2700), "2700");
  EXPECT_EQ(format_number(13714), "13,714");
  EXPECT_EQ(format_number(-1234567), "-1,234,567");
  EXPECT_EQ(format_number(1.23456e-5, 3), "1.23e-05");
  EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN()), "n/a");
}

TEST(Svg, PaletteColoursDifferAndCycle) {
  EXPECT_NE(palette_color(0), palette_color(1));
  EXPECT_EQ(palette_color(0), palette_color(20));
}

TEST(Svg, ScatterPointsKeepOrderAndStayInsideTheFrame) {
  const std::vector<double> x = {0.0, 1.0, 2.0, 3.0, std::nan("")};
  const std::vector<double> y = {10.0, 30.0, 20.0, 40.0, 5.0};
  ScatterOptions options;
  options.title = "t";
  const std::string svg = scatter_svg({{"cells <real>", "#4e79a7", x, y}}, options);
  const auto points = circles(svg);
  ASSERT_EQ(points.size(), 4u);  // the NaN point is skipped
  const Box frame = frame_of(svg);
  for (const auto& p : points) {
    EXPECT_GT(p.cx, frame.x);
    EXPECT_LT(p.cx, frame.x + frame.w);
    EXPECT_GT(p.cy, frame.y);
    EXPECT_LT(p.cy, frame.y + frame.h);
  }
  // x increases left to right; y increases upwards (smaller pixel y), linearly.
  EXPECT_LT(points[0].cx, points[1].cx);
  EXPECT_NEAR(points[1].cx - points[0].cx, points[3].cx - points[2].cx, 0.15);
  EXPECT_GT(points[0].cy, points[2].cy);
  EXPECT_GT(points[2].cy, points[1].cy);
  EXPECT_NEAR(points[0].cy - points[2].cy, points[2].cy - points[1].cy, 0.15);
  EXPECT_NE(svg.find("cells &lt;real&gt;"), std::string::npos) << "legend entry, escaped";
  expect_well_formed_xml(svg);
}

TEST(Svg, DiagonalScatterSharesTheAxisRange) {
  ScatterOptions options;
  options.diagonal = true;
  options.show_legend = false;
  // Points on y = x must land on a straight 45-degree line in pixels when the axes share a range.
  const std::string svg = scatter_svg({{"", "black", {0.0, 5.0, 10.0}, {0.0, 5.0, 10.0}}}, options);
  const auto points = circles(svg);
  ASSERT_EQ(points.size(), 3u);
  const double sx = (points[2].cx - points[0].cx) / 10.0;
  const double sy = (points[0].cy - points[2].cy) / 10.0;
  EXPECT_GT(sx, 0);
  EXPECT_NEAR(sx, sy, 0.02) << "one data unit has the same length on both axes";
  EXPECT_NEAR(frame_of(svg).w, frame_of(svg).h, 0.1);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
}

TEST(Svg, EqualAxesKeepTheEmbeddingShape) {
  ScatterOptions options;
  options.equal_axes = true;
  // A wide cloud (x span 40, y span 4): one unit must be as long in x as in y.
  const std::string svg = scatter_svg({{"a", "black", {-20.0, 20.0, 0.0}, {0.0, 0.0, 4.0}}}, options);
  const auto points = circles(svg);
  ASSERT_EQ(points.size(), 3u);
  const double unit_x = (points[1].cx - points[0].cx) / 40.0;
  const double unit_y = (points[0].cy - points[2].cy) / 4.0;
  EXPECT_NEAR(unit_x, unit_y, 0.05 * unit_x);
}

TEST(Svg, FixedLimitsAreSharedAndClipPointsOutside) {
  ScatterOptions options;
  options.x_limits = std::pair{0.0, 10.0};
  options.y_limits = std::pair{0.0, 10.0};
  const std::string a = scatter_svg({{"a", "black", {0.0, 10.0, 20.0}, {0.0, 10.0, 5.0}}}, options);
  const std::string b = scatter_svg({{"a", "black", {5.0}, {5.0}}}, options);
  const auto pa = circles(a);
  const auto pb = circles(b);
  ASSERT_EQ(pa.size(), 2u) << "the point at x = 20 lies outside the limits";
  ASSERT_EQ(pb.size(), 1u);
  // Same limits: the midpoint of one panel's corners is the other panel's (5, 5).
  EXPECT_NEAR((pa[0].cx + pa[1].cx) / 2, pb[0].cx, 0.1);
  EXPECT_NEAR((pa[0].cy + pa[1].cy) / 2, pb[0].cy, 0.1);
}

TEST(Svg, BarHeightsAreProportionalToValues) {
  BarOptions options;
  options.title = "proportions";
  const std::string svg = bar_chart_svg(
      {"B cells", "T cells", "NK"},
      {{"real", "#4e79a7", {0.2, 0.6, 0.0}}, {"generated", "#f28e2b", {0.1, 0.3, 0.3}}}, options);
  const auto b = bars(svg);
  ASSERT_EQ(b.size(), 5u);  // the zero bar is not drawn
  // Order: category-major; real 0.2, generated 0.1, real 0.6, generated 0.3, generated 0.3.
  EXPECT_NEAR(b[0].h / b[1].h, 2.0, 0.02);
  EXPECT_NEAR(b[2].h / b[0].h, 3.0, 0.02);
  EXPECT_NEAR(b[3].h, b[4].h, 0.05);
  const Box frame = frame_of(svg);
  for (const auto& bar : b) EXPECT_NEAR(bar.y + bar.h, frame.y + frame.h, 0.15) << "bars stand on the axis";
  EXPECT_LT(b[0].x, b[1].x);
  EXPECT_LT(b[1].x + b[1].w, b[2].x);
  expect_well_formed_xml(svg);
}

TEST(Svg, HeatmapSquaresHaveTheScaleColoursAndEscapedLabels) {
  HeatmapOptions options;
  options.title = "correlations";
  options.row_labels = {"A", "B<1>"};
  options.column_labels = {"A", "B<1>", "C"};
  options.scale_label = "Pearson r";
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::string svg = heatmap_svg({1.0, 0.0, -1.0, 0.5, nan, -7.0}, 2, 3, options);
  const auto squares = bars(svg);  // squares carry a <title>, like bars
  ASSERT_EQ(squares.size(), 6u);
  // Row-major, one cell apart; every square the same size.
  EXPECT_NEAR(squares[1].x - squares[0].x, options.cell, 1e-9);
  EXPECT_NEAR(squares[3].y - squares[0].y, options.cell, 1e-9);
  EXPECT_DOUBLE_EQ(squares[3].x, squares[0].x);
  // hi red, the middle white, lo blue, NaN grey, beyond lo clamped to lo's blue.
  const auto fill_of = [&](size_t i) {
    const std::regex re(R"re(fill="(#[0-9a-f]+)"><title>)re");
    auto it = std::sregex_iterator(svg.begin(), svg.end(), re);
    std::advance(it, static_cast<std::ptrdiff_t>(i));
    return (*it)[1].str();
  };
  EXPECT_EQ(fill_of(0), "#b2182b");
  EXPECT_EQ(fill_of(1), "#ffffff");
  EXPECT_EQ(fill_of(2), "#2166ac");
  EXPECT_EQ(fill_of(4), "#bbbbbb");
  EXPECT_EQ(fill_of(5), "#2166ac");
  EXPECT_NE(svg.find("<title>B&lt;1&gt; / A: 0.5</title>"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("B<1>"), std::string::npos);
  EXPECT_NE(svg.find("Pearson r"), std::string::npos);
  expect_well_formed_xml(svg);
}

TEST(Svg, PageIsSelfContainedAndEscaped) {
  HtmlPage page("Report <pbmc3k>");
  page.add_section("Metrics");
  page.add_table({"metric", "value"}, {{"MMD", "0.01"}, {"a&b", "1"}, {"type", "CD4 T"}});
  page.add_note("PCA, not UMAP");
  page.add_figures({scatter_svg({{"x", "red", {1, 2}, {3, 4}}}, {})}, "caption");
  const std::string html = page.render();
  EXPECT_NE(html.find("<title>Report &lt;pbmc3k&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<th>a&amp;b</th><td class=\"num\">1</td>"), std::string::npos)
      << "numbers align right";
  EXPECT_NE(html.find("<td>CD4 T</td>"), std::string::npos) << "text aligns left";
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  // The only URL is the SVG namespace, which is an identifier, not a fetch.
  const std::regex url("https?://[^\"]*");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), url); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ(it->str(), "http://www.w3.org/2000/svg");
  }
  // XHTML-compatible apart from the doctype: parse the body as XML.
  const auto start = html.find("<body>");
  const auto end = html.find("</body>");
  ASSERT_NE(start, std::string::npos);
  expect_well_formed_xml(html.substr(start, end + 7 - start));
}

}  // namespace
}  // namespace lingshu::report
