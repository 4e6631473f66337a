//! A statement written over pg_credit's tables, pointed at one group of colocated Citus shards.
//!
//! On a Citus worker a statement over `credit.invoice` is a distributed query, which Citus refuses
//! inside a query on a shard; the same statement over `credit.invoice_102040` is a plain query of
//! a local table. [`point_at_shards`] renames each `credit.<table>` the map names, outside string
//! literals, quoted identifiers and comments, and leaves everything else as written.

/// Renames every `credit.<name>` whose name the map holds (as `(name, replacement)`) to the
/// replacement, where it stands as a qualified name in SQL text: not inside '...' literals,
/// "..." identifiers, -- comments or /* */ comments, and not as the prefix of a longer name
/// (`credit.invoice` is not renamed inside `credit.invoice_dispute`).
pub fn point_at_shards(sql: &str, map: &[(&str, &str)]) -> String {
    const QUALIFIER: &str = "credit.";
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 64);
    let mut i = 0;
    // The start of the text not yet copied.
    let mut copied = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        // A doubled quote is the quote itself.
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            c if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let word = &sql[start..i];
                // `credit.` as a whole word (not `xcredit.`), followed by a name.
                if word == "credit" && sql[i..].starts_with('.') {
                    let name_start = start + QUALIFIER.len();
                    let mut end = name_start;
                    while end < b.len() && ident(b[end]) {
                        end += 1;
                    }
                    if let Some((_, to)) = map.iter().find(|(from, _)| *from == &sql[name_start..end]) {
                        out.push_str(&sql[copied..start]);
                        out.push_str(to);
                        copied = end;
                    }
                    i = end;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &[(&str, &str)] = &[
        ("invoice", "credit.invoice_102008"),
        ("account", "credit.account_102040"),
        ("dunning_level", "credit.dunning_level_102001"),
    ];

    #[test]
    fn renames_qualified_names_only() {
        assert_eq!(
            point_at_shards("SELECT 1 FROM credit.invoice i JOIN credit.account a ON a.customer = i.customer", MAP),
            "SELECT 1 FROM credit.invoice_102008 i JOIN credit.account_102040 a ON a.customer = i.customer"
        );
        // A longer name, another schema, a column called invoice, an unmapped table.
        assert_eq!(
            point_at_shards("credit.invoice_dispute, xcredit.invoice, i.invoice, credit.event", MAP),
            "credit.invoice_dispute, xcredit.invoice, i.invoice, credit.event"
        );
        assert_eq!(point_at_shards("UPDATE credit.account\nSET", MAP), "UPDATE credit.account_102040\nSET");
        assert_eq!(point_at_shards("(credit.invoice)", MAP), "(credit.invoice_102008)");
    }

    #[test]
    fn leaves_literals_identifiers_and_comments() {
        let sql = "SELECT 'credit.invoice', 'it''s credit.account', \"credit.invoice\" -- credit.invoice\n\
                   /* credit.account */ FROM credit.invoice";
        assert_eq!(
            point_at_shards(sql, MAP),
            "SELECT 'credit.invoice', 'it''s credit.account', \"credit.invoice\" -- credit.invoice\n\
             /* credit.account */ FROM credit.invoice_102008"
        );
        // Unterminated input does not panic.
        assert_eq!(point_at_shards("SELECT 'credit.invoice", MAP), "SELECT 'credit.invoice");
        assert_eq!(point_at_shards("/* credit.invoice", MAP), "/* credit.invoice");
        assert_eq!(point_at_shards("credit.", MAP), "credit.");
        assert_eq!(point_at_shards("", MAP), "");
    }

    #[test]
    fn empty_map_changes_nothing() {
        let sql = "SELECT * FROM credit.invoice WHERE doc_no = 'credit.account'";
        assert_eq!(point_at_shards(sql, &[]), sql);
    }

    proptest::proptest! {
        #[test]
        fn text_without_the_qualifier_is_unchanged(s in "[a-z .'\"/*\\n-]{0,80}") {
            proptest::prop_assume!(!s.contains("credit."));
            proptest::prop_assert_eq!(point_at_shards(&s, MAP), s);
        }
    }
}
