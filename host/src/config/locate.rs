//! Where block-style YAML text writes something, for errors found after parsing (value
//! ranges, missing fields, rule checks): the parser's locations are gone by then, so the
//! text is walked by indentation. Flow style (`{ a: 1 }`, `[a, b]`) is not followed: the
//! caller gets no line rather than a guessed one.

/// Indentation of a line.
fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// Whether a line holds anything (not blank, not a comment).
fn is_content(l: &str) -> bool {
    let t = l.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The mapping key a line starts with, unquoted.
fn key_of(l: &str) -> Option<&str> {
    let t = l.trim();
    let key = match t.split_once(": ") {
        Some((k, _)) => k,
        None => t.strip_suffix(':')?,
    };
    Some(key.trim_matches(|c| c == '"' || c == '\''))
}

/// The 1-based line where `text` writes the key at dotted `path` (`pipeline.batch_size`;
/// a key may itself contain dots, as a label does), if it does. A value that only comes
/// from the defaults, or a mapping written in flow style, has none.
pub fn line_of_field(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rest = path;
    // The document's top-level keys sit at the indentation of its first line.
    let mut from = lines.iter().position(|l| is_content(l))?;
    let mut level = indent(lines[from]);
    loop {
        // The keys of this mapping: its lines at `level`, until one less indented.
        let mut child_of = None;
        for (i, l) in lines.iter().enumerate().skip(from) {
            if !is_content(l) || indent(l) > level {
                continue;
            }
            if indent(l) < level {
                break;
            }
            let Some(key) = key_of(l) else { continue };
            if rest == key {
                return Some(i + 1);
            }
            if let Some(deeper) = rest.strip_prefix(key).and_then(|r| r.strip_prefix('.')) {
                child_of = Some((i, deeper));
                break;
            }
        }
        let (at, deeper) = child_of?;
        from = (at + 1..lines.len()).find(|&i| is_content(lines[i]))?;
        if indent(lines[from]) <= level {
            return None;
        }
        level = indent(lines[from]);
        rest = deeper;
    }
}

/// The 1-based line of the first occurrence of `needle` within item `index` of the list
/// at dotted `path`, else the item's first line; the line of `path` itself when the list
/// is not in block style or has no such item. Items are found by position, so one whose
/// identifying field is broken is found too.
pub fn line_in_item(text: &str, path: &str, index: usize, needle: &str) -> Option<usize> {
    let key_line = line_of_field(text, path)?;
    let lines: Vec<&str> = text.lines().collect();
    let Some(first) = (key_line..lines.len()).find(|&i| is_content(lines[i])) else {
        return Some(key_line);
    };
    let item_indent = indent(lines[first]);
    // Items start at the list's indentation, up to the first line that ends the list.
    let mut items = Vec::new();
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate().skip(first) {
        if !is_content(l) || indent(l) > item_indent {
            continue;
        }
        let t = l.trim_start();
        if indent(l) < item_indent || !(t.starts_with("- ") || t == "-") {
            end = i;
            break;
        }
        items.push(i);
    }
    let Some(&start) = items.get(index) else {
        return Some(key_line);
    };
    let stop = items.get(index + 1).copied().unwrap_or(end);
    (start..stop)
        .find(|&i| lines[i].contains(needle))
        .or(Some(start))
        .map(|i| i + 1)
}
