#!/usr/bin/env bash
# Statements of account in a real browser: credit.statement_html of issued statements (Chinese and
# English; long document numbers, amounts up to hundreds of billions, several pages of lines,
# escaping) rendered by headless Chromium and printed to PDF. Checked from the PDF itself
# (poppler's pdfinfo and pdftotext, the figures compared in SQL):
#   - it prints on A4, on more than one page, each page of lines repeating its table's header;
#   - Chinese text renders (a CJK font is found: the title and the customer's name come back);
#   - every figure of credit.statement_line is in the page, and every figure in the page is one of
#     the statement's (a clipped, wrapped or garbled number fails both ways);
#   - no word lies outside the page and no two words on a line overlap (no clipped table, no
#     number running into the next column).
#   tests/browser/statement.sh SOCKET_DIR PORT [OUT_DIR]
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
DIR=$1 PORT=$2
OUT=${3:-$ROOT/target/test-results/browser}
DB=pg_credit_browser
rm -rf "$OUT"; mkdir -p "$OUT"
chmod 755 "$OUT"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (scripts/common.sh ensure_deps installs it)"; exit 1; }

pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
pg "$DIR" "$PORT" -d "$DB" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit, currency) VALUES
    ('华东五金贸易有限公司 <总部> & 分公司', 1e15, 'CNY'), ('Northwind Wholesale Ltd.', 1e15, 'USD');
INSERT INTO credit.statement_setting (customer, language) VALUES ('Northwind Wholesale Ltd.', 'en');
-- 150 invoices over March with long numbers and amounts from cents to hundreds of billions;
-- partial payments, credit notes, a bounced payment, a dispute, a promise.
SELECT count(credit.post_invoice(c, format('INV-2025-03-%s-%s-东区仓库-PO%s', lpad(i::text, 6, '0'), c_short, 900000000 + i),
                                 CASE i % 5 WHEN 0 THEN 987654321098.76 WHEN 1 THEN 0.05 WHEN 2 THEN 12345.67
                                            WHEN 3 THEN 1000000 ELSE 4321.09 * i END,
                                 DATE '2025-03-01' + (i % 28), DATE '2025-03-01' + (i % 28) + 30))
  FROM (VALUES ('华东五金贸易有限公司 <总部> & 分公司', 'HD'), ('Northwind Wholesale Ltd.', 'NW')) a(c, c_short),
       generate_series(1, 75) i;
SELECT count(credit.post_payment(c, 5000000.55 * k, DATE '2025-03-10' + k, NULL, format('BANK-TRANSFER-%s-%s', k, c_short)))
  FROM (VALUES ('华东五金贸易有限公司 <总部> & 分公司', 'HD'), ('Northwind Wholesale Ltd.', 'NW')) a(c, c_short),
       generate_series(1, 12) k;
SELECT credit.post_credit_note('华东五金贸易有限公司 <总部> & 分公司', 'CN-2025-03-000017-退货', 2469.34,
                               (SELECT doc_no FROM credit.invoice WHERE customer LIKE '华东%' AND open_amount > 2469.34
                                 ORDER BY doc_no LIMIT 1), '2025-03-18', '退货：包装破损');
SELECT credit.reverse_settlement(id, '银行退票', '2025-03-25') FROM credit.settlement
 WHERE doc_no = 'BANK-TRANSFER-3-HD';
SELECT credit.dispute(customer, doc_no, '数量不符', '2025-03-20') FROM credit.invoice
 WHERE customer LIKE '华东%' AND open_amount > 0 ORDER BY doc_no DESC LIMIT 1;
SELECT credit.log_contact(t.id, 'promised', '将于月底付款', 12345.67, '2025-04-10', '2025-03-28')
  FROM credit.run_collections('2025-03-28') r JOIN credit.collection_task t ON t.customer = r.customer AND t.doc_no = r.doc_no
 WHERE r.change = 'task_created' AND r.customer LIKE '华东%' LIMIT 1;
SELECT count(*) FROM credit.statement_run('2025-03-31');
SQL

# The figures the pages must show: the statement's own, formatted as printed.
pg "$DIR" "$PORT" -d "$DB" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE page_check (statement_id bigint, lang text, pages int, page_size text, text text, bbox xml);
CREATE FUNCTION printed(x numeric) RETURNS text LANGUAGE sql IMMUTABLE
RETURN CASE WHEN x < 0 THEN '-' ELSE '' END || to_char(abs(x), 'FM999,999,999,999,999,990.00');
SQL

n=0
for sid in $(pg "$DIR" "$PORT" -d "$DB" -At -c "SELECT id FROM credit.statement ORDER BY id"); do
    for lang in zh en; do
        base="$OUT/statement-$sid-$lang"
        pg "$DIR" "$PORT" -d "$DB" -At -c "SELECT credit.statement_html($sid, '$lang')" > "$base.html"
        chmod 644 "$base.html"
        # --no-sandbox: we run as root in CI. No network is needed (the page is self-contained).
        timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
            --no-pdf-header-footer --print-to-pdf="$base.pdf" "file://$base.html" >"$base.chromium.log" 2>&1 \
            || { cat "$base.chromium.log"; echo "chromium failed on $base.html"; exit 1; }
        [ -s "$base.pdf" ] || { cat "$base.chromium.log"; echo "chromium printed no PDF for $base.html"; exit 1; }
        pages=$(pdfinfo "$base.pdf" | awk '/^Pages:/ {print $2}')
        size=$(pdfinfo "$base.pdf" | sed -n 's/^Page size: *//p')
        pdftotext -layout "$base.pdf" "$base.txt"
        pdftotext -bbox "$base.pdf" "$base.bbox.html"
        # The bbox file is XHTML with a DOCTYPE; keep its <html> element for xml parsing.
        sed -n '/<html/,$p' "$base.bbox.html" > "$base.bbox.xml"
        pdftoppm -png -r 50 -f 1 -l 1 "$base.pdf" "$base.page"
        pg "$DIR" "$PORT" -d "$DB" -v ON_ERROR_STOP=1 -v sid="$sid" -v lang="$lang" -v pages="$pages" -v size="$size" \
            >/dev/null <<SQL
\\set txt \`cat '$base.txt'\`
\\set bbox \`cat '$base.bbox.xml'\`
INSERT INTO page_check VALUES (:sid, :'lang', :pages, :'size', :'txt', :'bbox'::xml);
SQL
        n=$((n + 1))
    done
done
echo "rendered and printed $n statement pages with $(basename "$CHROMIUM")"

# The checks, over all pages at once; each query returns the failures.
failures=$(pg "$DIR" "$PORT" -d "$DB" -At -v ON_ERROR_STOP=1 <<'SQL'
WITH s AS (SELECT p.*, st.customer, st.statement_no FROM page_check p JOIN credit.statement st ON st.id = p.statement_id),
-- Page size and count, the header on every page, the Chinese (or English) title and the customer.
layout AS (
    SELECT format('statement %s (%s): page size %s', statement_id, lang, page_size) FROM s WHERE page_size NOT LIKE '%(A4)%'
    UNION ALL
    SELECT format('statement %s (%s): %s page(s), expected several', statement_id, lang, pages) FROM s WHERE pages < 2
    UNION ALL
    SELECT format('statement %s (%s): page %s lacks the table header', statement_id, lang, n)
      FROM s, LATERAL unnest(string_to_array(rtrim(text, E'\f\n'), E'\f')) WITH ORDINALITY AS pg(page, n)
     WHERE n > 1 AND page LIKE '%INV-2025-%'
       AND page !~ CASE lang WHEN 'zh' THEN '余额|未清金额' ELSE 'Balance|Open amount' END
    UNION ALL
    SELECT format('statement %s (%s): title, number or customer missing', statement_id, lang) FROM s
     WHERE position(CASE lang WHEN 'zh' THEN '对账单' ELSE 'Statement of account' END IN text) = 0
        OR position(statement_no IN text) = 0
        OR position(customer IN regexp_replace(text, '\s+', ' ', 'g')) = 0),
-- Every figure of the statement in the page, every figure in the page the statement's.
expected AS (
    SELECT s.statement_id, s.lang, printed(v) AS figure
      FROM s JOIN credit.statement_line l ON l.statement_id = s.statement_id,
           LATERAL unnest(ARRAY[nullif(l.debit, 0), nullif(l.credit, 0), l.balance, l.applied, l.promised_amount]) v
     WHERE v IS NOT NULL AND l.section IN ('activity', 'open_item', 'aging')
    UNION ALL
    SELECT s.statement_id, s.lang, printed(v)
      FROM s JOIN credit.statement st ON st.id = s.statement_id,
           LATERAL unnest(ARRAY[st.opening, st.debits, st.credits, st.closing, st.overdue]) v),
shown AS (
    SELECT s.statement_id, s.lang, m[1] AS figure
      FROM s, LATERAL regexp_matches(s.text, '(?<![0-9,.])(-?[0-9]{1,3}(?:,[0-9]{3})*\.[0-9]{2,})(?![0-9])', 'g') m),
figures AS (
    SELECT format('statement %s (%s): %s is not in the page', e.statement_id, e.lang, e.figure)
      FROM expected e WHERE NOT EXISTS (SELECT 1 FROM shown x WHERE x.statement_id = e.statement_id AND x.lang = e.lang
                                                               AND x.figure = e.figure)
    UNION ALL
    SELECT format('statement %s (%s): the page shows %s, not a figure of the statement', x.statement_id, x.lang, x.figure)
      FROM shown x WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.statement_id = x.statement_id AND e.lang = x.lang
                                                                AND e.figure = x.figure)),
-- Words: inside the page, not overlapping on a line.
words AS (
    SELECT s.statement_id, s.lang, pg.n AS page,
           (xpath('/*[local-name()="page"]/@width', pg.p))[1]::text::numeric AS page_width,
           (xpath('@xMin', w))[1]::text::numeric AS x0, (xpath('@xMax', w))[1]::text::numeric AS x1,
           (xpath('@yMin', w))[1]::text::numeric AS y0, (xpath('@yMax', w))[1]::text::numeric AS y1,
           (xpath('string(.)', w))[1]::text AS word
      FROM s, LATERAL unnest(xpath('//*[local-name()="page"]', s.bbox)) WITH ORDINALITY AS pg(p, n),
           LATERAL unnest(xpath('.//*[local-name()="word"]', pg.p)) w),
placement AS (
    SELECT format('statement %s (%s) page %s: "%s" lies outside the page (x %s-%s of %s)',
                  statement_id, lang, page, word, x0, x1, page_width)
      FROM words WHERE x0 < 0 OR x1 > page_width
    UNION ALL
    SELECT format('statement %s (%s) page %s: "%s" overlaps "%s"', a.statement_id, a.lang, a.page, a.word, b.word)
      FROM words a JOIN words b ON b.statement_id = a.statement_id AND b.lang = a.lang AND b.page = a.page
       AND abs(b.y0 - a.y0) < 1 AND b.x0 > a.x0 AND b.x0 < a.x1 - 0.5)
SELECT * FROM layout UNION ALL SELECT * FROM figures UNION ALL SELECT * FROM placement LIMIT 40;
SQL
)
summary=$(pg "$DIR" "$PORT" -d "$DB" -At -F' ' -c \
    "SELECT count(*), sum(pages), (SELECT count(*) FROM credit.statement_line) FROM page_check")
echo "pages checked (documents, pages, statement lines): $summary; PDFs and first pages as PNG in $OUT"
if [ -n "$failures" ]; then
    echo "$failures"
    exit 1
fi
echo "statement pages: A4, several pages with headers, CJK rendered, every figure shown and no other, nothing clipped or overlapping"
