//! Column alignment as kubectl's tabwriter does it: every column but the last is padded to its
//! widest cell plus 3 spaces (and at least 6 characters); the last column is not padded.

const PADDING: usize = 3;
const MIN_WIDTH: usize = 6;

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Column widths (including padding) for a set of rows.
pub fn widths(rows: &[Vec<String>]) -> Vec<usize> {
    let mut w: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let need = (width(cell) + PADDING).max(MIN_WIDTH);
            if i >= w.len() {
                w.push(need);
            } else if w[i] < need {
                w[i] = need;
            }
        }
    }
    w
}

/// One aligned line (no trailing newline) for `row` with the given widths; columns whose
/// cell is wider than the width given are widened.
pub fn line(row: &[String], widths: &[usize]) -> String {
    let mut out = String::new();
    for (i, cell) in row.iter().enumerate() {
        out.push_str(cell);
        if i + 1 < row.len() {
            let w = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .max((width(cell) + PADDING).max(MIN_WIDTH));
            out.extend(std::iter::repeat_n(' ', w - width(cell)));
        }
    }
    out
}

/// Render rows (the header being the first row, if any) as aligned text, one line per row,
/// each ending in a newline.
pub fn render(rows: &[Vec<String>]) -> String {
    let w = widths(rows);
    let mut out = String::new();
    for row in rows {
        out.push_str(&line(row, &w));
        out.push('\n');
    }
    out
}

/// Go's text/tabwriter (left-aligned, space padding, no flags): cells end with '\t', a column
/// block is a run of consecutive lines that have that column, and each block is as wide as its
/// widest cell plus `padding` (at least `min_width`). kubectl describe uses (0, 2).
pub fn tabwrite(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        min_width,
        padding,
        &mut out,
    );
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    min_width: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut w = min_width;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(lines[this][column]) + padding);
            this += 1;
        }
        widths.push(w);
        format_block(lines, line0, this, widths, min_width, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                out.extend(std::iter::repeat_n(
                    ' ',
                    widths[j].saturating_sub(width(cell)),
                ));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pads_columns_with_three_spaces_like_kubectl() {
        let rows = vec![
            row(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
            row(&[
                "nginx-deployment-5c689d88bb-7hx6l",
                "1/1",
                "Running",
                "0",
                "45s",
            ]),
        ];
        let out = render(&rows);
        assert_eq!(
            out,
            "NAME                                READY   STATUS    RESTARTS   AGE\n\
             nginx-deployment-5c689d88bb-7hx6l   1/1     Running   0          45s\n"
        );
    }

    #[test]
    fn short_columns_have_a_minimum_width() {
        let out = render(&[row(&["A", "B"]), row(&["x", "y"])]);
        assert_eq!(out, "A     B\nx     y\n");
    }

    #[test]
    fn tabwrite_aligns_column_blocks_like_go() {
        let text = "Name:\tx\nNamespace:\tdefault\nContainers:\n  nginx:\n    Image:\tnginx\n    Restart Count:\t0\n";
        assert_eq!(
            tabwrite(text, 0, 2),
            "Name:       x\nNamespace:  default\nContainers:\n  nginx:\n    Image:          nginx\n    Restart Count:  0\n"
        );
        let t = "A\tB\tC\naa\tbbbb\tc\n";
        assert_eq!(tabwrite(t, 0, 2), "A   B     C\naa  bbbb  c\n");
    }

    #[test]
    fn line_widens_for_wider_cells() {
        let w = widths(&[row(&["NAME", "AGE"])]);
        assert_eq!(
            line(&row(&["a-much-longer-name", "1s"]), &w),
            "a-much-longer-name   1s"
        );
    }
}
