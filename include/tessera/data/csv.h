// Numeric CSV files: a table of float32 values, and a Dataset taking one column as the target.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tessera/data/dataset.h"
#include "tessera/export.h"

namespace tessera::data {

struct CsvOptions {
  char delimiter = ',';
  /// The first record holds the column names; without it columns are named "0", "1", ...
  bool header = true;
};

struct TESSERA_API CsvTable {
  std::vector<std::string> columns;
  /// float32 [rows, columns].
  Tensor values;
  /// Index of the column named `name`; throws ValueError listing the columns otherwise.
  int64_t column_index(std::string_view name) const;
};

/// Reads a numeric CSV file. Fields may be quoted ("..." with "" for a quote, delimiters and
/// newlines allowed inside); spaces around numbers are ignored; \n and \r\n line ends; blank lines
/// are skipped. Every cell must be a number (strtod syntax, incl. nan/inf).
/// Throws ValueError naming the file, line and column for a non-numeric or empty cell, a row with
/// a different number of fields than the first, an unterminated quote, or an empty file.
TESSERA_API CsvTable read_csv(const std::string& path, const CsvOptions& options = {});
/// The same for text in memory; `source` names it in errors.
TESSERA_API CsvTable parse_csv(std::string_view text, const CsvOptions& options = {},
                               const std::string& source = "<string>");

struct CsvDatasetOptions {
  char delimiter = ',';
  bool header = true;
  /// Targets as int64 class labels (each must be a non-negative integer) instead of float32.
  bool classes = false;
};

/// Examples are the rows of a numeric CSV file: inputs float32 [N, columns - 1] (every column
/// but the target, in file order), targets float32 [N] (int64 when options.classes).
class TESSERA_API CsvDataset : public Dataset {
 public:
  /// Target column by name. Throws ValueError for an unknown name (and everything read_csv throws).
  CsvDataset(const std::string& path, const std::string& target_column, const CsvDatasetOptions& options = {});
  /// Target column by index (negative counts from the end); throws IndexError when out of range.
  CsvDataset(const std::string& path, int64_t target_column, const CsvDatasetOptions& options = {});

  int64_t size() const override { return data_.size(); }
  Batch get_batch(std::span<const int64_t> indices) const override { return data_.get_batch(indices); }
  /// Names of the input columns, in order.
  const std::vector<std::string>& feature_names() const { return features_; }
  const std::string& target_name() const { return target_; }
  const Tensor& inputs() const { return data_.inputs(); }
  const Tensor& targets() const { return data_.targets(); }

 private:
  struct Parts {
    std::vector<std::string> features;
    std::string target;
    Tensor inputs, targets;
  };
  explicit CsvDataset(Parts parts);
  static Parts split_target(const std::string& path, const CsvTable& table, int64_t target, bool classes);
  std::vector<std::string> features_;
  std::string target_;
  TensorDataset data_;
};

}  // namespace tessera::data
