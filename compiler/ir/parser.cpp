// The IR text form's parser: a hand-written lexer and recursive-descent parser that builds the
// graph through the Graph API and then verifies it. Hostile text only ever raises InvalidArgument.
#include "compiler/ir/parser.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/ir/text_detail.h"
#include "compiler/ir/verifier.h"

namespace kiln::ir {

namespace {

// Subgraphs nest through recursion; this bounds the stack whatever the text says.
constexpr int kMaxDepth = 32;

struct Pos {
  size_t line = 1, col = 1;
};

struct Token {
  enum Kind { End, Ident, Number, String, Percent, Bang, At, Punct } kind = End;
  std::string text;     // identifier, number, decoded string, sigil name without its sigil, or punctuation
  bool quoted = false;  // `@"..."`
  Pos pos;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '.';
}
bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Token::End:
      return "end of text";
    case Token::String:
      return "string " + detail::quote(t.text);
    case Token::Percent:
      return "'%" + t.text + "'";
    case Token::Bang:
      return "'!" + t.text + "'";
    case Token::At:
      return "'@" + (t.quoted ? detail::quote(t.text) : t.text) + "'";
    default:
      return "'" + t.text + "'";
  }
}

// Reads `text` as a decimal integer of type I (an optional '-' for signed types), rejecting
// anything else and values out of I's range.
template <class I>
bool parse_integer(std::string_view text, I& out) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (b == e) return false;
  if (*b == '-' && !std::is_signed_v<I>) return false;
  auto r = std::from_chars(b, e, out, 10);
  return r.ec == std::errc() && r.ptr == e;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) { advance(); }

  std::unique_ptr<Graph> parse() {
    expect_ident("kiln.ir");
    if (tok_.kind != Token::Number) error(tok_.pos, "expected the IR version after 'kiln.ir', got ", describe(tok_));
    int64_t version = 0;
    if (!parse_integer(tok_.text, version) || version != kIrVersion)
      error(tok_.pos, "unsupported IR version ", tok_.text, " (this Kiln reads version ", kIrVersion, ")");
    advance();
    auto g = std::make_unique<Graph>();
    Pos top = tok_.pos;
    parse_graph(*g, 0);
    if (tok_.kind != Token::End) error(tok_.pos, "unexpected ", describe(tok_), " after the graph");
    detail::VerifyWhere where;
    try {
      detail::verify_reporting(*g, where);
    } catch (const Error& e) {
      // Point at the line of the node (or the graph's `return`) that failed verification.
      Pos p = top;
      if (auto it = node_pos_.find(where.node); where.node && it != node_pos_.end())
        p = it->second;
      else if (auto gt = return_pos_.find(where.graph); where.graph && gt != return_pos_.end())
        p = gt->second;
      std::string_view msg = e.what();
      std::string prefix = "[" + e.component() + "] ";
      if (msg.substr(0, prefix.size()) == prefix) msg.remove_prefix(prefix.size());
      error(p, msg);
    }
    return g;
  }

 private:
  // ---- errors
  template <class... A>
  [[noreturn]] void error(Pos p, A&&... args) {
    fail<InvalidArgument>("ir.parse", "line ", p.line, ", column ", p.col, ": ", std::forward<A>(args)...);
  }

  // ---- lexer
  char peek_char(size_t k = 0) const { return i_ + k < text_.size() ? text_[i_ + k] : '\0'; }
  bool at_end() const { return i_ >= text_.size(); }
  void bump() {
    if (text_[i_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++i_;
  }

  void skip_space() {
    while (!at_end()) {
      char c = peek_char();
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        bump();
      } else if (c == '/' && peek_char(1) == '/') {
        while (!at_end() && peek_char() != '\n') bump();
      } else {
        break;
      }
    }
  }

  std::string lex_name() {
    std::string s;
    while (!at_end() && is_name_char(peek_char())) {
      s += peek_char();
      bump();
    }
    return s;
  }

  std::string lex_string(Pos start) {
    bump();  // the opening quote
    std::string s;
    while (true) {
      if (at_end()) error(start, "unterminated string");
      char c = peek_char();
      if (c == '"') {
        bump();
        return s;
      }
      if (c == '\n') error(start, "unterminated string (a string cannot span lines; write \\n)");
      if (c != '\\') {
        s += c;
        bump();
        continue;
      }
      Pos esc{line_, col_};
      bump();
      if (at_end()) error(start, "unterminated string");
      char e = peek_char();
      bump();
      switch (e) {
        case '"':
        case '\\':
          s += e;
          break;
        case 'n':
          s += '\n';
          break;
        case 't':
          s += '\t';
          break;
        case 'r':
          s += '\r';
          break;
        case 'x': {
          int v = 0;
          for (int k = 0; k < 2; ++k) {
            char h = peek_char();
            int d = is_digit(h)              ? h - '0'
                    : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                    : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                             : -1;
            if (at_end() || d < 0) error(esc, "\\x needs two hex digits");
            v = v * 16 + d;
            bump();
          }
          s += static_cast<char>(v);
          break;
        }
        default:
          error(esc, "unknown escape '\\", printable(e), "' in string");
      }
    }
  }

  static std::string printable(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
  }

  void advance() {
    skip_space();
    tok_ = Token{};
    tok_.pos = {line_, col_};
    if (at_end()) return;
    char c = peek_char();
    if (is_digit(c) ||
        (c == '-' && (is_digit(peek_char(1)) || peek_char(1) == 'i' || peek_char(1) == 'n' || peek_char(1) == '.'))) {
      tok_.kind = Token::Number;
      tok_.text += c;
      bump();
      while (!at_end()) {
        char d = peek_char();
        char prev = tok_.text.back();
        char lead = tok_.text[0] == '-' && tok_.text.size() > 1 ? tok_.text[1] : tok_.text[0];
        bool exponent_sign = (d == '-' || d == '+') && (prev == 'e' || prev == 'E') && (is_digit(lead) || lead == '.');
        if (is_name_char(d) || exponent_sign) {
          tok_.text += d;
          bump();
        } else {
          break;
        }
      }
      return;
    }
    if (is_name_char(c)) {
      tok_.kind = Token::Ident;
      tok_.text = lex_name();
      return;
    }
    if (c == '"') {
      tok_.kind = Token::String;
      tok_.text = lex_string(tok_.pos);
      return;
    }
    if (c == '%' || c == '!' || c == '@') {
      bump();
      tok_.kind = c == '%' ? Token::Percent : c == '!' ? Token::Bang : Token::At;
      if (c == '@' && peek_char() == '"') {
        tok_.quoted = true;
        tok_.text = lex_string({line_, col_});
        return;
      }
      tok_.text = lex_name();
      if (tok_.text.empty()) error(tok_.pos, "expected a name after '", c, "'");
      return;
    }
    if (c != '\0' && std::strchr("()[]{},:=?", c) != nullptr) {
      tok_.kind = Token::Punct;
      tok_.text = std::string(1, c);
      bump();
      return;
    }
    error(tok_.pos, "unexpected character '", printable(c), "'");
  }

  // The token after the current one, without consuming anything.
  Token peek_next() {
    size_t i = i_, line = line_, col = col_;
    Token saved = tok_;
    advance();
    Token next = std::move(tok_);
    i_ = i;
    line_ = line;
    col_ = col;
    tok_ = std::move(saved);
    return next;
  }

  bool is_punct(char c) const { return tok_.kind == Token::Punct && tok_.text[0] == c; }
  bool is_ident(std::string_view s) const { return tok_.kind == Token::Ident && tok_.text == s; }
  bool accept(char c) {
    if (!is_punct(c)) return false;
    advance();
    return true;
  }
  void expect(char c, std::string_view context) {
    if (!is_punct(c)) error(tok_.pos, "expected '", c, "' ", context, ", got ", describe(tok_));
    advance();
  }
  void expect_ident(std::string_view s) {
    if (!is_ident(s)) error(tok_.pos, "expected '", s, "', got ", describe(tok_));
    advance();
  }

  // ---- types
  struct PendingSymbol {
    size_t dim;
    std::string name;
    Pos pos;
  };

  DType parse_dtype() {
    if (tok_.kind != Token::Ident) error(tok_.pos, "expected a type such as f32[2, 3], got ", describe(tok_));
    for (int d = 0; d <= static_cast<int>(DType::String); ++d) {
      if (dtype_short_name(static_cast<DType>(d)) == tok_.text) {
        advance();
        return static_cast<DType>(d);
      }
    }
    error(tok_.pos, "unknown dtype '", tok_.text,
          "' (expected f16, bf16, f32, f64, i8..i64, u8..u64, bool, c64, c128)");
  }

  // Parses `dtype[dims]`. Symbol names are resolved against `g` unless `pending` collects them
  // (parameter types come before the graph's `symbols(...)` clause).
  TensorType parse_type(Graph& g, std::vector<PendingSymbol>* pending) {
    TensorType t;
    t.dtype = parse_dtype();
    expect('[', "to open the dims of a type");
    if (!is_punct(']')) {
      while (true) {
        if (tok_.kind == Token::Number) {
          int64_t d = 0;
          if (!parse_integer(tok_.text, d) || d < 0)
            error(tok_.pos, "invalid dim '", tok_.text, "' (a dim is a size >= 0, '?' or a symbol name)");
          t.shape.push_back(d);
        } else if (is_punct('?')) {
          t.shape.push_back(kUnknownDim);
        } else if (tok_.kind == Token::Ident) {
          if (pending) {
            pending->push_back({size_t(t.shape.rank()), tok_.text, tok_.pos});
            t.shape.push_back(kUnknownDim);
          } else {
            t.shape.push_back(resolve_symbol(g, tok_.text, tok_.pos));
          }
        } else {
          error(tok_.pos, "expected a dim (a size, '?' or a symbol name), got ", describe(tok_));
        }
        advance();
        if (accept(']')) break;
        expect(',', "or ']' in the dims of a type");
      }
    } else {
      advance();
    }
    return t;
  }

  int64_t resolve_symbol(const Graph& g, const std::string& name, Pos p) {
    for (size_t i = 0; i < g.symbols.size(); ++i)
      if (g.symbols[i] == name) return symbol_dim(i);
    error(p, "unknown symbol '", name, "' (declare it in the graph's symbols(...) clause)");
  }

  // ---- graphs
  using Scope = std::unordered_map<std::string, Value*>;

  void bind(Scope& scope, char sigil, const std::string& name, Value* v, Pos p) {
    if (!scope.emplace(sigil + name, v).second) error(p, "redefinition of ", sigil, name);
  }

  Value* lookup(const Scope& scope, const Token& t) {
    char sigil = t.kind == Token::Bang ? '!' : '%';
    auto it = scope.find(sigil + t.text);
    if (it == scope.end()) error(t.pos, "undefined value ", sigil, t.text);
    return it->second;
  }

  // A data value's name in the text: "%7" is unnamed, "%x" is named x.
  std::string value_name(const Token& t) {
    if (all_digits(t.text)) return {};
    if (!detail::is_identifier(t.text))
      error(t.pos, "invalid value name '%", t.text, "' (use a number or a name starting with a letter or '_')");
    return t.text;
  }

  std::string parse_name(std::string_view what) {
    if (tok_.kind != Token::Ident && tok_.kind != Token::String)
      error(tok_.pos, "expected ", what, ", got ", describe(tok_));
    std::string s = tok_.text;
    advance();
    return s;
  }

  void parse_graph(Graph& g, int depth) {
    if (depth > kMaxDepth) error(tok_.pos, "subgraphs nested deeper than ", kMaxDepth, " levels");
    expect_ident("graph");
    if (tok_.kind != Token::At) error(tok_.pos, "expected the graph name '@name', got ", describe(tok_));
    g.name = tok_.text;
    advance();

    // Parameters; their symbol dims resolve once the symbols clause has been read.
    struct Param {
      Token tok;
      TensorType type;
      std::vector<PendingSymbol> symbols;
    };
    std::vector<Param> params;
    expect('(', "to open the parameter list");
    if (!accept(')')) {
      while (true) {
        if (tok_.kind != Token::Percent) error(tok_.pos, "expected a parameter '%name', got ", describe(tok_));
        Param p;
        p.tok = tok_;
        advance();
        expect(':', "after a parameter name");
        p.type = parse_type(g, &p.symbols);
        params.push_back(std::move(p));
        if (accept(')')) break;
        expect(',', "or ')' in the parameter list");
      }
    }
    if (is_ident("symbols")) {
      advance();
      expect('(', "after 'symbols'");
      while (true) {
        if (tok_.kind != Token::Ident || !detail::is_identifier(tok_.text))
          error(tok_.pos, "expected a symbol name, got ", describe(tok_));
        for (auto& s : g.symbols)
          if (s == tok_.text) error(tok_.pos, "symbol '", s, "' declared twice");
        g.symbols.push_back(tok_.text);
        advance();
        if (accept(')')) break;
        expect(',', "or ')' in the symbols list");
      }
    }
    Scope scope;
    for (Param& p : params) {
      for (auto& s : p.symbols) p.type.shape.mut(s.dim) = resolve_symbol(g, s.name, s.pos);
      std::string name = value_name(p.tok);
      bind(scope, '%', p.tok.text, g.add_input(p.type, name), p.tok.pos);
    }
    if (is_ident("vars")) {
      advance();
      expect('(', "after 'vars'");
      while (true) {
        size_t index = g.variables.size();
        if (tok_.kind != Token::At || tok_.text != std::to_string(index))
          error(tok_.pos, "expected variable '@", index, "' (variables are numbered in order), got ", describe(tok_));
        advance();
        std::string name = parse_name("a variable name");
        expect(':', "after a variable name");
        TensorType type = parse_type(g, nullptr);
        bool trainable = is_ident("trainable");
        if (!trainable && !is_ident("frozen"))
          error(tok_.pos, "expected 'trainable' or 'frozen', got ", describe(tok_));
        advance();
        g.add_variable({}, std::move(name), type, trainable);
        bind(scope, '!', "v" + std::to_string(index), g.variables.back().token_in, tok_.pos);
        if (accept(')')) break;
        expect(',', "or ')' in the vars list");
      }
    }
    if (is_ident("io")) {
      bind(scope, '!', "io", g.io_token(), tok_.pos);
      advance();
    }
    expect('{', "to open the graph body");
    while (!is_ident("return")) parse_node(g, scope, depth);
    parse_return(g, scope);
    expect('}', "to close the graph body");
  }

  void parse_return(Graph& g, Scope& scope) {
    return_pos_[&g] = tok_.pos;
    advance();
    if (tok_.kind == Token::Percent) {
      while (true) {
        if (tok_.kind != Token::Percent) error(tok_.pos, "expected an output '%name', got ", describe(tok_));
        g.outputs.push_back(lookup(scope, tok_));
        advance();
        if (!accept(',')) break;
      }
    }
    if (!is_ident("effects")) return;
    advance();
    expect('(', "after 'effects'");
    std::vector<bool> seen(g.variables.size());
    bool seen_io = false;
    while (true) {
      Pos p = tok_.pos;
      Value** slot = nullptr;
      if (tok_.kind == Token::At) {
        size_t index = 0;
        if (!parse_integer(tok_.text, index) || index >= g.variables.size())
          error(p, "no variable '@", tok_.text, "' (the graph has ", g.variables.size(), ")");
        if (seen[index]) error(p, "variable '@", index, "' listed twice in effects(...)");
        seen[index] = true;
        slot = &g.variables[index].token_out;
      } else if (is_ident("io")) {
        if (!g.io_in) error(p, "the graph has no I/O token (declare 'io' after the parameters)");
        if (seen_io) error(p, "'io' listed twice in effects(...)");
        seen_io = true;
        slot = &g.io_out;
      } else {
        error(p, "expected '@N' or 'io' in effects(...), got ", describe(tok_));
      }
      advance();
      expect('=', "in effects(...)");
      if (tok_.kind != Token::Bang) error(tok_.pos, "expected a token '!N', got ", describe(tok_));
      *slot = lookup(scope, tok_);
      advance();
      if (accept(')')) break;
      expect(',', "or ')' in effects(...)");
    }
  }

  ops::AttrValue parse_attr_value(const ops::AttrSpec& spec) {
    Pos p = tok_.pos;
    switch (spec.kind) {
      case ops::AttrKind::Int: {
        int64_t v = 0;
        if (tok_.kind != Token::Number || !parse_integer(tok_.text, v))
          error(p, "attribute '", spec.name, "' needs an int64 integer, got ", describe(tok_));
        advance();
        return v;
      }
      case ops::AttrKind::Float:
        return parse_float<double>("f64");
      case ops::AttrKind::Bool: {
        if (!is_ident("true") && !is_ident("false"))
          error(p, "attribute '", spec.name, "' needs true or false, got ", describe(tok_));
        bool b = tok_.text == "true";
        advance();
        return b;
      }
      case ops::AttrKind::Type: {
        if (tok_.kind == Token::Ident) {
          for (int d = 0; d <= static_cast<int>(DType::String); ++d) {
            auto dt = static_cast<DType>(d);
            if (dtype_name(dt) == tok_.text || dtype_short_name(dt) == tok_.text) {
              advance();
              return dt;
            }
          }
        }
        error(p, "attribute '", spec.name, "' needs a dtype such as float32, got ", describe(tok_));
      }
      case ops::AttrKind::Ints: {
        expect('[', "to open an int list");
        std::vector<int64_t> v;
        if (!accept(']')) {
          while (true) {
            int64_t x = 0;
            if (tok_.kind != Token::Number || !parse_integer(tok_.text, x))
              error(tok_.pos, "attribute '", spec.name, "' needs int64 integers, got ", describe(tok_));
            v.push_back(x);
            advance();
            if (accept(']')) break;
            expect(',', "or ']' in an int list");
          }
        }
        return v;
      }
      case ops::AttrKind::String: {
        if (tok_.kind != Token::String) error(p, "attribute '", spec.name, "' needs a string, got ", describe(tok_));
        std::string s = tok_.text;
        advance();
        return s;
      }
      case ops::AttrKind::Object:
        break;
    }
    error(p, "attribute '", spec.name, "' holds a C++ object (such as a call's function), which the text form ",
          "cannot express");
  }

  ops::Attrs parse_attrs(const ops::OpDef& def) {
    ops::Attrs attrs;
    advance();  // '{'
    if (accept('}')) return attrs;
    while (true) {
      if (tok_.kind != Token::Ident) error(tok_.pos, "expected an attribute name, got ", describe(tok_));
      const ops::AttrSpec* spec = nullptr;
      for (const auto& s : def.attrs)
        if (s.name == tok_.text) spec = &s;
      if (!spec) error(tok_.pos, "op '", def.name, "' has no attribute '", tok_.text, "'");
      if (attrs.has(spec->name)) error(tok_.pos, "attribute '", spec->name, "' given twice");
      advance();
      expect('=', "after an attribute name");
      // The schema's name, a string literal, outlives the graph (Attrs keeps string_views).
      attrs.set(spec->name, parse_attr_value(*spec));
      if (accept('}')) break;
      expect(',', "or '}' in the attributes");
    }
    return attrs;
  }

  // ---- constants
  template <class F>
  F parse_float(std::string_view dtype) {
    if (tok_.kind != Token::Number && tok_.kind != Token::Ident)
      error(tok_.pos, "expected a ", dtype, " number, got ", describe(tok_));
    const std::string& s = tok_.text;
    F v{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec == std::errc::result_out_of_range) error(tok_.pos, "number ", s, " is out of range for ", dtype);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) error(tok_.pos, "invalid ", dtype, " number '", s, "'");
    advance();
    return v;
  }

  template <class I>
  I parse_int_element(DType d) {
    I v{};
    if (tok_.kind != Token::Number || !parse_integer(tok_.text, v)) {
      if (tok_.kind == Token::Number &&
          (all_digits(tok_.text) || (tok_.text[0] == '-' && all_digits(tok_.text.substr(1)))))
        error(tok_.pos, "integer ", tok_.text, " is out of range for ", dtype_short_name(d));
      error(tok_.pos, "expected a ", dtype_short_name(d), " integer, got ", describe(tok_));
    }
    advance();
    return v;
  }

  // Appends one element of dtype `d` to `bytes`.
  void parse_element(DType d, std::vector<unsigned char>& bytes) {
    auto put = [&](const auto& x) {
      const auto* p = reinterpret_cast<const unsigned char*>(&x);
      bytes.insert(bytes.end(), p, p + sizeof x);
    };
    switch (d) {
      case DType::Bool: {
        if (!is_ident("true") && !is_ident("false")) error(tok_.pos, "expected true or false, got ", describe(tok_));
        put(static_cast<unsigned char>(tok_.text == "true"));
        advance();
        return;
      }
      case DType::Float16:
      case DType::BFloat16: {
        Pos p = tok_.pos;
        float f = parse_float<float>(dtype_short_name(d));
        uint16_t bits = d == DType::Float16 ? Half(f).bits : BFloat16(f).bits;
        float back = d == DType::Float16 ? float(Half::from_bits(bits)) : float(BFloat16::from_bits(bits));
        if (std::isfinite(f) && !std::isfinite(back)) error(p, "number is out of range for ", dtype_short_name(d));
        put(bits);
        return;
      }
      case DType::Float32:
        put(parse_float<float>("f32"));
        return;
      case DType::Float64:
        put(parse_float<double>("f64"));
        return;
      case DType::Complex64:
      case DType::Complex128: {
        expect('(', "to open a complex number (re, im)");
        if (d == DType::Complex64) {
          float re = parse_float<float>("c64");
          expect(',', "between the parts of a complex number");
          put(complex64_t(re, parse_float<float>("c64")));
        } else {
          double re = parse_float<double>("c128");
          expect(',', "between the parts of a complex number");
          put(complex128_t(re, parse_float<double>("c128")));
        }
        expect(')', "to close a complex number");
        return;
      }
      case DType::Int8:
        put(parse_int_element<int8_t>(d));
        return;
      case DType::Int16:
        put(parse_int_element<int16_t>(d));
        return;
      case DType::Int32:
        put(parse_int_element<int32_t>(d));
        return;
      case DType::Int64:
        put(parse_int_element<int64_t>(d));
        return;
      case DType::UInt8:
        put(parse_int_element<uint8_t>(d));
        return;
      case DType::UInt16:
        put(parse_int_element<uint16_t>(d));
        return;
      case DType::UInt32:
        put(parse_int_element<uint32_t>(d));
        return;
      case DType::UInt64:
        put(parse_int_element<uint64_t>(d));
        return;
      case DType::String:
        break;
    }
    error(tok_.pos, "string constants are not supported by the text form yet");
  }

  Tensor parse_constant(const TensorType& t, Pos type_pos) {
    if (t.dtype == DType::String) error(type_pos, "string constants are not supported by the text form yet");
    int64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0) error(type_pos, "a constant needs a fully known shape, got ", type_to_string(t, nullptr));
      if (d != 0 && count > std::numeric_limits<int64_t>::max() / d)
        error(type_pos, "the element count of ", type_to_string(t, nullptr), " overflows int64");
      count *= d;
    }
    if (tok_.kind == Token::Ident &&
        (tok_.text == "undefined" || tok_.text == "symbolic" || tok_.text == "unsupported"))
      error(tok_.pos, "the printed graph held a constant the text form cannot express (", tok_.text, ")");
    // Elements are read before anything is allocated for them: memory follows the text, never
    // the declared shape.
    std::vector<unsigned char> bytes;
    int64_t n = 0;
    Pos start = tok_.pos;
    if (tok_.kind == Token::Ident && tok_.text == "splat") {
      // one element repeated: the only form whose memory does not follow the text, so bounded
      constexpr int64_t kMaxSplat = int64_t{1} << 24;
      if (count > kMaxSplat)
        error(start, "a splat constant of ", count, " elements is more than the parser expands (", kMaxSplat, ")");
      advance();
      expect('(', "after splat");
      parse_element(t.dtype, bytes);
      expect(')', "to close splat(...)");
      Tensor out = Tensor::empty(t.shape, t.dtype);
      auto* dst = static_cast<unsigned char*>(out.mutable_raw_data());
      for (int64_t i = 0; i < count; ++i) std::memcpy(dst + size_t(i) * bytes.size(), bytes.data(), bytes.size());
      return out;
    }
    if (t.shape.rank() == 0) {
      parse_element(t.dtype, bytes);
      n = 1;
    } else {
      expect('[', "to open the elements of a constant (a flat list, row-major)");
      if (!accept(']')) {
        while (true) {
          if (n == count)
            error(tok_.pos, "constant of type ", type_to_string(t, nullptr), " has more than ", count, " elements");
          parse_element(t.dtype, bytes);
          ++n;
          if (accept(']')) break;
          expect(',', "or ']' in the elements of a constant");
        }
      }
    }
    if (n != count)
      error(start, "constant of type ", type_to_string(t, nullptr), " needs ", count, " elements, got ", n);
    Tensor out = Tensor::empty(t.shape, t.dtype);
    if (!bytes.empty()) std::memcpy(out.mutable_raw_data(), bytes.data(), bytes.size());
    return out;
  }

  // ---- nodes
  void parse_node(Graph& g, Scope& scope, int depth) {
    Pos node_pos = tok_.pos;
    std::vector<Token> results;
    if (tok_.kind == Token::Percent || tok_.kind == Token::Bang) {
      while (true) {
        if (tok_.kind != Token::Percent && tok_.kind != Token::Bang)
          error(tok_.pos, "expected a result '%name' or '!N', got ", describe(tok_));
        if (!results.empty() && results.back().kind == Token::Bang) error(tok_.pos, "the token result must come last");
        results.push_back(tok_);
        advance();
        if (!accept(',')) break;
      }
      expect('=', "after the results of a node");
    }
    if (tok_.kind != Token::Ident) error(tok_.pos, "expected an op name, got ", describe(tok_));
    Pos op_pos = tok_.pos;
    std::string op = tok_.text;
    advance();

    NodeKind kind = NodeKind::Op;
    const ops::OpDef* def = nullptr;
    if (op == "constant")
      kind = NodeKind::Constant;
    else if (op == "read_variable")
      kind = NodeKind::ReadVariable;
    else if (op == "assign_variable")
      kind = NodeKind::AssignVariable;
    else if (op == "cond")
      kind = NodeKind::Cond;
    else if (op == "while")
      kind = NodeKind::While;
    else {
      try {
        def = &ops::op_def(op);
      } catch (const NotFound&) {
        error(op_pos, "unknown op '", op, "'");
      }
    }

    int var = -1;
    if (tok_.kind == Token::At) {
      if (kind != NodeKind::ReadVariable && kind != NodeKind::AssignVariable)
        error(tok_.pos, "only read_variable and assign_variable name a variable");
      if (!parse_integer(tok_.text, var) || var < 0 || size_t(var) >= g.variables.size())
        error(tok_.pos, "no variable '@", tok_.text, "' (the graph has ", g.variables.size(), ")");
      advance();
    }

    std::vector<Value*> inputs;
    if (accept('(')) {
      if (!accept(')')) {
        while (true) {
          if (tok_.kind == Token::Bang) error(tok_.pos, "token !", tok_.text, " used as a data input");
          if (tok_.kind != Token::Percent) error(tok_.pos, "expected an input '%name', got ", describe(tok_));
          inputs.push_back(lookup(scope, tok_));
          advance();
          if (accept(')')) break;
          expect(',', "or ')' in the inputs");
        }
      }
    }

    ops::Attrs attrs;
    if (is_punct('{') && !(peek_next().kind == Token::Ident && peek_next().text == "graph")) {
      if (!def) error(tok_.pos, op, " takes no attributes");
      attrs = parse_attrs(*def);
    }

    Value* effect_in = nullptr;
    if (accept('[')) {
      if (tok_.kind != Token::Bang) error(tok_.pos, "expected an effect token '!N', got ", describe(tok_));
      effect_in = lookup(scope, tok_);
      advance();
      expect(']', "to close the effect token");
    }

    std::vector<TensorType> types;
    Pos type_pos = tok_.pos;
    if (accept(':')) {
      type_pos = tok_.pos;
      while (true) {
        types.push_back(parse_type(g, nullptr));
        if (!accept(',')) break;
      }
    }
    size_t data_results = results.size() - (!results.empty() && results.back().kind == Token::Bang ? 1 : 0);
    if (data_results != types.size())
      error(types.empty() ? tok_.pos : type_pos, "node has ", data_results, " data results but ", types.size(),
            " types");

    Node* n = nullptr;
    if (kind == NodeKind::Constant) {
      if (types.size() != 1) error(op_pos, "constant needs exactly one result type");
      if (!is_punct('=')) error(tok_.pos, "expected '=' and the value of the constant, got ", describe(tok_));
      advance();
      n = g.append_constant(parse_constant(types[0], type_pos));
      n->inputs = std::move(inputs);
    } else {
      if (is_punct('=')) error(tok_.pos, "only constants have a value after their type");
      n = def ? g.append_op(*def, std::move(attrs), std::move(inputs), types)
              : g.append(kind, std::move(inputs), types);
    }
    n->var = var;
    node_pos_[n] = node_pos;
    if (!results.empty() && results.back().kind == Token::Bang)
      g.add_effect(n, effect_in);
    else
      n->effect_in = effect_in;

    if (is_ident("loc")) {
      advance();
      expect('(', "after 'loc'");
      if (tok_.kind != Token::String) error(tok_.pos, "expected a file name string in loc(...), got ", describe(tok_));
      n->loc.file = tok_.text;
      advance();
      expect(':', "between the file and line of loc(...)");
      if (tok_.kind != Token::Number || !parse_integer(tok_.text, n->loc.line))
        error(tok_.pos, "expected a line number in loc(...), got ", describe(tok_));
      advance();
      expect(')', "to close loc(...)");
    }

    if (accept('{')) {
      do {
        n->subgraphs.push_back(std::make_unique<Graph>());
        parse_graph(*n->subgraphs.back(), depth + 1);
      } while (is_ident("graph"));
      expect('}', "to close the subgraphs");
    }

    // Results are bound last: a node cannot use its own outputs.
    for (size_t i = 0; i < data_results; ++i) {
      n->output(i)->name = value_name(results[i]);
      bind(scope, '%', results[i].text, n->output(i), results[i].pos);
    }
    if (n->effect_out) bind(scope, '!', results.back().text, n->effect_out, results.back().pos);
  }

  std::string_view text_;
  size_t i_ = 0, line_ = 1, col_ = 1;
  Token tok_;
  std::unordered_map<const Node*, Pos> node_pos_;
  std::unordered_map<const Graph*, Pos> return_pos_;
};

}  // namespace

std::unique_ptr<Graph> parse_graph(std::string_view text) { return Parser(text).parse(); }

}  // namespace kiln::ir
