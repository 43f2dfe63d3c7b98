#include "tessera/data/csv.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tessera/ops.h"

namespace tessera::data {

namespace {

struct Field {
  std::string text;
  int64_t line;  // 1-based line where the field starts
};

// Splits the text into records of fields. Quoted fields may span lines; `line` tracks physical lines.
std::vector<std::vector<Field>> split_records(std::string_view s, char delim, const std::string& source) {
  std::vector<std::vector<Field>> records;
  std::vector<Field> rec;
  std::string cur;
  int64_t line = 1, field_line = 1;
  bool quoted = false, any = false;  // any: the record has content (so a blank line is skipped)
  size_t i = 0;
  auto end_field = [&] {
    rec.push_back({std::move(cur), field_line});
    cur.clear();
    field_line = line;
  };
  auto end_record = [&] {
    if (any || !rec.empty()) {
      end_field();
      records.push_back(std::move(rec));
    }
    rec.clear();
    cur.clear();
    any = false;
  };
  while (i < s.size()) {
    char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          cur += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        if (c == '\n') ++line;
        cur += c;
      }
      ++i;
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == delim) {
      any = true;
      end_field();
    } else if (c == '\n' || c == '\r') {
      end_record();
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      ++line;
      field_line = line;
    } else {
      if (c != ' ' && c != '\t') any = true;
      cur += c;
    }
    ++i;
  }
  if (quoted) raise<ValueError>("read_csv", source + ":" + std::to_string(field_line) + ": unterminated quoted field");
  end_record();
  return records;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::string column_label(const std::vector<std::string>& names, size_t j) {
  std::string s = "column " + std::to_string(j + 1);
  if (j < names.size()) s += " (\"" + names[j] + "\")";
  return s;
}

}  // namespace

int64_t CsvTable::column_index(std::string_view name) const {
  for (size_t j = 0; j < columns.size(); ++j)
    if (columns[j] == name) return static_cast<int64_t>(j);
  std::string all;
  for (const auto& c : columns) all += (all.empty() ? "" : ", ") + c;
  raise<ValueError>("read_csv", "no column named \"" + std::string(name) + "\" (columns: " + all + ")");
}

CsvTable parse_csv(std::string_view text, const CsvOptions& options, const std::string& source) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r')
    raise<ValueError>("read_csv", "invalid delimiter");
  auto records = split_records(text, options.delimiter, source);
  if (records.empty()) raise<ValueError>("read_csv", source + ": empty file (no header or rows)");
  CsvTable table;
  const size_t cols = records[0].size();
  size_t first = 0;
  if (options.header) {
    for (auto& f : records[0]) table.columns.emplace_back(trim(f.text));
    first = 1;
  } else {
    for (size_t j = 0; j < cols; ++j) table.columns.push_back(std::to_string(j));
  }
  const int64_t rows = static_cast<int64_t>(records.size() - first);
  table.values = empty({rows, static_cast<int64_t>(cols)}, DType::Float32, Device("cpu"));
  float* out = table.values.data<float>();
  std::string buf;
  for (size_t r = first; r < records.size(); ++r) {
    const auto& rec = records[r];
    if (rec.size() != cols)
      raise<ValueError>("read_csv", source + ":" + std::to_string(rec.front().line) + ": row has " +
                                        std::to_string(rec.size()) + " fields, expected " + std::to_string(cols));
    for (size_t j = 0; j < cols; ++j) {
      std::string_view v = trim(rec[j].text);
      buf.assign(v);
      char* endp = nullptr;
      errno = 0;
      double d = buf.empty() ? 0.0 : std::strtod(buf.c_str(), &endp);
      // ERANGE on underflow still gives a usable (tiny/zero) value; only overflow to inf from a finite literal is kept
      // too.
      if (buf.empty() || endp != buf.c_str() + buf.size())
        raise<ValueError>("read_csv",
                          source + ":" + std::to_string(rec[j].line) + ": " + column_label(table.columns, j) + ": " +
                              (buf.empty() ? std::string("empty cell") : "\"" + buf + "\" is not a number"));
      out[(r - first) * cols + j] = static_cast<float>(d);
    }
  }
  return table;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IOError>("read_csv", "cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_csv(ss.str(), options, path);
}

namespace {
CsvTable load(const std::string& path, const CsvDatasetOptions& o) {
  return read_csv(path, CsvOptions{.delimiter = o.delimiter, .header = o.header});
}
int64_t checked_column(const CsvTable& t, int64_t c) {
  const int64_t n = static_cast<int64_t>(t.columns.size());
  if (c < -n || c >= n)
    raise<IndexError>("CsvDataset",
                      "target column " + std::to_string(c) + " is out of range for " + std::to_string(n) + " columns");
  return c < 0 ? c + n : c;
}
}  // namespace

CsvDataset::CsvDataset(const std::string& path, const std::string& target_column, const CsvDatasetOptions& options)
    : CsvDataset([&] {
        CsvTable t = load(path, options);
        return split_target(path, t, t.column_index(target_column), options.classes);
      }()) {}

CsvDataset::CsvDataset(const std::string& path, int64_t target_column, const CsvDatasetOptions& options)
    : CsvDataset([&] {
        CsvTable t = load(path, options);
        return split_target(path, t, checked_column(t, target_column), options.classes);
      }()) {}

CsvDataset::CsvDataset(Parts parts)
    : features_(std::move(parts.features)), target_(std::move(parts.target)), data_(parts.inputs, parts.targets) {}

CsvDataset::Parts CsvDataset::split_target(const std::string& path, const CsvTable& t, int64_t target, bool classes) {
  if (t.columns.size() < 2)
    raise<ValueError>("CsvDataset", path + " has " + std::to_string(t.columns.size()) +
                                        " column(s); need a target and at least one input");
  const int64_t rows = t.values.size(0), cols = t.values.size(1);
  Parts p;
  for (int64_t j = 0; j < cols; ++j)
    if (j != target) p.features.push_back(t.columns[static_cast<size_t>(j)]);
  p.target = t.columns[static_cast<size_t>(target)];
  p.inputs = empty({rows, cols - 1}, DType::Float32, Device("cpu"));
  p.targets = empty({rows}, classes ? DType::Int64 : DType::Float32, Device("cpu"));
  const float* v = t.values.data<float>();
  float* x = p.inputs.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = v + r * cols;
    for (int64_t j = 0, k = 0; j < cols; ++j)
      if (j != target) x[r * (cols - 1) + k++] = row[j];
    const float y = row[target];
    if (classes) {
      if (!(y >= 0.0f && y == std::floor(y) && y < 9.0e18f))
        raise<ValueError>("CsvDataset", path + ": data row " + std::to_string(r + 1) + ": target \"" + p.target +
                                            "\" = " + std::to_string(y) +
                                            " is not a class label (non-negative integer)");
      p.targets.data<int64_t>()[r] = static_cast<int64_t>(y);
    } else {
      p.targets.data<float>()[r] = y;
    }
  }
  return p;
}

}  // namespace tessera::data
