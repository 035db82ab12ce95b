#!/usr/bin/env bash
# Train and score tagger next to the anchor tools (Annif svc and omikuji, fastText, the
# sklearn baseline, LibMultiLabel's linear methods) on the same split, in one run of the
# shared harness per corpus.
#
#   bench/anchors.sh [CORPUS...]        default: reuters21578 tiku fudan
#
# For each corpus under DATA_ROOT [../shared/data]:
#   * tiku, fudan (raw Chinese): a jieba-segmented copy is made once with the harness's
#     segment_corpus.py under SEG_DIR [/tmp/tagger-seg]/<corpus> (kept and reused);
#     any other corpus (reuters21578) is used as it is;
#   * run_anchors.sh trains and scores TOOLS into OUT_ROOT [bench/out]/anchors-<corpus>
#     (reuters21578: ANNIF_ANALYZER="snowball(english)"; fudan: MAX_PAR_TOKENS=200, as the
#     harness README says the anchors were measured);
# then prints every corpus's results.md and a compact table from its results.json: document
# and paragraph µF1, macro-F1, P@1, P@3, nDCG@5 under the harness's rule (threshold tuned on
# val for micro-F1; document = mean of paragraph scores), train s, predict s (the whole
# predict process), 1-par ms, batch par/s; for the LibMultiLabel tools also rows with their
# own rules (decision > 0, and > 0 with at least one label; document = the whole document
# scored; and the harness's rule on whole-document scores); then each tool's best rule and
# the best anchor (every tool but tagger) for document µF1, macro-F1 and P@1.
#
# LibMultiLabel (bench/tool_libmultilabel.py): any TOOLS entry lml_<method>[_par], method one
# of 1vsrest thresholding cost_sensitive cost_sensitive_micro (_par: trained on the harness
# paragraphs instead of whole documents), runs under LML_PY, a virtualenv of its own created
# on first use as
#   python3 -m venv $ANCHORS_HOME/lml-venv && $ANCHORS_HOME/lml-venv/bin/pip install $LML_PIP
# (LML_PIP ["libmultilabel==0.10.0 scipy<1.14"]: train_thresholding of 0.10.0 fails with scipy
# 1.14-1.17, "axis out of range"; scipy 1.13.1 works).
#
# Knobs: TAGGER_SET="ngram_max=2 C=2" (passed to tool_tagger.py as --set KEY=VALUE ...),
#   TOOLS ["tagger sklearn fasttext annif_svc annif_omikuji lml_1vsrest lml_thresholding
#   lml_cost_sensitive lml_cost_sensitive_micro"], JOBS [nproc], ANCHORS_DIR
#   [../shared/bench/anchors], ANCHORS_HOME [~/.cache/tagger-anchors] (run the harness's
#   setup_envs.sh once, then `$ANCHORS_HOME/base-venv/bin/pip install jieba`), BASE_PY,
#   LML_PY [$ANCHORS_HOME/lml-venv/bin/python], LML_PIP, LML_ARGS (train args of every lml_
#   tool, e.g. "--C 0.5 --min-df 1"; TOOL_ARGS_lml_<method> sets one), DATA_ROOT, SEG_DIR,
#   OUT_ROOT, SEG_WORKERS [2]; any other run_anchors.sh knob passes through.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ANCHORS_DIR=${ANCHORS_DIR:-$(cd "$ROOT/../shared/bench/anchors" && pwd)}
export ANCHORS_HOME=${ANCHORS_HOME:-$HOME/.cache/tagger-anchors}
BASE_PY=${BASE_PY:-$ANCHORS_HOME/base-venv/bin/python}
DATA_ROOT=${DATA_ROOT:-$(cd "$ROOT/../shared/data" && pwd)}
SEG_DIR=${SEG_DIR:-/tmp/tagger-seg}
OUT_ROOT=${OUT_ROOT:-$ROOT/bench/out}
SEG_WORKERS=${SEG_WORKERS:-2}
TOOLS=${TOOLS:-"tagger sklearn fasttext annif_svc annif_omikuji lml_1vsrest lml_thresholding lml_cost_sensitive lml_cost_sensitive_micro"}
LML_PY=${LML_PY:-$ANCHORS_HOME/lml-venv/bin/python}
LML_PIP=${LML_PIP:-"libmultilabel==0.10.0 scipy<1.14"}
export ANCHORS_DIR JOBS=${JOBS:-$(nproc)}
export TOOL_FILE_tagger=${TOOL_FILE_tagger:-$HERE/tool_tagger.py}
export TOOL_PY_tagger=${TOOL_PY_tagger:-$ROOT/.venv/bin/python}
lml_tools=""
for t in $TOOLS; do
  case $t in
    lml_*)
      lml_tools+="$t "
      v=TOOL_FILE_$t; export "$v=${!v:-$HERE/tool_libmultilabel.py}"
      v=TOOL_PY_$t; export "$v=${!v:-$LML_PY}"
      v=TOOL_ARGS_$t; [ -n "${!v:-}${LML_ARGS:-}" ] && export "$v=${!v:-$LML_ARGS}"
      ;;
  esac
done
if [ -n "${TAGGER_SET:-}" ]; then
  TOOL_ARGS_tagger=""
  for kv in $TAGGER_SET; do TOOL_ARGS_tagger+="--set $kv "; done
  export TOOL_ARGS_tagger=${TOOL_ARGS_tagger% }
fi

[ $# -gt 0 ] || set -- reuters21578 tiku fudan
[ -x "$BASE_PY" ] || { echo "missing $BASE_PY: run $ANCHORS_DIR/setup_envs.sh first"; exit 1; }
case " $TOOLS " in
  *" tagger "*) [ -x "$TOOL_PY_tagger" ] || { echo "missing $TOOL_PY_tagger: run 'make test' or 'make run' once"; exit 1; } ;;
esac
log() { echo "[$(date +%H:%M:%S)] $*"; }
if [ -n "$lml_tools" ] && [ ! -x "$LML_PY" ]; then
  [ "$LML_PY" = "$ANCHORS_HOME/lml-venv/bin/python" ] || { echo "missing LML_PY=$LML_PY"; exit 1; }
  log "LibMultiLabel: creating $ANCHORS_HOME/lml-venv (pip install $LML_PIP)"
  python3 -m venv "$ANCHORS_HOME/lml-venv" && "$ANCHORS_HOME/lml-venv/bin/pip" install -q $LML_PIP \
    || { echo "LibMultiLabel venv setup failed"; rm -rf "$ANCHORS_HOME/lml-venv"; exit 1; }
fi

mkdir -p "$OUT_ROOT"
status=0
for corpus in "$@"; do
  src=$DATA_ROOT/$corpus
  [ -d "$src/train" ] && [ -d "$src/test" ] || { log "$corpus: no $src/{train,test} - skipped"; status=1; continue; }
  out=$OUT_ROOT/anchors-$corpus
  t0=$(date +%s)
  data=$src seg_s=0
  case $corpus in
    tiku|fudan)
      data=$SEG_DIR/$corpus
      if [ -f "$data/segmentation.json" ]; then
        log "$corpus: reusing segmented copy $data"
      else
        "$BASE_PY" -c "import jieba" 2>/dev/null \
          || { log "jieba missing: $ANCHORS_HOME/base-venv/bin/pip install jieba"; exit 1; }
        log "$corpus: segmenting $src -> $data (jieba, $SEG_WORKERS workers)"
        rm -rf "$data"
        "$BASE_PY" "$ANCHORS_DIR/segment_corpus.py" "$src" "$data" --workers "$SEG_WORKERS" \
          || { log "$corpus: segmentation failed"; status=1; continue; }
        seg_s=$(( $(date +%s) - t0 ))
      fi
      ;;
  esac
  extra=()
  case $corpus in
    reuters21578) extra=(ANNIF_ANALYZER="snowball(english)") ;;
    fudan) extra=(MAX_PAR_TOKENS=200) ;;
  esac
  log "$corpus: run_anchors.sh $data $out  TOOLS=\"$TOOLS\" JOBS=$JOBS ${extra[*]:-}" \
      "${TOOL_ARGS_tagger:+TOOL_ARGS_tagger=\"$TOOL_ARGS_tagger\"}"
  t1=$(date +%s)
  env TOOLS="$TOOLS" "${extra[@]}" "$ANCHORS_DIR/run_anchors.sh" "$data" "$out" \
    || { log "$corpus: run_anchors.sh exited with $?"; status=1; }
  t2=$(date +%s)
  mkdir -p "$out"
  printf '{"corpus": "%s", "data": "%s", "segment_s": %s, "run_anchors_s": %s, "total_s": %s, "tools": "%s", "tagger_args": "%s"}\n' \
    "$corpus" "$data" "$seg_s" $((t2 - t1)) $((t2 - t0)) "$TOOLS" "${TOOL_ARGS_tagger:-}" > "$out/anchors_wall.json"
  log "$corpus: done in $((t2 - t0)) s (segmentation $seg_s s, harness $((t2 - t1)) s)"
done

for corpus in "$@"; do
  out=$OUT_ROOT/anchors-$corpus
  [ -f "$out/results.json" ] || { echo; echo "## $corpus: no results ($out)"; continue; }
  echo; echo "## $corpus ($out)"; echo
  cat "$out/results.md"
  echo
  "$BASE_PY" - "$out" "$TOOLS" <<'EOF'
import json, os, sys
out, order = sys.argv[1], sys.argv[2].split()
res = json.load(open(os.path.join(out, "results.json")))
wall = {}
try:
    wall = json.load(open(os.path.join(out, "anchors_wall.json")))
except (OSError, ValueError):
    pass
tools = res["tools"]
names = [t for t in order if t in tools] + sorted(t for t in tools if t not in order)
Q = [("doc", "micro_f1"), ("doc", "macro_f1"), ("doc", "p@1"), ("doc", "p@3"), ("doc", "ndcg@5"),
     ("par", "micro_f1"), ("par", "macro_f1"), ("par", "p@1"), ("par", "p@3"), ("par", "ndcg@5")]
cols = ["tool", "rule", "doc µF1", "doc macro-F1", "doc P@1", "doc P@3", "doc nDCG@5",
        "par µF1", "par macro-F1", "par P@1", "par P@3", "par nDCG@5",
        "train s", "predict s", "1-par ms", "batch par/s"]
# rows: (tool, rule, {"doc": metrics or None, "par": metrics or None}, speed cells)
OWN = [("dec>0", "doc_dec>0", "par_dec>0"), ("dec>0, ≥1", "doc_dec>0_min1", "par_dec>0_min1"),
       ("harness, whole doc", "doc_tuned", None)]
rows, failed = [], []
for t in names:
    r = tools[t]
    if r.get("status") != "ok":
        failed.append((t, r.get("status", "FAILED")))
        continue
    p = r.get("predict", {})
    speed = [r["train"].get("wall_s"), r.get("predict_proc", {}).get("wall_s"),
             p.get("single_p50_ms"), p.get("test_par_per_s")]
    rows.append((t, "harness", {"doc": r["document"], "par": r["paragraph"]}, speed))
    own = p.get("own_rules") or {}
    for label, dk, pk in OWN:
        if dk in own:
            rows.append((t, label, {"doc": own[dk], "par": own.get(pk) if pk else None}, [None] * 4))
best = {}
for i, (lvl, m) in enumerate(Q):
    vals = [x[2][lvl][m] for x in rows if x[2][lvl] is not None]
    best[i] = max(vals) if vals else None

def cell(v, nd=4, b=None):
    if v is None:
        return "-"
    s = f"{v:.{nd}f}"
    return f"**{s}**" if b is not None and abs(v - b) < 5e-5 else s

print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for t, rule, lv, speed in rows:
    q = [cell(lv[lvl][m] if lv[lvl] is not None else None, 4, best[i]) for i, (lvl, m) in enumerate(Q)]
    sp = ["" if x is None else (f"{x:.1f}" if k != 2 else f"{x:.2f}") for k, x in enumerate(speed)]
    if rule != "harness":
        sp = ["", "", "", ""]
    print("| " + " | ".join([t, rule] + q + sp) + " |")
for t, st in failed:
    print("| " + " | ".join([t, st] + ["-"] * (len(cols) - 2)) + " |")
print("\nrule: harness = threshold tuned on val for micro-F1 (min 1, max 10 labels), document = "
      "mean of its paragraphs' scores; dec>0 = labels with LibMultiLabel decision value > 0 "
      "(thresholding: its per-label thresholds), ≥1 = at least the top label, document = the "
      "whole document scored; harness, whole doc = the harness rule on whole-document scores. "
      "train s / predict s: wall time of the train / predict process; 1-par ms: median of "
      "100 paragraphs scored one at a time; batch par/s: test paragraphs / time, one process.")
for t in order:
    if t not in tools:
        print(f"(tool {t} has no result: see {out}/logs)")

def best_of(sel, lvl, m):
    cand = [(x[2][lvl][m], x[0], x[1]) for x in sel if x[2][lvl] is not None]
    return max(cand, key=lambda c: c[0]) if cand else None

M = [("doc µF1", "micro_f1"), ("doc macro-F1", "macro_f1"), ("doc P@1", "p@1")]
print("\nbest rule per tool (document level):\n")
print("| tool | " + " | ".join(n for n, _ in M) + " |")
print("|---|" + "---|" * len(M))
for t in [n for n in names if any(x[0] == n for x in rows)]:
    sel = [x for x in rows if x[0] == t]
    cells = []
    for _, m in M:
        v, _, rule = best_of(sel, "doc", m)
        cells.append(f"{v:.4f} ({rule})")
    print(f"| {t} | " + " | ".join(cells) + " |")
anchors = [x for x in rows if x[0] != "tagger"]
if anchors:
    print()
    for n, m in M:
        v = best_of(anchors, "doc", m)[0]
        ties = [f"{x[0]}, {x[1]}" for x in anchors if x[2]["doc"] is not None and abs(x[2]["doc"][m] - v) < 5e-5]
        print(f"best anchor {n}: {v:.4f} ({'; '.join(ties)})")
if wall:
    print(f"\nwall time: {wall['total_s']} s (segmentation {wall['segment_s']} s, "
          f"harness {wall['run_anchors_s']} s)")
EOF
done
exit $status
