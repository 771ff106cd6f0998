#!/usr/bin/env bash
# Trains the example models of docs/training.md from the data examples/make_data.py generates:
#   examples/sentiment.safetensors  word-order sentiment classifier (bi-LSTM)
#   examples/chars.safetensors      character-level generator (LSTM)
#   examples/tagger.safetensors     part-of-speech tagger (bi-GRU)
# Deterministic: same machine, same files. Takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 examples/make_data.py examples/data
swift build -c release --product recur-cli >/dev/null
recur=.build/release/recur-cli
d=examples/data

$recur train --arch examples/arch/sentiment.json --task classify --data $d/sentiment_train.tsv \
    --valid $d/sentiment_valid.tsv --test $d/sentiment_test.tsv --out examples/sentiment.safetensors \
    --epochs 8 --batch-size 32 --lr 0.003 --seed 1
$recur train --arch examples/arch/chars.json --task lm --data $d/chars_train.txt \
    --valid $d/chars_valid.txt --out examples/chars.safetensors \
    --epochs 8 --batch-size 32 --bptt 64 --lr 0.003 --seed 1
$recur train --arch examples/arch/tagger.json --task tag --data $d/tagger_train.tsv \
    --valid $d/tagger_valid.tsv --out examples/tagger.safetensors \
    --epochs 6 --batch-size 32 --lr 0.003 --seed 1
