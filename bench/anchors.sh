#!/usr/bin/env bash
# Train and score tagger next to the anchor tools (Annif svc and omikuji, fastText, the
# sklearn baseline) on the same split, in one run of the shared harness per corpus.
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
# then prints every corpus's results.md and a compact table from its results.json.
#
# Knobs: TAGGER_SET="ngram_max=2 C=2" (passed to tool_tagger.py as --set KEY=VALUE ...),
#   TOOLS ["tagger sklearn fasttext annif_svc annif_omikuji"], JOBS [nproc], ANCHORS_DIR
#   [../shared/bench/anchors], ANCHORS_HOME [~/.cache/tagger-anchors] (run the harness's
#   setup_envs.sh once, then `$ANCHORS_HOME/base-venv/bin/pip install jieba`), BASE_PY,
#   DATA_ROOT, SEG_DIR, OUT_ROOT, SEG_WORKERS [2]; any other run_anchors.sh knob passes through.
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
TOOLS=${TOOLS:-"tagger sklearn fasttext annif_svc annif_omikuji"}
export ANCHORS_DIR JOBS=${JOBS:-$(nproc)}
export TOOL_FILE_tagger=${TOOL_FILE_tagger:-$HERE/tool_tagger.py}
export TOOL_PY_tagger=${TOOL_PY_tagger:-$ROOT/.venv/bin/python}
if [ -n "${TAGGER_SET:-}" ]; then
  TOOL_ARGS_tagger=""
  for kv in $TAGGER_SET; do TOOL_ARGS_tagger+="--set $kv "; done
  export TOOL_ARGS_tagger=${TOOL_ARGS_tagger% }
fi

[ $# -gt 0 ] || set -- reuters21578 tiku fudan
[ -x "$BASE_PY" ] || { echo "missing $BASE_PY: run $ANCHORS_DIR/setup_envs.sh first"; exit 1; }
[ -x "$TOOL_PY_tagger" ] || { echo "missing $TOOL_PY_tagger: run 'make test' or 'make run' once"; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

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
cols = ["tool", "doc µF1", "doc macro-F1", "doc P@1", "doc P@3", "doc nDCG@5",
        "par µF1", "par macro-F1", "par P@1", "train s"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for t in names:
    r = tools[t]
    if r.get("status") != "ok":
        print("| " + " | ".join([t, r.get("status", "FAILED")] + ["-"] * (len(cols) - 2)) + " |")
        continue
    d, p = r["document"], r["paragraph"]
    cells = [d["micro_f1"], d["macro_f1"], d["p@1"], d["p@3"], d["ndcg@5"],
             p["micro_f1"], p["macro_f1"], p["p@1"]]
    wall_s = r["train"].get("wall_s")
    print("| " + " | ".join([t] + [f"{x:.4f}" for x in cells]
                            + [f"{wall_s:.1f}" if wall_s is not None else "-"]) + " |")
for t in order:
    if t not in tools:
        print(f"(tool {t} has no result: see {out}/logs)")
if wall:
    print(f"\nwall time: {wall['total_s']} s (segmentation {wall['segment_s']} s, "
          f"harness {wall['run_anchors_s']} s)")
EOF
done
exit $status
