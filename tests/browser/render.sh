# Shared by the page tests: render a page in headless Chromium (DOM, screenshot, PDF, text) and
# check it. Sourced; needs CHROMIUM and a `failures` counter.
#   render BASE            BASE.html -> BASE.dom.html, BASE.png, BASE.pdf, BASE.txt, BASE.bbox.html
#   check_marks BASE EXPECTATIONS
#       EXPECTATIONS: lines "chart title<TAB>needle<TAB>count" — the rendered chart of that title
#       must hold the needle (class="point", class="bar", ...) exactly count times.
#   check_printed BASE FIGURE...   every figure appears in the printed text
#   check_inside BASE              no word lies beyond the printed page's width
render() {
    local base=$1
    chmod 644 "$base.html"
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --dump-dom "file://$base.html" \
        > "$base.dom.html" 2>"$base.chromium.log" || { cat "$base.chromium.log"; echo "chromium failed on $base.html"; exit 1; }
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
        --window-size=1100,1600 --screenshot="$base.png" "file://$base.html" >>"$base.chromium.log" 2>&1
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-pdf-header-footer \
        --print-to-pdf="$base.pdf" "file://$base.html" >>"$base.chromium.log" 2>&1
    [ -s "$base.png" ] || { echo "$base: no screenshot"; failures=$((failures + 1)); }
    pdftotext -layout "$base.pdf" "$base.txt"
    pdftotext -bbox "$base.pdf" "$base.bbox.html"
}

check_marks() {
    local base=$1 expectations=$2 out
    out=$(python3 - "$base.dom.html" "$expectations" <<'PY'
import re, sys, html
dom = open(sys.argv[1], encoding='utf-8').read()
charts = {}
for svg in re.findall(r'<svg\b.*?</svg>', dom, re.S):
    m = re.search(r'<title>(.*?)</title>', svg, re.S)
    charts[html.unescape(m.group(1)) if m else ''] = svg
bad = 0
for line in open(sys.argv[2], encoding='utf-8'):
    line = line.rstrip('\n')
    if not line:
        continue
    title, needle, want = line.split('\t')
    svg = charts.get(title)
    if svg is None:
        print(f'no chart titled "{title}" in the rendered page (charts: {list(charts)})'); bad += 1; continue
    got = svg.count(needle)
    if got != int(want):
        print(f'"{title}": {got} × {needle}, the data calls for {want}'); bad += 1
print(f'charts={len(charts)} bad={bad}')
PY
)
    echo "$out" | grep -v '^charts=' || true
    local bad=${out##*bad=}
    failures=$((failures + bad))
}

check_printed() {
    local base=$1; shift
    local fig
    for fig in "$@"; do
        grep -qF -- "$fig" "$base.txt" || { echo "$base: the page does not show $fig"; failures=$((failures + 1)); }
    done
}

check_inside() {
    local base=$1 outside
    outside=$(grep -o 'page width="[0-9.]*"\|xMax="[0-9.]*"' "$base.bbox.html" \
        | awk -F'"' '/page width/ {w = $2; next} { if ($2 > w + 0.5) n++ } END {print n + 0}')
    [ "$outside" = 0 ] || { echo "$base: $outside words beyond the page's width"; failures=$((failures + 1)); }
}
