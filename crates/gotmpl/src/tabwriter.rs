//! Go's `text/tabwriter` with padchar `' '` and no flags.

/// One line: its cells (tab-terminated ones, then the trailing one) and
/// whether a newline (`\n` or `\f`) ended it.
struct Line<'a> {
    cells: Vec<&'a str>,
    terminated: bool,
    hard_break: bool,
}

/// Aligns tab-separated text like Go's `tabwriter.NewWriter(w, minwidth,
/// tabwidth, padding, ' ', 0)` followed by `Flush`.
///
/// Cells are tab-terminated; a column block is a run of consecutive lines
/// that have a cell in that column, and its width is the widest cell (in
/// chars) plus `padding`, at least `minwidth`. The last cell of a line is not
/// part of a column and is written as is. `\f` ends a line and every column
/// block. `tabwidth` only matters when padding with tabs, so it is unused here.
#[must_use]
pub fn tabwrite(text: &str, minwidth: usize, tabwidth: usize, padding: usize) -> String {
    let _ = tabwidth;
    let mut lines = Vec::new();
    let mut cells = Vec::new();
    let mut start = 0;
    for (i, ch) in text.char_indices() {
        match ch {
            '\t' | '\u{b}' => {
                cells.push(&text[start..i]);
                start = i + 1;
            }
            '\n' | '\u{c}' => {
                cells.push(&text[start..i]);
                lines.push(Line {
                    cells: std::mem::take(&mut cells),
                    terminated: true,
                    hard_break: ch == '\u{c}',
                });
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        cells.push(&text[start..]);
    }
    lines.push(Line {
        cells,
        terminated: false,
        hard_break: false,
    });

    let w = Writer { minwidth, padding };
    let mut out = String::with_capacity(text.len() * 2);
    let mut first = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.hard_break || i + 1 == lines.len() {
            w.format(
                &mut out,
                &lines[first..=i],
                0,
                i + 1 - first,
                &mut Vec::new(),
            );
            first = i + 1;
        }
    }
    out
}

struct Writer {
    minwidth: usize,
    padding: usize,
}

impl Writer {
    /// Formats lines `from..to`, knowing the widths of the columns left of
    /// `widths.len()`.
    fn format(
        &self,
        out: &mut String,
        lines: &[Line<'_>],
        from: usize,
        to: usize,
        widths: &mut Vec<usize>,
    ) {
        let column = widths.len();
        let mut from = from;
        let mut this = from;
        while this < to {
            if column + 1 >= lines[this].cells.len() {
                this += 1;
                continue;
            }
            // A column block starts here: print the lines before it.
            Self::write_lines(out, lines, from, this, widths);
            from = this;
            let mut width = self.minwidth;
            while this < to && column + 1 < lines[this].cells.len() {
                width = width.max(lines[this].cells[column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(out, lines, from, this, widths);
            widths.pop();
            from = this;
        }
        Self::write_lines(out, lines, from, to, widths);
    }

    fn write_lines(out: &mut String, lines: &[Line<'_>], from: usize, to: usize, widths: &[usize]) {
        for line in &lines[from..to] {
            for (j, cell) in line.cells.iter().enumerate() {
                out.push_str(cell);
                if let Some(&w) = widths.get(j) {
                    let fill = w.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', fill));
                }
            }
            if line.terminated {
                out.push('\n');
            }
        }
    }
}
