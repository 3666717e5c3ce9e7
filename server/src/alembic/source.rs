//! Just enough of Python's lexical structure to read a revision file: string
//! literals, comments, brackets, top-level assignments, a function's body and
//! the method calls in it. Every index is a `char` index, and every access is
//! bounds-checked, so no input can make it panic.

use std::ops::Range;

/// A file as characters, with a copy where comments and the insides of
/// string literals are blanked out, so that searching for code never finds
/// it in a string or a comment.
pub struct Source {
    chars: Vec<char>,
    code: Vec<char>,
}

/// A literal value on the right of an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    None,
    Str(String),
    Seq(Vec<Value>),
}

impl Value {
    /// None → [], "a" → ["a"], ("a", "b") → ["a", "b"]; anything else → None.
    pub fn strings(&self) -> Option<Vec<String>> {
        match self {
            Value::None => Some(Vec::new()),
            Value::Str(s) => Some(vec![s.clone()]),
            Value::Seq(items) => items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// A call `receiver.name(args)` found in code.
pub struct Call {
    pub receiver: String,
    pub name: String,
    pub args: String,
    pub line: usize,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads the string literal whose opening quote is at `at` (prefix letters
/// already skipped): its value and the index after it. `Err(())` when it is
/// never closed.
fn literal_at(chars: &[char], at: usize) -> Result<(String, usize), ()> {
    let Some(&quote) = chars.get(at) else {
        return Err(());
    };
    let triple = chars.get(at + 1) == Some(&quote) && chars.get(at + 2) == Some(&quote);
    let mut i = at + if triple { 3 } else { 1 };
    let mut value = String::new();
    while let Some(&c) = chars.get(i) {
        if c == '\\' {
            if let Some(&next) = chars.get(i + 1) {
                value.push(next);
            }
            i += 2;
            continue;
        }
        if triple {
            if c == quote && chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote) {
                return Ok((value, i + 3));
            }
        } else if c == quote {
            return Ok((value, i + 1));
        } else if c == '\n' {
            return Err(());
        }
        value.push(c);
        i += 1;
    }
    Err(())
}

/// Whether a string literal's opening quote is at `i`, counting prefix
/// letters such as `r`, `u`, `b` or `rb` before it; returns the quote's index.
fn quote_after_prefix(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    while j < i + 2 && chars.get(j).is_some_and(|c| "rRuUbBfF".contains(*c)) {
        j += 1;
    }
    let starts_token = i == 0 || !chars.get(i - 1).copied().is_some_and(is_ident);
    match chars.get(j) {
        Some('\'' | '"') if j == i || starts_token => Some(j),
        _ => None,
    }
}

/// Every string literal in a piece of code, in order.
pub fn string_literals(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if let Some(q) = quote_after_prefix(&chars, i) {
            match literal_at(&chars, q) {
                Ok((value, end)) => {
                    found.push(value);
                    i = end;
                }
                Err(()) => break,
            }
            continue;
        }
        i += 1;
    }
    found
}

impl Source {
    pub fn new(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut code = chars.clone();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '#' {
                while i < chars.len() && chars[i] != '\n' {
                    code[i] = ' ';
                    i += 1;
                }
                continue;
            }
            if let Some(q) = quote_after_prefix(&chars, i) {
                let triple =
                    chars.get(q + 1) == Some(&chars[q]) && chars.get(q + 2) == Some(&chars[q]);
                let open = if triple { 3 } else { 1 };
                let (end, close) = match literal_at(&chars, q) {
                    Ok((_, end)) => (end, open),
                    // Unclosed: blank to the end of the line (or the file,
                    // for a triple-quoted one).
                    Err(()) if triple => (chars.len(), 0),
                    Err(()) => (
                        (q..chars.len())
                            .find(|&k| chars[k] == '\n')
                            .unwrap_or(chars.len()),
                        0,
                    ),
                };
                for (k, slot) in code
                    .iter_mut()
                    .enumerate()
                    .take(end.saturating_sub(close))
                    .skip(q + open)
                {
                    if chars[k] != '\n' {
                        *slot = ' ';
                    }
                }
                i = end.max(i + 1);
                continue;
            }
            i += 1;
        }
        Self { chars, code }
    }

    /// The 1-based line of char index `at`.
    pub fn line_of(&self, at: usize) -> usize {
        1 + self.chars.iter().take(at).filter(|&&c| c == '\n').count()
    }

    /// Start indexes of every line.
    fn line_starts(&self) -> Vec<usize> {
        std::iter::once(0)
            .chain(
                self.chars
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '\n')
                    .map(|(i, _)| i + 1),
            )
            .filter(|&i| i <= self.chars.len())
            .collect()
    }

    fn code_starts_with(&self, at: usize, word: &str) -> bool {
        let word: Vec<char> = word.chars().collect();
        self.code.get(at..at + word.len()) == Some(&word[..])
            && !self
                .code
                .get(at + word.len())
                .copied()
                .is_some_and(is_ident)
    }

    /// The module docstring, if the file starts with one; `Err(line)` when it
    /// is never closed.
    pub fn module_docstring(&self) -> Result<Option<String>, usize> {
        let Some(first) = self.code.iter().position(|c| !c.is_whitespace()) else {
            return Ok(None);
        };
        let Some(q) = quote_after_prefix(&self.chars, first) else {
            return Ok(None);
        };
        literal_at(&self.chars, q)
            .map(|(value, _)| Some(value))
            .map_err(|()| self.line_of(first))
    }

    /// The value of the last top-level `name = …` (or `name: T = …`), with
    /// the line it starts on.
    pub fn top_level_assignment(&self, name: &str) -> Option<(usize, Result<Value, String>)> {
        let mut last = None;
        for start in self.line_starts() {
            if !self.code_starts_with(start, name) {
                continue;
            }
            let mut i = start + name.chars().count();
            while self.code.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
                i += 1;
            }
            if !matches!(self.code.get(i), Some(':' | '=')) {
                continue;
            }
            // Find the `=` at bracket depth 0 (the annotation may hold brackets).
            let mut depth = 0i32;
            let mut eq = None;
            while let Some(&c) = self.code.get(i) {
                match c {
                    '[' | '(' | '{' => depth += 1,
                    ']' | ')' | '}' => depth -= 1,
                    '\n' if depth <= 0 => break,
                    '=' if depth == 0 && self.code.get(i + 1) != Some(&'=') => {
                        eq = Some(i);
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let Some(eq) = eq else { continue };
            let end = self.statement_end(eq + 1);
            let text: String = self.chars.get(eq + 1..end).unwrap_or(&[]).iter().collect();
            last = Some((self.line_of(start), parse_value(&text)));
        }
        last
    }

    /// Where the statement that continues at `from` ends: the first newline
    /// outside brackets and not after a backslash.
    fn statement_end(&self, from: usize) -> usize {
        let mut depth = 0i32;
        let mut i = from;
        while let Some(&c) = self.code.get(i) {
            match c {
                '[' | '(' | '{' => depth += 1,
                ']' | ')' | '}' => depth -= 1,
                '\n' if depth <= 0 && (i == 0 || self.code.get(i - 1) != Some(&'\\')) => return i,
                _ => {}
            }
            i += 1;
        }
        self.chars.len()
    }

    /// The char range of the body of the top-level `def name(…):`.
    pub fn function_body(&self, name: &str) -> Option<Range<usize>> {
        let starts = self.line_starts();
        let def = starts.iter().copied().find(|&s| {
            self.code_starts_with(s, "def") && {
                let rest: String = self
                    .code
                    .get(s + 3..)
                    .unwrap_or(&[])
                    .iter()
                    .take(name.len() + 8)
                    .collect();
                let rest = rest.trim_start();
                rest.strip_prefix(name)
                    .is_some_and(|r| r.trim_start().starts_with('('))
            }
        })?;
        let body_start = self
            .statement_end(def)
            .saturating_add(1)
            .min(self.chars.len());
        // The body ends at the next line that is not blank and not indented.
        let end = starts
            .iter()
            .copied()
            .filter(|&s| s >= body_start)
            .find(|&s| {
                let line_end = (s..self.code.len())
                    .find(|&k| self.code[k] == '\n')
                    .unwrap_or(self.code.len());
                let line = &self.code[s..line_end];
                line.first().is_some_and(|c| !c.is_whitespace())
                    && line.iter().any(|c| !c.is_whitespace())
            })
            .unwrap_or(self.chars.len());
        Some(body_start..end.max(body_start))
    }

    /// Every `receiver.name(…)` call inside `range`, in order.
    pub fn calls(&self, range: Range<usize>) -> Vec<Call> {
        let end = range.end.min(self.code.len());
        let mut calls = Vec::new();
        let mut i = range.start;
        while i < end {
            if self.code[i] != '(' {
                i += 1;
                continue;
            }
            // Walk back over `name`, `.`, `receiver`.
            let mut j = i;
            while j > range.start && self.code[j - 1] == ' ' {
                j -= 1;
            }
            let name_end = j;
            while j > range.start && is_ident(self.code[j - 1]) {
                j -= 1;
            }
            let name_start = j;
            let receiver = if j > range.start && self.code[j - 1] == '.' {
                let r_end = j - 1;
                let mut r = r_end;
                while r > range.start && is_ident(self.code[r - 1]) {
                    r -= 1;
                }
                self.code[r..r_end].iter().collect::<String>()
            } else {
                String::new()
            };
            let name: String = self.code[name_start..name_end].iter().collect();
            // The matching close bracket.
            let mut depth = 0i32;
            let mut k = i;
            while k < end {
                match self.code[k] {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            if !name.is_empty() {
                calls.push(Call {
                    receiver,
                    name,
                    args: self.chars[i + 1..k.min(end).max(i + 1)].iter().collect(),
                    line: self.line_of(name_start),
                });
            }
            i += 1;
        }
        calls
    }
}

/// Parses `None`, a string (adjacent literals concatenate), or a tuple or
/// list of those, with an optional trailing comment.
pub fn parse_value(text: &str) -> Result<Value, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser {
        chars: &chars,
        at: 0,
    };
    let value = p.items(None)?;
    p.skip_space();
    match p.chars.get(p.at) {
        None => Ok(value),
        Some(c) => Err(format!(
            "unexpected `{c}`; expected None, a string or a tuple of strings"
        )),
    }
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while let Some(&c) = self.chars.get(self.at) {
            if c == '#' {
                while self.chars.get(self.at).is_some_and(|c| *c != '\n') {
                    self.at += 1;
                }
            } else if c.is_whitespace() || c == '\\' {
                self.at += 1;
            } else {
                break;
            }
        }
    }

    /// Comma-separated values until `close` (or the end): one value without
    /// a comma stays itself, otherwise a sequence.
    fn items(&mut self, close: Option<char>) -> Result<Value, String> {
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_space();
            match self.chars.get(self.at) {
                None if close.is_none() => break,
                None => return Err(format!("a `{}` is missing", close.unwrap_or(')'))),
                Some(&c) if Some(c) == close => {
                    self.at += 1;
                    break;
                }
                _ => {}
            }
            items.push(self.value()?);
            self.skip_space();
            trailing_comma = false;
            match self.chars.get(self.at) {
                Some(',') => {
                    self.at += 1;
                    trailing_comma = true;
                }
                Some(&c) if Some(c) == close => {}
                None if close.is_none() => {}
                Some(c) => return Err(format!("unexpected `{c}` after a value")),
                None => return Err(format!("a `{}` is missing", close.unwrap_or(')'))),
            }
        }
        Ok(
            if items.len() == 1 && !trailing_comma && close != Some(']') {
                items.remove(0)
            } else {
                Value::Seq(items)
            },
        )
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.chars.get(self.at) {
            Some('(') => {
                self.at += 1;
                self.items(Some(')'))
            }
            Some('[') => {
                self.at += 1;
                self.items(Some(']'))
            }
            Some(_) if self.chars[self.at..].starts_with(&['N', 'o', 'n', 'e']) => {
                self.at += 4;
                if self.chars.get(self.at).copied().is_some_and(is_ident) {
                    return Err("expected None, a string or a tuple of strings".into());
                }
                Ok(Value::None)
            }
            Some(_) => {
                let mut text = String::new();
                let mut any = false;
                while let Some(q) = quote_after_prefix(self.chars, self.at) {
                    let (s, end) = literal_at(self.chars, q)
                        .map_err(|()| "a string is never closed".to_owned())?;
                    text.push_str(&s);
                    self.at = end;
                    any = true;
                    self.skip_space();
                }
                if any {
                    Ok(Value::Str(text))
                } else {
                    Err("expected None, a string or a tuple of strings".into())
                }
            }
            None => Err("a value is missing".into()),
        }
    }
}
