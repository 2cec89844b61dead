#pragma once
// Condition fields (README "How it works"): obs columns whose labels become one prepended token each.
// Token 0 of every field is NULL (unknown / dropped for guidance); label i is token i + 1. A
// perturbation field also knows which genes each label targets ("KLF1", "KLF1+MAP2K6", "A_B"), so
// a label never seen in training still has a meaningful embedding when its targets are genes.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/anndata.h"
#include "data/frame.h"
#include "data/tokenizer.h"

namespace lingshu {

struct ConditionField {
  std::string column;               // obs column name
  std::vector<std::string> labels;  // token i + 1 is labels[i]
  bool is_perturbation = false;
  std::string control;  // the unperturbed label of a perturbation field
  // A library-size field (make_library_field): label i covers total counts in
  // [library_edges[i - 1], library_edges[i]).
  bool is_library = false;
  std::vector<double> library_edges;
  // The perturbation-state field (make_state_field): derived from the other fields' labels.
  bool is_state = false;
  // A perturbation field's transfer weight of each label (index = token - 1; train/perturbation_transfer.h):
  // how much of its own effect a context that never measured it gets. Empty: 1 for every label.
  std::vector<double> transfer;
  // A perturbation field's typical log ratio of a target gene's mean log1p CP10k in its
  // perturbation's cells to the context's other perturbed cells (train/perturbation_transfer.h
  // target_gene_effect), over `target_effects` measurements; 0 and 0 when none was typical. A label no
  // context measured gets it on its target genes.
  double target_log_ratio = 0;
  int64_t target_effects = 0;

  int64_t vocab_size() const { return static_cast<int64_t>(labels.size()) + 1; }
  // Token of `label`, or nullopt when the field has never seen it.
  std::optional<int64_t> find(const std::string& label) const;
  // Token of `label`; UserError listing known labels when unknown.
  int64_t token(const std::string& label) const;

  nlohmann::json to_json() const;
  static ConditionField from_json(const nlohmann::json& j);
};

// The first `limit` labels, comma-separated, and how many there are in all when that is more.
std::string join_labels(const std::vector<std::string>& labels, size_t limit = 12);

// Builds a field from an obs column (categories in their stored order; missing values map to NULL).
ConditionField make_condition_field(const DataFrame& obs, const std::string& column);
ConditionField make_perturbation_field(const DataFrame& obs, const std::string& column,
                                       const std::string& control);

// The obs column of the library-size field that `lingshu train` adds (--library-bins).
inline constexpr const char* kLibraryColumn = "library_size";

// A field of library-size bins: quantiles of the cells' total counts, at most `bins` of them
// (fewer when quantiles tie). Labels name each bin's range of totals ("1210-1509"). nullopt when
// fewer than two bins remain (every cell about the same size). Why a field: a cell's size is the
// largest source of variation within a cell type, and a masked model sampling hundreds of genes
// per step never agrees on it; drawn first as a label, every gene sees it.
std::optional<ConditionField> make_library_field(const std::vector<double>& totals, int bins);

// The label of each total in a library field.
std::vector<std::string> library_labels(const ConditionField& field, const std::vector<double>& totals);

// The totals [lo, hi) that a label of a library field covers: lo 0 for the first bin, hi infinite
// for the last. UserError for a label the field does not have.
std::pair<double, double> library_range(const ConditionField& field, const std::string& label);

// Index of the library-size field in `fields`, or -1.
int library_field_index(const std::vector<ConditionField>& fields);

// The obs column of the perturbation-state field that `lingshu train --perturbation` adds.
inline constexpr const char* kStateColumn = "perturbation_state";

// A cell's perturbation state: its context labels (every field but the perturbation, the library
// size and the state itself) joined by '/', then "control" or "perturbed" ("A172/perturbed"; a
// model without context fields: "perturbed"). "" when the perturbation or a context label is
// unset. Why a field: what every perturbation of a context shares against its controls (stress,
// selection, the screen's own effect) is most of what a perturbed population differs by (the
// mean baseline of Ahlmann-Eltze et al. 2025); as a label of its own it is learned from the
// context's other perturbations, predicts a perturbation never seen, and lets the perturbation's
// own label carry only what is specific to it.
std::string state_label(const std::vector<ConditionField>& fields, const std::vector<std::string>& labels);

// The state field of a model with `fields` (one of them a perturbation field), with the labels
// that `cell_labels` (one label per field per cell, "" = missing) give. nullopt without a
// perturbation field with at least two perturbations besides the control.
std::optional<ConditionField> make_state_field(const std::vector<ConditionField>& fields,
                                               const std::vector<std::vector<std::string>>& cell_labels);

// Index of the perturbation-state field in `fields`, or -1.
int state_field_index(const std::vector<ConditionField>& fields);

// Tokens of every cell for every field, row-major [n_cells x n_fields]. Missing labels -> NULL.
std::vector<int64_t> encode_conditions(const DataFrame& obs, const std::vector<ConditionField>& fields);

// The parts of a perturbation label split on '+', '_', ',' or ';' ("KLF1+MAP2K6" -> KLF1, MAP2K6).
std::vector<std::string> split_perturbation_label(const std::string& label);

// Where the target genes of `label` in a perturbation field enter the model, part by part: a gene of
// `gene_names` at its sequence position (GenePatching order), and a gene with a row in the gene
// knowledge (`knowledge_genes`, data/gene_knowledge.h) at patching.n_positions() + that row, so a
// measured gene with knowledge is listed twice. Empty for other fields, the control, and labels
// with a part that is neither. Works for labels the field has never seen.
std::vector<int32_t> target_positions(const ConditionField& field, const std::string& label,
                                      const std::vector<std::string>& gene_names,
                                      const GenePatching& patching,
                                      const std::vector<std::string>& knowledge_genes = {});

// target_positions of every token of `field` (token 0 = NULL has none).
std::vector<std::vector<int32_t>> target_positions_by_token(
    const ConditionField& field, const std::vector<std::string>& gene_names, const GenePatching& patching,
    const std::vector<std::string>& knowledge_genes = {});

// "cell_type=CD4T,condition=stimulated": cells matching every term.
struct ConditionSpec {
  std::vector<std::pair<std::string, std::string>> terms;  // (column, label)

  // Parses "col=label[,col=label...]"; UserError with the expected form when malformed.
  static ConditionSpec parse(const std::string& text);
  std::string to_string() const;
  // Per cell: does it match every term? UserError when a column is missing from obs.
  std::vector<bool> matches(const DataFrame& obs) const;
};

// The rows of obs that no --holdout spec matches, ascending. UserError when a spec matches no cell
// or names a column obs lacks, or when nothing is left.
std::vector<int64_t> rows_kept_after_holdouts(const DataFrame& obs, const std::vector<std::string>& holdouts);

// `data` without the cells matching any of the `holdouts` specs (--holdout of train and the
// baselines), with the errors above.
AnnData remove_holdouts(const AnnData& data, const std::vector<std::string>& holdouts);

}  // namespace lingshu
