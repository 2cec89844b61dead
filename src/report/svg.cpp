#include "report/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

namespace lingshu::report {

namespace {

constexpr double kFontSize = 12.0;
constexpr double kCharWidth = 6.6;  // rough width of one 12 px sans-serif character, for layout

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();

  void include(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
  // Widens a degenerate or empty range so that mapping to pixels never divides by zero, and adds
  // a margin so points do not sit on the frame.
  Range padded(double fraction) const {
    if (empty()) return {0.0, 1.0};
    if (hi - lo < 1e-12 * std::max(1.0, std::abs(lo))) return {lo - 0.5, hi + 0.5};
    const double pad = (hi - lo) * fraction;
    return {lo - pad, hi + pad};
  }
};

// A "nice" step (1, 2 or 5 times a power of ten) giving about `target` ticks over the range.
double nice_step(double span, int target) {
  const double raw = span / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double nice = fraction < 1.5 ? 1.0 : fraction < 3.5 ? 2.0 : fraction < 7.5 ? 5.0 : 10.0;
  return nice * magnitude;
}

std::vector<double> ticks_within(const Range& range, int target) {
  const double step = nice_step(range.hi - range.lo, target);
  std::vector<double> ticks;
  for (double t = std::ceil(range.lo / step) * step; t <= range.hi + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

// Maps data coordinates to the pixel rectangle of the plot area (y grows downwards in SVG).
struct Frame {
  double left, top, width, height;
  Range x, y;

  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * width; }
  double py(double v) const { return top + height - (v - y.lo) / (y.hi - y.lo) * height; }
};

std::string svg_open(int width, int height) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"{2}\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      width, height, kFontSize);
}

std::string text_at(double x, double y, std::string_view text, std::string_view anchor,
                    std::string_view extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"{}>{}</text>\n", x, y, anchor, extra,
                     html_escape(text));
}

std::string title_text(int width, std::string_view title) {
  if (title.empty()) return "";
  return text_at(width / 2.0, 20, title, "middle", " font-size=\"14\" font-weight=\"bold\"");
}

std::string x_axis(const Frame& f, std::string_view label) {
  std::string out;
  const double base = f.top + f.height;
  for (const double t : ticks_within(f.x, 5)) {
    const double x = f.px(t);
    out +=
        fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>\n",
                    x, f.top, base);
    out +=
        fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#444\"/>\n",
                    x, base, base + 4);
    out += text_at(x, base + 17, format_number(t, 3), "middle");
  }
  out += text_at(f.left + f.width / 2, base + 36, label, "middle");
  return out;
}

std::string y_axis(const Frame& f, std::string_view label) {
  std::string out;
  for (const double t : ticks_within(f.y, 5)) {
    const double y = f.py(t);
    out +=
        fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#eee\"/>\n",
                    f.left, y, f.left + f.width);
    out +=
        fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#444\"/>\n",
                    f.left - 4, y, f.left);
    out += text_at(f.left - 7, y + 4, format_number(t, 3), "end");
  }
  const double cx = 16;
  const double cy = f.top + f.height / 2;
  out += text_at(cx, cy, label, "middle", fmt::format(" transform=\"rotate(-90 {:.1f} {:.1f})\"", cx, cy));
  return out;
}

std::string plot_border(const Frame& f) {
  return fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#444\"/>\n",
      f.left, f.top, f.width, f.height);
}

// Legend entries stacked at (x, y): a colour swatch and the name.
std::string legend(double x, double y, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out;
  double row = y;
  for (const auto& [name, color] : entries) {
    out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>\n", x,
                       row - 9, html_escape(color));
    out += text_at(x + 15, row, name, "start");
    row += 17;
  }
  return out;
}

double legend_width(const std::vector<std::pair<std::string, std::string>>& entries) {
  size_t longest = 0;
  for (const auto& entry : entries) longest = std::max(longest, entry.first.size());
  return entries.empty() ? 0.0 : std::min(220.0, 28.0 + kCharWidth * static_cast<double>(longest));
}

// Numbers (with thousands separators, exponents, a trailing %) and "n/a" are right-aligned in
// tables so that digits line up; text is left-aligned.
bool looks_numeric(std::string_view text) {
  if (text == "n/a" || text == "nan" || text == "inf" || text == "-inf") return true;
  if (text.empty()) return false;
  bool digit = false;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != ',' && c != '-' && c != '+' && c != 'e' && c != '%') {
      return false;
    }
  }
  return digit;
}

// The diverging scale of heat maps: ColorBrewer RdBu ends (#2166ac, #b2182b) through white, linear
// in each half, for t in [-1, 1].
std::string diverging_color(double t) {
  if (!std::isfinite(t)) return "#bbbbbb";
  t = std::clamp(t, -1.0, 1.0);
  const std::array<double, 3> end =
      t < 0 ? std::array<double, 3>{0x21, 0x66, 0xac} : std::array<double, 3>{0xb2, 0x18, 0x2b};
  const double w = std::abs(t);
  const auto channel = [&](size_t i) { return static_cast<int>(std::lround(255.0 + (end[i] - 255.0) * w)); };
  return fmt::format("#{:02x}{:02x}{:02x}", channel(0), channel(1), channel(2));
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string palette_color(size_t index) {
  static constexpr std::array<const char*, 20> kPalette = {
      "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
      "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#98df8a", "#d62728",
      "#c5b0d5", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kPalette[index % kPalette.size()];
}

std::string format_number(double value, int significant_digits) {
  if (std::isnan(value)) return "n/a";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == std::round(value) && std::abs(value) < 1e15) {
    // Thousands separators only from 10,000 up, so years and small counts read naturally.
    const std::string digits = fmt::format("{}", static_cast<long long>(std::abs(value)));
    std::string grouped = value < 0 ? "-" : "";
    for (size_t i = 0; i < digits.size(); ++i) {
      if (std::abs(value) >= 10000 && i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
      grouped += digits[i];
    }
    return grouped;
  }
  return fmt::format("{:.{}g}", value, std::max(1, significant_digits));
}

std::string scatter_svg(const std::vector<ScatterSeries>& series, const ScatterOptions& options) {
  Range x_range, y_range;
  for (const auto& s : series) {
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_range.include(s.x[i]);
      y_range.include(s.y[i]);
    }
  }
  if (options.diagonal) {
    x_range.include(y_range.lo);
    x_range.include(y_range.hi);
    y_range = x_range;
  }

  std::vector<std::pair<std::string, std::string>> entries;
  if (options.show_legend) {
    for (const auto& s : series) {
      if (!s.name.empty()) entries.emplace_back(s.name, s.color);
    }
  }
  const double right = entries.empty() ? 16.0 : legend_width(entries) + 16.0;
  Frame f{62.0, options.title.empty() ? 14.0 : 34.0, 0.0, 0.0, x_range.padded(0.04), y_range.padded(0.04)};
  if (options.x_limits && options.x_limits->first < options.x_limits->second) {
    f.x = {options.x_limits->first, options.x_limits->second};
  }
  if (options.y_limits && options.y_limits->first < options.y_limits->second) {
    f.y = {options.y_limits->first, options.y_limits->second};
  }
  f.width = std::max(40.0, options.width - f.left - right);
  f.height = std::max(40.0, options.height - f.top - 48.0);
  if (options.diagonal) {
    // A square plot of a shared range, so that y = x runs at 45 degrees.
    const double side = std::min(f.width, f.height);
    f.width = side;
    f.height = side;
  } else if (options.equal_axes) {
    // One data unit is the same length on both axes (an embedding keeps its shape): widen the
    // range of the axis with room to spare, keeping the data centred.
    const double scale = std::min(f.width / (f.x.hi - f.x.lo), f.height / (f.y.hi - f.y.lo));
    const auto widen = [](Range r, double span) {
      const double mid = (r.lo + r.hi) / 2;
      return Range{mid - span / 2, mid + span / 2};
    };
    f.x = widen(f.x, f.width / scale);
    f.y = widen(f.y, f.height / scale);
  }

  std::string out = svg_open(options.width, options.height);
  out += title_text(options.width, options.title);
  out += x_axis(f, options.x_label);
  out += y_axis(f, options.y_label);
  if (options.diagonal) {
    const double lo = std::max(f.x.lo, f.y.lo);
    const double hi = std::min(f.x.hi, f.y.hi);
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#999\" stroke-dasharray=\"4 "
        "3\"/>\n",
        f.px(lo), f.py(lo), f.px(hi), f.py(hi));
  }
  for (const auto& s : series) {
    out += fmt::format("<g fill=\"{}\" fill-opacity=\"{:.2f}\">\n", html_escape(s.color), options.opacity);
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      // Fixed limits may leave points outside: they are not drawn over the axes.
      if (s.x[i] < f.x.lo || s.x[i] > f.x.hi || s.y[i] < f.y.lo || s.y[i] > f.y.hi) continue;
      out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:g}\"/>\n", f.px(s.x[i]), f.py(s.y[i]),
                         options.point_radius);
    }
    out += "</g>\n";
  }
  out += plot_border(f);
  out += legend(f.left + f.width + 14, f.top + 10, entries);
  out += "</svg>\n";
  return out;
}

std::string bar_chart_svg(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                          const BarOptions& options) {
  double max_value = 0.0;
  for (const auto& s : series) {
    for (const double v : s.values) {
      if (std::isfinite(v)) max_value = std::max(max_value, v);
    }
  }
  size_t longest_label = 0;
  for (const auto& c : categories) longest_label = std::max(longest_label, c.size());
  const double group_guess = (options.width - 180.0) / std::max<size_t>(1, categories.size());
  const bool rotate = kCharWidth * static_cast<double>(longest_label) > group_guess - 4;
  const double label_room =
      rotate ? std::min(140.0, kCharWidth * 0.75 * static_cast<double>(longest_label) + 14.0) : 22.0;

  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& s : series) {
    if (!s.name.empty()) entries.emplace_back(s.name, s.color);
  }
  const double right = entries.empty() ? 16.0 : legend_width(entries) + 16.0;
  Range y_range{0.0, max_value > 0 ? max_value * 1.08 : 1.0};
  Frame f{62.0, options.title.empty() ? 14.0 : 34.0, 0.0, 0.0, Range{0.0, 1.0}, y_range};
  f.width = std::max(40.0, options.width - f.left - right);
  f.height = std::max(40.0, options.height - f.top - label_room - 10.0);

  std::string out = svg_open(options.width, options.height);
  out += title_text(options.width, options.title);
  out += y_axis(f, options.y_label);

  const double n_categories = static_cast<double>(std::max<size_t>(1, categories.size()));
  const double group_width = f.width / n_categories;
  const double bar_width = group_width * 0.8 / static_cast<double>(std::max<size_t>(1, series.size()));
  const double base = f.top + f.height;
  for (size_t c = 0; c < categories.size(); ++c) {
    const double group_left = f.left + group_width * static_cast<double>(c) + group_width * 0.1;
    for (size_t s = 0; s < series.size(); ++s) {
      const double v = c < series[s].values.size() ? series[s].values[c] : 0.0;
      if (!std::isfinite(v) || v <= 0) continue;
      const double x = group_left + bar_width * static_cast<double>(s);
      const double y = f.py(v);
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{}: "
          "{}</title></rect>\n",
          x, y, std::max(0.5, bar_width - 1), base - y, html_escape(series[s].color),
          html_escape(categories[c]), format_number(v));
      if (options.show_values)
        out += text_at(x + bar_width / 2, y - 3, format_number(v, 2), "middle", " font-size=\"9\"");
    }
    const double cx = f.left + group_width * (static_cast<double>(c) + 0.5);
    if (rotate) {
      out += text_at(cx, base + 14, categories[c], "end",
                     fmt::format(" transform=\"rotate(-40 {:.1f} {:.1f})\"", cx, base + 14));
    } else {
      out += text_at(cx, base + 16, categories[c], "middle");
    }
  }
  out += plot_border(f);
  out += legend(f.left + f.width + 14, f.top + 10, entries);
  out += "</svg>\n";
  return out;
}

std::string heatmap_svg(const std::vector<double>& values, size_t rows, size_t cols,
                        const HeatmapOptions& options) {
  size_t longest_row = 0;
  size_t longest_column = 0;
  for (const auto& l : options.row_labels) longest_row = std::max(longest_row, l.size());
  for (const auto& l : options.column_labels) longest_column = std::max(longest_column, l.size());
  // Labels use a font that fits the cell; their room is measured in that font.
  const double font = std::clamp(options.cell - 1.0, 6.0, kFontSize);
  const double char_width = kCharWidth * font / kFontSize;
  // Whole pixels, so that every square's position prints short.
  const double left = std::ceil(
      10.0 + (options.row_labels.empty() ? 0.0 : char_width * static_cast<double>(longest_row) + 6));
  const double top =
      std::ceil((options.title.empty() ? 14.0 : 34.0) +
                (options.column_labels.empty() ? 0.0 : char_width * static_cast<double>(longest_column) + 6));
  const double width = options.cell * static_cast<double>(cols);
  const double height = options.cell * static_cast<double>(rows);
  const double bar_left = left + width + 18;
  const double bar_width = 12;
  const int total_width =
      static_cast<int>(std::ceil(bar_left + bar_width + 44 + (options.scale_label.empty() ? 0 : 18)));
  const int total_height = static_cast<int>(std::ceil(top + std::max(height, 120.0) + 12));
  const double span = options.hi > options.lo ? options.hi - options.lo : 1.0;
  const auto scaled = [&](double v) { return 2.0 * (v - options.lo) / span - 1.0; };

  std::string out = svg_open(total_width, total_height);
  out += title_text(total_width, options.title);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const double v = r * cols + c < values.size() ? values[r * cols + c] : std::nan("");
      const std::string name =
          (r < options.row_labels.size() ? options.row_labels[r] : fmt::format("row {}", r + 1)) + " / " +
          (c < options.column_labels.size() ? options.column_labels[c] : fmt::format("column {}", c + 1));
      out += fmt::format(
          "<rect x=\"{:g}\" y=\"{:g}\" width=\"{:g}\" height=\"{:g}\" fill=\"{}\"><title>{}: "
          "{}</title></rect>\n",
          left + options.cell * static_cast<double>(c), top + options.cell * static_cast<double>(r),
          options.cell, options.cell, diverging_color(scaled(v)), html_escape(name), format_number(v, 3));
    }
  }
  const std::string label_font = fmt::format(" font-size=\"{:g}\"", font);
  for (size_t r = 0; r < std::min(rows, options.row_labels.size()); ++r) {
    out += text_at(left - 4, top + options.cell * (static_cast<double>(r) + 0.5) + font * 0.35,
                   options.row_labels[r], "end", label_font);
  }
  for (size_t c = 0; c < std::min(cols, options.column_labels.size()); ++c) {
    const double x = left + options.cell * (static_cast<double>(c) + 0.5) + font * 0.35;
    const double y = top - 4;
    out += text_at(x, y, options.column_labels[c], "start",
                   label_font + fmt::format(" transform=\"rotate(-90 {:.1f} {:.1f})\"", x, y));
  }
  out += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#444\"/>\n",
      left, top, width, height);

  // The colour bar: hi at the top, lo at the bottom, the middle marked.
  const double bar_height = std::max(height, 120.0);
  constexpr int kSteps = 40;
  for (int i = 0; i < kSteps; ++i) {
    const double t = 1.0 - 2.0 * (i + 0.5) / kSteps;
    out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.2f}\" fill=\"{}\"/>\n",
                       bar_left, top + bar_height * i / kSteps, bar_width, bar_height / kSteps + 0.3,
                       diverging_color(t));
  }
  out += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#444\"/>\n",
      bar_left, top, bar_width, bar_height);
  const double mid = (options.lo + options.hi) / 2;
  for (const auto& [v, y] : {std::pair{options.hi, top}, std::pair{mid, top + bar_height / 2},
                             std::pair{options.lo, top + bar_height}}) {
    out += text_at(bar_left + bar_width + 4, y + 4, format_number(v, 3), "start");
  }
  if (!options.scale_label.empty()) {
    const double cx = bar_left + bar_width + 40;
    const double cy = top + bar_height / 2;
    out += text_at(cx, cy, options.scale_label, "middle",
                   fmt::format(" transform=\"rotate(-90 {:.1f} {:.1f})\"", cx, cy));
  }
  out += "</svg>\n";
  return out;
}

HtmlPage::HtmlPage(std::string title) : title_(std::move(title)) {}

void HtmlPage::add_section(const std::string& heading) {
  body_ += "<h2>" + html_escape(heading) + "</h2>\n";
}

void HtmlPage::add_paragraph(const std::string& text) {
  body_ += "<p>" + html_escape(text) + "</p>\n";
}

void HtmlPage::add_note(const std::string& text) {
  body_ += "<p class=\"note\">" + html_escape(text) + "</p>\n";
}

void HtmlPage::add_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, bool emphasise_first_column) {
  std::string out = "<table>\n<thead><tr>";
  for (const auto& h : header) out += "<th>" + html_escape(h) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      const bool first = i == 0 && emphasise_first_column;
      if (first) {
        out += "<th>" + html_escape(row[i]) + "</th>";
      } else {
        out += (looks_numeric(row[i]) ? "<td class=\"num\">" : "<td>") + html_escape(row[i]) + "</td>";
      }
    }
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  body_ += out;
}

void HtmlPage::add_figures(const std::vector<std::string>& svgs, const std::string& caption) {
  body_ += "<div class=\"figures\">\n";
  for (const auto& svg : svgs) body_ += "<figure>\n" + svg + "</figure>\n";
  body_ += "</div>\n";
  if (!caption.empty()) body_ += "<p class=\"caption\">" + html_escape(caption) + "</p>\n";
}

void HtmlPage::add_raw_html(const std::string& html) {
  body_ += html;
}

std::string HtmlPage::render() const {
  static constexpr const char* kStyle = R"(
body { font-family: Helvetica, Arial, sans-serif; margin: 24px 32px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p { line-height: 1.45; max-width: 1000px; }
p.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; }
p.caption { color: #555; font-size: 13px; margin-top: 2px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f3f3f3; text-align: center; }
tbody th { text-align: left; font-weight: 600; }
div.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; }
)";
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n"
      "<style>{1}</style>\n</head>\n<body>\n<h1>{0}</h1>\n{2}</body>\n</html>\n",
      html_escape(title_), kStyle, body_);
}

}  // namespace lingshu::report
