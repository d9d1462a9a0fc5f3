# Example pipeline: fit the 380 PSB meshes in 4 shards (e.g. 4 cluster array jobs), merge, score.
#   make -f pipelines/fit_psb.mk -j4 PRESET=small
PRESET ?= tiny
NRTOOL ?= .venv/bin/nrtool
DATA   ?= ../shared/data/psb
OUT    ?= bench-out/pipeline
SHARDS := 1 2 3 4

all: $(OUT)/scores.json

$(OUT)/shard%.h5:
	mkdir -p $(OUT)
	$(NRTOOL) fit-inr $(DATA) --out $@ --preset $(PRESET) --shard $*/4 --quiet

$(OUT)/psb.h5: $(foreach k,$(SHARDS),$(OUT)/shard$(k).h5)
	$(NRTOOL) merge $^ --out $@

$(OUT)/scores.json: $(OUT)/psb.h5
	$(NRTOOL) reconstruct $< --out $(OUT)/recon --metrics --json --quiet > $@.tmp && mv $@.tmp $@

.PHONY: all
